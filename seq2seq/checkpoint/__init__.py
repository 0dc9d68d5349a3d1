"""Run directories (run_dir.py), the weights they hold (weights.py) and what their reads
and writes raise (errors.py)."""

from seq2seq.checkpoint.errors import CheckpointError
from seq2seq.checkpoint.run_dir import RunDir

__all__ = ["CheckpointError", "RunDir"]
