"""What every search returns, and the length rules they share."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Hypothesis:
    """One output: ``tokens`` without BOS/EOS; ``score`` is what ranks it (length-penalised
    for beam search); ``token_scores`` are per-token log-probabilities, EOS included;
    ``attention`` (len(tokens)+1, S) when requested."""

    tokens: list[int]
    score: float
    token_scores: list[float] = field(default_factory=list)
    attention: torch.Tensor | None = None

    @property
    def log_prob(self) -> float:
        return float(sum(self.token_scores))


def max_lengths(src_lengths: torch.Tensor, a: float, b: int) -> torch.Tensor:
    """Longest output (tokens before EOS) allowed per sentence: a * source tokens + b.

    src_lengths (B,) counts the source EOS, which is not part of the text.
    """
    return ((src_lengths - 1).float() * a + b).floor().clamp(min=1).long()


def gnmt_length_penalty(length: torch.Tensor | int, alpha: float) -> torch.Tensor | float:
    """((5 + length) / 6) ** alpha, from Wu et al. 2016; length counts EOS. alpha 0 -> 1."""
    return ((5.0 + length) / 6.0) ** alpha


def force_eos(log_probs: torch.Tensor, rows: torch.Tensor, eos: int) -> None:
    """In place: rows (N,) bool that reached their length limit may only emit EOS
    (at the model's own log-probability for it)."""
    if bool(rows.any()):
        eos_scores = log_probs[rows, eos]
        log_probs[rows] = float("-inf")
        log_probs[rows, eos] = eos_scores
