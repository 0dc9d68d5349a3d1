"""The shell driven through stdin (not a terminal): it answers each line, obeys commands,
shows attention and scores, and turns bad input into one-line errors."""

import io
import logging
from pathlib import Path

import pytest
from helpers import run_cli

from seq2seq.inference import Translator
from seq2seq.shell import Shell


@pytest.fixture
def translator(trained: Path) -> Translator:
    return Translator.from_checkpoint(trained)


def drive(translator: Translator, script: str, interactive: bool = False) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    Shell(translator, out=out, err=err, interactive=interactive).run(script.splitlines())
    return out.getvalue(), err.getvalue()


def test_piped_session_answers_each_line_and_obeys_commands(translator: Translator):
    script = "\n".join(
        [
            "1 2 3",
            "",  # blank: an empty output line, as translate gives
            ":beam 1",
            "4 5 6 7",
            ":nbest 3",  # raises the beam to 3 as well
            "1 2",
            ":set",
            ":quit",
            "8 9",  # never read
        ]
    )
    out, err = drive(translator, script)
    lines = out.splitlines()
    assert lines[:3] == ["3 2 1", "", "7 6 5 4"]  # the tiny model learned to reverse
    nbest = [line.split("\t") for line in lines[3:6]]
    assert [row[0] for row in nbest] == ["2", "2", "2"] and nbest[0][2] == "2 1"
    scores = [float(row[1]) for row in nbest]
    assert scores == sorted(scores, reverse=True) and len({row[2] for row in nbest}) == 3
    settings = dict(line.split(None, 1) for line in lines[6:])
    assert settings["beam_size"] == "3" and settings["nbest"] == "3"
    assert "8 9" not in out and "9 8" not in out
    assert "beam_size=1" in err and "nbest=3, beam_size=3" in err  # acknowledgements


@pytest.mark.parametrize(
    "command,message",
    [
        (":frobnicate", "unknown command ':frobnicate'; :help lists the commands"),
        (":beam two", "beam size: expected int, got 'two'"),
        (":temp -1", "search.temperature"),
        (":sample maybe", ":sample takes on or off"),
        (":attn", "nothing to show yet"),
        (":set train.lr=1", "only search.* keys"),
    ],
)
def test_bad_commands_get_a_one_line_error_and_the_session_goes_on(
    translator: Translator, command: str, message: str
):
    before = translator.search
    out, err = drive(translator, f"{command}\n1 2 3")
    assert message in err and err.count("\n") == 1 and err.startswith("error: ")
    assert out.splitlines() == ["3 2 1"]
    assert translator.search == before  # nothing half-applied


def test_attention_map_and_scores_of_the_last_output(translator: Translator):
    out, _ = drive(translator, "1 2 3 4\n:attn\n:scores")
    lines = out.splitlines()
    assert lines[0] == "4 3 2 1" and lines[1] == "attention for: 4 3 2 1"
    heat = lines[2 : lines.index("", 2)]
    assert all(len(line) <= 80 for line in heat)
    rows = heat[-5:]  # one row per output piece, under the vertical source header
    assert [row.split()[0] for row in rows] == ["4", "3", "2", "1", "</s>"]
    start = lines.index("per-token log-probs for: 4 3 2 1")
    scores = [line.split() for line in lines[start + 1 : start + 6]]
    assert [piece for _, piece in scores] == ["▁4", "▁3", "▁2", "▁1", "</s>"]
    assert all(float(value) <= 0 for value, _ in scores)
    assert "total" in lines[start + 6]


def test_sampling_commands_with_a_seed_are_reproducible(translator: Translator):
    script = ":sample on\n:temp 3\n:nbest 4\n:seed 11\n1 2 3 4 5\n:seed 11\n1 2 3 4 5"
    out, _ = drive(translator, script)
    rows = [line.split("\t") for line in out.splitlines()]
    first = [r[1:] for r in rows if r[0] == "0"]
    second = [r[1:] for r in rows if r[0] == "1"]
    assert first and first == second


def test_prefix_and_maxlen(translator: Translator):
    out, _ = drive(
        translator, ":prefix 9 9\n1 2 3\n:prefix off\n:maxlen 1\n1 2 3\n:maxlen auto\n1 2 3"
    )
    first, second, third = out.splitlines()
    assert first.startswith("9 9") and second == "3" and third == "3 2 1"


def test_required_phrases(translator: Translator):
    out, err = drive(translator, ":require 8 8\n:require 0\n1 2 3\n:require off\n1 2 3")
    first, second = out.splitlines()
    assert " 8 8 " in f" {first} " and " 0 " in f" {first} ", first
    assert second == "3 2 1"
    assert "required: 8 8 | 0" in err and "required phrases off" in err


def test_overlong_line_is_truncated_with_a_warning(translator: Translator, caplog):
    translator.max_input_len = 4
    with caplog.at_level(logging.WARNING):
        out, _ = drive(translator, "1 2 3 4 5 6 7 8")
    assert "truncated to 4" in caplog.text
    assert out.splitlines()[0] == "4 3 2 1"


def test_interactive_mode_shows_score_and_time_and_ctrl_c_cancels(
    translator: Translator, monkeypatch
):
    real = translator.hypotheses
    calls = {"n": 0}

    def interrupted_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(translator, "hypotheses", interrupted_once)
    out, err = drive(translator, "1 2\n1 2\n:help", interactive=True)
    assert "error: cancelled" in err
    lines = out.splitlines()
    assert lines[0].startswith("seq2seq shell") and lines[1] == "2 1"
    assert lines[2].startswith("  [score ") and lines[2].endswith(" ms]")
    assert any(":attn" in line for line in lines[3:])


def test_shell_command_reads_stdin(trained: Path, monkeypatch, capsys):
    code, out, _ = run_cli(
        ["shell", str(trained), "-q", "beam_size=2"], "1 2 3\n:set\n", monkeypatch, capsys
    )
    assert code == 0 and out.splitlines()[0] == "3 2 1"
    assert "  beam_size        2" in out


def test_each_setting_command_changes_its_search_key(translator: Translator):
    script = ":topk 3\n:topp 0.5\n:lenpen 1.5\n:temp 0.7\n:set min_len=1 no_repeat_ngram=2\n:q"
    drive(translator, script)
    search = translator.search
    assert (search.top_k, search.top_p, search.length_penalty, search.temperature) == (
        3,
        0.5,
        1.5,
        0.7,
    )
    assert (search.min_len, search.no_repeat_ngram) == (1, 2)


@pytest.mark.parametrize(
    "command,message",
    [
        (":beam 1000000", "search.beam_size"),
        (":maxlen 0", ":maxlen needs a positive"),
        (":maxlen 1000000000", "search.max_len_b"),
        (":topp 2", "search.top_p"),
        (":seed -1", "search.seed"),
        (":prefix", ":prefix takes"),
        (":require", ":require takes"),
        (":" + "x" * 100_000, "unknown command"),
        (":set beam_size=" + "9" * 100_000, "search.beam_size"),
    ],
)
def test_out_of_range_commands_are_one_short_line(
    translator: Translator, command: str, message: str
):
    out, err = drive(translator, f"{command}\n1 2 3")
    assert message in err and err.count("\n") == 1 and len(err) < 400
    assert out.splitlines() == ["3 2 1"]


def test_quit_and_its_aliases_stop_the_session(translator: Translator):
    for word in (":quit", ":q", ":exit"):
        out, _ = drive(translator, f"1 2\n{word}\n3 4")
        assert out.splitlines() == ["2 1"]
    out, _ = drive(translator, ":help")
    assert all(f":{name}" in out for name in ("beam", "topk", "topp", "lenpen", "seed", "set"))
