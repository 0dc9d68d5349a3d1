"""The decoder contract: all that search needs of a model, as a typed Protocol.

``EncoderDecoder`` and ``Ensemble`` implement it (structurally: they do not import it),
and so can any model a test builds by hand. Memory and state are opaque to search: it
only passes them back, reordered.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class Decodable(Protocol):
    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Any:
        """src (B, S) ids ending in EOS, PAD after; src_lengths (B,) on CPU -> memory."""
        ...

    def init_state(self, encoded: Any) -> Any:
        """The decoder state before the first output token, one row per source."""
        ...

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any, torch.Tensor]:
        """tokens (R,) -> float32 log-probs (R, V), the next state, attention (R, S)."""
        ...

    def reorder(
        self,
        state: Any,
        index: torch.Tensor,
        same_sources: bool = False,
        sources: torch.Tensor | None = None,
    ) -> Any:
        """Rows ``index`` (R',) of the state; the source side follows ``index``, stays
        (``same_sources``), or keeps rows ``sources`` (B') grouped R' / B' per source."""
        ...

    def join(self, state: Any, other: Any) -> Any:
        """The rows of ``state``, then those of ``other``; both one hypothesis per source
        row, from ``init_state``s of one search (sentences joining a row loop in flight)."""
        ...


class SearchModel(Decodable, Protocol):
    """What ``decode_ids`` runs: the contract, plus switching to eval mode and back
    (``nn.Module``'s) and a shortlist's output rows (``EncoderDecoder.output_rows``),
    which a shortlist passes to ``step(tokens, state, rows, penalty)``: log-probs over
    the rows' ids, ``penalty`` (R, V') added to each row's logits before normalising."""

    training: bool

    def eval(self) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def output_rows(self, ids: torch.Tensor) -> Any: ...
