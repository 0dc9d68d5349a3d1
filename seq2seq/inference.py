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
from seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer
from seq2seq.model.encoder_decoder import EncoderDecoder, build_model
from seq2seq.search import Hypothesis, beam_search, greedy_search, max_lengths, sample_search
from seq2seq.search.beam import BeamOptions

log = logging.getLogger(__name__)


def search_batch(
    model: EncoderDecoder,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    cfg: Search,
    return_attention: bool = False,
    generator: torch.Generator | None = None,
    prefix: torch.Tensor | None = None,
) -> list[list[Hypothesis]]:
    """Run the search ``cfg`` asks for on one padded batch (B, S): sampling, greedy (beam
    1 with no constraint needing a beam), or beam search. prefix (B, P): forced output
    start, PAD-padded."""
    limits = max_lengths(src_lengths, cfg.max_len_a, cfg.max_len_b)
    if cfg.sampling:
        return sample_search(
            model,
            src,
            src_lengths,
            limits,
            BOS_ID,
            EOS_ID,
            num_samples=cfg.nbest,
            temperature=cfg.temperature,
            top_k=cfg.top_k,
            top_p=cfg.top_p,
            min_len=cfg.min_len,
            generator=generator,
            return_attention=return_attention,
        )
    constrained = cfg.min_len or cfg.no_repeat_ngram or cfg.coverage_penalty or prefix is not None
    if cfg.beam_size == 1 and cfg.nbest == 1 and not constrained:
        return greedy_search(model, src, src_lengths, limits, BOS_ID, EOS_ID, return_attention)
    options = BeamOptions(
        beam_size=cfg.beam_size,
        nbest=cfg.nbest,
        length_norm=cfg.length_norm,
        length_penalty=cfg.length_penalty,
        coverage_penalty=cfg.coverage_penalty,
        min_len=cfg.min_len,
        no_repeat_ngram=cfg.no_repeat_ngram,
    )
    return beam_search(
        model,
        src,
        src_lengths,
        limits,
        BOS_ID,
        EOS_ID,
        beam_size=cfg.beam_size,
        options=options,
        return_attention=return_attention,
        prefix=prefix,
        pad=PAD_ID,
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
    generator = torch.Generator()  # sampling draws from its own stream: seeded, reproducible
    if cfg.seed is not None:
        generator.manual_seed(cfg.seed)
    else:
        generator.seed()
    try:
        for indices in sentence_batches(src.lengths, cfg.batch_size):
            batch = make_batch(src, None, indices)
            hyps = search_batch(
                model, batch.src.to(device), batch.src_lengths, cfg, return_attention, generator
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
        return [self.detokenize(hyps[0]) if hyps else "" for hyps in self.hypotheses(lines)]

    def translate_nbest(self, lines: Sequence[str]) -> list[list[tuple[str, Hypothesis]]]:
        """Per line, distinct detokenized outputs with their hypotheses, best first
        (two token sequences can detokenize to one text; the better one is kept)."""
        results = []
        for hyps in self.hypotheses(lines):
            seen: dict[str, Hypothesis] = {}
            for hyp in hyps:
                seen.setdefault(self.detokenize(hyp), hyp)
            results.append(list(seen.items()))
        return results

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
