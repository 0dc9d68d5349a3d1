"""Sentencepiece tokenizers, trained on the training split at first use.

Special ids are fixed for every model this toolkit trains, so code can name them:

    PAD_ID = 0   padding; never predicted, ignored by the loss
    UNK_ID = 1   unknown piece
    BOS_ID = 2   starts every decoder input
    EOS_ID = 3   ends every target; search stops a hypothesis when it emits it
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import sentencepiece as spm

from seq2seq.config import single_line
from seq2seq.data.files import atomic_write_bytes
from seq2seq.data.readers import DataError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


class Tokenizer(Protocol):
    """What the rest of the toolkit needs of a tokenizer (sentencepiece or vocab.py's)."""

    path: Path

    def __len__(self) -> int: ...
    def encode(self, texts: Sequence[str]) -> list[list[int]]: ...
    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]: ...
    def pieces(self, ids: Sequence[int]) -> list[str]: ...
    def vocabulary(self) -> list[str]: ...


class SentencePieceTokenizer:
    """Text <-> ids through one sentencepiece model."""

    def __init__(self, model_path: str | Path) -> None:
        self.path = Path(model_path)
        self.sp = spm.SentencePieceProcessor(model_file=str(self.path))
        if (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id()) != (
            PAD_ID,
            UNK_ID,
            BOS_ID,
            EOS_ID,
        ):
            raise ValueError(f"{self.path}: special ids differ from pad=0 unk=1 bos=2 eos=3")

    def __len__(self) -> int:
        return int(self.sp.get_piece_size())

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids without BOS/EOS; those are added by batching."""
        return self.sp.encode(list(texts), out_type=int)

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Ids to text; special ids are dropped."""
        return [self.sp.decode([i for i in seq if i > EOS_ID]) for seq in ids]

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.sp.id_to_piece(int(i)) for i in ids]

    def vocabulary(self) -> list[str]:
        """Every piece, in id order: two tokenizers with equal vocabularies agree on ids."""
        return [self.sp.id_to_piece(i) for i in range(len(self))]


def train_tokenizer(
    texts: Iterable[str],
    out_path: Path,
    *,
    model_type: str,
    vocab_size: int,
    character_coverage: float,
    max_sentences: int,
    byte_fallback: bool,
    seed: int,
    keep_whitespace: bool = False,
) -> SentencePieceTokenizer:
    """Train a sentencepiece model on ``texts`` (sampled down to ``max_sentences``) and
    write it atomically to ``out_path``. ``vocab_size`` is an upper bound: a corpus with
    fewer distinct pieces (a toy task) gets a smaller vocabulary rather than an error.
    ``keep_whitespace``: no normalisation, no dummy prefix, runs of spaces kept, and
    newline and tab are pieces of their own, so text decodes back exactly."""
    sample = [t for t in texts if t.strip()]
    if len(sample) > max_sentences:
        sample = random.Random(seed).sample(sample, max_sentences)
    if not sample:
        raise DataError(f"{out_path}: no non-empty training text for the tokenizer")
    model = io.BytesIO()
    try:
        _train_sentencepiece(
            sample,
            model,
            model_type,
            vocab_size,
            character_coverage,
            byte_fallback,
            keep_whitespace,
        )
    except RuntimeError as err:  # sentencepiece's own refusals, e.g. too few characters
        reason = single_line(err, 200)
        raise DataError(f"{out_path}: sentencepiece cannot train on this text: {reason}") from None
    atomic_write_bytes(out_path, model.getvalue())
    return SentencePieceTokenizer(out_path)


def _train_sentencepiece(
    sample: list[str],
    model: io.BytesIO,
    model_type: str,
    vocab_size: int,
    character_coverage: float,
    byte_fallback: bool,
    keep_whitespace: bool,
) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sample),
        model_writer=model,
        model_type=model_type,
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=character_coverage,
        byte_fallback=byte_fallback,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        num_threads=2,
        minloglevel=2,
        max_sentence_length=1 << 16,
        normalization_rule_name="identity" if keep_whitespace else "nmt_nfkc",
        remove_extra_whitespaces=not keep_whitespace,
        add_dummy_prefix=not keep_whitespace,
        user_defined_symbols=["\n", "\t"] if keep_whitespace else [],
    )
