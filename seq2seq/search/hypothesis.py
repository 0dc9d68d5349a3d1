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


def forbid_specials(log_probs: torch.Tensor, pad: int, bos: int) -> None:
    """In place: PAD and BOS are never outputs (a model gives them tiny but nonzero
    probability; sampling at a high temperature would draw them)."""
    log_probs[:, pad] = float("-inf")
    log_probs[:, bos] = float("-inf")


def force_eos(log_probs: torch.Tensor, rows: torch.Tensor, eos: int) -> None:
    """In place: rows (N,) bool that reached their length limit may only emit EOS
    (at the model's own log-probability for it)."""
    if bool(rows.any()):
        eos_scores = log_probs[rows, eos]
        log_probs[rows] = float("-inf")
        log_probs[rows, eos] = eos_scores


class OutputBuffer:
    """Tokens, scores and (optionally) attention of N rows over at most T steps, for
    searches whose rows leave the batch at EOS: each step writes at its live rows."""

    def __init__(
        self, rows: int, steps: int, width: int, eos: int, device: torch.device, attention: bool
    ) -> None:
        self.eos = eos
        self.tokens = torch.full((rows, steps), eos, dtype=torch.long, device=device)
        self.scores = torch.zeros(rows, steps, device=device)
        self.attn = torch.zeros(rows, steps, width, device=device) if attention else None
        self.length = 0

    def write(
        self,
        alive: torch.Tensor,
        t: int | torch.Tensor,
        tokens: torch.Tensor,
        scores: torch.Tensor,
        attn: torch.Tensor,
    ) -> None:
        """Step t of rows ``alive`` (n,): tokens, scores (n,), attention (n, S); ``t``
        (n,) when the rows sit at different steps."""
        self.tokens[alive, t] = tokens
        self.scores[alive, t] = scores
        if self.attn is not None:
            self.attn[alive, t, : attn.size(1)] = attn.float()  # rows may read fewer columns
        # rows at their own steps: read every column (a row's EOS ends it in hypotheses)
        self.length = self.tokens.size(1) if isinstance(t, torch.Tensor) else t + 1

    def history(self, rows: torch.Tensor, t: int) -> torch.Tensor:
        """The tokens of ``rows`` (n,) before step t: (n, t)."""
        return self.tokens[rows, :t]

    def hypotheses(self) -> list[list[Hypothesis]]:
        """One hypothesis per row, cut after its first EOS (the EOS's score kept)."""
        steps = self.length
        tokens_l = self.tokens[:, :steps].tolist()
        scores_l = self.scores[:, :steps].tolist()
        attn = None if self.attn is None else self.attn[:, :steps].cpu()  # (N, T, S)
        result = []
        for row, (toks, scs) in enumerate(zip(tokens_l, scores_l, strict=True)):
            end = toks.index(self.eos) if self.eos in toks else len(toks) - 1
            token_scores = scs[: end + 1]
            attention = None if attn is None else attn[row, : end + 1]
            result.append(
                [Hypothesis(toks[:end], float(sum(token_scores)), token_scores, attention)]
            )
        return result


def length_norm(length: torch.Tensor | int, kind: str, alpha: float) -> torch.Tensor | float:
    """What a hypothesis' summed log-prob is divided by: GNMT's penalty, its length
    ("average"), or 1 ("none"). Non-decreasing in length for alpha >= 0, which the beam's
    stopping bound relies on."""
    if kind == "gnmt":
        return gnmt_length_penalty(length, alpha)
    if kind == "average":
        return length if isinstance(length, int) else length.float()
    return 1.0


def coverage_penalty(coverage: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """GNMT coverage penalty (<= 0): beta * sum over real source positions of
    log(min(attention received, 1)). coverage, mask: (N, S) -> (N,)."""
    clipped = coverage.clamp(min=1e-6, max=1.0).log().masked_fill(~mask, 0.0)
    return beta * clipped.sum(-1)


def block_repeated_ngrams(log_probs: torch.Tensor, seqs: torch.Tensor, n: int) -> None:
    """In place: forbid any token that would repeat an n-gram already in the row.
    log_probs (N, V); seqs (N, t) tokens so far."""
    if n <= 0 or seqs.size(1) < n - 1:
        return
    if n == 1:
        log_probs.scatter_(1, seqs, float("-inf"))
        return
    if seqs.size(1) < n:
        return
    windows = seqs.unfold(1, n, 1)  # (N, W, n): every n-gram so far
    tail = seqs[:, seqs.size(1) - n + 1 :].unsqueeze(1)  # (N, 1, n-1): the current context
    match = (windows[:, :, :-1] == tail).all(-1)  # (N, W)
    rows, cols = match.nonzero(as_tuple=True)
    log_probs[rows, windows[rows, cols, -1]] = float("-inf")


def force_prefix(log_probs: torch.Tensor, prefix: torch.Tensor | None, t: int, pad: int) -> None:
    """In place: where ``prefix`` (N, P) has a token at step t, only that token is allowed
    (at its model log-prob)."""
    if prefix is None or t >= prefix.size(1):
        return
    wanted = prefix[:, t]
    rows = (wanted != pad).nonzero(as_tuple=True)[0]
    if rows.numel():
        kept = log_probs[rows, wanted[rows]]
        log_probs[rows] = float("-inf")
        log_probs[rows, wanted[rows]] = kept
