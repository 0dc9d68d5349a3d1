"""``evaluate`` of a text-generation run beyond the defaults: an ensemble of runs, and
``data.*`` overrides that read the split another way (tiny data made in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli


def test_evaluate_scores_an_ensemble_and_reads_data_overrides(
    text_run: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SEQ2SEQ_DATA", str(text_run.parent))
    code, out, _ = run_cli(
        ["evaluate", str(text_run), "--split", "valid", "--json", "-q"], "", monkeypatch, capsys
    )
    assert code == 0
    metrics = json.loads(out)
    code, out, _ = run_cli(  # an ensemble of the run with itself scores as the run
        ["evaluate", str(text_run), str(text_run), "--split", "valid", "--json", "-q"],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0
    assert json.loads(out)["nats_per_char"] == pytest.approx(metrics["nats_per_char"], abs=2e-4)
    # data.* overrides read the split another way: tiles of 4 characters instead of 8
    code, out, _ = run_cli(
        ["evaluate", str(text_run), "--split", "valid", "--json", "-q", "data.windows.span=4"],
        "",
        monkeypatch,
        capsys,
    )
    assert code == 0
    retiled = json.loads(out)
    assert retiled["windows"] > metrics["windows"]
    assert retiled["characters"] == pytest.approx(metrics["characters"], rel=0.1)
    for bad, named in (("data.windows.spam=4", "spam"), ("train.lr=1", "search")):
        code, _, err = run_cli(
            ["evaluate", str(text_run), "--split", "valid", "-q", bad], "", monkeypatch, capsys
        )
        assert code != 0 and named in err and len(err.strip().splitlines()) == 1, err
