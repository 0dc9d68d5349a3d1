"""What a decoder's search hypotheses carry between steps."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass
class DecoderState:
    """What the search hypotheses carry between steps.

    hidden, cell: (L, R, H) for R hypotheses; feed: (R, O) previous attentional hidden
    (input feeding) or None; memory: (B, S, M); keys: (B, S, K) precomputed attention
    keys; mask: (B, S); src: (B, S) source ids, for a copying decoder, else None. R = B
    * group: hypotheses i*g ... i*g+g-1 read source i (g = 1 but after ``select`` with
    ``sources``).
    """

    hidden: torch.Tensor
    cell: torch.Tensor
    feed: torch.Tensor | None
    memory: torch.Tensor
    keys: torch.Tensor
    mask: torch.Tensor
    src: torch.Tensor | None = None

    def select(
        self,
        index: torch.Tensor,
        same_sources: bool = False,
        sources: torch.Tensor | None = None,
    ) -> DecoderState:
        """Keep (or repeat) hypothesis rows ``index`` (R',): beam reorder and expansion.

        What depends on the source alone (memory, keys, mask, ids) follows ``index`` too,
        unless: ``same_sources`` (a beam reordering its own hypotheses) keeps it as it is;
        ``sources`` (B',) keeps those of its rows and groups the hypotheses, R' = B' * g,
        rows i*g ... i*g+g-1 reading source ``sources[i]``. Grouped, a beam's K
        hypotheses share one copy of their source's memory: at beam 5 x batch 64 that is
        most of the state, and attention multiplies K queries by it at once.
        """
        feed = None if self.feed is None else self.feed.index_select(0, index)
        hidden, cell = self.hidden.index_select(1, index), self.cell.index_select(1, index)
        if same_sources:
            return replace(self, hidden=hidden, cell=cell, feed=feed)
        keep = index if sources is None else sources
        return DecoderState(
            hidden=hidden,
            cell=cell,
            feed=feed,
            memory=self.memory.index_select(0, keep),
            keys=self.keys.index_select(0, keep),
            mask=self.mask.index_select(0, keep),
            src=None if self.src is None else self.src.index_select(0, keep),
        )

    @property
    def group(self) -> int:
        """Hypotheses per source row: R / B (1 unless selected with ``sources``)."""
        return self.hidden.size(1) // self.memory.size(0)
