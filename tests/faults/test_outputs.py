"""Output files lose nothing: an output is written in full or not at all, an output that
is also an input is refused, and every input line gives exactly one output line, whatever
bytes it holds and however it arrives."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from helpers import run_cli


def one_error(err: str, *needles: str) -> None:
    """Exactly one stderr line, no traceback, naming each of ``needles``."""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "keep.txt"
    path.write_text("1 2 3\n4 5\n")
    return path


def test_output_that_is_the_input_is_refused_and_the_file_kept(
    trained: Path, user_file: Path, monkeypatch, capsys
):
    before = user_file.read_bytes()
    for output in (str(user_file), str(user_file.parent / "." / user_file.name)):
        args = ["translate", str(trained), "-i", str(user_file), "-o", output]
        code, _, err = run_cli(args, "", monkeypatch, capsys)
        assert code == 2
        one_error(err, "is also an input")
        assert user_file.read_bytes() == before


def test_output_through_a_symlink_to_the_input_is_refused(
    trained: Path, user_file: Path, monkeypatch, capsys
):
    link = user_file.parent / "link.txt"
    link.symlink_to(user_file)
    code, _, err = run_cli(
        ["translate", str(trained), "-i", str(user_file), "-o", str(link)], "", monkeypatch, capsys
    )
    assert code == 2 and user_file.read_text() == "1 2 3\n4 5\n"
    one_error(err, "is also an input")


@pytest.mark.parametrize(
    "extra,culprit",
    [
        (["-i", "{tmp}/missing.txt"], "missing.txt"),
        (["--prefix", "{tmp}/missing_prefixes.txt"], "missing_prefixes.txt"),
        (["--prefix", "{tmp}/short_prefixes.txt"], "prefix lines"),
        (["-i", "{tmp}/bad_utf8.txt"], "bad_utf8.txt:2"),
        (["--checkpoint", "nope.safetensors"], "nope.safetensors"),
    ],
)
def test_a_failed_translation_leaves_the_old_output_as_it_was(
    trained: Path, user_file: Path, tmp_path: Path, monkeypatch, capsys, extra, culprit
):
    (tmp_path / "short_prefixes.txt").write_text("")
    (tmp_path / "bad_utf8.txt").write_bytes(b"1 2\n3 \xff 4\n")
    old = tmp_path / "old_output.txt"
    old.write_text("precious\n")
    args = ["translate", str(trained), "-o", str(old), *[e.format(tmp=tmp_path) for e in extra]]
    code, _, err = run_cli(args, "1 2 3\n", monkeypatch, capsys)
    assert code == 2
    one_error(err, culprit)
    assert old.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_successful_translation_replaces_the_output_whole(
    trained: Path, user_file: Path, tmp_path: Path, monkeypatch, capsys
):
    out = tmp_path / "out.txt"
    out.write_text("old\nold\nold\nold\n")
    code, _, _ = run_cli(
        ["translate", str(trained), "-i", str(user_file), "-o", str(out), "-q"],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0
    assert out.read_text().splitlines() == ["3 2 1", "5 4"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "argv",
    [
        ["translate", "{run}", "-o", "{tmp}"],
        ["translate", "{run}", "-o", "{tmp}/no/such/folder/out.txt"],
        ["translate", "{run}", "-i", "{tmp}"],
        ["translate", "{run}", "--attention-png", "{tmp}/a_file"],
        [
            "evaluate",
            "{run}",
            "--src",
            "{tmp}/a_file",
            "--ref",
            "{tmp}/a_file",
            "--hyp-out",
            "{tmp}/a_file",
        ],
        ["generate", "{run}", "-i", "{tmp}/a_file", "-o", "{tmp}/a_file"],
    ],
)
def test_bad_file_arguments_are_one_line_errors(
    trained: Path, tmp_path: Path, monkeypatch, capsys, argv
):
    (tmp_path / "a_file").write_text("1 2\n")
    args = [a.format(run=trained, tmp=tmp_path) for a in argv]
    code, _, err = run_cli(args, "", monkeypatch, capsys)
    assert code == 2
    one_error(err)
    assert (tmp_path / "a_file").read_text() == "1 2\n"


def binary_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_invalid_utf8_on_stdin_is_one_line_naming_the_line(trained: Path, monkeypatch, capsys):
    from seq2seq.cli import main

    binary_stdin(monkeypatch, b"1 2\n3 \xc3\x28 4\n")
    code = main(["translate", str(trained), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    one_error(err, "<stdin>:2", "invalid UTF-8")


ODD_LINES = [
    b"1 2\r3",  # a bare carriage return inside a line
    b"4\x0c5",  # form feed
    b"6\x1c7\x1d8\x1e9",  # the separators str.splitlines breaks on
    "1 \u2028 2 \u2029 3 \x85 4".encode(),
    b"5\x006",  # NUL
    b"",  # empty
    b"   ",  # spaces
    b"\xef\xbb\xbf7 8",  # a BOM, here not at the start of the input
    b"9 " * 200,  # longer than the model's max_len: truncated
]


@pytest.mark.parametrize("via", ["stdin", "file", "shell"])
def test_every_input_line_gives_exactly_one_output_line(
    trained: Path, tmp_path: Path, monkeypatch, capsys, via
):
    from seq2seq.cli import main

    data = b"\n".join(ODD_LINES) + b"\r\n"
    if via == "file":
        path = tmp_path / "odd.txt"
        path.write_bytes(data)
        argv = ["translate", str(trained), "-i", str(path), "-q"]
        binary_stdin(monkeypatch, b"")
    else:
        argv = ["translate" if via == "stdin" else "shell", str(trained), "-q"]
        binary_stdin(monkeypatch, data)
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("\n") == len(ODD_LINES)
    assert out.split("\n")[5] == ""  # the empty line's output is empty


def test_the_shell_reports_a_bad_line_and_answers_the_next(trained: Path, monkeypatch, capsys):
    from seq2seq.cli import main

    binary_stdin(monkeypatch, b"1 2\n\xff\xfe\n3 4\n")
    code = main(["shell", str(trained), "-q"])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.splitlines() == ["2 1", "", "4 3"]
    one_error(captured.err, "<stdin>:2", "invalid UTF-8")


def test_a_huge_line_or_prefix_cannot_make_an_endless_search(
    trained: Path, tmp_path: Path, monkeypatch, capsys, caplog
):
    """A line of 400,000 tokens is cut at 4 x data.max_len (a warning, one output line);
    a prefix longer than that is one error line; a line over 1 MiB is one error line."""
    from seq2seq.cli import main

    binary_stdin(monkeypatch, b"1 2 " * 200_000 + b"\n3 4\n")
    assert main(["translate", str(trained)]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 2 and "truncated to 80" in caplog.text
    prefixes = tmp_path / "prefixes.txt"
    prefixes.write_text("1 " * 10_000 + "\n")
    binary_stdin(monkeypatch, b"1 2\n")
    assert main(["translate", str(trained), "--prefix", str(prefixes), "-q"]) == 2
    one_error(capsys.readouterr().err, "prefix of line 1", "more than 80")
    binary_stdin(monkeypatch, b"1" * (1 << 21) + b"\n")
    assert main(["translate", str(trained), "-q"]) == 2
    one_error(capsys.readouterr().err, "<stdin>:1: line longer than 1,048,576 bytes")
