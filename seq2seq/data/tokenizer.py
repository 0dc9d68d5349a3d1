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
    """Text <-> ids through one sentencepiece model.

    Our models use pad=0 unk=1 bos=2 eos=3. A model trained elsewhere (``tokenizer.
    model_file``) usually has others (sentencepiece's defaults: unk=0 bos=1 eos=2, no
    pad): its ids are then mapped, ours = the four specials (those it lacks added as
    pieces of our own), then its other pieces in its order. The model file is unchanged.
    """

    def __init__(self, model_path: str | Path) -> None:
        self.path = Path(model_path)
        self.sp = spm.SentencePieceProcessor(model_file=str(self.path))
        theirs = [self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id()]
        self._to_theirs: list[int] | None = None  # our id -> theirs (-1: a special they lack)
        self._to_ours: list[int] = []
        if theirs != [PAD_ID, UNK_ID, BOS_ID, EOS_ID]:
            specials = set(theirs)
            others = [i for i in range(self.sp.get_piece_size()) if i not in specials]
            self._to_theirs = theirs + others
            self._to_ours = [0] * self.sp.get_piece_size()
            for ours, their in enumerate(self._to_theirs):
                if their >= 0:
                    self._to_ours[their] = ours

    def __len__(self) -> int:
        if self._to_theirs is not None:
            return len(self._to_theirs)
        return int(self.sp.get_piece_size())

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids without BOS/EOS; those are added by batching."""
        ids = self.sp.encode(list(texts), out_type=int)
        if self._to_theirs is None:
            return ids
        to_ours = self._to_ours
        return [[to_ours[i] for i in seq] for seq in ids]

    def encode_sampled(
        self, texts: Sequence[str], alpha: float, nbest: int, seed: int
    ) -> list[list[int]]:
        """Ids of one sampled segmentation per text (subword regularization), the same for
        the same ``seed``: one thread, so the draws do not depend on scheduling."""
        spm.set_random_generator_seed(seed)
        ids = self.sp.encode(
            list(texts),
            out_type=int,
            enable_sampling=True,
            alpha=alpha,
            nbest_size=nbest,
            num_threads=1,
        )
        if self._to_theirs is None:
            return ids
        return [[self._to_ours[i] for i in seq] for seq in ids]

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Ids to text; special ids are dropped."""
        kept = [[int(i) for i in seq if i > EOS_ID] for seq in ids]
        if self._to_theirs is not None:
            kept = [[self._to_theirs[i] for i in seq] for seq in kept]
        return [self.sp.decode(seq) for seq in kept]

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self._piece(int(i)) for i in ids]

    def vocabulary(self) -> list[str]:
        """Every piece, in id order: two tokenizers with equal vocabularies agree on ids."""
        return [self._piece(i) for i in range(len(self))]

    def _piece(self, ours: int) -> str:
        if self._to_theirs is None:
            return str(self.sp.id_to_piece(ours))
        their = self._to_theirs[ours]
        return str(self.sp.id_to_piece(their)) if their >= 0 else SPECIAL_PIECES[ours]


SPECIAL_PIECES = ("<pad>", "<unk>", "<s>", "</s>")


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
