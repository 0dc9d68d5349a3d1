"""``seq2seq serve RUN [RUN ...] [key=value ...]``: load the runs, check the bind, run
uvicorn. Safe by default: it binds 127.0.0.1; another address needs an API key (or
``--insecure``, said out loud); CORS is off unless origins are given."""

from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path

from seq2seq.config import ConfigError, parse_overrides
from seq2seq.serve.limits import Limits

log = logging.getLogger("seq2seq.serve")

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--ensemble",
        action="append",
        default=[],
        metavar="NAME=RUN,RUN",
        help="also serve these runs as one ensemble model named NAME",
    )
    p.add_argument(
        "--api-key",
        help="require 'Authorization: Bearer KEY' on /v1 and /metrics (or $SEQ2SEQ_API_KEY)",
    )
    p.add_argument(
        "--insecure", action="store_true", help="allow a non-local bind without an API key"
    )
    p.add_argument("--cors-origin", action="append", default=[], help="allow this origin")
    defaults = Limits()
    for name in (
        "max_texts",
        "max_input_tokens",
        "max_body_bytes",
        "max_queue",
        "max_batch_tokens",
        "max_beam",
        "max_output_tokens",
    ):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    p.add_argument("--timeout-s", type=float, default=defaults.timeout_s)
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=defaults.max_wait_ms,
        help="a batch waits this long for the next request to join it (default %(default)s)",
    )
    p.add_argument(
        "--max-delay-ms",
        type=float,
        default=defaults.max_delay_ms,
        help="and at most this long in all (default %(default)s)",
    )


def limits_of(args: argparse.Namespace) -> Limits:
    fields = Limits.__dataclass_fields__
    limits = Limits(**{name: getattr(args, name) for name in fields})
    for name in fields:
        if getattr(limits, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')}: must be positive")
    return limits


def check_bind(host: str, api_key: str | None, insecure: bool) -> None:
    if host not in LOCAL_HOSTS and not api_key and not insecure:
        raise ConfigError(
            f"--host {host}: a non-local bind needs --api-key KEY (or $SEQ2SEQ_API_KEY), "
            "or --insecure to serve anyone who can reach it"
        )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from seq2seq.serve.api import create_app
    from seq2seq.serve.models import Registry, Served
    from seq2seq.tasks import get_task, load_translator

    api_key = args.api_key or os.environ.get("SEQ2SEQ_API_KEY") or None
    check_bind(args.host, api_key, args.insecure)
    limits = limits_of(args)
    search = parse_overrides(args.overrides, "search")
    groups = {Path(run).name: [run] for run in args.run_dirs}
    if len(groups) < len(args.run_dirs):
        raise ConfigError("serve: two runs have the same folder name; serve one of them")
    for spec in args.ensemble:
        name, _, runs = spec.partition("=")
        if not name or not runs or name in groups:
            raise ConfigError(f"--ensemble {spec}: give NAME=RUN,RUN with a new NAME")
        groups[name] = runs.split(",")
    models = {}
    for name, runs in groups.items():
        translator = load_translator(runs, args.checkpoint, search, args.device)
        models[name] = Served(name, translator, get_task(translator.recipe.task))
    app = create_app(Registry(models), limits, api_key, tuple(args.cors_origin))
    level = "warning" if args.quiet else "info"
    # uvicorn drains the requests in flight on SIGTERM, then raises the signal again once
    # it has put back the handler it found: ours, which lets the command exit 0
    stopped: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopped.append(signum))
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=level)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stopped:
        log.info("SIGTERM: the requests in flight were answered; stopped")
    return 0
