"""Exact tokenizers with an explicit vocabulary: one id per character, or per symbol.

``characters``: every character of the training text is a piece; nothing is normalised, so
newlines, runs of spaces and case survive a round trip (text generation needs them, and
"nats per character" is then simply nats per token). ``symbols``: the text is a
whitespace-separated sequence of symbols (music events, ABC tokens); the vocabulary is a
hand-written list (``tokenizer.vocab_file``, e.g. tokenizers/music_events.yaml) or the
most frequent symbols of the training split.

Either way the vocabulary is saved in the run as ``<name>.vocab.json``:
``{"kind": "characters" | "symbols", "pieces": [...]}`` with the four specials first, so
ids match sentencepiece models' (PAD 0, UNK 1, BOS 2, EOS 3).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from seq2seq.config import single_line
from seq2seq.data.files import atomic_write_text
from seq2seq.data.readers import DataError

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
UNK = 1
KINDS = ("characters", "symbols")
MAX_SYMBOLS = 1_000_000  # as tokenizer.vocab_size: a hand-written list is never longer


class VocabTokenizer:
    """Text <-> ids through a fixed list of pieces (same interface as ``Tokenizer``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            kind, pieces = data["kind"], list(data["pieces"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{self.path}: not a vocabulary file ({err})") from None
        if kind not in KINDS or pieces[: len(SPECIALS)] != SPECIALS:
            raise ValueError(f"{self.path}: bad vocabulary (kind {kind!r} or specials)")
        self.kind: str = kind
        self._pieces: list[str] = pieces
        self._ids = {piece: i for i, piece in enumerate(pieces)}

    def __len__(self) -> int:
        return len(self._pieces)

    def split(self, text: str) -> list[str]:
        return list(text) if self.kind == "characters" else text.split()

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids without BOS/EOS; an unknown piece is UNK."""
        ids = self._ids
        return [[ids.get(piece, UNK) for piece in self.split(text)] for text in texts]

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Ids to text; special ids are dropped (UNK too: it has no text)."""
        glue = "" if self.kind == "characters" else " "
        n = len(SPECIALS)
        return [glue.join(self._pieces[i] for i in seq if i >= n) for seq in ids]

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self._pieces[int(i)] for i in ids]

    def vocabulary(self) -> list[str]:
        return list(self._pieces)


def write_vocabulary(path: Path, kind: str, pieces: Iterable[str]) -> VocabTokenizer:
    """Save ``pieces`` (specials are prepended, duplicates dropped) atomically; load them."""
    unique = list(dict.fromkeys(p for p in pieces if p not in SPECIALS))
    atomic_write_text(
        path, json.dumps({"kind": kind, "pieces": SPECIALS + unique}, ensure_ascii=False)
    )
    return VocabTokenizer(path)


def learn_pieces(texts: Iterable[str], kind: str, max_size: int) -> list[str]:
    """The pieces of ``texts``, most frequent first (ties: first seen), at most ``max_size``
    including the specials."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(text if kind == "characters" else text.split())
    return [p for p, _ in counts.most_common(max(max_size - len(SPECIALS), 1))]


def read_symbol_file(path: Path) -> list[str]:
    """The symbols a hand-written vocabulary YAML defines, in file order.

    The file holds ``groups``: a list of mappings, each with ``symbols`` (a list) or a
    ``range`` (``{prefix: p, from: 21, to: 108}`` -> p21 ... p108), plus free ``doc`` text.
    """
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as err:
        reason = single_line(err, 200)
        raise DataError(f"{path}: cannot read the vocabulary ({reason})") from None
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise DataError(f"{path}: a vocabulary file needs a 'groups' list")
    out: list[str] = []
    for i, group in enumerate(data["groups"]):
        if not isinstance(group, dict):
            raise DataError(f"{path}: groups[{i}] is not a mapping")
        if "symbols" in group:
            if not isinstance(group["symbols"], list):
                raise DataError(f"{path}: groups[{i}].symbols must be a list")
            out.extend(str(s) for s in group["symbols"])
        elif "range" in group:
            r = group["range"]
            try:
                first, last, prefix = int(r["from"]), int(r["to"]), str(r["prefix"])
            except (KeyError, TypeError, ValueError):
                raise DataError(f"{path}: groups[{i}].range needs prefix, from and to") from None
            if not 0 <= last - first < MAX_SYMBOLS:
                raise DataError(f"{path}: groups[{i}].range: from {first} to {last} is not a range")
            out.extend(f"{prefix}{n}" for n in range(first, last + 1))
        else:
            raise DataError(f"{path}: groups[{i}] has neither 'symbols' nor 'range'")
        if len(out) > MAX_SYMBOLS:
            raise DataError(f"{path}: more than {MAX_SYMBOLS:,} symbols")
    if any(not s or any(c.isspace() for c in s) for s in out):
        raise DataError(f"{path}: a symbol is empty or contains whitespace")
    return out
