"""Helpers shared by the tests: recipes on the generated task, tiny models, random batches."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

from seq2seq.config import Model, Recipe, load_recipe
from seq2seq.model.encoder_decoder import EncoderDecoder, build_model

ROOT = Path(__file__).resolve().parent.parent
TOY_RECIPE = ROOT / "recipes" / "translation" / "toy_reverse.yaml"


def toy_recipe(output_dir: Path, *overrides: str) -> Recipe:
    return load_recipe(TOY_RECIPE, [f"output_dir={output_dir}", "train.progress=false", *overrides])


def tiny_model(vocab: int = 23, seed: int = 0, **kwargs: object) -> EncoderDecoder:
    """A small random model in eval mode; ``kwargs`` override ``config.Model`` fields,
    with ``attention`` and ``input_feeding`` forwarded to the decoder."""
    from dataclasses import replace

    from seq2seq.config import Decoder, Encoder

    decoder = Decoder(
        hidden_dim=24,
        layers=2,
        dropout=0.0,
        attention=kwargs.pop("attention", "general"),  # type: ignore[arg-type]
        input_feeding=bool(kwargs.pop("input_feeding", False)),
        bridge=kwargs.pop("bridge", "linear"),  # type: ignore[arg-type]
        copy=bool(kwargs.pop("copy", False)),
    )
    cfg = Model(
        emb_dim=16,
        emb_dropout=0.0,
        output_dropout=0.0,
        encoder=Encoder(hidden_dim=12, layers=2, dropout=0.0),
        decoder=decoder,
    )
    cfg = replace(cfg, **kwargs)  # type: ignore[arg-type]
    torch.manual_seed(seed)
    return build_model(cfg, vocab, vocab).eval()


def random_batch(batch: int, vocab: int, seed: int = 0, min_len: int = 2, max_len: int = 9):
    """Padded source ids (B, S) ending in EOS with their lengths, longest first not required."""
    from seq2seq.data.tokenizer import EOS_ID, PAD_ID

    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (batch,), generator=gen)
    src = torch.full((batch, int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, n in enumerate(lengths.tolist()):
        src[row, : n - 1] = torch.randint(4, vocab, (n - 1,), generator=gen)
        src[row, n - 1] = EOS_ID
    return src, lengths


def run_cli(args: list[str], stdin: str, monkeypatch, capsys) -> tuple[int, str, str]:
    """Run ``seq2seq ARGS`` with ``stdin`` as its input: (exit code, stdout, stderr)."""
    import io
    import sys

    from seq2seq.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def trained_precisions() -> list[str]:
    """The CPU precisions a run can train in here: bf16 only where oneDNN trains it."""
    from seq2seq.training.precision import cpu_trains_bf16

    return ["fp32", "bf16"] if cpu_trains_bf16() else ["fp32"]


# ---- a real server and a real browser (tests/serve, tests/tasks) -------------------------
@contextmanager
def serving(run: Path, *extra: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """A real ``seq2seq serve`` process on a free port (``extra``: more of its arguments),
    ready; killed if still running."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "seq2seq", "serve", str(run), "--port", str(port), *extra]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not get ready")
        yield server, base
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()


def chromium() -> tuple[str, str] | None:
    """Chromium and its driver, where installed (Debian: chromium, chromium-driver)."""
    names = ("chromium", "chromium-browser", "google-chrome")
    binary = next((path for name in names if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


def headless_chromium(webdriver: Any, browser: tuple[str, str]) -> Any:
    """A headless Chromium session (``webdriver``: selenium.webdriver)."""
    options = webdriver.ChromeOptions()
    options.binary_location = browser[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    return webdriver.Chrome(service=webdriver.ChromeService(browser[1]), options=options)
