"""Every field of the recipe schema has its range where it is declared, and ``check``
(and so ``train``, ``translate``, the shell) refuses a value outside it with one line
naming the key; nothing is written. Driven by the schema itself, so a field added
without a range fails ``test_every_number_field_has_a_range``."""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any

import pytest
from helpers import TOY_RECIPE, run_cli

from seq2seq.config import Range, Recipe
from seq2seq.config.plugins import formats

# numbers whose every value is meaningful: none at present
UNBOUNDED: set[str] = set()


def number_fields(cls: type = Recipe, prefix: str = "") -> list[tuple[str, type, Any]]:
    """(dotted key, int or float, the field) for each number field, nested sections too."""
    found = []
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        tp = hints[spec.name]
        key = f"{prefix}{spec.name}"
        if dataclasses.is_dataclass(tp):
            found += number_fields(tp, key + ".")  # type: ignore[arg-type]
            continue
        args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
        kind = args[0]
        if kind in (int, float):
            found.append((key, kind, spec))
    return found


# the recipe's own sections, then each data format's section (data.<format>.<key>)
FIELDS = number_fields() + [
    entry for fmt in formats() for entry in number_fields(fmt.options, f"data.{fmt.name}.")
]
FORMAT_OF = {key: key.split(".")[1] for key, _, _ in FIELDS if key.count(".") == 2}


def outside(bounds: Range, kind: type) -> list[Any]:
    """Values just outside ``bounds`` (and non-finite ones for floats)."""
    step = 1 if kind is int else 1e-6
    values: list[Any] = []
    if bounds.lo is not None:
        values.append(bounds.lo if bounds.open_lo else bounds.lo - step)
    if bounds.hi is not None:
        values.append(bounds.hi if bounds.open_hi else bounds.hi + step)
    if kind is float:
        values += [math.nan, math.inf]
    return [int(v) if kind is int and not isinstance(v, float | None) else v for v in values]


CASES = [
    pytest.param(key, value, id=f"{key}={value}")
    for key, kind, spec in FIELDS
    if "range" in spec.metadata
    for value in outside(spec.metadata["range"], kind)
]


def test_every_number_field_has_a_range():
    missing = [k for k, _, spec in FIELDS if "range" not in spec.metadata and k not in UNBOUNDED]
    assert missing == []
    assert len(FIELDS) > 50


def yaml_value(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return ".nan"
    if isinstance(value, float) and math.isinf(value):
        return ".inf"
    return repr(value)


@pytest.mark.parametrize("key,value", CASES)
def test_out_of_range_values_are_one_line_naming_the_key(key: str, value: Any, monkeypatch, capsys):
    spec = dict((k, s) for k, _, s in FIELDS)[key]
    kind = type(spec.default) if spec.default is not None else int
    text = yaml_value(value)
    if isinstance(spec.default, tuple):  # a pair: put the bad value first
        text = f"[{text}, {yaml_value(spec.default[1])}]"
    fmt = [f"data.format={FORMAT_OF[key]}"] if key.startswith("data.") and key in FORMAT_OF else []
    argv = ["check", str(TOY_RECIPE), *fmt, f"{key}={text}"]
    code, out, err = run_cli(argv, "", monkeypatch, capsys)
    assert code == 2, (key, value, kind)
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{key}:" in err and "out of range" in err
    assert out == ""


# the examples, by their own words; each must be refused by check
NAMED = [
    "model.encoder.layers=0",
    "model.decoder.layers=-1",
    "model.encoder.hidden_dim=0",
    "model.emb_dim=-5",
    "train.validate_every=0",
    "train.log_every=0",
    "search.beam_size=0",
    "search.beam_size=1000000",
    "train.betas=[1.0, 0.999]",
    "train.betas=[0.9, -0.1]",
    "train.weight_decay=-0.1",
    "train.num_threads=0",
    "tokenizer.character_coverage=1.5",
    "train.warmup_steps=-100",
    "train.max_steps=-1",
    "train.max_minutes=-1",
    "train.max_minutes=0",
    "search.top_p=2",
    "search.max_len_b=1000000000",
    "search.max_len_a=0",  # with max_len_b 0 below: no output could ever be made
    "search.nbest=6",  # more than the beam (5) without sampling
]


@pytest.mark.parametrize("override", NAMED)
def test_named_bad_settings_are_refused_by_check(override: str, monkeypatch, capsys):
    extra = ["search.max_len_b=0"] if override.startswith("search.max_len_a") else []
    code, out, err = run_cli(["check", str(TOY_RECIPE), override, *extra], "", monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert override.split("=")[0] in err


@pytest.mark.parametrize(
    "overrides,needle",
    [
        (
            [
                "model.encoder.hidden_dim=16384",
                "model.decoder.hidden_dim=16384",
                "model.encoder.layers=32",
                "model.decoder.layers=32",
            ],
            "GiB",
        ),
        (["train.lrr=1"], "did you mean 'train.lr'"),
        (["x" * 100_000 + "=1"], "unknown key"),
        (["train.lr=" + "9" * 100_000], "train.lr"),
        (["data.splits={train: [[[[[[1]]]]]]}"], "data.splits.train"),
        (["train"], "expected key=value"),
        (["train=3"], "train: expected a section"),
        (["train.lr.x=1"], "not a section"),
    ],
)
def test_absurd_or_malformed_overrides_are_one_short_line(
    overrides: list[str], needle: str, monkeypatch, capsys
):
    code, _, err = run_cli(["check", str(TOY_RECIPE), *overrides], "", monkeypatch, capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err and needle in err
    assert len(err) < 400  # an error message is never a resource bomb


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path: Path, monkeypatch, capsys):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines.append("data: {splits: {train: *a8}}")  # 10^9 leaves if expanded
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(["check", str(recipe)], "", monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and len(err) < 400
