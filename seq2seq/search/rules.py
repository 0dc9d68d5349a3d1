"""The token rules: what every search mode does to a step's log-probs before it chooses,
written once, in one order, so that greedy, beam, sampling and the streamed generator
agree on every option.

1. PAD and BOS are never chosen;
2. no EOS before ``min_len`` tokens;
3. no n-gram of size ``no_repeat_ngram`` twice in an output;
4. where a forced prefix has a token at this step, only that token;
5. the output grammar (``constraint``), except in rows at their length limit;
6. rows at their length limit: only EOS.

A later rule wins over an earlier one where they disagree: a prefix longer than
``min_len`` is still followed, and the length limit ends every output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from seq2seq.search.constraint import Constraint, ConstraintState, apply
from seq2seq.search.hypothesis import (
    block_repeated_ngrams,
    forbid_specials,
    force_eos,
    force_prefix,
)


@dataclass(frozen=True)
class TokenRules:
    """The rules of one search; ``bos``, ``eos``, ``pad``: the special ids."""

    bos: int
    eos: int
    pad: int
    min_len: int = 0
    no_repeat_ngram: int = 0
    constraint: Constraint | None = None

    def start(self, src: torch.Tensor, rows: torch.Tensor) -> ConstraintState | None:
        """The grammar's state for ``rows`` (N,): the source sentence of each search row."""
        return None if self.constraint is None else self.constraint.start(src, rows)

    def advance(
        self, grammar: ConstraintState | None, tokens: torch.Tensor
    ) -> ConstraintState | None:
        """The grammar's state after each row chose ``tokens`` (N,)."""
        if self.constraint is None or grammar is None:
            return grammar
        return self.constraint.advance(grammar, tokens)

    def apply(
        self,
        log_probs: torch.Tensor,
        t: int | torch.Tensor,
        at_limit: torch.Tensor,
        history: Callable[[], torch.Tensor],
        prefix: torch.Tensor | None = None,
        grammar: ConstraintState | None = None,
    ) -> None:
        """In place, on step ``t``'s log_probs (N, V): at_limit (N,) bool, rows that must
        end now; history() -> (N, t) tokens so far (called only for n-gram blocking, as
        building it can cost a copy); prefix (N, P) PAD-padded, or None. ``t`` (N,) when
        rows sit at different steps (rows joining in flight: no prefix, n-grams, grammar)."""
        forbid_specials(log_probs, self.pad, self.bos)
        if self.min_len:  # rows at their limit end: the limit wins (rule 6)
            early = (t < self.min_len) & ~at_limit
            log_probs[early, self.eos] = float("-inf")
        if self.no_repeat_ngram:
            block_repeated_ngrams(log_probs, history(), self.no_repeat_ngram)
        if prefix is not None:
            assert isinstance(t, int), "a prefix is followed at one step for all rows"
            force_prefix(log_probs, prefix, t, self.pad)
        apply(log_probs, self.constraint, grammar, exempt=at_limit)
        force_eos(log_probs, at_limit, self.eos)
