"""Compute threads that give way on a busy machine.

PyTorch's OpenMP threads work in lock-step: each parallel region ends at a barrier, so a
region is as slow as its slowest thread. With one more CPU-bound process than a 2-core
machine has free cores, the kernel time-slices three runnable threads on two cores;
whenever one of ours is preempted the other spins at the barrier waiting for it, and a
training fell to 30% of its quiet speed (issue 18) where one core's worth is 50-60%.

``ThreadGovernor`` watches how long this process's threads wait on the kernel's run
queue (Linux schedstat: time runnable but not running) and, while that is more than
``busy_share`` of their time, uses one thread fewer. It tries the full count again after
a while (10 s, then doubling to 160 s while the machine stays busy) and keeps it when the
waiting has gone. Training calls ``tick`` after every update, search after every batch;
a tick that is not due costs a clock read. ``SEQ2SEQ_ADAPTIVE_THREADS=0`` turns it off.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

log = logging.getLogger(__name__)

Reader = Callable[[], tuple[int, int] | None]  # -> (ns on a CPU, ns waiting to run)


def read_schedstat(task_dir: Path = Path("/proc/self/task")) -> tuple[int, int] | None:
    """This process's threads' time on a CPU and time runnable but waiting, summed (ns);
    None where the kernel does not say (not Linux, or schedstats off)."""
    running = waiting = 0
    try:
        for task in task_dir.iterdir():
            try:
                fields = (task / "schedstat").read_text().split()
            except OSError:  # a thread that ended while we looked
                continue
            running += int(fields[0])
            waiting += int(fields[1])
    except (OSError, ValueError, IndexError):
        return None
    return (running, waiting) if running else None


class ThreadGovernor:
    """Fewer compute threads while other processes want the CPU (see the module doc)."""

    def __init__(
        self,
        threads: int | None = None,
        *,
        interval_s: float = 2.0,
        busy_share: float = 0.2,
        first_probe_s: float = 10.0,
        last_probe_s: float = 160.0,
        reader: Reader = read_schedstat,
        clock: Callable[[], float] = time.monotonic,
        set_threads: Callable[[int], None] = torch.set_num_threads,
    ) -> None:
        self.full = threads or torch.get_num_threads()
        self.current = self.full
        self.interval_s = interval_s
        self.busy_share = busy_share
        self.first_probe_s = first_probe_s
        self.last_probe_s = last_probe_s
        self.probe_s = first_probe_s
        self._reader = reader
        self._clock = clock
        self._set_threads = set_threads
        self._mark = self._sample()
        self._reduced_at = 0.0
        self._probed = False  # the full count is back on trial after a reduction
        self.enabled = self.full > 1 and self._mark is not None

    def _sample(self) -> tuple[float, int, int] | None:
        stat = self._reader()
        return None if stat is None else (self._clock(), *stat)

    def tick(self) -> None:
        """Look at the last interval's waiting, if one has passed; change threads if due."""
        if not self.enabled or self._mark is None:
            return
        now = self._clock()
        if now - self._mark[0] < self.interval_s:
            return
        sample = self._sample()
        if sample is None:
            return
        running = sample[1] - self._mark[1]
        waiting = sample[2] - self._mark[2]
        self._mark = sample
        share = waiting / max(running + waiting, 1)
        if share > self.busy_share and self.current > 1:
            if self._probed:  # the machine is still busy: wait longer before the next try
                self.probe_s = min(self.probe_s * 2, self.last_probe_s)
            self._use(self.current - 1, f"threads waited {share:.0%} of their time to run")
            self._reduced_at, self._probed = now, False
        elif self.current < self.full and now - self._reduced_at >= self.probe_s:
            self._use(self.full, "trying the full count again")
            self._probed = True
        elif self.current == self.full and share <= self.busy_share / 2:
            self.probe_s, self._probed = self.first_probe_s, False  # quiet again

    def _use(self, threads: int, why: str) -> None:
        log.info("compute threads %d -> %d (%s)", self.current, threads, why)
        self.current = threads
        self._set_threads(threads)
        self._mark = self._sample()  # the next interval measures the new count


_governor: ThreadGovernor | None = None


def tick() -> None:
    """The process's governor (made at the first call, for the thread count then set)."""
    global _governor
    if _governor is None:
        _governor = ThreadGovernor(enabled_threads())
    _governor.tick()


def enabled_threads() -> int:
    """The thread count to govern: torch's, or 1 (nothing to do) when turned off."""
    if os.environ.get("SEQ2SEQ_ADAPTIVE_THREADS", "1") == "0":
        return 1
    return torch.get_num_threads()
