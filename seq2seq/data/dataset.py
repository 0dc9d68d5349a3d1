"""Builders from the recipe's ``data`` and ``tokenizer`` sections to tokenized examples."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from seq2seq.config import Recipe
from seq2seq.data.batching import IdArray
from seq2seq.data.readers import Corpus, DataError, read_split
from seq2seq.data.tokenizer import Tokenizer, train_tokenizer

log = logging.getLogger(__name__)


@dataclass
class Examples:
    """A tokenized split: ids without specials, plus the raw corpus for references."""

    corpus: Corpus
    src: IdArray
    tgt: IdArray | None
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.src)


def load_corpus(recipe: Recipe, split: str) -> Corpus:
    """The split the recipe names ``split`` (a key of ``data.splits``, or a file stem)."""
    data = recipe.data
    stem = data.splits.get(split, split)
    return read_split(data.format, data.root, stem, data.src_lang, data.tgt_lang, split)


def build_tokenizers(
    recipe: Recipe, tokenizer_dir: Path, train: Corpus | None
) -> tuple[Tokenizer, Tokenizer]:
    """Load the run's tokenizers, training them on ``train`` first if they do not exist."""
    cfg = recipe.tokenizer
    names = ["joint"] if cfg.joint else ["src", "tgt"]
    paths = [tokenizer_dir / f"{name}.model" for name in names]
    if not all(p.is_file() for p in paths):
        if train is None:
            raise DataError(f"{tokenizer_dir}: tokenizer model missing")
        if train.tgt is None:
            raise DataError(f"training split '{train.name}' has no target side")
        sides = {"joint": chain(train.src, train.tgt), "src": train.src, "tgt": train.tgt}
        for name, path in zip(names, paths, strict=True):
            log.info(
                "training %s sentencepiece model (%s, %d pieces) -> %s",
                name,
                cfg.model_type,
                cfg.vocab_size,
                path,
            )
            train_tokenizer(
                sides[name],
                path,
                model_type=cfg.model_type,
                vocab_size=cfg.vocab_size,
                character_coverage=cfg.character_coverage,
                max_sentences=cfg.max_sentences,
                byte_fallback=cfg.byte_fallback,
                seed=recipe.seed,
            )
    loaded = [Tokenizer(p) for p in paths]
    return (loaded[0], loaded[0]) if cfg.joint else (loaded[0], loaded[1])


def encode_examples(
    corpus: Corpus,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    max_len: int | None = None,
    chunk: int = 20_000,
) -> Examples:
    """Tokenize a corpus in chunks; with ``max_len`` drop (and count) pairs longer than it
    on either side, and pairs whose source or target is empty."""
    src_parts, tgt_parts = [], []
    for start in range(0, len(corpus), chunk):
        src_parts.append(IdArray.from_lists(src_tok.encode(corpus.src[start : start + chunk])))
        if corpus.tgt is not None:
            tgt_parts.append(IdArray.from_lists(tgt_tok.encode(corpus.tgt[start : start + chunk])))
    src = IdArray.concat(src_parts)
    tgt = IdArray.concat(tgt_parts) if corpus.tgt is not None else None
    if max_len is None or tgt is None:
        return Examples(corpus, src, tgt)
    keep = (
        (src.lengths <= max_len) & (tgt.lengths <= max_len) & (src.lengths > 0) & (tgt.lengths > 0)
    )
    dropped = int((~keep).sum())
    if dropped:
        log.info(
            "%s: dropped %d of %d pairs (empty or longer than %d tokens)",
            corpus.name,
            dropped,
            len(src),
            max_len,
        )
        if dropped == len(src):
            raise DataError(
                f"split '{corpus.name}': every pair is empty or longer than data.max_len={max_len}"
            )
        indices = np.flatnonzero(keep).tolist()
        src_text, tgt_text = corpus.src, corpus.tgt
        assert tgt_text is not None  # a target side exists: tgt was tokenized from it
        corpus = Corpus(corpus.name, [src_text[i] for i in indices], [tgt_text[i] for i in indices])
        src, tgt = src.select(keep), tgt.select(keep)
    return Examples(corpus, src, tgt, dropped)
