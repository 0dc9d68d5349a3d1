from pathlib import Path

import pytest

from seq2seq.config import Data
from seq2seq.data.formats import read_text
from seq2seq.data.readers import (
    DataError,
    read_hf_dataset,
    read_lines,
    read_parallel_text,
)


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_reads_parallel_files(tmp_path: Path):
    src = write(tmp_path / "a.de", "Ein Hund.\nZwei Katzen.\n")
    tgt = write(tmp_path / "a.en", "A dog.\r\nTwo cats.\r\n")
    corpus = read_parallel_text(src, tgt, "a")
    assert list(corpus.src) == ["Ein Hund.", "Zwei Katzen."]
    assert list(corpus.tgt or []) == ["A dog.", "Two cats."]


def test_missing_file_is_named(tmp_path: Path):
    with pytest.raises(DataError, match=r"nope\.de: file not found"):
        read_lines(tmp_path / "nope.de")


def test_ragged_files_give_both_counts(tmp_path: Path):
    src = write(tmp_path / "r.de", "a\nb\nc\n")
    tgt = write(tmp_path / "r.en", "a\nb\n")
    with pytest.raises(DataError, match=r"r\.de has 3 lines but .*r\.en has 2"):
        read_parallel_text(src, tgt, "r")


def test_invalid_utf8_names_file_and_line(tmp_path: Path):
    path = write(tmp_path / "bad.de", b"fine\nalso fine\nbroken \xff here\n")
    with pytest.raises(DataError, match=r"bad\.de:3: invalid UTF-8"):
        read_lines(path)


def test_empty_split_is_an_error(tmp_path: Path):
    src, tgt = write(tmp_path / "e.de", ""), write(tmp_path / "e.en", "")
    with pytest.raises(DataError, match="empty split"):
        read_parallel_text(src, tgt, "e")


def test_split_resolves_under_the_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "set").mkdir()
    write(tmp_path / "set" / "dev.de", "x\n")
    write(tmp_path / "set" / "dev.en", "y\n")
    monkeypatch.setenv("SEQ2SEQ_DATA", str(tmp_path))
    data = Data(root="set", format="text", src_lang="de", tgt_lang="en")
    corpus = read_text(data, "dev", "valid", 1)
    assert list(corpus.src) == ["x"] and corpus.name == "valid"


def test_hugging_face_dataset_from_a_local_folder(tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    rows = {"translation": [{"de": f"Satz {i}", "en": f"sentence {i}"} for i in range(10)]}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(
        str(tmp_path / "hf")
    )
    corpus = read_hf_dataset(str(tmp_path / "hf"), "train", "de", "en")
    assert len(corpus) == 10
    assert corpus.src[3] == "Satz 3" and corpus.tgt is not None and corpus.tgt[9] == "sentence 9"
    assert list(corpus.src[2:4]) == ["Satz 2", "Satz 3"]
    assert list(corpus.tgt) == [f"sentence {i}" for i in range(10)]


def test_hugging_face_dataset_with_flat_columns(tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"de": ["a", "b"], "en": ["c", "d"]}).save_to_disk(
        str(tmp_path / "flat")
    )
    corpus = read_hf_dataset(str(tmp_path / "flat"), "train", "de", "en")
    assert list(corpus.src) == ["a", "b"] and list(corpus.tgt or []) == ["c", "d"]
    with pytest.raises(DataError, match="no columns 'fr'"):
        read_hf_dataset(str(tmp_path / "flat"), "train", "fr", "en")
