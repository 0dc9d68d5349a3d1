from pathlib import Path

import pytest
import torch
from helpers import random_batch, tiny_model

from seq2seq.checkpoint import CheckpointError, RunDir
from seq2seq.data.files import atomic_write, atomic_write_text


def test_save_then_load_gives_identical_outputs(tmp_path: Path):
    model = tiny_model(21, share_embeddings=True, tie_embeddings=True)
    run = RunDir(tmp_path)
    name = run.save_weights(model, step=3)
    run.set_pointer("best", name)
    fresh = tiny_model(21, seed=99, share_embeddings=True, tie_embeddings=True)
    run.load_weights(fresh, "best")
    assert fresh.decoder.project.weight is fresh.decoder.embedding.weight  # still tied
    src, lengths = random_batch(3, 21)
    tgt = torch.randint(4, 21, (3, 5))
    with torch.no_grad():
        assert torch.equal(model(src, lengths, tgt), fresh(src, lengths, tgt))


def test_corrupt_weights_raise_a_clear_error(tmp_path: Path):
    run = RunDir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step-0000001.safetensors").write_bytes(b"\x00garbage" * 10)
    run.set_pointer("best", "checkpoints/step-0000001.safetensors")
    with pytest.raises(CheckpointError, match=r"step-0000001\.safetensors: cannot load weights"):
        run.load_weights(tiny_model(21))


def test_weights_of_another_model_are_refused(tmp_path: Path):
    run = RunDir(tmp_path)
    run.set_pointer("last", run.save_weights(tiny_model(21), 1))
    with pytest.raises(CheckpointError, match=r"cannot load weights|do not fit"):
        run.load_weights(tiny_model(30), "last")


def test_corrupt_trainer_state_raises(tmp_path: Path):
    run = RunDir(tmp_path)
    run.trainer_state.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=r"trainer_state\.pt: cannot load"):
        run.load_trainer_state()


class Evil:
    """Any class: unpickling it would run arbitrary code paths."""


def test_trainer_state_refuses_pickled_objects(tmp_path: Path):
    run = RunDir(tmp_path)
    torch.save({"step": 1, "payload": Evil()}, run.trainer_state)
    with pytest.raises(CheckpointError):
        run.load_trainer_state()


def test_missing_pointer_and_missing_target(tmp_path: Path):
    run = RunDir(tmp_path)
    with pytest.raises(CheckpointError, match="no 'best' checkpoint"):
        run.resolve("best")
    atomic_write_text(tmp_path / "last", "checkpoints/gone.safetensors\n")
    with pytest.raises(CheckpointError, match="which does not exist"):
        run.resolve("last")


def test_failed_write_leaves_the_old_file_and_no_debris(tmp_path: Path):
    target = tmp_path / "file.txt"
    atomic_write_text(target, "good")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, broken)
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]
