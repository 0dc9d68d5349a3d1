"""Inverted dropout whose mask is one uniform draw and a comparison.

On CPU, torch's dropout draws its mask with ``bernoulli_``, about twice the cost of
``rand`` + ``>=`` (measured on 2 cores: 12.6 ms against 6.5 ms forward for a 130x30x256
float32 tensor). Dropout ran on ~5M activations per Multi30k training step, so this saves
~20 ms of a ~0.7 s step. The distribution is the same: each element is kept with
probability 1 - p and scaled by 1 / (1 - p). CUDA keeps torch's fused kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """x (any shape) -> x with each element zeroed with probability p, the rest scaled."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    keep = torch.rand(x.shape, dtype=x.dtype, device=x.device) >= p
    return x * keep.to(x.dtype).mul_(1.0 / (1.0 - p))


def dropout_mask(
    shape: tuple[int, ...], p: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """A mask to multiply by: 0 with probability p, else 1 / (1 - p)."""
    keep = torch.rand(shape, device=device) >= p
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
