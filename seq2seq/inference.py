"""Translate with a trained run: ``Translator.from_checkpoint(dir).translate(lines)``."""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from seq2seq.checkpoint import CheckpointError, RunDir
from seq2seq.config import ConfigError, Recipe, Search, load_recipe, with_search
from seq2seq.data.batching import IdArray
from seq2seq.data.dataset import build_tokenizers
from seq2seq.data.lexicon import FILE_NAME as LEXICON_FILE
from seq2seq.data.lexicon import Lexicon, read_lexicon
from seq2seq.data.tokenizer import EOS_ID, Tokenizer
from seq2seq.engines import PRECISION_DTYPES, Engines
from seq2seq.model.encoder_decoder import EncoderDecoder, build_model
from seq2seq.model.ensemble import Ensemble
from seq2seq.runtime import pick_device
from seq2seq.search.batches import decode_ids, search_batch
from seq2seq.search.constraint import Constraint
from seq2seq.search.hypothesis import Hypothesis
from seq2seq.search.lexical import Requirements, word_continuations
from seq2seq.search.shortlist import Shortlist
from seq2seq.training.precision import use_tf32

if TYPE_CHECKING:
    from seq2seq.export.engine import OnnxModel

log = logging.getLogger(__name__)

__all__ = ["Translator", "decode_ids", "search_batch"]  # the batch driver lives in search/

EOS_PIECE = "</s>"


def _load_run(
    run_dir: str | Path, which: str
) -> tuple[EncoderDecoder, Recipe, Tokenizer, Tokenizer, str]:
    """The run's fp32 model, recipe, tokenizers, and the weights file ``which`` named."""
    run = RunDir(run_dir)
    if not run.recipe.is_file():
        raise CheckpointError(f"{run.path}: no recipe.yaml (is this a run directory?)")
    recipe = load_recipe(run.recipe)
    src_tok, tgt_tok = build_tokenizers(recipe, run.tokenizer_dir, train=None)
    model = build_model(recipe.model, len(src_tok), len(tgt_tok))
    name = run.load_weights(model, which)
    log.info("loaded %s", run.path / name)
    return model, recipe, src_tok, tgt_tok, name


# lines (and prefixes) are cut at this many times the longest the model was trained on
INPUT_CAP = 4


class Translator:
    """A trained model (or an ensemble of several) with its tokenizers and search settings.

    ``recipe.search`` holds the current search settings; ``configure`` changes them.
    """

    def __init__(
        self,
        model: EncoderDecoder | Ensemble,
        recipe: Recipe,
        src_tok: Tokenizer,
        tgt_tok: Tokenizer,
        device: torch.device,
        max_input_len: int | None = None,
        grammar: Callable[[Translator], Constraint] | None = None,
    ) -> None:
        """``grammar`` builds the output grammar ``search.constrained`` decodes with (the
        task's; see seq2seq.tasks.load_translator); None: the run has none."""
        # the fp32 model, plus a copy per other precision asked for, and ONNX exports
        self.engines = Engines(model, device)  # shared with with_search's copies
        use_tf32(device)
        self.recipe = recipe
        self.src_tok = src_tok
        self.tgt_tok = tgt_tok
        self.device = device
        self.max_input_len = max_input_len or recipe.data.max_len
        self.grammar = grammar
        self._constraint: Constraint | None = None
        self.run_dir: Path | None = None  # where shortlist.tsv is (from_checkpoint: the first run)
        self._lexicon: Lexicon | None = None
        self.weights = "model.safetensors"  # the run's weights file (names the ONNX export)

    @classmethod
    def from_checkpoint(
        cls,
        run_dirs: str | Path | Sequence[str | Path],
        which: str = "best",
        search: Mapping[str, Any] | None = None,
        device: str | torch.device | None = None,
        grammar: Callable[[Translator], Constraint] | None = None,
    ) -> Translator:
        """Load one run directory, or several as an ensemble (their source and target
        vocabularies must be identical; search settings come from the first run, then
        ``search`` changes fields of it, e.g. ``{"beam_size": 1}``)."""
        paths = [run_dirs] if isinstance(run_dirs, str | Path) else list(run_dirs)
        if not paths:
            raise ConfigError("no run directory given")
        dev = pick_device(device)
        loaded = [_load_run(path, which) for path in paths]
        model, recipe, src_tok, tgt_tok, weights = loaded[0]
        for path, (_, _, other_src, other_tgt, _) in zip(paths[1:], loaded[1:], strict=True):
            for side, mine, theirs in (
                ("target", tgt_tok, other_tgt),
                ("source", src_tok, other_src),
            ):
                if mine.vocabulary() != theirs.vocabulary():
                    raise ConfigError(
                        f"{path}: its {side} vocabulary differs from {paths[0]}'s; "
                        "an ensemble needs models that share their vocabularies"
                    )
        members = [entry[0] for entry in loaded]
        combined: EncoderDecoder | Ensemble = model if len(members) == 1 else Ensemble(members)
        max_input_len = min(entry[1].data.max_len for entry in loaded)
        translator = cls(combined, recipe, src_tok, tgt_tok, dev, max_input_len, grammar)
        translator.run_dir = Path(paths[0])
        translator.weights = weights
        translator.configure(**(search or {}))
        return translator

    @property
    def search(self) -> Search:
        return self.recipe.search

    @property
    def constraint(self) -> Constraint | None:
        """The task's output grammar when ``search.constrained`` is on (built once)."""
        if not self.search.constrained:
            return None
        if self._constraint is None:
            if self.grammar is None:
                raise ConfigError(
                    "search.constrained: this translator was given no output grammar "
                    "(load it with seq2seq.tasks.load_translator)"
                )
            self._constraint = self.grammar(self)
        return self._constraint

    @property
    def shortlist(self) -> Shortlist | None:
        """The vocabulary shortlist ``search.shortlist`` asks for (its table read once
        from the run's shortlist.tsv), or None for the whole vocabulary."""
        if not self.search.shortlist:
            return None
        if self._lexicon is None:
            path = None if self.run_dir is None else self.run_dir / LEXICON_FILE
            if path is None or not path.is_file():
                run = self.run_dir or "RUN"
                raise ConfigError(
                    f"search.shortlist: no lexical table {path or LEXICON_FILE}; "
                    f"build it with: seq2seq shortlist {run}"
                )
            pieces = self.src_tok.vocabulary(), self.tgt_tok.vocabulary()
            self._lexicon = read_lexicon(path, *pieces)
        return Shortlist(
            self._lexicon,
            len(self.tgt_tok),
            self.search.shortlist,
            self.search.shortlist_frequent,
            copy_source=self.recipe.tokenizer.joint,  # a source id is then a target id
        )

    @property
    def precision(self) -> str:
        """What ``search.precision`` means here: fp32, bf16 or int8 (the ONNX engine: fp32
        or int8; see engines.py)."""
        return self.engines.precision(self.search, self.engine)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's float weights and activations (int8 runs in fp32)."""
        return PRECISION_DTYPES.get(self.precision, torch.float32)

    @property
    def engine(self) -> str:
        """What ``search.engine`` means here: torch or onnx (auto: onnx where it runs,
        see engines.py)."""
        return self.engines.engine(self.search, self.run_dir)

    @property
    def model(self) -> EncoderDecoder | Ensemble | OnnxModel:
        """The model search runs: in ``precision`` (cast or quantized once from the fp32
        weights, then kept), or its ONNX export."""
        return self.engines.model(self.search, self.recipe, self.run_dir, self.weights)

    def onnx_model(self) -> OnnxModel:
        """The run's ONNX export under ONNX Runtime (engines.py), whatever the engine."""
        return self.engines.onnx_model(self.search, self.recipe, self.run_dir, self.weights)

    def model_in(self, precision: str) -> EncoderDecoder | Ensemble:
        """The PyTorch model with fp32, bf16 or int8 weights."""
        return self.engines.model_in(precision)

    def with_search(self, **changes: Any) -> Translator:
        """A translator sharing this one's model with ``search`` fields changed, each
        checked as in a recipe (``with_search(beam_size=5, nbest=2)``); this one is left
        as it is."""
        other = copy.copy(self)
        other.recipe = with_search(self.recipe, **changes)
        other._constraint = None
        return other

    def configure(self, **changes: Any) -> None:
        """Change ``search`` fields of this translator (checked; nothing changes on error)."""
        self.recipe = with_search(self.recipe, **changes)
        if "constrained" in changes:
            self._constraint = None

    @contextmanager
    def using(self, **changes: Any) -> Iterator[Translator]:
        """Search with ``changes`` inside the block, then restore the settings."""
        saved = self.recipe
        self.configure(**changes)
        try:
            yield self
        finally:
            self.recipe = saved

    def translate(self, lines: Sequence[str]) -> list[str]:
        """One detokenized output per input line; an empty line gives an empty output."""
        return [self.detokenize(hyps[0]) if hyps else "" for hyps in self.hypotheses(lines)]

    def translate_nbest(self, lines: Sequence[str]) -> list[list[tuple[str, Hypothesis]]]:
        """Per line, distinct detokenized outputs with their hypotheses, best first
        (two token sequences can detokenize to one text; the better one is kept)."""
        return [self.distinct(hyps) for hyps in self.hypotheses(lines)]

    def distinct(self, hyps: Sequence[Hypothesis]) -> list[tuple[str, Hypothesis]]:
        """(text, hypothesis) for each distinct detokenized text, first (best) kept."""
        seen: dict[str, Hypothesis] = {}
        for hyp in hyps:
            seen.setdefault(self.detokenize(hyp), hyp)
        return list(seen.items())

    def encode_source(self, lines: Sequence[str], truncate: bool = False) -> list[list[int]]:
        """Source ids per line. A line longer than the model's ``data.max_len`` gets a
        warning and, with ``truncate``, is cut to that many tokens; without, it is cut at
        ``INPUT_CAP`` times that, so that no line can make a search without end."""
        ids = self.src_tok.encode(list(lines))
        limit = self.max_input_len if truncate else self.max_input_len * INPUT_CAP
        for i, seq in enumerate(ids):
            if len(seq) > self.max_input_len:
                action = (
                    f"truncated to {limit}"
                    if len(seq) > limit
                    else f"more than the {self.max_input_len} seen in training"
                )
                log.warning("line %d has %d tokens: %s", i + 1, len(seq), action)
                ids[i] = seq[:limit]
        return ids

    def hypotheses(
        self,
        lines: Sequence[str],
        return_attention: bool = False,
        prefixes: Sequence[str] | None = None,
        truncate: bool = False,
        required: Sequence[Sequence[str]] | None = None,
    ) -> list[list[Hypothesis]]:
        """Search results per line (empty list for an empty line). ``prefixes``: per line,
        target text every output must start with ("" for none); ``required``: per line,
        target phrases every output must contain (beam search with dynamic beam
        allocation, see search/lexical.py)."""
        for name, given in (("prefixes", prefixes), ("required phrase lists", required)):
            if given is not None and len(given) != len(lines):
                raise ConfigError(f"{len(given)} {name} for {len(lines)} lines")
        keep = [i for i, line in enumerate(lines) if line.strip()]
        ids = self.encode_source([lines[i] for i in keep], truncate)
        prefix_ids = None
        if prefixes is not None:
            names = [f"prefix of line {i + 1}" for i in keep]
            prefix_ids = IdArray.from_lists(self._target_ids([prefixes[i] for i in keep], names))
        requirements = None
        if required is not None:
            phrases = [self._phrase_ids(required[i], i) for i in keep]
            vocab = len(self.tgt_tok)
            requirements = Requirements(phrases, vocab, EOS_ID, self.word_continuations)
        decoded = decode_ids(
            self.model,
            IdArray.from_lists(ids),
            self.search,
            self.device,
            return_attention,
            prefix_ids,
            self.constraint,
            requirements,
            self.shortlist,
        )
        out: list[list[Hypothesis]] = [[] for _ in lines]
        for i, hyps in zip(keep, decoded, strict=True):
            out[i] = hyps
        return out

    def _target_ids(self, texts: Sequence[str], names: Sequence[str]) -> list[list[int]]:
        """Target ids of prefixes or phrases; one over ``INPUT_CAP`` x data.max_len tokens
        is an error naming it (``names``, one per text)."""
        encoded = self.tgt_tok.encode(list(texts))
        cap = self.max_input_len * INPUT_CAP
        for name, ids in zip(names, encoded, strict=True):
            if len(ids) > cap:
                raise ConfigError(
                    f"{name}: {len(ids)} tokens, more than {cap} ({INPUT_CAP} x data.max_len)"
                )
        return encoded

    def _phrase_ids(self, phrases: Sequence[str], line: int) -> list[list[int]]:
        """The ids of line ``line``'s (0-based) required phrases, each checked."""
        names = [f"required phrase {j + 1} of line {line + 1}" for j in range(len(phrases))]
        for name, phrase in zip(names, phrases, strict=True):
            if not phrase.strip():
                raise ConfigError(f"{name} is empty")
        return self._target_ids(phrases, names)

    @functools.cached_property
    def word_continuations(self) -> torch.Tensor | None:
        """(V,) bool: the target pieces that continue a word (search/lexical.py)."""
        return word_continuations(self.tgt_tok.vocabulary())

    def detokenize(self, hyp: Hypothesis) -> str:
        return self.tgt_tok.decode([hyp.tokens])[0]

    def source_pieces(self, line: str, truncate: bool = False) -> list[str]:
        """The pieces the model reads for ``line``, EOS included (attention columns)."""
        ids = self.src_tok.encode([line])[0]
        if truncate:
            ids = ids[: self.max_input_len]
        return [*self.src_tok.pieces(ids), EOS_PIECE]

    def output_pieces(self, hyp: Hypothesis) -> list[str]:
        """The pieces of an output, EOS included (attention rows, per-token scores)."""
        return [*self.tgt_tok.pieces(hyp.tokens), EOS_PIECE]
