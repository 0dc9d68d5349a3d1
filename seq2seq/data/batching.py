"""Token ids in compact arrays, token-based batches with length bucketing, collation.

Ids are stored flat (``int32``) with offsets rather than as Python lists of lists: a
29k-pair corpus takes ~1 MB instead of ~40 MB, and a large one stays manageable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID


class IdArray:
    """A ragged array of token-id sequences: ``ids[offsets[i]:offsets[i+1]]`` is item i."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray) -> None:
        self.flat = flat
        self.offsets = offsets

    @classmethod
    def from_lists(cls, seqs: Sequence[Sequence[int] | np.ndarray]) -> IdArray:
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((i for s in seqs for i in s), dtype=np.int32, count=int(offsets[-1]))
        return cls(flat, offsets)

    @classmethod
    def concat(cls, parts: Sequence[IdArray]) -> IdArray:
        flat = np.concatenate([p.flat for p in parts]) if parts else np.zeros(0, np.int32)
        lengths = np.concatenate([p.lengths for p in parts]) if parts else np.zeros(0, np.int64)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(flat, offsets)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i] : self.offsets[i + 1]]

    def select(self, keep: np.ndarray) -> IdArray:
        return IdArray.from_lists([self[int(i)] for i in np.flatnonzero(keep)])


@dataclass
class Batch:
    """Padded tensors for one update. ``tgt_in`` = BOS + y, ``tgt_out`` = y + EOS.

    src: (B, S) ids, each row ends with EOS; src_lengths: (B,) on CPU;
    tgt_in, tgt_out: (B, T); ``indices``: rows of the corpus, in batch order.
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor | None
    tgt_out: torch.Tensor | None
    indices: np.ndarray

    @property
    def num_tgt_tokens(self) -> int:
        return 0 if self.tgt_out is None else int((self.tgt_out != PAD_ID).sum())

    def to(self, device: torch.device) -> Batch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(
            self.src.to(device, non_blocking=True),
            self.src_lengths,
            move(self.tgt_in),
            move(self.tgt_out),
            self.indices,
        )


def make_batch(src: IdArray, tgt: IdArray | None, indices: np.ndarray) -> Batch:
    """Collate rows ``indices`` of ``src`` (and ``tgt``) into padded tensors."""
    src_seqs = [src[int(i)] for i in indices]
    src_lengths = torch.tensor([len(s) + 1 for s in src_seqs], dtype=torch.long)
    src_t = torch.full((len(indices), int(src_lengths.max())), PAD_ID, dtype=torch.long)
    for row, seq in enumerate(src_seqs):
        src_t[row, : len(seq)] = torch.from_numpy(seq.astype(np.int64))
        src_t[row, len(seq)] = EOS_ID
    if tgt is None:
        return Batch(src_t, src_lengths, None, None, indices)
    tgt_seqs = [tgt[int(i)] for i in indices]
    width = max(len(t) for t in tgt_seqs) + 1
    tgt_in = torch.full((len(indices), width), PAD_ID, dtype=torch.long)
    tgt_out = torch.full((len(indices), width), PAD_ID, dtype=torch.long)
    for row, seq in enumerate(tgt_seqs):
        ids = torch.from_numpy(seq.astype(np.int64))
        tgt_in[row, 0] = BOS_ID
        tgt_in[row, 1 : len(seq) + 1] = ids
        tgt_out[row, : len(seq)] = ids
        tgt_out[row, len(seq)] = EOS_ID
    return Batch(src_t, src_lengths, tgt_in, tgt_out, indices)


def token_batches(
    src_lengths: np.ndarray,
    tgt_lengths: np.ndarray,
    batch_tokens: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool = True,
) -> list[np.ndarray]:
    """Split example indices into batches of at most ``batch_tokens`` padded tokens.

    Examples are sorted by the longer of their two sides, then by source and target
    length (ties broken by a seeded random key), and cut where the budget is full. Both
    sides then carry little padding: on Multi30k with 4,096 tokens, 3.4% of source and
    5.7% of target cells, against 0.6% and 13.0% when sorting by source first (and 7%
    fewer batches, as the budget is spent on real tokens). With ``shuffle`` the batch
    order is shuffled with ``seed + epoch``: the same seed and epoch always give the same
    batches, which is what exact resume relies on. Lengths include the EOS/BOS added at
    collation.
    """
    rng = np.random.default_rng(seed + epoch)
    tiebreak = rng.random(len(src_lengths)) if shuffle else np.arange(len(src_lengths))
    longer = np.maximum(src_lengths, tgt_lengths)
    order = np.lexsort((tiebreak, tgt_lengths, src_lengths, longer))
    width = longer[order] + 1
    batches: list[np.ndarray] = []
    start, longest = 0, 0
    for pos in range(len(order)):
        longest_with = max(longest, int(width[pos]))
        if pos > start and longest_with * (pos - start + 1) > batch_tokens:
            batches.append(order[start:pos])
            start, longest_with = pos, int(width[pos])
        longest = longest_with
    if len(order) > start:
        batches.append(order[start:])
    if shuffle:
        rng.shuffle(batches)
    return batches


def sentence_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of up to ``batch_size`` sentences of similar length, for decoding.

    Sorting by length keeps padding (and wasted search steps) low; callers put the
    outputs back in input order with ``Batch.indices``.
    """
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
