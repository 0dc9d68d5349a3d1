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


GERMAN = [
    f"der hund {w} läuft über die wiese nummer {i}" for i in range(200) for w in ("rote", "blaue")
]


def foreign_model(path: Path, **ids: int) -> Path:
    """A sentencepiece model trained elsewhere: sentencepiece's own default special ids
    (unk=0 bos=1 eos=2, no pad) unless ``ids`` say otherwise."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(GERMAN),
        model_writer=model,
        vocab_size=60,
        hard_vocab_limit=False,
        minloglevel=2,
        **ids,
    )
    path.write_bytes(model.getvalue())
    return path


def test_a_model_with_other_special_ids_is_mapped_to_ours(tmp_path: Path):
    import sentencepiece as spm

    path = foreign_model(tmp_path / "theirs.model")
    theirs = spm.SentencePieceProcessor(model_file=str(path))
    tok = SentencePieceTokenizer(path)
    assert len(tok) == theirs.get_piece_size() + 1  # their model has no pad: ours is added
    assert tok.vocabulary()[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert sorted(tok.vocabulary()[4:]) == sorted(
        theirs.id_to_piece(i) for i in range(theirs.get_piece_size()) if i not in (0, 1, 2)
    )
    ids = tok.encode(GERMAN[:5])
    assert all(i > EOS_ID for seq in ids for i in seq)
    assert tok.decode(ids) == GERMAN[:5]
    assert tok.pieces(ids[0]) == theirs.encode(GERMAN[0], out_type=str)
    assert tok.encode(["der hund ✈"])[0][-1] == UNK_ID  # their unk is our 1


def test_a_model_with_our_ids_is_used_as_it_is(tmp_path: Path):
    path = foreign_model(tmp_path / "ours.model", pad_id=0, unk_id=1, bos_id=2, eos_id=3)
    tok = SentencePieceTokenizer(path)
    assert tok._to_theirs is None and tok.decode(tok.encode(GERMAN[:2])) == GERMAN[:2]
