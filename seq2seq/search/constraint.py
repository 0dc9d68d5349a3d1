"""Constrained decoding: a grammar that says, per hypothesis and step, which tokens may come.

A constraint keeps a small state per search row (a dict of tensors whose first dimension
is the row), so every search moves it exactly as it moves the decoder state: greedy and
sampling never reorder rows, beam search selects rows after each step and drops finished
sentences. At each step the search masks the log-probs with ``allowed`` before choosing,
then calls ``advance`` with the chosen tokens.
"""

from __future__ import annotations

from typing import Protocol

import torch

ConstraintState = dict[str, torch.Tensor]


class Constraint(Protocol):
    def start(self, src: torch.Tensor, rows: torch.Tensor) -> ConstraintState:
        """State for search rows ``rows`` (N,): the batch row (sentence) each one extends;
        src (B, S) the batch's source ids."""
        ...

    def allowed(self, state: ConstraintState) -> torch.Tensor:
        """(N, V) bool: the tokens each row may emit next."""
        ...

    def advance(self, state: ConstraintState, tokens: torch.Tensor) -> ConstraintState:
        """The state after each row emitted ``tokens`` (N,)."""
        ...


def select(state: ConstraintState | None, index: torch.Tensor) -> ConstraintState | None:
    """Keep (or repeat) rows ``index`` of every tensor of the state."""
    if state is None:
        return None
    return {key: value.index_select(0, index.to(value.device)) for key, value in state.items()}


def apply(
    log_probs: torch.Tensor,
    constraint: Constraint | None,
    state: ConstraintState | None,
    exempt: torch.Tensor | None = None,
) -> None:
    """In place: tokens the constraint does not allow get -inf, except in rows ``exempt``
    (N,) bool: those at their length limit, which end with EOS whatever the grammar says."""
    if constraint is None or state is None:
        return
    forbidden = ~constraint.allowed(state).to(log_probs.device)
    if exempt is not None:
        forbidden &= ~exempt.to(log_probs.device).unsqueeze(1)
    log_probs.masked_fill_(forbidden, float("-inf"))
