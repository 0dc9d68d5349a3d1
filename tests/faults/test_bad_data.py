"""Bad training data and bad places to train are one line naming the file (and line) at
fault, before anything is trained; nothing under the data root changes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import TOY_RECIPE, run_cli


def write_split(root: Path, name: str, src: bytes, tgt: bytes) -> None:
    (root / f"{name}.src").write_bytes(src)
    (root / f"{name}.tgt").write_bytes(tgt)


GOOD = b"1 2 3\n4 5\n6\n"
GOOD_REVERSED = b"3 2 1\n5 4\n6\n"


def all_blank(root: Path) -> str:
    write_split(root, "train", b"\n  \n\t\n", b" \n\n\n")
    return "every line of split 'train' is empty or whitespace"


def ragged(root: Path) -> str:
    write_split(root, "train", GOOD, b"3 2 1\n")
    return "has 3 lines but"


def bad_utf8(root: Path) -> str:
    write_split(root, "train", GOOD, b"3 2 1\n5 \xe9 4\n6\n")
    return "train.tgt:2: invalid UTF-8"


def missing(root: Path) -> str:
    (root / "train.tgt").unlink()
    return "train.tgt: file not found"


def a_directory(root: Path) -> str:
    (root / "train.tgt").unlink()
    (root / "train.tgt").mkdir()
    return "train.tgt: is a directory"


def empty_file(root: Path) -> str:
    write_split(root, "train", b"", b"")
    return "empty split 'train'"


def empty_valid(root: Path) -> str:
    write_split(root, "valid", b"", b"")
    return "empty split 'valid'"


CASES: dict[str, Callable[[Path], str]] = {
    "all blank": all_blank,
    "ragged": ragged,
    "invalid UTF-8": bad_utf8,
    "missing": missing,
    "a directory": a_directory,
    "empty file": empty_file,
    "empty valid split": empty_valid,
}


def data_hash(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("case", list(CASES))
def test_bad_training_data_is_one_line_naming_the_file(
    tmp_path: Path, monkeypatch, capsys, case: str
):
    root = tmp_path / "data" / "toy_reverse"
    root.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        write_split(root, split, GOOD, GOOD_REVERSED)
    needle = CASES[case](root)
    monkeypatch.setenv("SEQ2SEQ_DATA", str(tmp_path / "data"))
    before = data_hash(root)
    run = tmp_path / "run"
    code, _, err = run_cli(["train", str(TOY_RECIPE), f"output_dir={run}"], "", monkeypatch, capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err
    assert data_hash(root) == before
    assert not (run / "checkpoints").exists() and not (run / "trainer_state.pt").exists()


@pytest.mark.parametrize(
    "output_dir,needle",
    [("/dev/null/run", "/dev/null/run"), ("{tmp}/a_file/run", "a_file")],
)
def test_an_output_dir_that_cannot_be_written_is_one_line(
    toy_env: Path, tmp_path: Path, monkeypatch, capsys, output_dir: str, needle: str
):
    (tmp_path / "a_file").write_text("not a folder\n")
    target = output_dir.format(tmp=tmp_path)
    code, _, err = run_cli(
        ["train", str(TOY_RECIPE), f"output_dir={target}"], "", monkeypatch, capsys
    )
    assert code == 2 and err.count("\n") == 1 and needle in err and "Traceback" not in err
    assert (tmp_path / "a_file").read_text() == "not a folder\n"


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["train", "{recipe}", "--device", "cuda"], "no CUDA device"),
        (["translate", "{run}", "--device", "cuda"], "no CUDA device"),
        (
            ["translate", "{run}", "search.sampling=true", "coverage_penalty=0.2"],
            "search.coverage_penalty",
        ),
        (["translate", "{run}", "beam_size=0"], "search.beam_size"),
        (["translate", "{run}", "--checkpoint", "../../etc/hostname"], "not a file in the run"),
        (["evaluate", "{run}", "--src", "{run}/recipe.yaml"], "--src needs --ref"),
        (["evaluate", "{run}", "--split", "test", "--limit", "-1"], "--limit"),
        (["expand", "{run}", "--query", "x", "-n", "100000"], "-n must be"),
        (["generate", "{run}", "--prompt", "1 2", "--max-len", "0"], "--max-len"),
        (["generate", "{run}", "--prompt", "1 2", "-n", "3"], "-n goes with --split"),
    ],
)
def test_bad_command_lines_are_one_line(
    trained: Path, toy_env: Path, monkeypatch, capsys, argv: list[str], needle: str
):
    import torch

    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    args = [a.format(run=trained, recipe=TOY_RECIPE) for a in argv]
    code, _, err = run_cli(args, "1 2 3\n", monkeypatch, capsys)
    assert code == 2, (args, err)
    assert err.count("\n") == 1 and "Traceback" not in err and needle in err, err
