"""The plugin registry (seq2seq/config/plugins.py): a data format's options are the
recipe's ``data.<format>`` section, typed and range-checked like any other; recipes and
run directories written when those keys sat directly in ``data`` still load; a format or
task registered from outside the package works through the generic code unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from seq2seq.config import (
    ConfigError,
    Data,
    dump_recipe,
    format_options,
    load_recipe,
    plugins,
    ranged,
    recipe_from_dict,
)
from seq2seq.data.dataset import load_corpus
from seq2seq.data.readers import Corpus
from seq2seq.tasks.music.chorale_readers import ChoraleOptions
from seq2seq.tasks.text_generation.windows import WindowOptions

ROOT = Path(__file__).resolve().parent.parent


def test_a_format_section_is_typed_by_its_format():
    recipe = recipe_from_dict(
        {"data": {"format": "windows", "windows": {"files": "a.txt", "span": 16}}}
    )
    assert recipe.data.options == WindowOptions(files="a.txt", span=16)
    with pytest.raises(ConfigError, match=r"unknown key 'data\.windows\.spam'; did you mean"):
        recipe_from_dict({"data": {"format": "windows", "windows": {"spam": 16}}})
    with pytest.raises(ConfigError, match=r"data\.windows\.span: 0 is out of range"):
        recipe_from_dict({"data": {"format": "windows", "windows": {"span": 0}}})


def test_another_formats_section_is_an_unknown_key():
    with pytest.raises(ConfigError, match=r"unknown key 'data\.canard'"):
        recipe_from_dict({"data": {"format": "windows", "canard": {"context_turns": 2}}})


def test_unknown_format_and_task_name_the_known_ones():
    with pytest.raises(ConfigError, match=r"data\.format: no format 'csv' \(known: .*windows"):
        recipe_from_dict({"data": {"format": "csv"}})
    with pytest.raises(ConfigError, match=r"task: no task named 'poetry' \(known: .*music"):
        recipe_from_dict({"task": "poetry"})


def test_a_cross_field_rule_of_a_format_names_its_key():
    with pytest.raises(ConfigError, match=r"data\.chorales\.transpose: \[1, 3\] must be"):
        recipe_from_dict({"data": {"format": "chorales", "chorales": {"transpose": [1, 3]}}})


def test_the_dump_round_trips_every_format(tmp_path: Path):
    for recipe_file in sorted((ROOT / "recipes").glob("*/*.yaml")):
        recipe = load_recipe(recipe_file)
        saved = tmp_path / "recipe.yaml"
        saved.write_text(dump_recipe(recipe))
        assert load_recipe(saved) == recipe, recipe_file


def test_the_flat_layout_of_older_recipes_still_loads():
    """Before the format sections, files/holdout/transpose/context_turns/windows sat in
    ``data``, and a run directory's recipe.yaml held every one of them."""
    old_dump = {
        "root": "jsb",
        "format": "chorales",
        "files": "jsb.json",
        "holdout": 0.2,
        "transpose": [-1, 1],
        "context_turns": 3,
        "windows": {"context": 256, "span": 128, "stride": 64, "short_context": 0.25},
    }
    recipe = recipe_from_dict({"data": old_dump})
    assert recipe.data.options == ChoraleOptions(files="jsb.json", holdout=0.2, transpose=(-1, 1))
    text_run = {"format": "text", "files": "", "holdout": 0.1, "context_turns": 3}
    assert recipe_from_dict({"data": text_run}).data.options == plugins.get_format("text").options()


def test_a_flat_key_the_format_does_not_have_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"data\.context_turns: not an option of format windows"):
        recipe_from_dict({"data": {"format": "windows", "context_turns": 5}})
    with pytest.raises(ConfigError, match=r"data\.files: given twice"):
        recipe_from_dict({"data": {"format": "abc", "files": "a", "abc": {"files": "b"}}})


def test_options_of_another_format_are_refused():
    with pytest.raises(ConfigError, match="WindowOptions"):
        format_options(Data(format="abc"), WindowOptions)
    assert format_options(Data(format="windows"), WindowOptions) == WindowOptions()


@dataclass(frozen=True)
class LinesOptions:
    repeat: int = ranged(1, 1, 10)


def read_numbered(data: Data, part: str, split: str, seed: int) -> Corpus:
    options = format_options(data, LinesOptions)
    lines = [f"{part} {i}" for i in range(3)] * options.repeat
    return Corpus(split, lines, [line.upper() for line in lines])


def test_a_format_registered_from_outside_goes_through_the_generic_code(monkeypatch):
    monkeypatch.setitem(
        plugins._FORMATS, "numbered", plugins.Format("numbered", LinesOptions, read_numbered)
    )
    recipe = recipe_from_dict({"data": {"format": "numbered", "numbered": {"repeat": 2}}})
    corpus = load_corpus(recipe, "valid")
    assert len(corpus) == 6 and corpus.tgt is not None and corpus.tgt[0] == "VALID 0"
    with pytest.raises(ConfigError, match=r"data\.numbered\.repeat: 11 is out of range"):
        recipe_from_dict({"data": {"format": "numbered", "numbered": {"repeat": 11}}})
