"""Faults training must survive: signals (finish the step, save, say how to resume), a
second Ctrl-C, NaN losses, a failed save, corrupt checkpoints; and resuming from another
run directory. (Crashes at each point of a save: tests/faults/test_resume.py.)"""

import errno
import signal
from pathlib import Path

import pytest
import torch
from helpers import TOY_RECIPE, run_cli, toy_recipe
from safetensors.torch import load_file

from seq2seq.checkpoint import CheckpointError, RunDir
from seq2seq.model.encoder_decoder import EncoderDecoder
from seq2seq.training.build import run_training
from seq2seq.training.faults import TrainingError, TrainingInterrupted
from seq2seq.training.trainer import Trainer

FAST = ["train.validate_every=1000", "train.valid_bleu=false"]
ORIGINAL_STEP = Trainer.train_step


def weights(run: RunDir) -> dict[str, torch.Tensor]:
    return load_file(run.path / run.resolve("last"))


def signal_on_call(monkeypatch: pytest.MonkeyPatch, call: int, *signums: int) -> None:
    """Make Trainer.train_step deliver ``signums`` to this process at its ``call``-th run."""
    calls = {"n": 0}

    def step(self, micro):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == call:
            for signum in signums:
                signal.raise_signal(signum)
        return ORIGINAL_STEP(self, micro)

    monkeypatch.setattr(Trainer, "train_step", step)


def test_sigint_finishes_the_step_saves_and_resumes_exactly(
    toy_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fp32 = [*FAST, "train.precision=fp32", "train.max_steps=12"]
    handler = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs in the background
    straight = run_training(toy_recipe(tmp_path / "straight", *fp32))
    signal_on_call(monkeypatch, 7, signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match=r"SIGINT: stopped after step 7 .*resume with"):
        run_training(toy_recipe(tmp_path / "run", *fp32))
    run = RunDir(tmp_path / "run")
    assert run.load_trainer_state()["step"] == 7
    monkeypatch.setattr(Trainer, "train_step", ORIGINAL_STEP)
    run_training(toy_recipe(tmp_path / "run", *fp32))
    a, b = weights(straight), weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)  # bitwise: one process, CPU, fp32
    assert signal.getsignal(signal.SIGINT) is handler  # handlers restored


def test_sigterm_through_the_cli_exits_143_with_the_resume_command(
    toy_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    signal_on_call(monkeypatch, 3, signal.SIGTERM)
    args = ["train", str(TOY_RECIPE), f"output_dir={tmp_path / 'run'}", "train.progress=false"]
    code, _, err = run_cli([*args, *FAST], "", monkeypatch, capsys)
    assert code == 128 + signal.SIGTERM
    assert f"SIGTERM: stopped after step 3 and saved {tmp_path / 'run'}" in err
    assert f"resume with: seq2seq train {tmp_path / 'run' / 'recipe.yaml'}" in err
    assert RunDir(tmp_path / "run").load_trainer_state()["step"] == 3


def test_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(
    toy_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    signal_on_call(monkeypatch, 5, signal.SIGINT, signal.SIGINT)
    recipe = toy_recipe(tmp_path / "run", "train.max_steps=20", "train.validate_every=2")
    with pytest.raises(KeyboardInterrupt) as caught:
        run_training(recipe)
    assert not isinstance(caught.value, TrainingInterrupted)
    run = RunDir(tmp_path / "run")
    assert run.load_trainer_state()["step"] == 4  # the checkpoint before the interrupted step
    assert set(weights(run)) and run.resolve("last").endswith("step-0000004.safetensors")


def nan_on_calls(monkeypatch: pytest.MonkeyPatch, bad: set[int] | None, from_call: int = 0):
    original = EncoderDecoder.forward
    calls = {"n": 0}

    def forward(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        logits = original(self, *args, **kwargs)
        if not self.training:
            return logits
        calls["n"] += 1
        if (bad is not None and calls["n"] in bad) or (from_call and calls["n"] >= from_call):
            return logits * float("nan")
        return logits

    monkeypatch.setattr(EncoderDecoder, "forward", forward)


def test_nan_losses_are_skipped_and_counted(
    toy_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
):
    nan_on_calls(monkeypatch, {3, 4})
    run = run_training(toy_recipe(tmp_path / "run", "train.max_steps=6", *FAST))
    state = run.load_trainer_state()
    assert state["step"] == 6 and state["nonfinite_total"] == 2
    assert "step 4: the loss is NaN/inf; update skipped (2 in a row, 2 in all)" in caplog.text
    assert all(bool(torch.isfinite(t).all()) for t in weights(run).values())


def test_nan_losses_in_a_row_stop_with_a_clear_error(
    toy_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    nan_on_calls(monkeypatch, None, from_call=4)
    recipe = toy_recipe(
        tmp_path / "run",
        "train.max_steps=50",
        "train.validate_every=2",
        "train.valid_bleu=false",
        "train.max_nonfinite_steps=3",
    )
    with pytest.raises(TrainingError, match=r"NaN/inf for 3 updates in a row \(up to step 6"):
        run_training(recipe)
    run = RunDir(tmp_path / "run")
    assert run.load_trainer_state()["step"] == 4
    assert all(bool(torch.isfinite(t).all()) for t in weights(run).values())


def test_failed_save_is_a_clear_error_and_the_previous_checkpoint_survives(
    toy_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    original = RunDir.save_trainer_state
    calls = {"n": 0}

    def disk_full(self, state):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, state)

    monkeypatch.setattr(RunDir, "save_trainer_state", disk_full)
    recipe = toy_recipe(
        tmp_path / "run", "train.max_steps=6", "train.validate_every=2", "train.valid_bleu=false"
    )
    with pytest.raises(CheckpointError) as caught:
        run_training(recipe)
    message = str(caught.value)
    assert "cannot save step 4: No space left on device" in message
    assert "the previous checkpoint (checkpoints/step-0000002.safetensors) is intact" in message
    run = RunDir(tmp_path / "run")
    assert run.load_trainer_state()["step"] == 2 and weights(run)
    assert not list(run.path.glob("**/*.tmp"))  # no debris from the failed write


def test_truncated_checkpoints_are_refused_with_one_line(
    toy_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    run = run_training(toy_recipe(tmp_path / "run", "train.max_steps=2", *FAST))
    state = run.trainer_state.read_bytes()
    run.trainer_state.write_bytes(state[: len(state) // 2])
    args = ["train", str(TOY_RECIPE), f"output_dir={run.path}", "train.max_steps=4", *FAST]
    code, _, err = run_cli(args, "", monkeypatch, capsys)
    assert code == 2 and "trainer_state.pt: cannot load" in err and err.count("\n") == 1
    run.trainer_state.write_bytes(state)
    last = run.path / run.resolve("last")
    last.write_bytes(last.read_bytes()[:100])
    code, _, err = run_cli(
        ["translate", str(run.path), "--checkpoint", "last"], "1 2\n", monkeypatch, capsys
    )
    assert code == 2 and "cannot load weights" in err and err.count("\n") == 1
