from pathlib import Path

import pytest

from seq2seq.data.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    SentencePieceTokenizer,
    train_tokenizer,
)

TEXT = [
    f"the {w} sat on the mat number {i % 10}"
    for i, w in enumerate(["cat", "dog", "bird", "fox"] * 50)
]


@pytest.mark.parametrize("model_type", ["unigram", "bpe", "char", "word"])
def test_trained_model_has_fixed_special_ids_and_round_trips(tmp_path: Path, model_type: str):
    tok = train_tokenizer(
        TEXT,
        tmp_path / "m.model",
        model_type=model_type,
        vocab_size=60,
        character_coverage=1.0,
        max_sentences=1000,
        byte_fallback=False,
        seed=1,
    )
    sp = tok.sp
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (PAD_ID, UNK_ID, BOS_ID, EOS_ID)
    ids = tok.encode(["the fox sat on the mat number 3"])
    assert all(i > EOS_ID for i in ids[0])
    assert tok.decode(ids) == ["the fox sat on the mat number 3"]
    assert 8 < len(tok) <= 60


def test_decode_drops_specials(tmp_path: Path):
    tok = train_tokenizer(
        TEXT,
        tmp_path / "m.model",
        model_type="unigram",
        vocab_size=40,
        character_coverage=1.0,
        max_sentences=1000,
        byte_fallback=False,
        seed=1,
    )
    ids = tok.encode(["the cat"])[0]
    assert tok.decode([[BOS_ID, *ids, EOS_ID, PAD_ID]]) == ["the cat"]
    assert isinstance(SentencePieceTokenizer(tmp_path / "m.model"), SentencePieceTokenizer)
