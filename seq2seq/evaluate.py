"""Scores: sacreBLEU BLEU and chrF with their signatures, on a split or on files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import sacrebleu


@dataclass
class Scores:
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    sentences: int
    bleu_detail: str

    def line(self) -> str:
        return (
            f"BLEU = {self.bleu:.2f} ({self.bleu_detail})  chrF = {self.chrf:.2f}  "
            f"[{self.sentences} sentences]\n  {self.bleu_signature}\n  {self.chrf_signature}"
        )

    def json(self) -> str:
        return json.dumps(asdict(self))


def score(hypotheses: Sequence[str], references: Sequence[str]) -> Scores:
    """Detokenized, cased BLEU (13a) and chrF against one reference per line."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    b = bleu.corpus_score(list(hypotheses), [list(references)])
    c = chrf.corpus_score(list(hypotheses), [list(references)])
    detail = "/".join(f"{p:.1f}" for p in b.precisions) + f" BP={b.bp:.3f} ratio={b.ratio:.3f}"
    return Scores(
        bleu=round(b.score, 2),
        chrf=round(c.score, 2),
        bleu_signature=str(bleu.get_signature()),
        chrf_signature=str(chrf.get_signature()),
        sentences=len(hypotheses),
        bleu_detail=detail,
    )
