"""``evaluate`` of a text-generation run beyond the defaults: an ensemble of runs, and
``data.*`` overrides that read the split another way (tiny data made in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli


def evaluate(runs: list[Path], extra: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """``seq2seq evaluate RUNS --split valid -q EXTRA`` -> exit code, stdout, stderr."""
    args = ["evaluate", *map(str, runs), "--split", "valid", "-q", *extra]
    return run_cli(args, "", monkeypatch, capsys)


def test_an_ensemble_of_a_run_with_itself_scores_as_the_run(text_run: Path, monkeypatch, capsys):
    monkeypatch.setenv("SEQ2SEQ_DATA", str(text_run.parent))
    scores = [
        json.loads(evaluate(runs, ["--json"], monkeypatch, capsys)[1])["nats_per_char"]
        for runs in ([text_run], [text_run, text_run])
    ]
    assert scores[1] == pytest.approx(scores[0], abs=2e-4)


def test_data_overrides_read_the_split_another_way(text_run: Path, monkeypatch, capsys):
    monkeypatch.setenv("SEQ2SEQ_DATA", str(text_run.parent))
    metrics = json.loads(evaluate([text_run], ["--json"], monkeypatch, capsys)[1])
    # tiles of 4 characters instead of the recipe's 8
    retiled = json.loads(
        evaluate([text_run], ["--json", "data.windows.span=4"], monkeypatch, capsys)[1]
    )
    assert retiled["windows"] > metrics["windows"]
    assert retiled["characters"] == pytest.approx(metrics["characters"], rel=0.1)
    for bad, named in (("data.windows.spam=4", "spam"), ("train.lr=1", "search")):
        code, _, err = evaluate([text_run], [bad], monkeypatch, capsys)
        assert code != 0 and named in err and len(err.strip().splitlines()) == 1, err
