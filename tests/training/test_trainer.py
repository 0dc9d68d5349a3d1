"""Training on the generated task: exact resume, Ctrl-C, scheduled sampling, precision."""

from pathlib import Path

import pytest
import torch
from helpers import toy_recipe, trained_precisions
from safetensors.torch import load_file

from seq2seq.checkpoint import CheckpointError, RunDir
from seq2seq.config import ConfigError
from seq2seq.training.build import run_training

FAST = ["train.validate_every=1000", "train.valid_bleu=false"]


def final_weights(run: RunDir) -> dict[str, torch.Tensor]:
    return load_file(run.path / run.resolve("last"))


SAMPLING = ["tokenizer.model_type=unigram", "tokenizer.sampling.alpha=0.5"]


@pytest.mark.slow
@pytest.mark.parametrize("sampling", [[], SAMPLING], ids=["plain", "subword-sampling"])
def test_resume_continues_exactly(toy_env: Path, tmp_path: Path, sampling: list[str]):
    """Bit for bit, also when every epoch draws its subword segmentations again."""
    fast = [*FAST, *sampling]
    straight = run_training(toy_recipe(tmp_path / "straight", "train.max_steps=24", *fast))
    first = run_training(toy_recipe(tmp_path / "split", "train.max_steps=10", *fast))
    state = first.load_trainer_state()
    assert state["step"] == 10 and state["weights"] == "checkpoints/step-0000010.safetensors"
    resumed = run_training(toy_recipe(tmp_path / "split", "train.max_steps=24", *fast))
    assert resumed.load_trainer_state()["step"] == 24
    a, b = final_weights(straight), final_weights(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


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


@pytest.mark.slow
@pytest.mark.parametrize("precision", trained_precisions())
def test_precisions_train_on_cpu_and_the_loss_falls(toy_env: Path, tmp_path: Path, precision: str):
    run = run_training(
        toy_recipe(
            tmp_path / precision,
            "train.max_steps=30",
            f"train.precision={precision}",
            "train.validate_every=5",
            "train.valid_bleu=false",
        )
    )
    losses = [m["loss"] for m in run.read_metrics()]
    assert len(losses) == 6 and losses[-1] < 0.8 * losses[0], losses


def test_accumulation_is_logged_and_consumes_its_batches(toy_env: Path, tmp_path: Path, caplog):
    import logging

    with caplog.at_level(logging.INFO):
        run = run_training(
            toy_recipe(tmp_path / "acc", "train.max_steps=3", "train.accumulate=2", *FAST)
        )
    assert "1024 tokens x 1 ranks x 2 accumulated = 2048 tokens per update" in caplog.text
    state = run.load_trainer_state()
    assert state["step"] == 3 and state["position"] == 6


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


def test_resume_from_another_run_directory(toy_env: Path, tmp_path: Path):
    straight = run_training(toy_recipe(tmp_path / "straight", "train.max_steps=8", *FAST))
    run_training(toy_recipe(tmp_path / "first", "train.max_steps=4", *FAST))
    second = run_training(
        toy_recipe(
            tmp_path / "second", "train.max_steps=8", f"train.resume={tmp_path / 'first'}", *FAST
        )
    )
    assert second.load_trainer_state()["step"] == 8
    assert (second.tokenizer_dir / "joint.model").is_file()
    a, b = final_weights(straight), final_weights(second)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(CheckpointError, match=r"no trainer_state\.pt there"):
        run_training(toy_recipe(tmp_path / "third", f"train.resume={tmp_path / 'nothing'}"))


def test_a_metrics_line_cut_by_a_kill_is_ignored(tmp_path: Path):
    run = RunDir(tmp_path)
    run.metrics.write_text('{"step": 2, "loss": 1.5}\n{"step": 4, "lo')
    assert run.read_metrics() == [{"step": 2, "loss": 1.5}]
    run.metrics.write_text('{"step": 2\n{"step": 4}\n')
    with pytest.raises(CheckpointError, match=r"metrics\.jsonl:1: not a JSON line"):
        run.read_metrics()


def test_fp16_on_cpu_is_a_clear_error(toy_env: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        run_training(toy_recipe(tmp_path / "fp16", "train.precision=fp16", "train.max_steps=2"))


@pytest.mark.slow
@pytest.mark.parametrize("precision", trained_precisions())
def test_a_copying_decoder_trains_and_the_loss_falls(toy_env: Path, tmp_path: Path, precision: str):
    run = run_training(
        toy_recipe(
            tmp_path / f"copy-{precision}",
            "train.max_steps=30",
            "model.decoder.copy=true",
            f"train.precision={precision}",
            "train.validate_every=10",
            "train.valid_bleu=false",
        )
    )
    losses = [m["loss"] for m in run.read_metrics()]
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0], losses


def test_cosine_schedule_ends_its_budget_at_the_floor(toy_env: Path, tmp_path: Path):
    recipe = toy_recipe(
        tmp_path / "cosine",
        "train.max_steps=6",
        "train.schedule=cosine",
        "train.warmup_steps=0",
        "train.lr=1e-3",
        "train.min_lr=1e-5",
        *FAST,
    )
    state = run_training(recipe).load_trainer_state()
    assert state["step"] == 6
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-5)
