"""What every benchmark measures with: peak memory, a GPU-aware timer stop, spreads."""

from __future__ import annotations

import resource
import statistics

import torch


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def sync() -> None:
    """Wait for the GPU's queued work, so that a timer stops when the work is done."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def peak_device_gb() -> float | None:
    """The most GPU memory tensors held (torch's allocator), or None off CUDA."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 1024**3
    return None


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
