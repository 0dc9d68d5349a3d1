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


@pytest.mark.parametrize("suffix,opener", [(".xz", "lzma"), (".gz", "gzip"), (".bz2", "bz2")])
def test_a_compressed_file_stands_for_the_plain_one(tmp_path: Path, suffix: str, opener: str):
    import importlib

    module = importlib.import_module(opener)
    for lang, text in (("de", "eins\nzwei\n"), ("en", "one\ntwo\n")):
        with module.open(tmp_path / f"dev.{lang}{suffix}", "wb") as handle:
            handle.write(text.encode("utf-8"))
    corpus = read_parallel_text(tmp_path / "dev.de", tmp_path / "dev.en", "dev")
    assert list(corpus.src) == ["eins", "zwei"] and list(corpus.tgt or []) == ["one", "two"]


def test_a_corrupt_compressed_file_is_one_line_naming_it(tmp_path: Path):
    import lzma

    data = lzma.compress(b"eins\nzwei\n" * 1000)
    (tmp_path / "dev.de.xz").write_bytes(data[: len(data) // 2])  # cut short
    with pytest.raises(DataError, match=r"dev\.de\.xz: corrupt compressed data"):
        read_lines(tmp_path / "dev.de")


def test_a_shipped_corpus_is_found_without_seq2seq_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """data.root names the shipped demo corpus; $SEQ2SEQ_DATA (here empty) does not hold
    it, so the package's copy is read; a folder of that name there would win."""
    from seq2seq.data.readers import SHIPPED_CORPORA, data_root

    monkeypatch.setenv("SEQ2SEQ_DATA", str(tmp_path))
    assert data_root("tatoeba_de_en_demo") == SHIPPED_CORPORA / "tatoeba_de_en_demo"
    data = Data(root="tatoeba_de_en_demo", format="text", src_lang="de", tgt_lang="en")
    test = read_text(data, "test", "test", 1)
    assert len(test) == 1000 and all(line.strip() for line in test.src)
    (tmp_path / "tatoeba_de_en_demo").mkdir()
    assert data_root("tatoeba_de_en_demo") == tmp_path / "tatoeba_de_en_demo"


def test_the_shipped_corpus_stays_small_and_attributed():
    from seq2seq.data.readers import SHIPPED_CORPORA

    folder = SHIPPED_CORPORA / "tatoeba_de_en_demo"
    assert sum(p.stat().st_size for p in folder.iterdir()) < 2_000_000
    notice = (folder / "NOTICE").read_text()
    assert "CC BY 2.0" in notice and "tatoeba.org" in notice and "manythings.org/anki" in notice
    train = read_lines(folder / "train.de")
    valid, test = read_lines(folder / "valid.en"), read_lines(folder / "test.en")
    assert len(train) == 80_000
    assert not set(valid) & set(test)  # held-out parts share no English sentence
    assert not set(read_lines(folder / "train.en")) & (set(valid) | set(test))
