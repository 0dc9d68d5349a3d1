"""Text-generation windows: the split, the tiling of validation, short contexts."""

from pathlib import Path

import pytest

from seq2seq.config import Data
from seq2seq.data.readers import DataError
from seq2seq.tasks.text_generation.windows import (
    WindowOptions,
    make_windows,
    read_windows,
    text_part,
)

TEXT = "".join(f"line {i}: the quick brown fox\n" for i in range(200))


def test_parts_split_the_text_at_one_point() -> None:
    train, valid = text_part(TEXT, "train", 0.1), text_part(TEXT, "valid", 0.1)
    assert train + valid == TEXT
    assert len(valid) == pytest.approx(0.1 * len(TEXT), abs=1)
    with pytest.raises(DataError, match="train or valid"):
        text_part(TEXT, "test", 0.1)


def test_windows_pair_the_preceding_context_with_the_next_span() -> None:
    src, tgt = make_windows(TEXT, context=20, span=8, stride=5, short_context=0.0, seed=1)
    for k, (s, t) in enumerate(zip(src, tgt, strict=True)):
        i = 5 * (k + 1)
        assert t == TEXT[i : i + 8]
        assert s == TEXT[max(0, i - 20) : i]


def test_validation_windows_score_every_character_after_the_first_span_once(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.txt").write_text(TEXT)
    data = Data(root=str(tmp_path), format="windows", options=WindowOptions(files="t.txt", span=16))
    corpus = read_windows(data, "valid", "valid", seed=1)
    valid = text_part(TEXT, "valid", 0.1)
    assert corpus.tgt is not None
    assert "".join(corpus.tgt) == valid[16:]


def test_short_contexts_are_cut_for_a_share_of_training_windows() -> None:
    src, _ = make_windows(TEXT, context=40, span=8, stride=4, short_context=0.5, seed=3)
    full = [s for s in src[10:] if len(s) == 40]
    assert 0.3 < 1 - len(full) / len(src[10:]) < 0.7
    again, _ = make_windows(TEXT, context=40, span=8, stride=4, short_context=0.5, seed=3)
    assert again == src  # seeded


def test_missing_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data\.windows\.files"):
        read_windows(Data(root=str(tmp_path), format="windows"), "train", "train", 1)
    with pytest.raises(DataError, match=r"nope\.txt"):
        options = WindowOptions(files="nope.txt")
        read_windows(Data(root=str(tmp_path), format="windows", options=options), "train", "t", 1)
