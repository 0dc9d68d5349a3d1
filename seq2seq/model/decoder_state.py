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

    def join(self, other: DecoderState) -> DecoderState:
        """This state's rows, then ``other``'s: sentences joining a search in flight
        (search/rows.py). Both hold one hypothesis per source row; the joined state keeps
        the source columns its rows read (padding beyond them is dropped, or added to the
        narrower state)."""
        if self.group != 1 or other.group != 1:
            raise ValueError("join: states with grouped hypotheses (a beam's) cannot join")
        feed = None
        if self.feed is not None and other.feed is not None:
            feed = torch.cat([self.feed, other.feed])
        # each chunk of joining rows is padded to its own longest source, and the rows
        # left may all be shorter than the longest that started: keep what they read
        width = max(_read_width(self.mask), _read_width(other.mask))

        def cat(mine: torch.Tensor, theirs: torch.Tensor) -> torch.Tensor:
            return torch.cat([_columns(mine, width), _columns(theirs, width)])

        return DecoderState(
            hidden=torch.cat([self.hidden, other.hidden], 1),
            cell=torch.cat([self.cell, other.cell], 1),
            feed=feed,
            memory=cat(self.memory, other.memory),
            keys=cat(self.keys, other.keys),
            mask=cat(self.mask, other.mask),
            src=None if self.src is None or other.src is None else cat(self.src, other.src),
        )

    @property
    def group(self) -> int:
        """Hypotheses per source row: R / B (1 unless selected with ``sources``)."""
        return self.hidden.size(1) // self.memory.size(0)


def _read_width(mask: torch.Tensor) -> int:
    """Source columns up to the last one any row reads: mask (B, S) -> at least 1."""
    read = mask.any(0).nonzero()
    return int(read.max()) + 1 if read.numel() else 1


def _columns(t: torch.Tensor, width: int) -> torch.Tensor:
    """t (B, S, ...) cut or zero-padded (False for a mask, PAD 0 for ids) to S = width."""
    if t.size(1) >= width:
        return t[:, :width]
    pad = t.new_zeros((t.size(0), width - t.size(1), *t.shape[2:]))
    return torch.cat([t, pad], 1)
