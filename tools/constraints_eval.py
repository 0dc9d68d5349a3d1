"""Terminology constraints on a test set: draw reference noun phrases as constraints,
translate with and without them, report the share of outputs that hold all their
phrases, BLEU and chrF both ways, and the speed of each.

    python tools/constraints_eval.py RUN --src test.de --ref test.en [--phrases 2]
        [--seed 1] [--out DIR] [--json FILE] [key=value ...]

A reference's noun phrases are found without a parser: the words after a determiner
("a", "the", "two", "his", ...) up to the next function word or punctuation, at most
three, and not past a later word of five letters or more in -ing or -ed ("orange hat",
"Boston Terrier", "lush green grass", "red barn"; "man wearing" stops at "man"). Up to
``--phrases`` of them per sentence are drawn with ``--seed`` (a sentence with none gets
none). A phrase counts as met when it appears in the output as whole words,
case-sensitively.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path
from typing import Any

DETERMINERS = frozenset(
    re.findall(
        r"\S+",
        "a an the this that these those his her its their our my your two three four five "
        "several many some one",
    )
)
# words that end a noun phrase (prepositions, verbs' helpers, conjunctions, pronouns)
ENDS = frozenset(
    re.findall(
        r"\S+",
        "in on at of with by for from to into onto over under near behind beside while and or "
        "but is are was were be being been has have had as that which who whom whose "
        "he she it they them him her his their its there here",
    )
)
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*$")


def noun_phrases(sentence: str, longest: int = 3) -> list[str]:
    """The word runs after each determiner, up to a function word or punctuation."""
    tokens = sentence.split()
    phrases = []
    for i, token in enumerate(tokens):
        if token.lower() not in DETERMINERS:
            continue
        words: list[str] = []
        for word in tokens[i + 1 : i + 1 + longest]:
            bare = word.rstrip(".,;:!?")
            if not WORD.match(bare) or bare.lower() in ENDS | DETERMINERS:
                break
            # "hat starring", "woman dressed", but "red barn", "sled", "ring"
            if words and len(bare) > 4 and bare.endswith(("ing", "ed")):
                break
            words.append(bare)
            if bare != word:  # punctuation closes the phrase
                break
        if words:
            phrases.append(" ".join(words))
    return phrases


def draw_constraints(references: list[str], per_line: int, seed: int) -> list[list[str]]:
    """Up to ``per_line`` distinct noun phrases of each reference, drawn with ``seed``."""
    rng = random.Random(seed)
    drawn = []
    for reference in references:
        phrases = list(dict.fromkeys(noun_phrases(reference)))
        drawn.append(rng.sample(phrases, min(per_line, len(phrases))))
    return drawn


def holds(output: str, phrase: str) -> bool:
    """Whether ``phrase`` appears in ``output`` as whole words."""
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", output) is not None


def run(args: argparse.Namespace) -> dict[str, Any]:
    import sacrebleu

    from seq2seq.config import parse_overrides
    from seq2seq.tasks import load_translator

    sources = Path(args.src).read_text(encoding="utf-8").splitlines()
    references = Path(args.ref).read_text(encoding="utf-8").splitlines()
    required = draw_constraints(references, args.phrases, args.seed)
    translator = load_translator([args.run], search=parse_overrides(args.overrides, "search"))
    result: dict[str, Any] = {
        "sentences": len(sources),
        "with_constraints": sum(1 for r in required if r),
        "phrases": sum(map(len, required)),
    }
    outputs = {}
    for name, given in (("plain", None), ("constrained", required)):
        translator.translate(sources[:8])  # warm up (oneDNN sets up its kernels)
        start = time.perf_counter()
        hyps = translator.hypotheses(sources, required=given)
        seconds = time.perf_counter() - start
        texts = [translator.detokenize(h[0]) if h else "" for h in hyps]
        outputs[name] = texts
        met = [all(holds(t, p) for p in r) for t, r in zip(texts, required, strict=True) if r]
        result[name] = {
            "bleu": round(sacrebleu.corpus_bleu(texts, [references]).score, 2),
            "chrf": round(sacrebleu.corpus_chrf(texts, [references]).score, 2),
            "all_met": round(sum(met) / max(len(met), 1), 4),
            "seconds": round(seconds, 2),
            "sentences_per_s": round(len(sources) / seconds, 1),
        }
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "constraints.tsv").write_text("".join("\t".join(r) + "\n" for r in required))
        for name, texts in outputs.items():
            (out / f"{name}.txt").write_text("".join(t + "\n" for t in texts))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a run directory")
    parser.add_argument("--src", required=True)
    parser.add_argument("--ref", required=True)
    parser.add_argument("--phrases", type=int, default=2, help="at most N per sentence")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="write constraints.tsv, plain.txt, constrained.txt")
    parser.add_argument("--json", help="write the result here too")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="search settings")
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
