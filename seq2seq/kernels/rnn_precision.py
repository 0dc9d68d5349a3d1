"""The LSTMs' precision under autocast on CUDA: fp32 (TF32) where autocast would make
them fp16 without a gradient scaler.

cuDNN's RNNs have an autocast wrapper of their own (aten/src/ATen/cudnn/AutocastRNN.cpp)
that casts input and weights to fp16 whatever dtype the autocast region asked for. Under
bf16 autocast (what ``precision: bf16`` and ``auto`` on A100/H100 give) the LSTMs would
run in fp16, with no scaler to keep small gradients from underflowing. There, the LSTM
runs with autocast off, its inputs cast to fp32; the attention, the projections and the
rest stay in bf16. Under fp16 autocast (trained with the scaler) and on the CPU (oneDNN's
bf16 LSTM), nothing changes. Not yet run on a GPU (no session has had one).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch


def _as_fp32(x: torch.Tensor) -> torch.Tensor:
    return x.float()


def _unchanged(x: torch.Tensor) -> torch.Tensor:
    return x


def lstm_in_fp32(x: torch.Tensor) -> bool:
    """Whether an LSTM reading ``x`` must leave autocast: CUDA under bf16 autocast."""
    return (
        x.is_cuda
        and torch.is_autocast_enabled("cuda")
        and torch.get_autocast_dtype("cuda") == torch.bfloat16
    )


@contextlib.contextmanager
def lstm_precision(x: torch.Tensor) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """``with lstm_precision(x) as cast: rnn(cast(x), (cast(h), cast(c)))``: on CUDA under
    bf16 autocast, autocast is off inside and ``cast`` makes fp32; elsewhere a no-op."""
    if not lstm_in_fp32(x):
        yield _unchanged
        return
    with torch.autocast("cuda", enabled=False):
        yield _as_fp32
