"""Load test of ``seq2seq serve`` through real sockets: concurrent clients on the loopback
address, each sending one sentence per request, for a bounded time and count.

    python tools/loadtest.py RUN --src test2016.de [--clients 1 8 32] [--seconds 60]
        [--requests 512] [--search '{"beam_size": 5}'] [--outputs DIR] [--json FILE]
    python tools/loadtest.py --url http://127.0.0.1:8080 --src test2016.de ...

With RUN it starts the server twice, as a user would (``python -m seq2seq serve RUN`` on
a free port): once with dynamic batching as configured by default and once with it off
(``--max-batch-tokens 1``: one request per batch), and loads each with every client
count in turn. With ``--url`` it loads that server as it is. Per level it prints
sentences/s, latency p50/p95/p99 and the mean requests per batch (from /metrics).
``--outputs DIR`` writes each level's outputs in the order of the source lines sent, to
compare with ``seq2seq translate`` (``diff``). The clients run in this process (one
asyncio loop, httpx): on a 2-core machine they share the CPU with the server, so the
figures are what one machine serving itself gets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Level:
    """One load level's results."""

    mode: str
    clients: int
    requests: int
    errors: int
    seconds: float
    sentences_per_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    requests_per_batch: float
    decoding_share: float  # of the elapsed time, the share the decoder was busy

    def line(self) -> str:
        return (
            f"{self.mode:>13} {self.clients:>3} clients: {self.requests:>4} requests "
            f"in {self.seconds:6.1f} s = {self.sentences_per_s:6.1f} sentences/s; latency "
            f"p50 {self.p50_s:.3f} p95 {self.p95_s:.3f} p99 {self.p99_s:.3f} s; "
            f"{self.requests_per_batch:.1f} requests per batch, decoding "
            f"{self.decoding_share:.0%} of the time; {self.errors} errors"
        )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(q / 100 * len(ranked) + 0.5) - 1))]


COUNTERS = {
    "seq2seq_batch_requests_count": "batches",
    "seq2seq_batch_requests_sum": "batched",
    "seq2seq_decode_seconds_total": "decoding",
}


def counters(metrics: str) -> dict[str, float]:
    """Batches, the requests in them and the seconds spent decoding them, from the
    Prometheus text of /metrics."""
    found = dict.fromkeys(COUNTERS.values(), 0.0)
    for line in metrics.splitlines():
        name, _, value = line.partition(" ")
        if name in COUNTERS:
            found[COUNTERS[name]] = float(value)
    return found


async def load(
    base: str,
    lines: list[str],
    clients: int,
    seconds: float,
    most: int,
    search: dict[str, Any],
) -> tuple[dict[str, float], list[float], dict[int, str], int]:
    """``clients`` clients send line after line (in order, cycling) until ``most``
    requests are sent or ``seconds`` pass; each waits for its answer before the next.
    Returns the elapsed time, the latencies, the first output per line and the errors."""
    import httpx

    latencies: list[float] = []
    outputs: dict[int, str] = {}
    errors = 0
    sent = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=600) as http:
        before = counters((await http.get("/metrics")).text)
        start = time.perf_counter()

        async def client() -> None:
            nonlocal errors, sent
            while sent < most and time.perf_counter() - start < seconds:
                index = sent % len(lines)
                sent += 1
                asked = time.perf_counter()
                body = {"texts": [lines[index]], "search": search}
                reply = await http.post("/v1/translate", json=body)
                if reply.status_code != 200:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - asked)
                outputs.setdefault(index, reply.json()["results"][0]["outputs"][0]["text"])

        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
        after = counters((await http.get("/metrics")).text)
    totals = {"seconds": elapsed, **{k: after[k] - before[k] for k in after}}
    return totals, latencies, outputs, errors


def run_level(
    base: str, mode: str, clients: int, lines: list[str], args: argparse.Namespace
) -> tuple[Level, dict[int, str]]:
    totals, latencies, outputs, errors = asyncio.run(
        load(base, lines, clients, args.seconds, args.requests, json.loads(args.search))
    )
    done = len(latencies)
    level = Level(
        mode=mode,
        clients=clients,
        requests=done,
        errors=errors,
        seconds=round(totals["seconds"], 2),
        sentences_per_s=round(done / totals["seconds"], 2),
        p50_s=round(percentile(latencies, 50), 4) if done else 0.0,
        p95_s=round(percentile(latencies, 95), 4) if done else 0.0,
        p99_s=round(percentile(latencies, 99), 4) if done else 0.0,
        requests_per_batch=round(totals["batched"] / max(totals["batches"], 1), 2),
        decoding_share=round(totals["decoding"] / totals["seconds"], 3),
    )
    return level, outputs


@contextmanager
def server(run: str, *extra: str) -> Iterator[str]:
    """``python -m seq2seq serve RUN`` on a free loopback port, ready; stopped after."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "seq2seq", "serve", run, "--port", str(port), *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(3000):
            if process.poll() is not None:
                raise SystemExit(f"loadtest: the server exited with {process.returncode}")
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("loadtest: the server was not ready within 300 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)


def warm(base: str, lines: list[str], search: str) -> None:
    """A few requests first, so that no level pays the first decode's set-up."""
    asyncio.run(load(base, lines[:8], 4, 600, 8, json.loads(search)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", nargs="?", help="a run directory to serve (or give --url)")
    parser.add_argument("--url", help="load this running server instead")
    parser.add_argument("--src", required=True, help="one sentence per line")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=60, help="at most, per level")
    parser.add_argument("--requests", type=int, default=512, help="at most, per level")
    parser.add_argument("--search", default="{}", help="the requests' search, as JSON")
    parser.add_argument(
        "--modes", nargs="+", choices=("batched", "unbatched"), default=["batched", "unbatched"]
    )
    parser.add_argument("--serve-arg", action="append", default=[], help="for seq2seq serve")
    parser.add_argument("--outputs", help="a folder for each level's outputs")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    if bool(args.run) == bool(args.url):
        parser.error("give a run directory or --url, not both")
    lines = [line.strip() for line in Path(args.src).read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        parser.error(f"--src {args.src}: no sentences")
    modes = (
        [("server", args.url, ())]
        if args.url
        else [
            (name, args.run, extra)
            for name, extra in (("batched", ()), ("one per batch", ("--max-batch-tokens", "1")))
            if name.split()[0] in {m.replace("unbatched", "one") for m in args.modes}
        ]
    )
    levels = []
    for mode, target, extra in modes:
        context: AbstractContextManager[str] = (
            nullcontext(target) if args.url else server(target, *args.serve_arg, *extra)
        )
        with context as base:
            warm(base, lines, args.search)
            for clients in args.clients:
                level, outputs = run_level(base, mode, clients, lines, args)
                print(level.line(), flush=True)
                levels.append(level)
                if args.outputs:
                    write_outputs(Path(args.outputs), level, outputs)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(x) for x in levels], indent=2) + "\n")
    return 0


def write_outputs(folder: Path, level: Level, outputs: dict[int, str]) -> None:
    """The outputs of the lines sent, in source order (lines 0..n-1 with no gaps)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{level.mode.replace(' ', '_')}-{level.clients}.txt"
    count = next((i for i in range(len(outputs) + 1) if i not in outputs), len(outputs))
    text = "".join(outputs[i] + "\n" for i in range(count))
    (folder / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
