from pathlib import Path

import pytest

from seq2seq.config import (
    ConfigError,
    Recipe,
    apply_overrides,
    dump_recipe,
    load_recipe,
    parse_overrides,
    recipe_from_dict,
    with_search,
)

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "translation" / "multi30k_de_en.yaml"


def test_defaults_live_in_dataclasses():
    recipe = recipe_from_dict({})
    assert recipe == Recipe()


def test_overrides_are_parsed_as_yaml():
    recipe = load_recipe(
        RECIPE, ["train.lr=3e-4", "model.decoder.input_feeding=true", "train.max_steps=7"]
    )
    assert recipe.train.lr == pytest.approx(3e-4)
    assert recipe.model.decoder.input_feeding is True
    assert recipe.train.max_steps == 7


def test_unknown_key_names_the_nearest():
    with pytest.raises(ConfigError, match=r"unknown key 'train\.lrr'; did you mean 'train\.lr'"):
        load_recipe(RECIPE, ["train.lrr=1"])
    with pytest.raises(ConfigError, match=r"unknown key 'modle'; did you mean 'model'"):
        recipe_from_dict({"modle": {}})


def test_wrong_type_names_key_type_and_value():
    with pytest.raises(ConfigError, match=r"train\.batch_tokens: expected int, got 'many' \(str\)"):
        load_recipe(RECIPE, ["train.batch_tokens=many"])
    with pytest.raises(ConfigError, match=r"model\.decoder\.attention: expected one of"):
        load_recipe(RECIPE, ["model.decoder.attention=luong"])
    with pytest.raises(ConfigError, match=r"model\.tie_embeddings: expected bool"):
        load_recipe(RECIPE, ["model.tie_embeddings=3"])


def test_errors_are_one_line_and_name_the_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {lr: [1, 2}\n")
    with pytest.raises(ConfigError) as err:
        load_recipe(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="recipe file not found"):
        load_recipe(tmp_path / "missing.yaml")


def test_cross_field_checks():
    with pytest.raises(ConfigError, match="share_embeddings"):
        load_recipe(RECIPE, ["tokenizer.joint=false", "model.share_embeddings=true"])
    with pytest.raises(ConfigError, match=r"decoder\.copy"):
        load_recipe(
            RECIPE,
            ["tokenizer.joint=false", "model.share_embeddings=false", "model.decoder.copy=true"],
        )
    with pytest.raises(ConfigError, match=r"locked_dropout: true needs .*input_feeding: false"):
        load_recipe(
            RECIPE, ["model.decoder.locked_dropout=true", "model.decoder.input_feeding=true"]
        )
    with pytest.raises(ConfigError, match="dot needs"):
        load_recipe(RECIPE, ["model.decoder.attention=dot", "model.decoder.hidden_dim=100"])
    with pytest.raises(ConfigError, match=r"decoder\.bridge: copy needs"):
        load_recipe(RECIPE, ["model.decoder.bridge=copy", "model.decoder.hidden_dim=100"])
    with pytest.raises(ConfigError, match="teacher_forcing"):
        load_recipe(RECIPE, ["train.teacher_forcing=1.5"])
    with pytest.raises(ConfigError, match=r"search\.nbest"):
        load_recipe(RECIPE, ["search.nbest=9"])
    assert load_recipe(RECIPE, ["search.nbest=9", "search.sampling=true"]).search.nbest == 9
    with pytest.raises(ConfigError, match=r"search\.top_p"):
        load_recipe(RECIPE, ["search.top_p=0"])


def test_resolved_recipe_round_trips_without_the_spec(tmp_path: Path):
    recipe = load_recipe(RECIPE)
    assert recipe.tokenizer.spec is None and recipe.tokenizer.model_type == "unigram"
    saved = tmp_path / "recipe.yaml"
    saved.write_text(dump_recipe(recipe))
    assert load_recipe(saved) == recipe


def test_parse_overrides_accepts_bare_and_prefixed_keys():
    parsed = parse_overrides(["beam_size=2", "search.length_penalty=0", "seed=null"], "search")
    assert parsed == {"beam_size": 2, "length_penalty": 0, "seed": None}
    with pytest.raises(ConfigError, match="only search"):
        parse_overrides(["train.lr=1"], "search")


def test_with_search_checks_each_field_like_a_recipe():
    recipe = load_recipe(RECIPE)
    changed = with_search(recipe, beam_size=2, length_penalty=0)
    assert changed.search.beam_size == 2 and changed.search.length_penalty == 0.0
    assert isinstance(changed.search.length_penalty, float) and changed.model == recipe.model
    for bad, message in [
        ({"beam_size": 0}, "search.beam_size: 0 is out of range"),
        ({"beem_size": 2}, "did you mean 'search.beam_size'"),
        ({"top_p": "high"}, "search.top_p: expected float"),
        ({"nbest": 9}, "search.nbest"),  # more than the beam, without sampling
    ]:
        with pytest.raises(ConfigError, match=message):
            with_search(recipe, **bad)


def test_malformed_override():
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["train.lr"])
