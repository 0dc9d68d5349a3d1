"""Translate with a trained run: ``Translator.from_checkpoint(dir).translate(lines)``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from seq2seq.checkpoint import CheckpointError, RunDir
from seq2seq.config import ConfigError, Recipe, Search, load_recipe, replace_section
from seq2seq.data.batching import IdArray, make_batch, sentence_batches
from seq2seq.data.dataset import build_tokenizers
from seq2seq.data.tokenizer import BOS_ID, EOS_ID, Tokenizer
from seq2seq.model.encoder_decoder import EncoderDecoder, build_model
from seq2seq.search import Hypothesis, beam_search, greedy_search, max_lengths

log = logging.getLogger(__name__)


def search_batch(
    model: EncoderDecoder,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    cfg: Search,
    return_attention: bool = False,
) -> list[list[Hypothesis]]:
    """Run the search ``cfg`` asks for on one padded batch (B, S)."""
    limits = max_lengths(src_lengths, cfg.max_len_a, cfg.max_len_b)
    if cfg.beam_size == 1:
        return greedy_search(model, src, src_lengths, limits, BOS_ID, EOS_ID, return_attention)
    return beam_search(
        model,
        src,
        src_lengths,
        limits,
        BOS_ID,
        EOS_ID,
        beam_size=cfg.beam_size,
        length_penalty=cfg.length_penalty,
        nbest=cfg.nbest,
        return_attention=return_attention,
    )


def decode_ids(
    model: EncoderDecoder,
    src: IdArray,
    cfg: Search,
    device: torch.device,
    return_attention: bool = False,
) -> list[list[Hypothesis]]:
    """Search every sequence of ``src`` in length-sorted batches; results in input order."""
    was_training = model.training
    model.eval()
    results: list[list[Hypothesis]] = [[] for _ in range(len(src))]
    try:
        for indices in sentence_batches(src.lengths, cfg.batch_size):
            batch = make_batch(src, None, indices)
            hyps = search_batch(
                model, batch.src.to(device), batch.src_lengths, cfg, return_attention
            )
            for index, sentence_hyps in zip(indices.tolist(), hyps, strict=True):
                results[index] = sentence_hyps
    finally:
        model.train(was_training)
    return results


class Translator:
    """A trained model with its tokenizers and search settings."""

    def __init__(
        self,
        model: EncoderDecoder,
        recipe: Recipe,
        src_tok: Tokenizer,
        tgt_tok: Tokenizer,
        device: torch.device,
    ) -> None:
        self.model = model.to(device).eval()
        self.recipe = recipe
        self.src_tok = src_tok
        self.tgt_tok = tgt_tok
        self.device = device

    @classmethod
    def from_checkpoint(
        cls,
        run_dir: str | Path,
        which: str = "best",
        overrides: Sequence[str] = (),
        device: str | torch.device | None = None,
    ) -> Translator:
        """Load a run directory; ``overrides`` are ``search.*`` keys (prefix optional)."""
        run = RunDir(run_dir)
        if not run.recipe.is_file():
            raise CheckpointError(f"{run.path}: no recipe.yaml (is this a run directory?)")
        recipe = load_recipe(run.recipe)
        if overrides:
            bad = [o for o in overrides if "." in o.split("=")[0] and not o.startswith("search.")]
            if bad:
                raise ConfigError(f"override {bad[0]!r}: only search.* keys apply at decode time")
            recipe = replace_section(recipe, "search", list(overrides))
        src_tok, tgt_tok = build_tokenizers(recipe, run.tokenizer_dir, train=None)
        model = build_model(recipe.model, len(src_tok), len(tgt_tok))
        name = run.load_weights(model, which)
        log.info("loaded %s", run.path / name)
        dev = (
            torch.device(device)
            if device
            else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        return cls(model, recipe, src_tok, tgt_tok, dev)

    def translate(self, lines: Sequence[str]) -> list[str]:
        """One detokenized output per input line; an empty line gives an empty output."""
        return [hyps[0] if hyps else "" for hyps in self.translate_nbest(lines)]

    def translate_nbest(self, lines: Sequence[str]) -> list[list[str]]:
        return [[self.detokenize(h) for h in hyps] for hyps in self.hypotheses(lines)]

    def hypotheses(
        self, lines: Sequence[str], return_attention: bool = False
    ) -> list[list[Hypothesis]]:
        """Search results per line (empty list for an empty line)."""
        keep = [i for i, line in enumerate(lines) if line.strip()]
        ids = self.src_tok.encode([lines[i] for i in keep])
        limit = self.recipe.data.max_len
        for i, seq in zip(keep, ids, strict=True):
            if len(seq) > limit:
                log.warning(
                    "line %d has %d tokens, more than the %d seen in training",
                    i + 1,
                    len(seq),
                    limit,
                )
        decoded = decode_ids(
            self.model, IdArray.from_lists(ids), self.recipe.search, self.device, return_attention
        )
        out: list[list[Hypothesis]] = [[] for _ in lines]
        for i, hyps in zip(keep, decoded, strict=True):
            out[i] = hyps
        return out

    def detokenize(self, hyp: Hypothesis) -> str:
        return self.tgt_tok.decode([hyp.tokens])[0]
