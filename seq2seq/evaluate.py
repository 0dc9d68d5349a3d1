"""Scores: sacreBLEU BLEU and chrF with their signatures, on a split or on files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import sacrebleu
import torch

from seq2seq.data.batching import IdArray, make_batch, token_batches
from seq2seq.data.tokenizer import EOS_ID, PAD_ID


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


@dataclass
class TokenScores:
    """Teacher-forced scores of every example's target, per example (numpy arrays):
    ``nll`` summed over the target's tokens and ``correct`` (argmax == gold) counts, both
    without EOS; ``eos_nll`` and ``eos_correct`` for the final EOS; ``tokens`` (no EOS)."""

    nll: np.ndarray
    correct: np.ndarray
    tokens: np.ndarray
    eos_nll: np.ndarray
    eos_correct: np.ndarray

    def per_token(self, with_eos: bool = True) -> tuple[float, float]:
        """(mean NLL in nats, accuracy) over all tokens, EOS counted or not."""
        nll, correct, n = self.nll.sum(), self.correct.sum(), self.tokens.sum()
        if with_eos:
            nll, correct, n = (
                nll + self.eos_nll.sum(),
                correct + self.eos_correct.sum(),
                n + len(self.tokens),
            )
        return float(nll / max(n, 1)), float(correct / max(n, 1))


@torch.no_grad()
def teacher_forced(
    model: torch.nn.Module,
    src: IdArray,
    tgt: IdArray,
    device: torch.device,
    batch_tokens: int = 8192,
) -> TokenScores:
    """Score ``tgt`` given ``src`` with the model fed the gold prefix (fp32 log-softmax)."""
    was_training = model.training
    model.eval()
    n = len(src)
    out = {k: np.zeros(n) for k in ("nll", "correct", "eos_nll", "eos_correct")}
    try:
        for indices in token_batches(
            src.lengths + 1, tgt.lengths + 1, batch_tokens, seed=0, epoch=0, shuffle=False
        ):
            batch = make_batch(src, tgt, indices).to(device)
            assert batch.tgt_in is not None and batch.tgt_out is not None
            logits = model(batch.src, batch.src_lengths, batch.tgt_in).float()
            log_probs = logits.log_softmax(-1)
            gold = batch.tgt_out
            token_nll = -log_probs.gather(2, gold.unsqueeze(2)).squeeze(2)  # (B, T)
            right = (logits.argmax(-1) == gold).float()
            is_eos = gold == EOS_ID
            text = (gold != PAD_ID) & ~is_eos
            rows = torch.as_tensor(indices)
            for key, values, mask in (
                ("nll", token_nll, text),
                ("correct", right, text),
                ("eos_nll", token_nll, is_eos),
                ("eos_correct", right, is_eos),
            ):
                out[key][rows.numpy()] = (values * mask).sum(1).cpu().double().numpy()
    finally:
        model.train(was_training)
    return TokenScores(
        out["nll"],
        out["correct"],
        tgt.lengths.astype(np.float64),
        out["eos_nll"],
        out["eos_correct"],
    )
