"""A tampered or damaged run directory is one clear line, and nothing in it changes: each
case copies a trained run, damages one piece, runs a command on it, and checks the exit
code, that stderr is one line naming the culprit, and that the directory is byte for
byte as it was. Nothing pickled ever executes."""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import TOY_RECIPE, run_cli
from safetensors.torch import load_file, save_file

from seq2seq.checkpoint import RunDir


def tree_hash(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "train.lock"
    }


def retype(dtype: torch.dtype) -> Callable[[Path], str]:
    def tamper(run: Path) -> str:
        path = run / RunDir(run).resolve("best")
        save_file({k: v.to(dtype) for k, v in load_file(path).items()}, str(path))
        return "refusing to cast"

    return tamper


def reshape(run: Path) -> str:
    path = run / RunDir(run).resolve("best")
    tensors = load_file(path)
    key = next(k for k, v in tensors.items() if v.dim() == 2)
    tensors[key] = tensors[key][:, :-1].contiguous()
    save_file(tensors, str(path))
    return key


def pointer(text: bytes | str) -> Callable[[Path], str]:
    def tamper(run: Path) -> str:
        data = text.encode() if isinstance(text, str) else text
        (run / "best").write_bytes(data.replace(b"{run}", str(run).encode()))
        return "best"

    return tamper


def truncate(run: Path) -> str:
    path = run / RunDir(run).resolve("best")
    path.write_bytes(path.read_bytes()[:300])
    return "cannot load weights"


def recipe(text: str, needle: str) -> Callable[[Path], str]:
    def tamper(run: Path) -> str:
        (run / "recipe.yaml").write_text(text)
        return needle

    return tamper


def remove(name: str, needle: str) -> Callable[[Path], str]:
    def tamper(run: Path) -> str:
        target = run / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        return needle

    return tamper


def garble_tokenizer(run: Path) -> str:
    (path,) = [p for p in (run / "tokenizer").iterdir() if p.is_file()]
    path.write_bytes(b"\x00garbage\xff" * 10)
    return path.name


TRANSLATE_CASES = {
    "pointer outside the run": pointer("../../../../etc/hostname"),
    "pointer to an absolute path": pointer("{run}/checkpoints/x.safetensors"),
    "pointer to a missing file": pointer("checkpoints/step-9999999.safetensors"),
    "pointer to a non-checkpoint file": pointer("recipe.yaml"),
    "pointer not UTF-8": pointer(b"\xff\xfe\xfd"),
    "pointer of 10 MB": pointer("x" * 10_000_000),
    "weights in float64": retype(torch.float64),
    "weights in bfloat16": retype(torch.bfloat16),
    "weights reshaped": reshape,
    "weights truncated": truncate,
    "no recipe": remove("recipe.yaml", "recipe.yaml"),
    "recipe not YAML": recipe("model: [unclosed\n", "not valid YAML"),
    "recipe with an unknown key": recipe("modle: {}\n", "modle"),
    "recipe out of range": recipe("search: {beam_size: 0}\n", "search.beam_size"),
    "no tokenizer": remove("tokenizer", "tokenizer"),
    "tokenizer garbled": garble_tokenizer,
}


@pytest.mark.parametrize("case", list(TRANSLATE_CASES))
def test_a_damaged_run_is_refused_by_translate_in_one_line(
    trained: Path, tmp_path: Path, monkeypatch, capsys, case: str
):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    needle = TRANSLATE_CASES[case](run)
    before = tree_hash(run)
    code, out, err = run_cli(["translate", str(run), "-q"], "1 2 3\n", monkeypatch, capsys)
    assert code == 2 and out == "", (case, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err, (needle, err)
    assert len(err) < 600
    assert tree_hash(run) == before


class Payload:
    """Unpickling this would create a file: the proof that something executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def state_edit(edit: Callable[[dict], object], needle: str) -> Callable[[Path], str]:
    def tamper(run: Path) -> str:
        path = run / "trainer_state.pt"
        state = torch.load(path, weights_only=True)
        replacement = edit(state)  # a list replaces the state; anything else: edited in place
        torch.save(replacement if isinstance(replacement, list) else state, path)
        return needle

    return tamper


RESUME_CASES = {
    "step missing": state_edit(lambda s: s.pop("step"), "key 'step' is missing"),
    "step a string": state_edit(lambda s: s.update(step="12"), "key 'step' holds a str"),
    "step negative": state_edit(lambda s: s.update(step=-3), "key 'step' is negative"),
    "optimizer a list": state_edit(lambda s: s.update(optimizer=[]), "key 'optimizer'"),
    "weights outside": state_edit(
        lambda s: s.update(weights="../other/x.safetensors"), "not a file in the run"
    ),
    "not a dict": state_edit(lambda s: [1, 2, 3], "not a seq2seq trainer state"),
    "empty file": lambda run: (run / "trainer_state.pt").write_bytes(b"") and "cannot load",
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_a_damaged_trainer_state_is_refused_on_resume_in_one_line(
    trained: Path, toy_env: Path, tmp_path: Path, monkeypatch, capsys, case: str
):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    needle = RESUME_CASES[case](run) or "cannot load"
    before = tree_hash(run)
    args = ["train", str(TOY_RECIPE), f"output_dir={run}", "train.max_steps=500", "-q"]
    code, _, err = run_cli(args, "", monkeypatch, capsys)
    assert code == 2, (case, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err and "trainer_state.pt" in err, err
    assert tree_hash(run) == before


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickled_trainer_state_never_executes(
    trained: Path, toy_env: Path, tmp_path: Path, monkeypatch, capsys
):
    run, marker = tmp_path / "run", tmp_path / "EXECUTED"
    shutil.copytree(trained, run)
    with open(tmp_path / "plain_pickle.pt", "wb") as handle:
        pickle.dump({"step": Payload(marker)}, handle)
    torch.save({"step": Payload(marker)}, tmp_path / "torch_format.pt")
    for source in (tmp_path / "plain_pickle.pt", tmp_path / "torch_format.pt"):
        shutil.copy(source, run / "trainer_state.pt")
        args = ["train", str(TOY_RECIPE), f"output_dir={run}", "train.max_steps=500", "-q"]
        code, _, err = run_cli(args, "", monkeypatch, capsys)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert "weights_only=False" not in err  # never advise the unsafe way
        assert not marker.exists()


def test_a_run_is_a_shared_artifact(trained: Path, tmp_path: Path, monkeypatch, capsys):
    """Copied elsewhere (another machine, another user), with the original gone, a run
    translates the same and reading it writes nothing into it."""
    copy = tmp_path / "elsewhere" / "run"
    shutil.copytree(trained, copy)
    before = tree_hash(copy)
    monkeypatch.chdir(tmp_path)  # another working directory
    monkeypatch.delenv("SEQ2SEQ_DATA", raising=False)  # no data on this machine
    _, expected, _ = run_cli(["translate", str(trained), "-q"], "1 2 3\n4 5\n", monkeypatch, capsys)
    code, out, err = run_cli(["translate", str(copy), "-q"], "1 2 3\n4 5\n", monkeypatch, capsys)
    assert code == 0, err
    assert out == expected
    assert tree_hash(copy) == before
