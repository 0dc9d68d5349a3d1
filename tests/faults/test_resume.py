"""Resume is exact where it matters: with dropout, scheduled sampling, a warm-up and
plateau schedule and early-stopping patience, a run stopped anywhere (a signal across a
validation, or a crash at each point of a save) and resumed ends bit for bit where a
straight run ends, with the same metrics. Plus the stopping rules and exit codes."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import TOY_RECIPE, run_cli, toy_recipe
from safetensors.torch import load_file

from seq2seq.checkpoint import RunDir
from seq2seq.model.encoder_decoder import EncoderDecoder
from seq2seq.training.build import run_training
from seq2seq.training.faults import TrainingInterrupted
from seq2seq.training.trainer import Trainer

RANDOM = [  # every source of randomness and every piece of state resume must restore
    "model.emb_dropout=0.2",
    "model.output_dropout=0.2",
    "model.decoder.dropout=0.2",
    "model.encoder.dropout=0.2",
    "model.encoder.layers=2",
    "train.teacher_forcing=0.6",
    "train.teacher_forcing_steps=8",
    "train.schedule=plateau",
    "train.warmup_steps=3",
    "train.plateau_patience=1",
    "train.early_stop.metric=loss",
    "train.early_stop.patience=4",
    "train.validate_every=3",
    "train.valid_bleu=false",
    "train.precision=fp32",
    "train.max_steps=12",
    "train.num_threads=1",
]


def final(run: RunDir) -> dict[str, torch.Tensor]:
    return load_file(run.path / run.resolve("last"))


def metrics(run: RunDir) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "minutes"} for m in run.read_metrics()]


def assert_same_run(a: RunDir, b: RunDir) -> None:
    wa, wb = final(a), final(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    sa, sb = a.load_trainer_state(), b.load_trainer_state()
    for key in ("step", "epoch", "position", "best", "bad_validations", "history", "schedule"):
        assert sa[key] == sb[key], key
    for (_, x), (_, y) in zip(
        sorted(sa["optimizer"]["state"].items()),
        sorted(sb["optimizer"]["state"].items()),
        strict=True,
    ):
        assert all(torch.equal(x[k], y[k]) for k in x)
    assert torch.equal(sa["rng_torch"], sb["rng_torch"])
    assert metrics(a) == metrics(b)


@pytest.fixture(scope="module")
def straight(toy_root: Path, tmp_path_factory) -> RunDir:
    mp = pytest.MonkeyPatch()
    mp.setenv("SEQ2SEQ_DATA", str(toy_root))
    try:
        run = run_training(toy_recipe(tmp_path_factory.mktemp("straight") / "run", *RANDOM))
    finally:
        mp.undo()
    # the schedule really warmed up and cut, and dropout really drew: not a trivial run
    assert run.load_trainer_state()["schedule"] != {}
    return run


@pytest.mark.slow
def test_a_signal_across_a_validation_resumes_bit_for_bit(
    straight: RunDir, toy_env: Path, tmp_path: Path, monkeypatch
):
    original, calls = Trainer.train_step, {"n": 0}

    def step(self, micro):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] in (5, 10):  # stops after steps 5 (validation at 6 follows) and 9+1
            signal.raise_signal(signal.SIGTERM)
        return original(self, micro)

    monkeypatch.setattr(Trainer, "train_step", step)
    run = tmp_path / "run"
    for _ in range(2):
        with pytest.raises(TrainingInterrupted):
            run_training(toy_recipe(run, *RANDOM))
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = run_training(toy_recipe(run, *RANDOM))
    assert_same_run(straight, resumed)


# Each point of a save where a crash can land, and how to get there (on the 2nd call of
# the function named, i.e. during the second save of the run, at step 6).
CRASH_POINTS = {
    "weights half written": ("seq2seq.checkpoint.run_dir", "save_file", "inside"),
    "after the weights": ("seq2seq.checkpoint.RunDir", "save_weights", "after"),
    "state half written": ("torch", "save", "inside"),
    "after the state": ("seq2seq.checkpoint.RunDir", "save_trainer_state", "after"),
    "after the pointers": ("seq2seq.checkpoint.RunDir", "set_pointer", "after-last"),
    "after pruning": ("seq2seq.checkpoint.RunDir", "prune", "after"),
    "after the metrics line": ("seq2seq.checkpoint.RunDir", "append_metrics", "after"),
}

CRASHER = """
import os, sys, importlib
module, name, when = sys.argv[1:4]
owner = importlib.import_module(module) if "RunDir" not in module else None
if owner is None:
    from seq2seq.checkpoint import RunDir as owner
original = getattr(owner, name)
calls = {"n": 0}
def crashing(*args, **kwargs):
    if when == "after-last" and args[1] != "last":
        return original(*args, **kwargs)
    calls["n"] += 1
    if calls["n"] == 2 and when == "inside":  # write the temporary file, die before rename
        original(*args, **kwargs)
        os._exit(9)
    result = original(*args, **kwargs)
    if calls["n"] == 2:
        os._exit(9)
    return result
setattr(owner, name, crashing)
from seq2seq.cli import main
sys.exit(main(sys.argv[4:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_a_crash_at_each_point_of_a_save_resumes_bit_for_bit(
    straight: RunDir, toy_root: Path, tmp_path: Path, monkeypatch, point: str
):
    run = tmp_path / "run"
    module, name, when = CRASH_POINTS[point]
    env = {**os.environ, "SEQ2SEQ_DATA": str(toy_root), "OMP_NUM_THREADS": "1"}
    args = ["train", str(TOY_RECIPE), f"output_dir={run}", "train.progress=false", *RANDOM]
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHER, module, name, when, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crashed.returncode == 9, crashed.stderr[-2000:]
    left = RunDir(run)
    state = left.load_trainer_state()  # what the crash left loads
    assert load_file(run / state["weights"]) and state["step"] in (3, 6)
    monkeypatch.setenv("SEQ2SEQ_DATA", str(toy_root))
    resumed = run_training(toy_recipe(run, *RANDOM))
    assert_same_run(straight, resumed)
    assert not [p for p in run.rglob("*") if p.name.startswith(".")]  # no temporary files


def test_max_epochs_stops_at_the_end_of_an_epoch(toy_env: Path, tmp_path: Path):
    run = run_training(toy_recipe(tmp_path / "run", "train.max_epochs=1", "train.valid_bleu=false"))
    state = run.load_trainer_state()
    assert state["epoch"] == 1 and state["position"] == 0 and state["step"] > 1


def test_max_minutes_stops_validates_and_saves(toy_env: Path, tmp_path: Path):
    run = run_training(
        toy_recipe(tmp_path / "run", "train.max_minutes=0.0001", "train.valid_bleu=false")
    )
    state = run.load_trainer_state()
    assert state["step"] == 1  # the budget was spent after the first update
    assert [m["step"] for m in run.read_metrics()] == [1]


def test_resume_require_without_a_checkpoint_is_one_line(
    toy_env: Path, tmp_path: Path, monkeypatch, capsys
):
    args = ["train", str(TOY_RECIPE), f"output_dir={tmp_path / 'run'}", "train.resume=require"]
    code, _, err = run_cli(args, "", monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "train.resume=require" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_sigint_through_the_cli_exits_130(toy_env: Path, tmp_path: Path, monkeypatch, capsys):
    original = Trainer.train_step

    def step(self, micro):  # type: ignore[no-untyped-def]
        if self.progress.step == 2:
            signal.raise_signal(signal.SIGINT)
        return original(self, micro)

    monkeypatch.setattr(Trainer, "train_step", step)
    args = ["train", str(TOY_RECIPE), f"output_dir={tmp_path / 'run'}", "train.progress=false"]
    code, _, err = run_cli([*args, "train.valid_bleu=false"], "", monkeypatch, capsys)
    assert code == 130
    assert "SIGINT: stopped after step 3" in err
    assert RunDir(tmp_path / "run").load_trainer_state()["step"] == 3


def test_a_nan_gradient_with_a_finite_loss_is_skipped(
    toy_env: Path, tmp_path: Path, monkeypatch, caplog
):
    original, calls = EncoderDecoder.forward, {"n": 0}

    def forward(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = original(self, *args, **kwargs)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 3 and out.requires_grad:  # the loss stays finite
                out.register_hook(lambda grad: grad * math.nan)
        return out

    monkeypatch.setattr(EncoderDecoder, "forward", forward)
    run = run_training(toy_recipe(tmp_path / "run", "train.max_steps=5", "train.valid_bleu=false"))
    state = run.load_trainer_state()
    assert state["step"] == 5 and state["nonfinite_total"] == 1
    assert "step 3: the gradient is NaN/inf; update skipped" in caplog.text
    assert all(bool(torch.isfinite(t).all()) for t in final(run).values())


@pytest.mark.slow
def test_the_gradient_scaler_is_saved_and_restored(toy_env: Path, tmp_path: Path, monkeypatch):
    """fp16 (and so its scaler) needs CUDA; here an enabled scaler runs beside fp32 on the
    CPU, growing its scale every 2 steps, and a resume must continue its exact state."""
    real = torch.amp.GradScaler

    def scaler(device: str, enabled: bool = True) -> torch.amp.GradScaler:
        return real(device, init_scale=1024.0, growth_interval=2, enabled=True)

    monkeypatch.setattr(torch.amp, "GradScaler", scaler)
    common = ["train.valid_bleu=false", "train.validate_every=2", "train.precision=fp32"]
    straight = run_training(toy_recipe(tmp_path / "a", "train.max_steps=6", *common))
    run_training(toy_recipe(tmp_path / "b", "train.max_steps=3", *common))
    resumed = run_training(toy_recipe(tmp_path / "b", "train.max_steps=6", *common))
    a, b = straight.load_trainer_state()["scaler"], resumed.load_trainer_state()["scaler"]
    assert a["scale"] == 1024.0 * 2**3 and a == b  # grew at steps 2, 4, 6; restored at 3
