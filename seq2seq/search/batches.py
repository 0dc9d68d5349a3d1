"""Decode many sentences: length-sorted batches, each searched the way the settings ask
(greedy, beam, sampling; with a prefix, an output grammar or required phrases)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from seq2seq import threads
from seq2seq.config import ConfigError, Search
from seq2seq.data.batching import IdArray, make_batch, sentence_batches
from seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from seq2seq.runtime import progress
from seq2seq.search.beam import BeamOptions, beam_search
from seq2seq.search.constraint import Constraint
from seq2seq.search.contract import Decodable, SearchModel
from seq2seq.search.greedy import greedy_search
from seq2seq.search.hypothesis import Hypothesis, max_lengths
from seq2seq.search.lexical import RequiredPhrases, Requirements
from seq2seq.search.sampling import DrawRules, sample_search
from seq2seq.search.shortlist import Shortlist, Shortlisted


def search_batch(
    model: Decodable,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    cfg: Search,
    return_attention: bool = False,
    generator: torch.Generator | None = None,
    prefix: torch.Tensor | None = None,
    constraint: Constraint | None = None,
    width: int = 0,
) -> list[list[Hypothesis]]:
    """Run the search ``cfg`` asks for on one padded batch (B, S): sampling, greedy (beam
    1, one output, no coverage penalty), or beam search; the same token rules in each.
    prefix (B, P): forced output start, PAD-padded; the length limit always leaves room
    for it. ``constraint``: an output grammar (``cfg.constrained``), or the batch's
    required phrases (beam search only; the limit grows by their length). ``width`` > 0
    (greedy and sampling, see ``refills``): at most that many sentences decode at once."""
    limits = max_lengths(src_lengths, cfg.max_len_a, cfg.max_len_b)
    if prefix is not None:
        limits = torch.maximum(limits, (prefix != PAD_ID).sum(1).cpu() + 1)
    lexical = isinstance(constraint, RequiredPhrases)
    if isinstance(constraint, RequiredPhrases):
        limits = limits + constraint.total.cpu()
        if cfg.sampling:
            raise ConfigError("required phrases are met by beam search: set search.sampling=false")
    common: dict[str, Any] = {
        "return_attention": return_attention,
        "prefix": prefix,
        "constraint": constraint,
    }
    if cfg.sampling:
        rules = DrawRules(
            cfg.nbest, cfg.temperature, cfg.top_k, cfg.top_p, cfg.min_len, cfg.no_repeat_ngram
        )
        drawing = {**asdict(rules), "generator": generator}
        rows = width * cfg.nbest  # samples of `width` sentences
        return sample_search(
            model, src, src_lengths, limits, BOS_ID, EOS_ID, **drawing, **common, width=rows
        )
    if _greedy(cfg) and not lexical:
        rules_kw = {"min_len": cfg.min_len, "no_repeat_ngram": cfg.no_repeat_ngram, **common}
        return greedy_search(
            model, src, src_lengths, limits, BOS_ID, EOS_ID, **rules_kw, width=width
        )
    beam = {"beam_size": cfg.beam_size, "options": _beam_options(cfg), "pad": PAD_ID, **common}
    return beam_search(model, src, src_lengths, limits, BOS_ID, EOS_ID, **beam)


def _greedy(cfg: Search) -> bool:
    """Beam 1 is greedy, unless a coverage penalty asks to rank finished outputs."""
    return cfg.beam_size == 1 and cfg.nbest == 1 and not cfg.coverage_penalty


def refills(cfg: Search, prefixes: bool, rules: bool, shortlist: bool) -> bool:
    """Whether ``decode_ids`` decodes groups of ``cfg.refill`` batches whose sentences join
    as others end: greedy or sampling, without per-step rules that follow each row's own
    step (n-gram blocking, prefixes, a grammar or required phrases: ``rules``), and
    without a shortlist (its union over a group of 8 x 64 sentences of test2016 held
    4,000 candidates against 1,700 per batch, and a step's cost per row doubled)."""
    row_loop = cfg.sampling or _greedy(cfg)
    unsupported = cfg.no_repeat_ngram or prefixes or rules or shortlist
    return cfg.refill > 1 and row_loop and not unsupported


def _beam_options(cfg: Search) -> BeamOptions:
    """The beam's part of the search settings."""
    return BeamOptions(
        beam_size=cfg.beam_size,
        nbest=cfg.nbest,
        length_norm=cfg.length_norm,
        length_penalty=cfg.length_penalty,
        coverage_penalty=cfg.coverage_penalty,
        min_len=cfg.min_len,
        no_repeat_ngram=cfg.no_repeat_ngram,
    )


def _padded(seqs: IdArray, indices: np.ndarray) -> torch.Tensor | None:
    """Rows ``indices`` of ``seqs`` as a PAD-padded (B, P) tensor; None if all are empty."""
    rows = [torch.from_numpy(seqs[i].astype(np.int64)) for i in indices.tolist()]
    if not any(len(r) for r in rows):
        return None
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=PAD_ID)


def _check_combination(
    constraint: Constraint | None, required: Requirements | None, shortlist: Shortlist | None
) -> None:
    """Refuse settings that cannot work together, naming them."""
    has_required = required is not None and any(required.phrases)
    if constraint is not None and has_required:
        raise ConfigError("required phrases cannot be combined with search.constrained")
    if shortlist is not None and (constraint is not None or has_required):
        what = "search.constrained" if constraint is not None else "required phrases"
        raise ConfigError(
            f"search.shortlist cannot be combined with {what} (they need the whole "
            "vocabulary); set search.shortlist=0"
        )


def _search_listed(
    search: Callable[..., list[list[Hypothesis]]],
    model: Decodable,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    prefix: torch.Tensor | None,
    constraint: Constraint | None,
    shortlist: Shortlist | None,
) -> list[list[Hypothesis]]:
    """``search`` (``search_batch`` with the settings) of one batch src (B, S), over the
    shortlist's candidates when there is one (outputs mapped back to vocabulary ids)."""
    if shortlist is None:
        return search(model, src, src_lengths, prefix=prefix, constraint=constraint)
    listed = Shortlisted(model, shortlist.candidates(src, prefix).to(src.device))
    prefix = None if prefix is None else listed.positions(prefix)
    hyps = search(listed, src, src_lengths, prefix=prefix, constraint=constraint)
    return listed.vocabulary_ids(hyps)


def decode_ids(
    model: SearchModel,
    src: IdArray,
    cfg: Search,
    device: torch.device,
    return_attention: bool = False,
    prefixes: IdArray | None = None,
    constraint: Constraint | None = None,
    required: Requirements | None = None,
    shortlist: Shortlist | None = None,
) -> list[list[Hypothesis]]:
    """Search every sequence of ``src`` in length-sorted batches; results in input order.
    ``prefixes``: per sequence, target ids every output must start with (may be empty);
    ``constraint``: an output grammar; ``required``: per sequence, target phrases every
    output must contain (not with a grammar); ``shortlist``: score only its candidates
    for each batch (not with a grammar or required phrases)."""
    _check_combination(constraint, required, shortlist)
    was_training = model.training
    model.eval()
    results: list[list[Hypothesis]] = [[] for _ in range(len(src))]
    generator = torch.Generator()  # sampling draws from its own stream: seeded, reproducible
    if cfg.seed is not None:
        generator.manual_seed(cfg.seed)
    else:
        generator.seed()
    has_rules = constraint is not None or required is not None
    group = refills(cfg, prefixes is not None, has_rules, shortlist is not None)
    search = functools.partial(
        search_batch,
        cfg=cfg,
        return_attention=return_attention,
        generator=generator,
        width=cfg.batch_size if group else 0,
    )

    def decode_batch(indices: np.ndarray) -> list[list[Hypothesis]]:
        batch = make_batch(src, None, indices)
        prefix = None if prefixes is None else _padded(prefixes, indices)
        phrases = None if required is None else required.for_batch(indices.tolist())
        rules = constraint if phrases is None else phrases.to(device)
        return _search_listed(
            search, model, batch.src.to(device), batch.src_lengths, prefix, rules, shortlist
        )

    try:
        batches = sentence_batches(src.lengths, cfg.batch_size * (cfg.refill if group else 1))
        done = _decoded(decode_batch, batches, workers(cfg, device))
        for indices, hyps in progress(done, len(batches), "decoding", "batch"):
            for index, sentence_hyps in zip(indices.tolist(), hyps, strict=True):
                results[index] = sentence_hyps
    finally:
        model.train(was_training)
    return results


_ONE_THREAD_EACH = threading.Lock()


def workers(cfg: Search, device: torch.device) -> int:
    """How many batches decode side by side: ``cfg.workers`` (0: one per compute thread)
    on the CPU for greedy and beam search; one on a GPU and for sampling."""
    if cfg.sampling or device.type != "cpu":
        return 1
    return cfg.workers or torch.get_num_threads()


def _decoded(
    decode: Callable[[np.ndarray], list[list[Hypothesis]]],
    batches: list[np.ndarray],
    workers: int,
) -> Iterator[tuple[np.ndarray, list[list[Hypothesis]]]]:
    """(indices, outputs) of each batch in order. One worker: batch after batch, with the
    compute threads governed (fewer while the machine is busy). More: that many batches
    at once, each in its own thread with one compute thread (torch's thread count is
    set to 1 meanwhile; an ONNX engine is made with one thread for them)."""
    workers = min(workers, len(batches))
    if workers <= 1:  # one batch (a shell line) keeps torch's threads
        for indices in batches:
            yield indices, decode(indices)
            threads.tick()  # fewer compute threads while the machine is busy
        return
    with _ONE_THREAD_EACH:  # torch's thread count is the process's: one owner at a time
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        pool = ThreadPoolExecutor(workers)
        try:
            yield from zip(batches, pool.map(decode, batches), strict=True)
        finally:  # an error or Ctrl-C: the batches not yet begun are dropped, not decoded
            pool.shutdown(wait=True, cancel_futures=True)
            torch.set_num_threads(previous)
