"""What changes while training and is saved for exact resume, and when a run is done."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from seq2seq.config import Train as TrainConfig
from seq2seq.training.faults import TrainingError

log = logging.getLogger("seq2seq.training.trainer")  # the trainer's messages, as before


@dataclass
class Progress:
    """Everything that changes while training, saved for exact resume."""

    step: int = 0
    epoch: int = 0
    position: int = 0  # batches of this epoch already consumed
    elapsed: float = 0.0  # seconds of training so far, across resumes
    best: float | None = None
    bad_validations: int = 0
    history: list[float] = field(default_factory=list)
    nonfinite_in_row: int = 0  # updates skipped for a NaN/inf loss since the last good one
    nonfinite_total: int = 0

    def as_state(self) -> dict[str, Any]:
        """The fields a trainer state holds (``from_state`` reads them back)."""
        return {
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "elapsed": self.elapsed,
            "best": self.best,
            "bad_validations": self.bad_validations,
            "history": list(self.history),
            "nonfinite_total": self.nonfinite_total,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Progress:
        """The progress a trainer state (``Trainer.state_dict``) holds."""
        return cls(
            step=int(state["step"]),
            epoch=int(state["epoch"]),
            position=int(state["position"]),
            elapsed=float(state["elapsed"]),
            best=None if state["best"] is None else float(state["best"]),
            bad_validations=int(state["bad_validations"]),
            history=[float(v) for v in state["history"]],
            nonfinite_total=int(state.get("nonfinite_total", 0)),
        )


def finished_reason(cfg: TrainConfig, p: Progress) -> str | None:
    """Why a run at ``p`` has nothing left to train (the limit it reached), or None."""
    if cfg.max_steps is not None and p.step >= cfg.max_steps:
        return f"step {p.step} of train.max_steps={cfg.max_steps}"
    if cfg.max_epochs is not None and p.epoch >= cfg.max_epochs:
        return f"epoch {p.epoch} of train.max_epochs={cfg.max_epochs}"
    if cfg.max_minutes is not None and p.elapsed >= cfg.max_minutes * 60:
        return f"{p.elapsed / 60:.1f} minutes of train.max_minutes={cfg.max_minutes}"
    if cfg.early_stop.patience and p.bad_validations >= cfg.early_stop.patience:
        return (
            f"early stopping after {p.bad_validations} validations without improvement, "
            f"train.early_stop.patience={cfg.early_stop.patience}"
        )
    return None


def budget_share(cfg: TrainConfig, step: int, elapsed: float) -> float:
    """The share of the training budget used after ``step`` updates and ``elapsed``
    seconds: the larger of step / max_steps and elapsed / max_minutes (whichever limit
    comes first), at most 1; 0 without either limit."""
    shares = [0.0]
    if cfg.max_steps is not None:
        shares.append(step / cfg.max_steps)
    if cfg.max_minutes is not None:
        shares.append(elapsed / (cfg.max_minutes * 60))
    return min(max(shares), 1.0)


def budget_spent(cfg: TrainConfig, p: Progress) -> bool:
    """``train.max_steps`` or ``train.max_minutes`` reached."""
    return (cfg.max_steps is not None and p.step >= cfg.max_steps) or (
        cfg.max_minutes is not None and p.elapsed >= cfg.max_minutes * 60
    )


def epochs_done(cfg: TrainConfig, p: Progress) -> bool:
    return cfg.max_epochs is not None and p.epoch >= cfg.max_epochs


def count_nonfinite(p: Progress, bad: bool, what: str, limit: int, run: Path) -> bool:
    """Count an update whose loss or gradient (``what``) was NaN/inf on some rank, or
    reset the count on a good one; whether to skip it. Raises ``TrainingError`` at
    ``limit`` bad updates in a row (``train.max_nonfinite_steps``)."""
    if not bad:
        p.nonfinite_in_row = 0
        return False
    p.nonfinite_in_row += 1
    p.nonfinite_total += 1
    log.warning(
        "step %d: %s is NaN/inf; update skipped (%d in a row, %d in all)",
        p.step + 1,
        what,
        p.nonfinite_in_row,
        p.nonfinite_total,
    )
    if p.nonfinite_in_row >= limit:
        raise TrainingError(
            f"the loss was NaN/inf for {p.nonfinite_in_row} updates in a row (up to step "
            f"{p.step + 1}); the last checkpoint in {run} is intact. Lower "
            "train.lr, keep train.clip_norm on, try train.precision=bf16 or fp32, or "
            "check the data (train.max_nonfinite_steps sets the limit)"
        )
    return True


def improved(p: Progress, metric: str, value: float | None) -> bool:
    """Note a validation's early-stopping ``metric`` in ``p`` (history, best, patience);
    whether it is the best so far (True when it was not computed, e.g. no validation
    split: the latest is then the best)."""
    best = p.best
    better = value is None or best is None or (value > best if metric == "bleu" else value < best)
    if value is not None:
        p.history.append(float(value))
        if better:
            p.best, p.bad_validations = value, 0
        else:
            p.bad_validations += 1
    return better


class RateWindow:
    """Running sums between two log lines."""

    def __init__(self) -> None:
        self.loss = self.nll = 0.0
        self.tokens = 0
        self.start = time.monotonic()

    def add(self, stats: tuple[float, float, int]) -> None:
        self.loss += stats[0]
        self.nll += stats[1]
        self.tokens += stats[2]

    def take(self) -> tuple[float, float, int, float]:
        """(loss/token, nll/token, tokens, seconds) since the last call; then reset."""
        n = max(self.tokens, 1)
        result = (self.loss / n, self.nll / n, self.tokens, time.monotonic() - self.start)
        self.__init__()  # type: ignore[misc]
        return result


def as_tuple(value: Any) -> Any:
    """torch.load turns the tuples of ``random.getstate()`` into lists; undo that."""
    return tuple(as_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def rng_state() -> dict[str, Any]:
    """This process's random streams (torch, CUDA's if any, Python's) for a trainer state."""
    return {
        "rng_torch": torch.get_rng_state(),
        # this process's own GPU only: a resume may see fewer GPUs (one, after eight)
        "rng_cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_available() else [],
        "rng_python": random.getstate(),
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the streams ``rng_state`` captured."""
    torch.set_rng_state(state["rng_torch"])
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(_own_cuda_state(state["rng_cuda"]))
    random.setstate(as_tuple(state["rng_python"]))


def _own_cuda_state(states: list[torch.Tensor]) -> torch.Tensor:
    """The CUDA RNG state for this process's current device: a state saved by this
    version holds one (its own device's); an older one holds one per visible GPU."""
    device = torch.cuda.current_device()
    return states[device] if len(states) > 1 and device < len(states) else states[0]


@dataclass
class Clock:
    """What the epochs of one ``fit`` share: its start (monotonic seconds, resumed time
    subtracted), the rate window of the log lines, the progress bar."""

    started: float
    window: RateWindow
    bar: Any
