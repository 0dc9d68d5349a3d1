"""Data-parallel training on CPU: two gloo processes under torchrun, each with batch B,
make the same updates as one process accumulating two batches B, bit for bit, before and
after a resume."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import TOY_RECIPE, toy_recipe
from safetensors.torch import load_file

from seq2seq.checkpoint import RunDir
from seq2seq.training.build import run_training

pytestmark = pytest.mark.slow  # two processes under torchrun

STEPS = [
    "train.max_steps=4",
    "train.validate_every=2",
    "train.valid_bleu=false",
    "train.keep_all_checkpoints=true",
]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_gloo_ranks_equal_one_rank_accumulating_two(
    toy_root: Path, tmp_path: Path, monkeypatch
):
    overrides = [*STEPS, "train.precision=fp32", "train.progress=false", "train.num_threads=1"]
    env = {**os.environ, "SEQ2SEQ_DATA": str(toy_root), "OMP_NUM_THREADS": "1"}
    command = [  # torchrun, from the interpreter running the tests (no PATH lookup)
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "seq2seq",
        "train",
        str(TOY_RECIPE),
        f"output_dir={tmp_path / 'ddp'}",
        *overrides,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1024 tokens x 2 ranks x 1 accumulated = 2048 tokens per update" in done.stderr

    monkeypatch.setenv("SEQ2SEQ_DATA", str(toy_root))
    single = run_training(toy_recipe(tmp_path / "single", *overrides, "train.accumulate=2"))
    ddp = RunDir(tmp_path / "ddp")
    a = load_file(ddp.path / ddp.resolve("last"))
    b = load_file(single.path / single.resolve("last"))
    # bitwise: 2 ranks sum two gradients once (a + b, as accumulating does), and the loss
    # weights differ by a factor 2 that DDP's averaging divides out exactly
    assert same(a, b)
    moved = load_file(ddp.path / "checkpoints/step-0000002.safetensors")
    assert any(not torch.equal(moved[k], a[k]) for k in a)  # training really ran
    # rank 0 alone validated and wrote: one metrics line per validation, one log
    assert [m["step"] for m in ddp.read_metrics()] == [2, 4]
    state_ddp, state_single = ddp.load_trainer_state(), single.load_trainer_state()
    assert state_ddp["step"] == state_single["step"] == 4
    assert state_ddp["position"] == state_single["position"] == 8

    # resume both to step 6: rank 0 reads the checkpoint and broadcasts it
    done = subprocess.run(
        [*command, "train.max_steps=6"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from" in done.stderr
    run_training(
        toy_recipe(tmp_path / "single", *overrides, "train.accumulate=2", "train.max_steps=6")
    )
    a = load_file(ddp.path / ddp.resolve("last"))
    b = load_file(single.path / single.resolve("last"))
    assert ddp.load_trainer_state()["step"] == 6
    assert same(a, b)
