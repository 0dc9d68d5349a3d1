"""Dynamic batching: requests that arrive close together and want the same model and
search settings are decoded in one call, and each answer goes back to its request.

One worker coroutine takes the oldest waiting job, then gathers more jobs with the same
key until ``max_tokens`` source tokens, for as long as they keep coming: it waits
``max_wait_s`` for the next one, and again after each that comes, but never more than
``max_delay_s`` in all. The rolling wait is what lets many clients share batches: when a
batch is answered, its clients' next requests come back over some milliseconds (HTTP,
JSON, tokenizing, in two processes), and a fixed short window would split them into two
cohorts that take turns at half the batch size (measured: 15 requests per batch with 32
clients). A lone client pays one ``max_wait_s``. Jobs with another key wait (in arrival
order) for a later batch. The decode itself runs in one worker
thread, off the event loop, so the server answers health checks and queues requests
while a batch decodes; one thread because torch already uses every core for one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

Decode = Callable[[Hashable, list[Any]], list[Any]]  # (key, items) -> one result per item


class QueueFull(Exception):
    """More jobs wait than the server accepts: the client should retry later (503)."""


@dataclass
class Job:
    key: Hashable
    items: list[Any]  # what the decode function takes per text
    tokens: int
    future: asyncio.Future[list[Any]]
    queued: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """What the metrics count per decoded batch."""

    jobs: int
    texts: int
    tokens: int
    queue_s: list[float]
    decode_s: float


class Batcher:
    def __init__(
        self,
        decode: Decode,
        max_tokens: int,
        max_wait_s: float,
        max_queue: int,
        on_batch: Callable[[BatchStats], None] | None = None,
        max_delay_s: float | None = None,
    ) -> None:
        self.decode = decode
        self.max_tokens = max_tokens
        self.max_wait_s = max_wait_s
        self.max_delay_s = max_wait_s if max_delay_s is None else max(max_delay_s, max_wait_s)
        self.max_queue = max_queue
        self.on_batch = on_batch
        self._queue: asyncio.Queue[Job] | None = None
        self._held: deque[Job] = deque()  # taken from the queue, waiting for their key's turn
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="seq2seq-decode")
        self._worker: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return len(self._held) + (self._queue.qsize() if self._queue else 0)

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop taking batches; the batch in flight finishes in its thread."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)

    async def submit(self, key: Hashable, items: list[Any], tokens: int) -> list[Any]:
        """Queue ``items`` (``tokens`` source tokens in all) under ``key``; their results,
        in order. Raises QueueFull when ``max_queue`` jobs already wait."""
        if self._queue is None:
            raise RuntimeError("the batcher has not been started")
        if self.waiting >= self.max_queue:
            raise QueueFull(f"{self.waiting} requests are waiting")
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Job(key, items, tokens, future))
        return await future

    async def call(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` in the decode thread, between batches (query expansion's several
        searches); its result."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = await self._gather()
            live = [job for job in batch if not job.future.done()]  # timed out: skipped
            if live:
                await self._decode(live)

    async def _gather(self) -> list[Job]:
        """The next batch: the oldest job and later ones of its key, within the limits."""
        assert self._queue is not None
        first = self._held.popleft() if self._held else await self._queue.get()
        batch, tokens = [first], first.tokens
        for job in list(self._held):  # held jobs of this key go first: they came earlier
            if job.key == first.key and tokens + job.tokens <= self.max_tokens:
                self._held.remove(job)
                batch.append(job)
                tokens += job.tokens
        started = time.perf_counter()
        deadline, cap = started + self.max_wait_s, started + self.max_delay_s
        while tokens < self.max_tokens:
            remaining = min(deadline, cap) - time.perf_counter()
            if remaining <= 0:
                break
            try:
                job = await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                break
            if job.key == first.key and tokens + job.tokens <= self.max_tokens:
                batch.append(job)
                tokens += job.tokens
                deadline = time.perf_counter() + self.max_wait_s  # company comes: wait on
            else:
                self._held.append(job)
        return batch

    async def _decode(self, batch: list[Job]) -> None:
        items = [item for job in batch for item in job.items]
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, self.decode, batch[0].key, items)
        except Exception as err:
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(err)
            return
        done = time.perf_counter()
        start = 0
        for job in batch:
            if not job.future.done():
                job.future.set_result(results[start : start + len(job.items)])
            start += len(job.items)
        if self.on_batch is not None:
            queue_s = [started - job.queued for job in batch]
            tokens = sum(job.tokens for job in batch)
            self.on_batch(BatchStats(len(batch), len(items), tokens, queue_s, done - started))
