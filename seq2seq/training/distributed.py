"""Process-group set-up for torchrun, the device each process uses, and reductions.

One process per GPU under ``torchrun``; on CPU the gloo backend runs several processes on
one machine (what the tests use). A single process needs no process group at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from seq2seq.runtime import pick_device


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str | None = None) -> DistInfo:
    """Read torchrun's environment; start the process group when there are several ranks."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = pick_device(device).type == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local_rank, dev)


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum numbers over all ranks (identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision (stop, say), shared with every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    tensor = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def broadcast_object(value: Any, device: torch.device) -> Any:
    """Rank 0's ``value`` (any picklable object: tokenizer files, a trainer state) on every
    rank, so nodes need no shared filesystem. Identity in a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0, device=device if device.type == "cuda" else None)
    return box[0]


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
