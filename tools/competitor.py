"""A competing CPU-bound process for speed measurements on a busy machine.

busy         a Python loop at normal priority (one core's worth of demand)
niced-torch  a niced (nice 10) PyTorch job: small matrix products with torch's
             default threads, as a second training or decode beside ours would be
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

_TORCH_LOOP = """
import torch
a = torch.randn(384, 384)
while True:
    a = torch.tanh(a @ a * 0.05)
"""

COMMANDS = {
    "busy": [sys.executable, "-c", "while True: pass"],
    "niced-torch": ["nice", "-n", "10", sys.executable, "-c", _TORCH_LOOP],
}


@contextmanager
def competing(kind: str | None) -> Iterator[None]:
    """Run the ``kind`` competitor (COMMANDS) for the duration of the block; None: none."""
    if not kind:
        yield
        return
    process = subprocess.Popen(COMMANDS[kind], stdout=subprocess.DEVNULL)
    time.sleep(2.0 if kind == "niced-torch" else 0.2)  # torch's import, then it computes
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)
