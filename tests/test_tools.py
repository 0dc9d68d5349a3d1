"""The scripts in tools/ run as a user would run them."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import trained_precisions

pytestmark = pytest.mark.slow  # each runs a script in a new process

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def run(*args: str) -> subprocess.CompletedProcess:
    """Run a script; past 300 s, kill it and the children it started (benchmark.py's
    measurements run in processes of their own, which would outlive it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny models: threads only add contention
    with subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_bleu_script_scores_files(tmp_path: Path):
    ref = tmp_path / "ref.en"
    ref.write_text("A dog runs across the meadow.\nTwo people sit on a bench.\n")
    same = run(str(TOOLS / "bleu.py"), str(ref), str(ref), "--json")
    assert same.returncode == 0 and json.loads(same.stdout)["bleu"] == 100.0
    hyp = tmp_path / "hyp.en"
    hyp.write_text("A dog runs over the grass.\nTwo people sit on a bench.\n")
    partial = run(str(TOOLS / "bleu.py"), str(hyp), str(ref))
    assert (
        partial.returncode == 0
        and partial.stdout.startswith("BLEU = ")
        and "tok:13a" in partial.stdout
    )


def test_bleu_script_rejects_ragged_files(tmp_path: Path):
    (tmp_path / "a").write_text("one\ntwo\n")
    (tmp_path / "b").write_text("one\n")
    result = run(str(TOOLS / "bleu.py"), str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.returncode == 2 and "has 2 lines but" in result.stderr


def test_python_dash_m_runs_the_cli():
    result = run("-m", "seq2seq", "--help")
    assert result.returncode == 0 and "translate" in result.stdout


def test_average_checkpoints_writes_a_loadable_run_with_the_mean(trained: Path, tmp_path: Path):
    import shutil

    import torch
    from safetensors.torch import load_file

    from seq2seq.checkpoint import RunDir
    from seq2seq.inference import Translator

    source = tmp_path / "run"
    shutil.copytree(trained, source)
    from safetensors.torch import save_file

    (last,) = (source / "checkpoints").glob("step-*.safetensors")
    earlier = {k: v + 0.01 * torch.randn_like(v) for k, v in load_file(last).items()}
    save_file(earlier, str(source / "checkpoints" / "step-0000060.safetensors"))
    files = sorted((source / "checkpoints").glob("step-*.safetensors"))
    out = tmp_path / "avg"
    result = run(str(TOOLS / "average_checkpoints.py"), str(source), "-n", "2", "-o", str(out))
    assert result.returncode == 0, result.stderr
    a, b = load_file(files[0]), load_file(files[1])
    averaged = RunDir(out)
    mean = load_file(averaged.path / averaged.resolve("best"))
    for name in a:
        torch.testing.assert_close(mean[name], (a[name] + b[name]) / 2)
    assert Translator.from_checkpoint(out).translate(["1 2 3"])[0]
    again = run(
        str(TOOLS / "average_checkpoints.py"), str(source), "-n", "3", "-o", str(tmp_path / "x")
    )
    assert again.returncode == 2 and "2 checkpoints, cannot average the last 3" in again.stderr


def test_benchmark_runs_on_a_tiny_model(trained: Path, toy_root: Path, tmp_path: Path, monkeypatch):
    from helpers import TOY_RECIPE

    monkeypatch.setenv("SEQ2SEQ_DATA", str(toy_root))
    out = tmp_path / "bench.json"
    result = run(
        str(TOOLS / "benchmark.py"),
        "all",
        str(TOY_RECIPE),
        "train.num_threads=1",
        "--run",
        str(trained),
        "--steps",
        "3",
        "--warmup",
        "1",
        "--repeat",
        "1",
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert [r["precision"] for r in data["train"]] == trained_precisions()
    assert all(
        r["tokens_per_s"]["median"] > 0 and 0 <= r["padding"]["tgt"] < 1 for r in data["train"]
    )
    precisions = ("fp32", "bf16", "int8")
    expected = [(p, beam, batch) for p in precisions for beam in (1, 5) for batch in (1, 64)]
    assert [(r["precision"], r["beam_size"], r["batch_size"]) for r in data["decode"]] == expected
    assert all(r["bleu"] > 50 for r in data["decode"])  # the trained reversal model
    assert "| int8 greedy, batch 64 |" in result.stdout and "GEMM 2048x2048" in result.stdout
    assert all(r["warmup_s"] > 0 and not r["compiled"] for r in data["train"])


def test_benchmark_alternates_arms_of_one_model(
    trained: Path, toy_root: Path, tmp_path: Path, monkeypatch
):
    """``decode --alternate``: each search change an arm, timed in turns, outputs compared."""
    monkeypatch.setenv("SEQ2SEQ_DATA", str(toy_root))
    out = tmp_path / "arms.json"
    args = ["decode", str(trained), "--split", "test", "beam_size=1", "batch_size=4"]
    args += ["--repeat", "2"]
    arms = ["--alternate", "refill=0", "refill=8", "--json", str(out)]
    result = run(str(TOOLS / "benchmark.py"), *args, *arms)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert set(data["arms"]) == {"refill=0", "refill=8"}
    assert all(arm["min"] > 0 for arm in data["arms"].values())
    assert data["same_outputs"] is True  # greedy: rows joining in flight change nothing


def test_loadtest_serves_through_sockets_with_and_without_batching(
    trained: Path, toy_root: Path, tmp_path: Path
):
    """tools/loadtest.py starts the real server twice; four clients share batches, one
    request per batch with batching off; the outputs are the translator's own."""
    pytest.importorskip("fastapi")
    from seq2seq.inference import Translator

    out = tmp_path / "load.json"
    src = toy_root / "toy_reverse" / "test.src"
    result = run(
        str(TOOLS / "loadtest.py"), str(trained), "--src", str(src), "--clients", "1", "4",
        "--requests", "12", "--outputs", str(tmp_path / "outputs"), "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    levels = {(x["mode"], x["clients"]): x for x in json.loads(out.read_text())}
    assert sorted(levels) == [
        ("batched", 1),
        ("batched", 4),
        ("one per batch", 1),
        ("one per batch", 4),
    ]
    assert levels["one per batch", 4]["requests_per_batch"] == 1.0
    assert levels["batched", 4]["requests_per_batch"] > 1.0  # four clients share batches
    assert all(x["requests"] == 12 and x["errors"] == 0 for x in levels.values())
    assert all(0 < x["p50_s"] <= x["p95_s"] <= x["p99_s"] for x in levels.values())
    lines = src.read_text().splitlines()[:12]
    expected = Translator.from_checkpoint(trained).translate(lines)
    for name in ("batched-4.txt", "one_per_batch-1.txt"):
        assert (tmp_path / "outputs" / name).read_text().splitlines() == expected
