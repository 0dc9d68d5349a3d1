"""The generic data formats, registered with the plugin registry: ``text`` (line-parallel
files) and ``hf`` (a Hugging Face dataset); and what formats that read files share:
their options (``FileOptions``) and a stable held-out split by hash (``holdout_part``).
The task folders register their own formats the same way."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from seq2seq.config import ConfigError, Data, ranged, register_format
from seq2seq.data.readers import Corpus, data_root, read_hf_dataset, read_parallel_text


@dataclass(frozen=True)
class NoOptions:
    """A format with nothing to set beyond the generic ``data`` keys."""


@dataclass(frozen=True)
class FileOptions:
    """Options of a format that reads ``files`` (a name or glob under ``data.root``) and
    holds out a share of it as 'valid' (and again as 'test') where no split exists."""

    files: str = ""
    holdout: float = ranged(0.1, 0.0, 0.5, open_hi=True)


def check_shifts(key: str, shifts: tuple[int, int]) -> None:
    """A transposition range ``[down, up]`` must hold 0: down <= 0 <= up."""
    if not shifts[0] <= 0 <= shifts[1]:
        raise ConfigError(f"{key}: {list(shifts)} must be [down <= 0, up >= 0]")


def holdout_part(key: str, holdout: float) -> str:
    """train / valid / test for an item, from a hash of its key (stable across runs)."""
    bucket = int(hashlib.md5(key.encode("utf-8")).hexdigest(), 16) % 10_000 / 10_000
    if bucket < holdout:
        return "valid"
    if bucket < 2 * holdout:
        return "test"
    return "train"


def read_text(data: Data, part: str, split: str, seed: int) -> Corpus:
    """``<part>.<src_lang>`` / ``<part>.<tgt_lang>`` under the data root."""
    base = data_root(data.root)
    return read_parallel_text(
        base / f"{part}.{data.src_lang}", base / f"{part}.{data.tgt_lang}", split
    )


def read_hf(data: Data, part: str, split: str, seed: int) -> Corpus:
    """Split ``part`` of a Hugging Face dataset: a folder under the data root, else a
    hub name (``data.root`` as given)."""
    base = data_root(data.root)
    location = str(base) if base.exists() else data.root
    return read_hf_dataset(location, part, data.src_lang, data.tgt_lang)


register_format("text", NoOptions, read_text)
register_format("hf", NoOptions, read_hf)
