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


@pytest.mark.slow
def test_the_shipped_demo_corpus_trains_translates_and_scores_offline(
    tmp_path: Path, monkeypatch, capsys
):
    """make demo's offline path: the Tatoeba recipe reads the corpus shipped inside the
    package with $SEQ2SEQ_DATA pointing at an empty folder (no shared data, no network)."""
    from helpers import ROOT, run_cli

    empty = tmp_path / "no_data"
    empty.mkdir()
    monkeypatch.setenv("SEQ2SEQ_DATA", str(empty))
    run = tmp_path / "demo"
    tiny = [
        "model.emb_dim=32",
        "model.encoder.hidden_dim=32",
        "model.decoder.hidden_dim=64",
        "tokenizer.vocab_size=500",
        "train.max_steps=6",
        "train.validate_every=6",
        "train.valid_bleu=false",
        "train.progress=false",
    ]
    recipe = str(ROOT / "recipes" / "translation" / "tatoeba_demo_de_en.yaml")
    code, _, err = run_cli(["train", recipe, f"output_dir={run}", *tiny], "", monkeypatch, capsys)
    assert code == 0, err
    code, out, err = run_cli(
        ["translate", str(run), "-q"], "Ich habe Hunger.\n", monkeypatch, capsys
    )
    assert code == 0 and len(out.splitlines()) == 1, err
    args = ["evaluate", str(run), "--split", "test", "--limit", "20", "-q"]
    code, out, err = run_cli(args, "", monkeypatch, capsys)
    assert code == 0 and out.startswith("BLEU = "), err
