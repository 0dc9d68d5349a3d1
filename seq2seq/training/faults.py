"""What stops training early on purpose or by accident: signals, and errors it cannot
train through. Kept free of the trainer so the CLI can name them cheaply."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss stays NaN); the message says why and what to do."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM: the step in flight finished and a checkpoint was saved."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class StopSignals:
    """While active, SIGINT and SIGTERM set ``received`` instead of stopping the process,
    so the step in flight can finish and be saved. A second SIGINT stops at once
    (KeyboardInterrupt). Only the main thread can install handlers; elsewhere this does
    nothing."""

    def __init__(self) -> None:
        self.received = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
        log.warning(
            "%s received: finishing this step, then saving (Ctrl-C again stops at once)",
            signal.Signals(signum).name,
        )
