"""Builders from the recipe's ``data`` and ``tokenizer`` sections to tokenized examples."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from seq2seq.checkpoint import CheckpointError
from seq2seq.config import Recipe, get_format, resolve_project_path
from seq2seq.config import Tokenizer as TokenizerConfig
from seq2seq.data import formats  # noqa: F401  (registers text and hf)
from seq2seq.data.batching import IdArray
from seq2seq.data.files import atomic_write_bytes
from seq2seq.data.readers import Corpus, DataError
from seq2seq.data.tokenizer import SentencePieceTokenizer, Tokenizer, train_tokenizer
from seq2seq.data.vocab import KINDS as VOCAB_KINDS
from seq2seq.data.vocab import VocabTokenizer, learn_pieces, read_symbol_file, write_vocabulary
from seq2seq.runtime import progress

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
    """The split the recipe names ``split`` (a key of ``data.splits``, or a file stem /
    part name), read by the reader ``data.format`` names."""
    data = recipe.data
    part = data.splits.get(split, split)
    corpus: Corpus = get_format(data.format).read(data, part, split, recipe.seed)
    return corpus


def build_tokenizers(
    recipe: Recipe, tokenizer_dir: Path, train: Corpus | None
) -> tuple[Tokenizer, Tokenizer]:
    """Load the run's tokenizers, training them on ``train`` first if they do not exist."""
    cfg = recipe.tokenizer
    names = ["joint"] if cfg.joint else ["src", "tgt"]
    exact = cfg.model_type in VOCAB_KINDS
    suffix = ".vocab.json" if exact else ".model"
    paths = [tokenizer_dir / f"{name}{suffix}" for name in names]
    if cfg.model_file and not all(p.is_file() for p in paths):
        given = [cfg.model_file] if cfg.joint else [cfg.model_file, cfg.tgt_model_file]
        for key, name, path in zip(("model_file", "tgt_model_file"), given, paths, strict=False):
            _copy_model(f"tokenizer.{key}", str(name), path)
    if not all(p.is_file() for p in paths):
        if train is None:
            raise DataError(f"{tokenizer_dir}: tokenizer model missing")
        if train.tgt is None:
            raise DataError(f"training split '{train.name}' has no target side")
        sides = {"joint": chain(train.src, train.tgt), "src": train.src, "tgt": train.tgt}
        for name, path in zip(names, paths, strict=True):
            log.info(
                "building %s tokenizer (%s, at most %d pieces) -> %s",
                name,
                cfg.model_type,
                cfg.vocab_size,
                path,
            )
            if exact:
                write_vocabulary(path, cfg.model_type, _exact_pieces(recipe, sides[name]))
                continue
            train_tokenizer(
                sides[name],
                path,
                model_type=cfg.model_type,
                vocab_size=cfg.vocab_size,
                character_coverage=cfg.character_coverage,
                max_sentences=cfg.max_sentences,
                byte_fallback=cfg.byte_fallback,
                seed=recipe.seed,
                keep_whitespace=cfg.keep_whitespace,
            )
    loaded = [_load_tokenizer(p, exact) for p in paths]
    return (loaded[0], loaded[0]) if cfg.joint else (loaded[0], loaded[1])


def _copy_model(key: str, name: str, path: Path) -> None:
    """An existing sentencepiece model, checked and copied into the run directory."""
    source = Path(name).expanduser()
    found = source if source.is_absolute() else resolve_project_path(name)
    if found is None or not found.is_file():
        raise DataError(f"{key}: file not found: {name}")
    try:
        tokenizer = SentencePieceTokenizer(found)
    except (ValueError, OSError, RuntimeError) as err:
        raise DataError(
            f"{key}: {found} is not a sentencepiece model ({_first_line(err)})"
        ) from None
    log.info("%s: %s (%d pieces) -> %s", key, found, len(tokenizer), path)
    atomic_write_bytes(path, found.read_bytes())


def _load_tokenizer(path: Path, exact: bool) -> Tokenizer:
    try:
        return VocabTokenizer(path) if exact else SentencePieceTokenizer(path)
    except (ValueError, OSError, RuntimeError) as err:
        raise CheckpointError(f"{path}: unreadable tokenizer ({_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _exact_pieces(recipe: Recipe, texts: Iterable[str]) -> list[str]:
    """The pieces of an exact vocabulary: the hand-written file's, or the training text's."""
    cfg = recipe.tokenizer
    hand_written = hand_written_pieces(cfg)
    if hand_written is not None:
        return hand_written
    return learn_pieces(texts, cfg.model_type, cfg.vocab_size)


def hand_written_pieces(cfg: TokenizerConfig) -> list[str] | None:
    """The symbols of ``tokenizer.vocab_file`` (model_type symbols), or None without one."""
    if cfg.model_type != "symbols" or not cfg.vocab_file:
        return None
    path = resolve_project_path(cfg.vocab_file)
    if path is None:
        raise DataError(f"tokenizer.vocab_file: file not found: {cfg.vocab_file}")
    return read_symbol_file(path)


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
    starts = range(0, len(corpus), chunk)
    for start in progress(starts, len(starts), f"encoding {corpus.name}", "chunk"):
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


def resampled(
    examples: Examples, tokenizers: tuple[Tokenizer, Tokenizer], recipe: Recipe, epoch: int
) -> Examples:
    """The training examples of one epoch under subword regularization
    (``tokenizer.sampling``): every pair encoded again with sampling, seeded by the
    recipe's seed and the epoch, so a resumed epoch draws what it drew before; a side
    whose draw is longer than ``data.max_len`` keeps its plain ids. Without sampling,
    ``examples`` themselves."""
    sampling, seed, max_len = recipe.tokenizer.sampling, recipe.seed, recipe.data.max_len
    if not sampling.alpha or examples.tgt is None:
        return examples
    sides = []
    texts_of = (examples.corpus.src, examples.corpus.tgt)
    plain_of = (examples.src, examples.tgt)
    for side, (texts, plain, tok) in enumerate(zip(texts_of, plain_of, tokenizers, strict=True)):
        assert plain is not None
        if not isinstance(tok, SentencePieceTokenizer):
            raise DataError("tokenizer.sampling: needs a sentencepiece tokenizer")
        draws = tok.encode_sampled(
            list(texts or []), sampling.alpha, sampling.nbest, seed * 1_000_003 + epoch * 2 + side
        )
        sides.append(
            IdArray.from_lists(
                [d if 0 < len(d) <= max_len else plain[i] for i, d in enumerate(draws)]
            )
        )
    return Examples(examples.corpus, sides[0], sides[1], examples.dropped)
