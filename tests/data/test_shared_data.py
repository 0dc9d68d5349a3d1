"""Checks against the shared data sets; skipped when $SEQ2SEQ_DATA does not have them."""

import os
from pathlib import Path

import pytest

from seq2seq.config import load_recipe
from seq2seq.data.dataset import load_corpus

pytestmark = pytest.mark.data  # reads the shared data sets

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("SEQ2SEQ_DATA", "data"))


def needs(folder: str):
    return pytest.mark.skipif(
        not (DATA / folder).is_dir(), reason=f"{folder} not under $SEQ2SEQ_DATA"
    )


@needs("multi30k")
@pytest.mark.parametrize("split,count", [("train", 29000), ("valid", 1014), ("test2016", 1000)])
def test_multi30k_splits_read_whole_and_aligned(split: str, count: int):
    recipe = load_recipe(ROOT / "recipes" / "translation" / "multi30k_de_en.yaml")
    corpus = load_corpus(recipe, split)
    assert len(corpus) == count and corpus.tgt is not None and len(corpus.tgt) == count
    assert all(line.strip() for line in corpus.src)


@needs("tinyshakespeare")
def test_tiny_shakespeare_windows_use_the_usual_split():
    recipe = load_recipe(ROOT / "recipes" / "text_generation" / "tiny_shakespeare.yaml")
    valid = load_corpus(recipe, "valid")
    assert valid.tgt is not None
    # the last 10% (111,539 characters, cut at 1,003,855) less the first span, which is context
    assert sum(len(t) for t in valid.tgt) == 111_539 - recipe.data.options.span


@needs("canard")
def test_canard_dev_has_both_targets_for_every_row():
    recipe = load_recipe(ROOT / "recipes" / "query_expansion" / "canard.yaml")
    dev = load_corpus(recipe, "valid")
    assert sum(s.startswith("rewrite: ") for s in dev.src) == 3265
    assert sum(s.startswith("terms: ") for s in dev.src) == 3265 - 8  # 8 rows have no terms


@needs("jsb_chorales")
def test_jsb_splits_are_all_valid_harmonisations():
    from seq2seq.tasks.music.chorale_readers import read_pieces
    from seq2seq.tasks.music.chorales import check_harmony

    recipe = load_recipe(ROOT / "recipes" / "music" / "bach_harmonize.yaml")
    for split, count in (("valid", 76), ("test", 77)):
        # whole chorales, and the bars the recipe's model is trained on (its unit: bar)
        for corpus in (read_pieces(recipe.data, split), load_corpus(recipe, split)):
            assert corpus.tgt is not None
            pairs = zip(corpus.src, corpus.tgt, strict=True)
            assert all(check_harmony(s, t).valid for s, t in pairs)
        assert len(read_pieces(recipe.data, split)) == count
        assert len(load_corpus(recipe, split)) > 10 * count


@needs("nottingham_abc")
def test_nottingham_tunes_are_held_out_by_tune():
    recipe = load_recipe(ROOT / "recipes" / "music" / "folk_abc.yaml")
    parts = {split: load_corpus(recipe, split) for split in ("train", "valid", "test")}
    assert sum(len(c) for c in parts.values()) == 1_034 - 2  # two tunes do not tokenize
    assert 0.07 < len(parts["valid"]) / 1_032 < 0.13
