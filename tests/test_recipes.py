"""Every recipe in recipes/ loads, validates and builds a model."""

from pathlib import Path

import pytest

from seq2seq.config import load_recipe
from seq2seq.model.encoder_decoder import build_model, count_parameters

RECIPES = sorted((Path(__file__).resolve().parent.parent / "recipes").rglob("*.yaml"))


def test_there_are_recipes():
    assert len(RECIPES) >= 3


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_loads_and_builds(path: Path):
    recipe = load_recipe(path)
    vocab = recipe.tokenizer.vocab_size
    model = build_model(recipe.model, vocab, vocab)
    assert count_parameters(model) > 0


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_the_size_bound_that_skips_the_memory_check_is_an_upper_bound(path: Path):
    from seq2seq.model.encoder_decoder import _size_bound

    overrides = [
        [],
        ["model.decoder.input_feeding=true", "model.tie_embeddings=false"],
        ["model.decoder.attention=bahdanau", "model.emb_dim=1024", "model.encoder.layers=4"],
    ]
    for extra in overrides:
        recipe = load_recipe(path, extra)
        for vocab in (40, 8000):
            model = build_model(recipe.model, vocab, vocab)
            assert _size_bound(recipe.model, vocab) >= count_parameters(model)
