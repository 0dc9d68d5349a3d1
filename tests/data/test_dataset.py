from pathlib import Path

import pytest
from helpers import toy_recipe

from seq2seq.data.dataset import build_tokenizers, encode_examples, load_corpus
from seq2seq.data.readers import Corpus, DataError


def test_length_filter_drops_and_counts(
    toy_env: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    recipe = toy_recipe(tmp_path / "run")
    train = load_corpus(recipe, "train")
    src_tok, tgt_tok = build_tokenizers(recipe, tmp_path / "tok", train)
    corpus = Corpus(
        "mixed",
        ["1 2 3", "1 2 3 4 5 6 7 8 9", "", "4 5"],
        ["3 2 1", "9 8 7 6 5 4 3 2 1", "1", "5 4"],
    )
    with caplog.at_level("INFO"):
        examples = encode_examples(corpus, src_tok, tgt_tok, max_len=5)
    assert examples.dropped == 2 and len(examples) == 2
    assert list(examples.corpus.src) == ["1 2 3", "4 5"]
    assert examples.src[1].tolist() == src_tok.encode(["4 5"])[0]
    assert "dropped 2 of 4 pairs" in caplog.text
    with pytest.raises(DataError, match="every pair is empty or longer"):
        encode_examples(
            Corpus("long", ["1 2 3 4 5 6"], ["6 5 4 3 2 1"]), src_tok, tgt_tok, max_len=2
        )


@pytest.mark.parametrize("joint", [True, False])
def test_tokenizers_are_trained_once_and_reloaded(toy_env: Path, tmp_path: Path, joint: bool):
    recipe = toy_recipe(
        tmp_path / "run", f"tokenizer.joint={str(joint).lower()}", "model.share_embeddings=false"
    )
    train = load_corpus(recipe, "train")
    src_tok, tgt_tok = build_tokenizers(recipe, tmp_path / "tok", train)
    assert (src_tok is tgt_tok) == joint
    names = sorted(p.name for p in (tmp_path / "tok").iterdir())
    assert names == (["joint.model"] if joint else ["src.model", "tgt.model"])
    again = build_tokenizers(recipe, tmp_path / "tok", None)  # no training data needed now
    assert again[0].encode(["1 2 3"]) == src_tok.encode(["1 2 3"])
    with pytest.raises(DataError, match="tokenizer model missing"):
        build_tokenizers(recipe, tmp_path / "empty", None)
