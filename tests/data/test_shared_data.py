"""Checks against the shared data sets; skipped when $SEQ2SEQ_DATA does not have them."""

import os
from pathlib import Path

import pytest

from seq2seq.config import load_recipe
from seq2seq.data.dataset import load_corpus

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("SEQ2SEQ_DATA", "data"))
pytestmark = pytest.mark.skipif(
    not (DATA / "multi30k" / "train.de").is_file(), reason="Multi30k not under $SEQ2SEQ_DATA"
)


@pytest.mark.parametrize("split,count", [("train", 29000), ("valid", 1014), ("test2016", 1000)])
def test_multi30k_splits_read_whole_and_aligned(split: str, count: int):
    recipe = load_recipe(ROOT / "recipes" / "translation" / "multi30k_de_en.yaml")
    corpus = load_corpus(recipe, split)
    assert len(corpus) == count and corpus.tgt is not None and len(corpus.tgt) == count
    assert all(line.strip() for line in corpus.src)
