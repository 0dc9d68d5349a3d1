"""Server-sent events for text generation (POST /v1/generate): the continuation of a
prompt, piece by piece as the model makes it, as ``data: {"text": ...}`` events, then
``event: done`` (or ``event: error`` with an error id that the log repeats).

The generator runs in a thread of its own (not the batcher's: a long stream must not
hold up batches); a client that leaves stops it at its next piece."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger("seq2seq.serve")


def event(data: dict[str, Any], name: str | None = None) -> str:
    """One server-sent event."""
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


class Streamer:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="seq2seq-stream")

    def stop(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def events(
        self, pieces: Iterator[str], on_done: Callable[[int], None] | None = None
    ) -> AsyncIterator[str]:
        """The events of one stream; ``on_done(pieces)`` once it ends."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        leave = threading.Event()

        def produce() -> None:
            try:
                for piece in pieces:
                    if leave.is_set():
                        return
                    loop.call_soon_threadsafe(queue.put_nowait, ("piece", piece))
                loop.call_soon_threadsafe(queue.put_nowait, ("done", None))
            except Exception as err:  # reported to the client as an error event
                loop.call_soon_threadsafe(queue.put_nowait, ("error", err))

        loop.run_in_executor(self._executor, produce)
        count = 0
        try:
            while True:
                kind, value = await queue.get()
                if kind == "piece":
                    count += 1
                    yield event({"text": value})
                elif kind == "done":
                    yield event({"pieces": count}, "done")
                    return
                else:
                    error_id = uuid.uuid4().hex[:12]
                    log.error("internal error %s in a stream", error_id, exc_info=value)
                    yield event({"message": "internal error", "id": error_id}, "error")
                    return
        finally:
            leave.set()
            if on_done is not None:
                on_done(count)
