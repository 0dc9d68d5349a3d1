"""Build the German-English demo corpus shipped in seq2seq/data/corpora/tatoeba_de_en_demo.

    python tools/make_demo_corpus.py ../shared/data/tatoeba_deu_eng

From the Tatoeba pairs of manythings.org/anki (CC BY 2.0; see that folder's NOTICE): the
pairs whose German and English sides have at most 10 words each; 80,000 of the training
split's, drawn with a fixed seed, for training; of the validation split's, those whose
English sentence's sha256 is even go to 'valid' and odd to 'test', 1,000 each. The source's
own split keeps every German or English sentence within one split, so neither held-out
part shares a sentence with the training part. Written as xz-compressed line files
(``train.de.xz`` ...), which the readers open as they are.
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "seq2seq" / "data" / "corpora" / "tatoeba_de_en_demo"
MAX_WORDS = 10
TRAIN, HELD_OUT = 80_000, 1_000
SEED = 1


def short_pairs(folder: Path, split: str) -> list[tuple[str, str]]:
    de = (folder / f"{split}.de").read_text(encoding="utf-8").splitlines()
    en = (folder / f"{split}.en").read_text(encoding="utf-8").splitlines()
    return [
        (d, e)
        for d, e in zip(de, en, strict=True)
        if d.strip() and e.strip() and len(d.split()) <= MAX_WORDS and len(e.split()) <= MAX_WORDS
    ]


def write(split: str, pairs: list[tuple[str, str]]) -> None:
    for side, lang in ((0, "de"), (1, "en")):
        text = "".join(pair[side] + "\n" for pair in pairs).encode("utf-8")
        path = OUT / f"{split}.{lang}.xz"
        path.write_bytes(lzma.compress(text, preset=9 | lzma.PRESET_EXTREME))
        print(f"{path}: {len(pairs):,} lines, {path.stat().st_size:,} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="the tatoeba_deu_eng folder")
    folder = parser.parse_args().source
    OUT.mkdir(parents=True, exist_ok=True)
    train = random.Random(SEED).sample(short_pairs(folder, "train"), TRAIN)
    held = short_pairs(folder, "valid")
    # sha256, not md5: the source chose its valid split by md5 (mod 50), which fixes md5 parity
    parity = [int(hashlib.sha256(e.encode("utf-8")).hexdigest(), 16) % 2 for _, e in held]
    valid = [p for p, odd in zip(held, parity, strict=True) if not odd]
    test = [p for p, odd in zip(held, parity, strict=True) if odd]
    rng = random.Random(SEED)
    write("train", train)
    write("valid", rng.sample(valid, HELD_OUT))
    write("test", rng.sample(test, HELD_OUT))


if __name__ == "__main__":
    main()
