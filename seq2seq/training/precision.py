"""Mixed precision: which dtype 'auto' means on this device, and the autocast context."""

from __future__ import annotations

import contextlib
from functools import lru_cache

import torch

from seq2seq.config import ConfigError


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> bf16 where the hardware runs it fast (CUDA with bf16; CPUs with
    AVX512-BF16/AMX, where it measured 1.6x faster than fp32 here), fp16 on older GPUs,
    else fp32."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            "train.precision=fp16 needs a CUDA device (oneDNN has no fp16 LSTM kernels for "
            "the CPU); use bf16 or fp32 here"
        )
    if precision == "bf16" and device.type == "cpu" and not cpu_trains_bf16():
        raise ConfigError(
            "train.precision=bf16: this CPU's oneDNN has no bf16 LSTM training kernels (it "
            "needs AVX-512 or AVX2); use fp32 or auto here"
        )
    if precision != "auto":
        return precision
    if device.type == "cuda":  # emulated bf16 (V100, T4) is slower than fp16 with a scaler
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    return "bf16" if _cpu_has_fast_bf16() else "fp32"


def _cpu_has_fast_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@lru_cache(maxsize=1)
def cpu_trains_bf16() -> bool:
    """Whether an LSTM trains under bf16 autocast on this CPU: oneDNN builds no bf16 LSTM
    training primitive on x86 CPUs without AVX2 or AVX-512 (seen on an AVX-only EPYC
    guest). Tried once on a tiny LSTM; inference in bf16 works there all the same."""
    lstm = torch.nn.LSTM(4, 4, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = lstm(torch.zeros(1, 2, 4))
        out.float().sum().backward()
    except RuntimeError:
        return False
    return True


def use_tf32(device: torch.device) -> None:
    """On CUDA, fp32 matmuls and cuDNN LSTMs in TF32 (Ampere and newer: ~8x the fp32 rate,
    10-bit mantissa products with fp32 sums): what an fp32 recipe and the LSTMs of a bf16
    one (kernels/rnn_precision.py) run in. Nothing on the CPU."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
