"""The batcher's rolling wait: requests that keep coming join one batch (up to the total
delay); a lone request waits only the short window; other keys wait their turn."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from seq2seq.serve.batching import Batcher


def arrivals(batcher: Batcher, keys: list[str], gap_s: float) -> list[list[Any]]:
    """Submit one job per key, ``gap_s`` apart; the batches the decode function saw."""
    seen: list[list[Any]] = []

    def decode(key: Any, items: list[Any]) -> list[Any]:
        seen.append([key, *items])
        return items

    batcher.decode = decode

    async def drive() -> None:
        batcher.start()
        jobs = []
        for i, key in enumerate(keys):
            jobs.append(asyncio.ensure_future(batcher.submit(key, [i], 1)))
            await asyncio.sleep(gap_s)
        results = await asyncio.gather(*jobs)
        assert [r for (r,) in results] == list(range(len(keys)))  # each its own answer
        await batcher.stop()

    asyncio.run(drive())
    return seen


def batcher(wait_s: float, delay_s: float, max_tokens: int = 1000) -> Batcher:
    return Batcher(lambda key, items: items, max_tokens, wait_s, 100, max_delay_s=delay_s)


def test_requests_that_keep_coming_share_one_batch():
    # 8 requests 50 ms apart: each comes within the 300 ms window of the one before
    assert len(arrivals(batcher(0.3, 10.0), ["k"] * 8, 0.05)) == 1


def test_the_total_delay_closes_a_batch():
    seen = arrivals(batcher(0.3, 0.12), ["k"] * 8, 0.05)
    assert len(seen) >= 2 and sum(len(b) - 1 for b in seen) == 8


def test_a_lone_request_waits_only_the_window():
    b = batcher(0.05, 10.0)
    started = time.perf_counter()
    assert arrivals(b, ["k"], 0.0) == [["k", 0]]
    assert time.perf_counter() - started < 5.0  # not the 10 s total delay


def test_other_keys_and_the_token_budget_make_separate_batches():
    seen = arrivals(batcher(0.3, 10.0), ["a", "b", "a", "b"], 0.02)
    assert sorted(tuple(b) for b in seen) == [("a", 0, 2), ("b", 1, 3)]
    seen = arrivals(batcher(0.3, 10.0, max_tokens=2), ["k"] * 4, 0.02)
    assert [len(b) - 1 for b in seen] == [2, 2]
