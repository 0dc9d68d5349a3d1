"""What training tells: log lines (rank 0) and, when tensorboard is installed, its events."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from seq2seq.training.progress import Progress

log = logging.getLogger("seq2seq.training.trainer")


class TrainingReport:
    """Log lines for training windows and validations, mirrored as TensorBoard scalars
    in ``events`` (None: no events, e.g. on ranks other than 0)."""

    def __init__(self, events: Path | None) -> None:
        self.writer = _event_writer(events) if events is not None else None

    @staticmethod
    def start(device: Any, precision: str, pairs: int, parameters: int) -> None:
        log.info(
            "training on %s (%s), %d pairs, %d parameters", device, precision, pairs, parameters
        )

    @staticmethod
    def batch_size(tokens: int, ranks: int, accumulate: int) -> None:
        log.info(
            "effective batch: %d tokens x %d ranks x %d accumulated = %d tokens per update",
            tokens,
            ranks,
            accumulate,
            tokens * ranks * accumulate,
        )

    @staticmethod
    def hard_stop(step: int, last: Path | None) -> None:
        """A second Ctrl-C stopped training inside ``step``; ``last``: the intact checkpoint."""
        log.warning(
            "stopped at once during step %d; %s",
            step,
            f"{last} is intact: run the same command to resume from it"
            if last
            else "no checkpoint had been saved yet",
        )

    def train(self, p: Progress, loss: float, nll: float, lr: float, rate: float) -> None:
        """A window of updates: loss and nll per target token, tokens per second."""
        self._scalars("train", p.step, {"loss": loss, "lr": lr, "tokens_per_s": rate})
        log.info(
            "step %d  epoch %d  loss %.3f  ppl %.2f  lr %.2e  %s tok/s  %.1f min",
            p.step,
            p.epoch,
            loss,
            math.exp(min(nll, 50.0)),
            lr,
            f"{rate:,.0f}",
            p.elapsed / 60,
        )

    def valid(self, step: int, metrics: dict[str, float]) -> None:
        self._scalars("valid", step, metrics)
        log.info("validation %s", "  ".join(f"{k} {v}" for k, v in metrics.items()))

    def _scalars(self, prefix: str, step: int, values: dict[str, float]) -> None:
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"{prefix}/{name}", value, step)
            self.writer.flush()


def _event_writer(folder: Path) -> Any:
    """A TensorBoard SummaryWriter when tensorboard is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder))
