"""Generated tasks: data that needs no download, for demos and end-to-end tests.

``reverse``: the target is the source's tokens in reverse order, e.g.
``3 1 4 1 5`` -> ``5 1 4 1 3``. Chance exact-match is 10^-length, so a model that gets
many right has learned to attend.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from seq2seq.data.files import atomic_write_text


def reverse_pairs(count: int, min_len: int, max_len: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        digits = [str(rng.randrange(10)) for _ in range(rng.randint(min_len, max_len))]
        pairs.append((" ".join(digits), " ".join(reversed(digits))))
    return pairs


def write_reverse_task(
    folder: str | Path,
    train: int = 5000,
    valid: int = 200,
    test: int = 200,
    min_len: int = 3,
    max_len: int = 8,
    seed: int = 1,
) -> Path:
    """Write ``{train,valid,test}.{src,tgt}`` into ``folder``; returns it."""
    folder = Path(folder)
    for offset, (split, count) in enumerate([("train", train), ("valid", valid), ("test", test)]):
        pairs = reverse_pairs(count, min_len, max_len, seed * 1000 + offset)
        atomic_write_text(folder / f"{split}.src", "".join(s + "\n" for s, _ in pairs))
        atomic_write_text(folder / f"{split}.tgt", "".join(t + "\n" for _, t in pairs))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description="write a generated task (reverse digit strings)")
    parser.add_argument("folder")
    parser.add_argument("--train", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(write_reverse_task(args.folder, train=args.train, seed=args.seed))


if __name__ == "__main__":
    main()
