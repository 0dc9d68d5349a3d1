"""Process-level settings that make training and decoding fast on CPU.

glibc returns freed memory to the OS eagerly and serves big blocks with fresh mmaps, so
each step's large activations are page-faulted in anew: on the reference 2-core machine
that cost 30% of a Multi30k training step (2,899 -> 4,034 target tokens/s once disabled).
``tune_allocator`` raises both thresholds in-process, like MALLOC_TRIM_THRESHOLD_ and
MALLOC_MMAP_THRESHOLD_ would, so the memory is reused instead.

Kept on the heap, blocks of ever-changing sizes fragment it: resident memory grew by
~35 MB per step (5.8 GB after 160 Multi30k steps, 12.3 GB after 55 minutes, against
1.9 GB with glibc's defaults). ``release_memory`` (malloc_trim) hands the free pages back;
the trainer calls it every ``TRIM_EVERY_STEPS`` updates, which keeps most of the speed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import Iterable
from typing import TypeVar

import torch

from seq2seq.config import ConfigError

T = TypeVar("T")

TRIM_EVERY_STEPS = 25
# oneDNN primitives kept (its default is 1,024); see ``tune_onednn``
ONEDNN_CACHE_CAPACITY = 16384
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_libc: ctypes.CDLL | None = None  # set once the thresholds are applied


def progress(iterable: Iterable[T], total: int | None, desc: str, unit: str) -> Iterable[T]:
    """``iterable`` with a progress bar on stderr, where a person is watching: stderr is a
    terminal and the log shows INFO (not ``-q``, and not a library caller that set up no
    logging). Never on stdout, so outputs stay clean."""
    if not (sys.stderr.isatty() and logging.getLogger("seq2seq").isEnabledFor(logging.INFO)):
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)


def tune_allocator() -> bool:
    """Keep freed heap memory for reuse (glibc only; a no-op elsewhere). True if applied."""
    global _libc
    if _libc is not None or not sys.platform.startswith("linux"):
        return _libc is not None
    name = ctypes.util.find_library("c")  # runs a subprocess: done once, the handle is kept
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = (
            libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1
            and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
        )
    except (OSError, AttributeError):
        return False
    if ok:
        _libc = libc
    return ok


def release_memory() -> None:
    """Return free heap pages to the OS (glibc's malloc_trim); needed only when tuned."""
    if _libc is not None:
        _libc.malloc_trim(0)


def tune_onednn() -> None:
    """Let oneDNN keep 16x more primitives than its default (1,024) between calls.

    On CPU, bf16 matrix products (and bf16 LSTMs) run through oneDNN, which compiles a
    kernel for every new shape (~20 ms for an 8,000-wide product) and keeps the last
    1,024. Training batches differ in size and lengths, so the default cache thrashes:
    bf16 Multi30k training made 7,734, 7,008 and 6,690 target tokens/s over three passes
    of the same 120 batches, and 8,348, 8,898, 8,246 with 16,384 (8,929-8,996 with
    65,536). A 20-minute training run with it peaked at 2.3 GB resident. oneDNN reads
    ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` when it creates its first primitive, so this must
    run before any; a value already in the environment is kept.
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_CACHE_CAPACITY))


def pick_device(name: str | torch.device | None) -> torch.device:
    """The device a command runs on: ``name``, or CUDA when available, else the CPU.
    Asking for CUDA where there is none is a ``ConfigError``, not a silent CPU run."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: this machine has no CUDA device torch can use")
    return device
