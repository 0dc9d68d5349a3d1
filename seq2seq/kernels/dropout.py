"""Inverted dropout whose mask costs 16 random bits per element.

On CPU, torch's dropout draws its mask with ``bernoulli_`` (a float per element, then a
Bernoulli draw). Here one 64-bit draw makes the mask of four elements: its 16-bit pieces
are uniform on [-32768, 32767], and an element is kept when its piece is at least
round(p * 65536) - 32768, i.e. with probability 1 - p, p rounded to a multiple of 2^-16
(p = 0.3 becomes 0.300003). Measured on 2 cores for a 2x27x146x256 mask: bernoulli_
16.9 ms, rand + compare 7.1 ms, this 2.7 ms; Multi30k training draws ~4 such masks per
step. Kept elements are scaled by 1 / (1 - p). CUDA keeps torch's fused kernel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """x (any shape) -> x with each element zeroed with probability p, the rest scaled."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    return x * dropout_mask(tuple(x.shape), p, x.dtype, x.device)


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """x (B, T, D) -> x with features zeroed by one mask per sequence (B, 1, D), the same
    at every step (variational dropout, Gal & Ghahramani 2016), the rest scaled."""
    if not training or p == 0.0:
        return x
    batch, _, features = x.shape
    return x * dropout_mask((batch, 1, features), p, x.dtype, x.device)


def dropout_mask(
    shape: tuple[int, ...], p: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """A mask to multiply by: 0 with probability p, else 1 / (1 - p)."""
    count = math.prod(shape)
    words = torch.empty((count + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(2**63), 2**63 - 1)  # 64 uniform bits each
    pieces = words.view(torch.int16)[:count].view(shape)
    keep = pieces >= round(p * 65536) - 32768
    return keep.to(dtype).mul_(1.0 / (1.0 - p))


class Dropout(nn.Module):
    """``nn.Dropout`` with the mask drawn by :func:`dropout`."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
