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
    with caplog.at_level("INFO", logger="seq2seq"):
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


def test_an_existing_sentencepiece_model_is_copied_into_the_run(tmp_path: Path):
    from data.test_tokenizer import GERMAN, foreign_model

    from seq2seq.config import recipe_from_dict
    from seq2seq.data.dataset import build_tokenizers

    theirs = foreign_model(tmp_path / "theirs.model")
    recipe = recipe_from_dict({"tokenizer": {"model_file": str(theirs)}})
    run_tokenizers = tmp_path / "run" / "tokenizer"
    src, tgt = build_tokenizers(recipe, run_tokenizers, None)  # no training text needed
    assert src is tgt and (run_tokenizers / "joint.model").read_bytes() == theirs.read_bytes()
    assert src.decode(src.encode(GERMAN[:3])) == GERMAN[:3]
    theirs.unlink()  # the run keeps its copy: loading again needs nothing else
    assert len(build_tokenizers(recipe, run_tokenizers, None)[0]) == len(src)


def test_model_file_mistakes_are_one_line_naming_the_key(tmp_path: Path):
    from seq2seq.config import ConfigError, recipe_from_dict
    from seq2seq.data.dataset import build_tokenizers
    from seq2seq.data.readers import DataError

    for tokenizer, message in (
        ({"tgt_model_file": "t.model"}, r"tokenizer\.tgt_model_file: needs tokenizer\.model_file"),
        ({"model_file": "s.model", "joint": False}, r"give the target's as tokenizer\.tgt_model"),
        ({"model_file": "s.model", "model_type": "symbols"}, r"model_type symbols builds"),
        ({"model_file": "s", "tgt_model_file": "t"}, r"a second model needs tokenizer\.joint"),
    ):
        with pytest.raises(ConfigError, match=message):
            recipe_from_dict({"tokenizer": tokenizer})
    (tmp_path / "text.model").write_text("not a model")
    for name, message in (
        (tmp_path / "none.model", "file not found"),
        (tmp_path / "text.model", "is not a sentencepiece model"),
    ):
        recipe = recipe_from_dict({"tokenizer": {"model_file": str(name)}})
        with pytest.raises(DataError, match=rf"tokenizer\.model_file: .*{message}"):
            build_tokenizers(recipe, tmp_path / "run", None)


def test_subword_sampling_redraws_each_epoch_reproducibly(tmp_path: Path):
    from seq2seq.config import recipe_from_dict
    from seq2seq.data.dataset import resampled
    from seq2seq.data.tokenizer import train_tokenizer

    texts = [f"die katze schläft auf der fensterbank nummer {i}" for i in range(300)]
    tok = train_tokenizer(
        texts,
        tmp_path / "joint.model",
        model_type="unigram",
        vocab_size=80,
        character_coverage=1.0,
        max_sentences=1000,
        byte_fallback=False,
        seed=1,
    )
    corpus = Corpus("train", texts, texts)
    plain = encode_examples(corpus, tok, tok)
    off = recipe_from_dict({"tokenizer": {"model_type": "unigram"}})
    assert resampled(plain, (tok, tok), off, 0) is plain  # alpha 0: nothing drawn
    on = recipe_from_dict({"tokenizer": {"model_type": "unigram", "sampling": {"alpha": 0.5}}})
    epoch0, again, epoch1 = (resampled(plain, (tok, tok), on, e) for e in (0, 0, 1))
    rows = range(len(texts))
    assert all((epoch0.src[i] == again.src[i]).all() for i in rows)  # same epoch, same draw
    differ = sum(len(epoch0.src[i]) != len(plain.src[i]) for i in rows)
    assert differ > 30  # segmentations really vary ...
    assert any(len(epoch0.src[i]) != len(epoch1.src[i]) for i in rows)  # ... and per epoch
    assert tok.decode([list(epoch1.tgt[i]) for i in rows]) == tok.decode(
        [list(plain.tgt[i]) for i in rows]
    )
    from seq2seq.config import ConfigError

    with pytest.raises(ConfigError, match=r"tokenizer\.sampling\.alpha: subword sampling needs"):
        recipe_from_dict({"tokenizer": {"model_type": "char", "sampling": {"alpha": 0.1}}})
