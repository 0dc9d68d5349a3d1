"""Exact vocabularies: characters and symbols round-trip; bad files are refused."""

from pathlib import Path

import pytest

from seq2seq.data.tokenizer import EOS_ID, PAD_ID, UNK_ID
from seq2seq.data.vocab import (
    SPECIALS,
    VocabTokenizer,
    learn_pieces,
    read_symbol_file,
    write_vocabulary,
)

ROOT = Path(__file__).resolve().parents[2]


def test_characters_round_trip_layout_exactly(tmp_path: Path) -> None:
    text = "ROMEO:\nWhat,  ho!\n\n\tJULIET: Ay me."
    tok = write_vocabulary(
        tmp_path / "v.vocab.json", "characters", learn_pieces([text], "characters", 256)
    )
    ids = tok.encode([text])[0]
    assert len(ids) == len(text)  # one id per character: nats per token = nats per character
    assert tok.decode([ids]) == [text]
    assert tok.vocabulary()[: len(SPECIALS)] == SPECIALS
    assert min(ids) > EOS_ID


def test_unknown_piece_is_unk_and_specials_decode_to_nothing(tmp_path: Path) -> None:
    tok = write_vocabulary(tmp_path / "v.vocab.json", "symbols", ["p60", "d4", "|"])
    ids = tok.encode(["p60 d4 p99 |"])[0]
    assert ids[2] == UNK_ID
    assert tok.decode([[PAD_ID, *tok.encode(["p60 d4"])[0], EOS_ID]]) == ["p60 d4"]


def test_learned_pieces_are_most_frequent_first_and_bounded() -> None:
    pieces = learn_pieces(["a b b c c c"], "symbols", max_size=len(SPECIALS) + 2)
    assert pieces == ["c", "b"]


def test_music_event_file_defines_a_clean_vocabulary() -> None:
    symbols = read_symbol_file(ROOT / "tokenizers" / "music_events.yaml")
    assert len(symbols) == len(set(symbols))
    for needed in ("V:S", "V:B", "M:3/4", "K:-2", "|", "r", "p28", "p96", "d1", "d32"):
        assert needed in symbols


@pytest.mark.parametrize(
    "content, message",
    [
        ("groups: 3", "groups"),
        ("groups: [{doc: x}]", "neither"),
        ("groups: [{range: {prefix: p}}]", "range needs"),
        ("groups: [{symbols: ['a b']}]", "whitespace"),
    ],
)
def test_bad_symbol_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_symbol_file(path)


def test_corrupt_vocabulary_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "joint.vocab.json"
    path.write_text('{"kind": "characters"')
    with pytest.raises(ValueError, match=r"joint\.vocab\.json"):
        VocabTokenizer(path)
