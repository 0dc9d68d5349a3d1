"""Throughput of the HTTP API under concurrent clients, with and without dynamic batching.

    python tools/serve_bench.py RUN --src test2016.de [--clients 32] [--requests 256]

Sends ``--requests`` single-sentence translate requests from ``--clients`` concurrent
clients to the app in this process (httpx over ASGI: no sockets, so the numbers are the
batcher's and the decoder's, not the network's), once with the default batching limits
and once with batching off (``max_batch_tokens=1``: one request per batch). Prints
sentences/s, mean and 95th-percentile latency, and the mean requests per batch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any


async def _drive(app: Any, lines: list[str], clients: int) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for line in lines:
        queue.put_nowait(line)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:

            async def client() -> None:
                while not queue.empty():
                    line = queue.get_nowait()
                    start = time.perf_counter()
                    reply = await http.post("/v1/translate", json={"texts": [line]}, timeout=600)
                    reply.raise_for_status()
                    latencies.append(time.perf_counter() - start)

            start = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(clients)))
            seconds = time.perf_counter() - start
            metrics = (await http.get("/metrics")).text
    batches = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("seq2seq_batch_requests_count")
    )
    latencies.sort()
    return {
        "sentences_per_s": len(lines) / seconds,
        "latency_mean_s": statistics.mean(latencies),
        "latency_p95_s": latencies[int(0.95 * (len(latencies) - 1))],
        "requests_per_batch": len(lines) / batches,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run")
    parser.add_argument("--src", required=True, help="one sentence per line")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    from seq2seq.serve.api import create_app
    from seq2seq.serve.limits import Limits
    from seq2seq.serve.models import Registry, Served
    from seq2seq.tasks import get_task, load_translator

    lines = Path(args.src).read_text(encoding="utf-8").splitlines()[: args.requests]
    translator = load_translator([args.run])
    registry = Registry({"m": Served("m", translator, get_task(translator.recipe.task))})
    translator.translate(lines[:8])  # warm up
    results = {}
    for name, limits in (("batched", Limits()), ("one per batch", Limits(max_batch_tokens=1))):
        app = create_app(registry, limits)
        results[name] = asyncio.run(_drive(app, lines, args.clients))
        r = results[name]
        print(
            f"{name}: {r['sentences_per_s']:.1f} sentences/s, latency mean "
            f"{r['latency_mean_s']:.2f} s, p95 {r['latency_p95_s']:.2f} s, "
            f"{r['requests_per_batch']:.1f} requests per batch"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
