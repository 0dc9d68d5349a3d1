"""Training on the generated task: exact resume, Ctrl-C, scheduled sampling, precision."""

from pathlib import Path

import pytest
import torch
from helpers import toy_recipe
from safetensors.torch import load_file

from seq2seq.checkpoint import CheckpointError, RunDir
from seq2seq.config import ConfigError
from seq2seq.training.build import run_training
from seq2seq.training.trainer import Trainer

FAST = ["train.validate_every=1000", "train.valid_bleu=false"]


def final_weights(run: RunDir) -> dict[str, torch.Tensor]:
    return load_file(run.path / run.resolve("last"))


def test_resume_continues_exactly(toy_env: Path, tmp_path: Path):
    straight = run_training(toy_recipe(tmp_path / "straight", "train.max_steps=24", *FAST))
    first = run_training(toy_recipe(tmp_path / "split", "train.max_steps=10", *FAST))
    state = first.load_trainer_state()
    assert state["step"] == 10 and state["weights"] == "checkpoints/step-0000010.safetensors"
    resumed = run_training(toy_recipe(tmp_path / "split", "train.max_steps=24", *FAST))
    assert resumed.load_trainer_state()["step"] == 24
    a, b = final_weights(straight), final_weights(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ctrl_c_saves_and_resume_picks_up(
    toy_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    calls = {"n": 0}
    original = Trainer.train_step

    def interrupt_on_seventh(self, indices):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return original(self, indices)

    monkeypatch.setattr(Trainer, "train_step", interrupt_on_seventh)
    with pytest.raises(KeyboardInterrupt):
        run_training(toy_recipe(tmp_path / "run", "train.max_steps=20", *FAST))
    run = RunDir(tmp_path / "run")
    assert run.load_trainer_state()["step"] == 6
    assert run.resolve("last").endswith("step-0000006.safetensors")
    monkeypatch.setattr(Trainer, "train_step", original)
    run_training(toy_recipe(tmp_path / "run", "train.max_steps=9", *FAST))
    assert run.load_trainer_state()["step"] == 9


def test_resume_refuses_a_different_model(toy_env: Path, tmp_path: Path):
    run_training(toy_recipe(tmp_path / "run", "train.max_steps=2", *FAST))
    with pytest.raises(ConfigError, match="section 'model' differs"):
        run_training(toy_recipe(tmp_path / "run", "train.max_steps=4", "model.emb_dim=32", *FAST))
    with pytest.raises(CheckpointError, match="already holds a trained run"):
        run_training(toy_recipe(tmp_path / "run", "train.resume=never", *FAST))


@pytest.mark.parametrize("input_feeding", [False, True])
def test_scheduled_sampling_trains(toy_env: Path, tmp_path: Path, input_feeding: bool):
    recipe = toy_recipe(
        tmp_path / "ss",
        "train.max_steps=6",
        "train.teacher_forcing=0.5",
        "train.teacher_forcing_steps=4",
        f"model.decoder.input_feeding={str(input_feeding).lower()}",
        "train.validate_every=6",
    )
    run = run_training(recipe)
    metrics = run.read_metrics()
    assert metrics and metrics[-1]["step"] == 6 and metrics[-1]["loss"] < 10


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_precisions_train_on_cpu(toy_env: Path, tmp_path: Path, precision: str):
    run = run_training(
        toy_recipe(
            tmp_path / precision,
            "train.max_steps=4",
            f"train.precision={precision}",
            "train.validate_every=4",
        )
    )
    assert run.read_metrics()[-1]["loss"] < 10


def test_early_stopping_stops(toy_env: Path, tmp_path: Path):
    # lr 0 -> the metric never improves after the first validation
    recipe = toy_recipe(
        tmp_path / "es",
        "train.lr=1e-12",
        "train.validate_every=2",
        "train.max_steps=100",
        "train.early_stop.metric=loss",
        "train.early_stop.patience=2",
        "train.valid_bleu=false",
    )
    run = run_training(recipe)
    assert [m["step"] for m in run.read_metrics()] == [2, 4, 6]


def test_stopping_on_a_validation_step_validates_once(toy_env: Path, tmp_path: Path):
    recipe = toy_recipe(
        tmp_path / "once", "train.max_steps=4", "train.validate_every=2", "train.valid_bleu=false"
    )
    run = run_training(recipe)
    assert [m["step"] for m in run.read_metrics()] == [2, 4]
