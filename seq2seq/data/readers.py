"""Readers: parallel plain-text files and Hugging Face ``datasets`` into a ``Corpus``.

Errors name the file and line at fault (missing file, line counts that differ, invalid
UTF-8, an empty split); nothing is skipped silently. Text files are read whole (they
are small enough: Multi30k is 4 MB); a Hugging Face dataset stays memory-mapped Arrow
and is read in slices.
"""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO


class DataError(ValueError):
    """Bad or missing data; the message names the file (and line) at fault."""


@dataclass
class Corpus:
    """Parallel segments. ``tgt`` is None for source-only input (translation at test time)."""

    name: str
    src: Sequence[str]
    tgt: Sequence[str] | None

    def __len__(self) -> int:
        return len(self.src)


# corpora shipped inside the package (the offline demo's): a relative data.root that
# $SEQ2SEQ_DATA does not hold is looked up here
SHIPPED_CORPORA = Path(__file__).resolve().parent / "corpora"

# a data file may be stored compressed: FILE.xz, FILE.gz or FILE.bz2 stand for FILE
COMPRESSED: dict[str, Callable[..., Any]] = {
    ".xz": lzma.open,
    ".gz": gzip.open,
    ".bz2": bz2.open,
}


def data_root(root: str) -> Path:
    """``root`` under ``$SEQ2SEQ_DATA`` (default ``./data``), or as given when absolute;
    one that is not there but ships with the package (``SHIPPED_CORPORA``) is that."""
    path = Path(root).expanduser()
    if path.is_absolute():
        return path
    under = Path(os.environ.get("SEQ2SEQ_DATA", "data")) / path
    shipped = SHIPPED_CORPORA / path
    if not under.exists() and str(root) not in ("", ".") and shipped.is_dir():
        return shipped
    return under


def stored(path: Path) -> Path:
    """``path``, or its compressed form (``path.xz``, ``.gz``, ``.bz2``) where only that
    exists."""
    if path.exists():
        return path
    for suffix in COMPRESSED:
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return candidate
    return path


# A line longer than this is refused: one unterminated line must not fill the memory
MAX_LINE_BYTES = 1 << 20


def read_lines(path: str | Path) -> list[str]:
    """All lines of a UTF-8 file (or its compressed form, see ``stored``), newline
    stripped. Raises ``DataError`` naming file and line."""
    path = stored(Path(path))
    if not path.is_file():
        if path.is_dir():
            raise DataError(f"{path}: is a directory, not a file")
        raise DataError(f"{path}: file not found (is SEQ2SEQ_DATA set? it is {_data_env()})")
    return list(iter_lines(path, limit=None))


def iter_lines(path: str | Path | None, limit: int | None = MAX_LINE_BYTES) -> Iterator[str]:
    """The lines of a UTF-8 file (or of stdin when ``path`` is None), one at a time.

    The one line reader of every command: lines end at ``\n`` only (with an optional
    ``\r`` before it), so a line holding ``\r``, form feeds, NUL or U+2028 stays one line
    and gives one output. A BOM at the start is dropped. Invalid UTF-8 or a line longer
    than ``limit`` bytes (None: no limit, for data files) raises ``DataError`` naming
    the file and line.
    """
    for line in iter_lines_reporting(path, limit):
        if isinstance(line, DataError):
            raise line
        yield line


def iter_lines_reporting(
    path: str | Path | None, limit: int | None = MAX_LINE_BYTES
) -> Iterator[str | DataError]:
    """``iter_lines``, but a bad line comes as the ``DataError`` naming it and reading
    goes on with the next (the shell reports it and answers the next line)."""
    name = str(path) if path is not None else "<stdin>"
    if path is None:
        binary = getattr(sys.stdin, "buffer", None)
        if binary is None:  # a text stream put in place of stdin (tests, embedding)
            yield from _text_lines(sys.stdin, name, limit)
            return
        yield from _decoded_lines(binary, name, limit)
        return
    opener = COMPRESSED.get(Path(path).suffix, open)
    try:
        handle = opener(path, "rb")  # closed below, also when the caller stops early
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err.strerror or err}") from None
    with handle:
        yield from _decoded_lines(handle, name, limit)


def _decoded_lines(handle: BinaryIO, name: str, limit: int | None) -> Iterator[str | DataError]:
    for number in itertools.count(1):
        raw = _read_line(handle, name, limit)
        if not raw:
            return
        ended = raw.endswith(b"\n")
        raw = raw[:-1] if ended else raw
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        if limit is not None and len(raw) > limit:
            while not ended and (rest := _read_line(handle, name, limit)):  # skip the rest
                ended = rest.endswith(b"\n")
            yield DataError(f"{name}:{number}: line longer than {limit:,} bytes")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            yield DataError(
                f"{name}:{number}: invalid UTF-8 "
                f"(byte {raw[err.start]:#04x} at byte {err.start + 1})"
            )
            continue
        yield text[1:] if number == 1 and text.startswith("\ufeff") else text


def _read_line(handle: BinaryIO, name: str, limit: int | None) -> bytes:
    try:
        # room for "\r\n" after a line of ``limit`` bytes
        return handle.readline(-1 if limit is None else limit + 2)
    except OSError as err:  # e.g. a directory given as the file, a bad gzip header
        raise DataError(f"{name}: cannot read: {err.strerror or err}") from None
    except (EOFError, lzma.LZMAError) as err:  # a truncated or corrupt compressed file
        raise DataError(f"{name}: corrupt compressed data ({err})") from None


def _text_lines(handle: TextIO, name: str, limit: int | None) -> Iterator[str | DataError]:
    for number, line in enumerate(handle, start=1):
        line = line[:-1] if line.endswith("\n") else line
        line = line[:-1] if line.endswith("\r") else line
        if limit is not None and len(line) > limit:
            yield DataError(f"{name}:{number}: line longer than {limit:,} characters")
            continue
        yield line


def take_lines(lines: Iterator[str], count: int, name: str, kind: str, done: int = 0) -> list[str]:
    """The next ``count`` lines of ``lines`` (read from ``name``); fewer is a
    ``DataError`` (``kind`` says what they are; ``done`` lines were taken before)."""
    taken = list(itertools.islice(lines, count))
    if len(taken) < count:
        raise DataError(f"{name}: {done + len(taken)} {kind} lines for more input lines")
    return taken


def read_parallel_text(src_path: Path, tgt_path: Path | None, name: str) -> Corpus:
    """Two files with one segment per line; line i of one translates line i of the other."""
    src = read_lines(src_path)
    tgt = read_lines(tgt_path) if tgt_path is not None else None
    if tgt is not None and len(src) != len(tgt):
        raise DataError(
            f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: "
            "parallel files must align"
        )
    if not src:
        raise DataError(f"{src_path}: empty split '{name}'")
    for path, lines in ((src_path, src), (tgt_path, tgt)):
        if lines is not None and not any(line.strip() for line in lines):
            raise DataError(f"{path}: every line of split '{name}' is empty or whitespace")
    return Corpus(name=name, src=src, tgt=tgt)


class ArrowColumn(Sequence[str]):
    """A read-only view of one text column of a ``datasets.Dataset``; rows load on demand.

    ``key`` may be ``"translation.de"`` for the nested layout of translation datasets.
    """

    def __init__(self, dataset: object, key: str, chunk: int = 4096) -> None:
        self.dataset = dataset
        self.column, _, self.sub = key.partition(".")
        self.chunk = chunk

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def _pick(self, value: object) -> str:
        return str(value[self.sub] if self.sub else value)  # type: ignore[index]

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            rows = self.dataset[index][self.column]  # type: ignore[index]
            return [self._pick(v) for v in rows]
        return self._pick(self.dataset[int(index)][self.column])  # type: ignore[index]

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), self.chunk):
            yield from self[start : start + self.chunk]


HF_PAIRS = "translation"  # the column of {language: text} dicts in Hugging Face pair sets


def read_hf_dataset(location: str, split: str, src_lang: str, tgt_lang: str) -> Corpus:
    """A split of a Hugging Face dataset: a folder saved with ``save_to_disk``, a folder
    of data files, or (online) a hub name. Columns are ``src_lang``/``tgt_lang`` or a
    ``translation`` dict keyed by language."""
    import datasets  # imported here: it is slow to import and most runs read text files

    path = Path(location)
    try:
        if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
            loaded = datasets.load_from_disk(str(path))
            dataset = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        else:
            dataset = datasets.load_dataset(location, split=split)
    except (KeyError, ValueError, FileNotFoundError) as err:
        raise DataError(f"{location}: cannot load split '{split}': {err}") from None
    columns = set(dataset.column_names)
    if {src_lang, tgt_lang} <= columns:
        keys = (src_lang, tgt_lang)
    elif HF_PAIRS in columns:
        keys = (f"{HF_PAIRS}.{src_lang}", f"{HF_PAIRS}.{tgt_lang}")
    else:
        raise DataError(
            f"{location} [{split}]: no columns '{src_lang}'/'{tgt_lang}' nor 'translation'; "
            f"has {sorted(columns)}"
        )
    if len(dataset) == 0:
        raise DataError(f"{location}: empty split '{split}'")
    return Corpus(split, ArrowColumn(dataset, keys[0]), ArrowColumn(dataset, keys[1]))


def _data_env() -> str:
    value = os.environ.get("SEQ2SEQ_DATA")
    return repr(value) if value else "unset, so ./data is used"
