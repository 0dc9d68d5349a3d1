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


def _flatten_like_cudnn(lstm: torch.nn.LSTM) -> None:
    """Make every weight of ``lstm`` a view into one flat buffer, as cuDNN does on CUDA."""
    params = list(lstm.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    offset = 0
    for p in params:
        p.data = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()


def test_weights_that_share_one_flat_buffer_save_and_load(tmp_path: Path):
    model = tiny_model(seed=5)
    lstms = [m for m in model.modules() if isinstance(m, torch.nn.LSTM)]
    assert lstms
    for lstm in lstms:
        _flatten_like_cudnn(lstm)
    weights = list(lstms[0].parameters())
    assert weights[0].untyped_storage().data_ptr() == weights[1].untyped_storage().data_ptr()
    run = RunDir(tmp_path)
    name = run.save_weights(model, step=1)
    run.set_pointer("best", name)
    fresh = tiny_model(seed=6)
    run.load_weights(fresh)
    for (key, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), key


def test_tied_weights_are_stored_once(tmp_path: Path):
    from safetensors import safe_open

    model = tiny_model(seed=1, tie_embeddings=True)
    params = dict(model.named_parameters(remove_duplicate=False))
    tied = [k for k, p in params.items() if any(p is q and k != j for j, q in params.items())]
    assert tied  # the fixture does tie something
    run = RunDir(tmp_path)
    name = run.save_weights(model, step=3)
    with safe_open(str(tmp_path / name), "pt") as f:
        stored = set(f.keys())
    assert len(stored & set(tied)) == 1  # once, under one of its names
    run.set_pointer("best", name)
    fresh = tiny_model(seed=2, tie_embeddings=True)
    run.load_weights(fresh)
    for (key, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
    fresh_params = dict(fresh.named_parameters(remove_duplicate=False))
    assert fresh_params[tied[0]] is fresh_params[tied[1]]  # still one tensor
