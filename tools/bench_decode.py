"""``benchmark.py decode``: decoding speed of a trained run, one search or several taking
turns (``--alternate``)."""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from bench_measure import peak_device_gb, peak_rss_gb, spread, sync

from seq2seq.config import parse_overrides
from seq2seq.data.dataset import load_corpus


def bench_decode(args: argparse.Namespace) -> dict[str, Any]:
    from seq2seq.evaluate import score
    from seq2seq.inference import Translator

    translator = Translator.from_checkpoint(
        args.run_dir, search=parse_overrides(args.overrides, "search"), device=args.device
    )
    corpus = load_corpus(translator.recipe, args.split)
    lines = list(corpus.src)[: args.limit or None]
    refs = None if corpus.tgt is None else list(corpus.tgt)[: len(lines)]
    shortlist = translator.shortlist  # its table is read with the weights, before the timer
    engine_load_s = _load_engine(translator)
    rates, outputs, out_tokens = [], [], 0
    for _ in range(args.repeat):
        sync()
        start = time.perf_counter()
        hyps = translator.hypotheses(lines)
        sync()
        seconds = time.perf_counter() - start
        rates.append(len(lines) / seconds)
        outputs = [translator.detokenize(h[0]) if h else "" for h in hyps]
        out_tokens = sum(len(h[0].tokens) + 1 for h in hyps if h)
    search = translator.search
    bleu = score(outputs, refs).bleu if refs is not None else float("nan")
    result = {
        "kind": "decode",
        "run": str(args.run_dir),
        "split": args.split,
        "sentences": len(lines),
        "beam_size": search.beam_size,
        "batch_size": search.batch_size,
        "refill": search.refill,
        "precision": translator.precision,
        "engine": translator.engine,
        "engine_load_s": engine_load_s,
        "shortlist": None if shortlist is None else [search.shortlist, search.shortlist_frequent],
        "threads": torch.get_num_threads(),
        "sentences_per_s": spread(rates),
        # the first pass in this process, kernels and memory set up as it goes: what a
        # one-off ``seq2seq translate`` of the split gets (the peers time one pass)
        "first_pass_sentences_per_s": rates[0],
        "output_tokens_per_s": out_tokens * statistics.median(rates) / len(lines),
        "bleu": bleu,
        "peak_rss_gb": peak_rss_gb(),
        "peak_device_gb": peak_device_gb(),
    }
    sps = result["sentences_per_s"]
    print(
        f"decode {args.run_dir} [{args.split}, {len(lines)} sentences] beam {search.beam_size}, "
        f"batch {search.batch_size}, refill {search.refill}, {result['precision']}, "
        f"{translator.engine}, "
        f"{result['threads']} threads"
        f"{_shortlist_words(search) if shortlist else ''}\n"
        f"  {sps['median']:.1f} sentences/s median of {args.repeat} (min {sps['min']:.1f}, "
        f"max {sps['max']:.1f}; first pass {rates[0]:.1f}), "
        f"{result['output_tokens_per_s']:,.0f} output tokens/s, "
        f"BLEU {bleu:.2f}, peak RSS {result['peak_rss_gb']:.2f} GB"
    )
    return result


def bench_alternate(args: argparse.Namespace) -> dict[str, Any]:
    """Warm passes of one model's arms (each a search change), taking turns."""
    from seq2seq.inference import Translator

    base = Translator.from_checkpoint(
        args.run_dir, search=parse_overrides(args.overrides, "search"), device=args.device
    )
    lines = list(load_corpus(base.recipe, args.split).src)[: args.limit or None]
    _load_engine(base)
    arms = {arm: base.with_search(**parse_overrides([arm], "search")) for arm in args.alternate}
    outputs = {arm: arms[arm].hypotheses(lines) for arm in arms}  # warm passes, untimed
    rates: dict[str, list[float]] = {arm: [] for arm in arms}
    for _ in range(args.repeat):
        for arm, translator in arms.items():
            sync()
            start = time.perf_counter()
            translator.hypotheses(lines)
            sync()
            rates[arm].append(len(lines) / (time.perf_counter() - start))
    tokens = {arm: [[h.tokens for h in hyps] for hyps in out] for arm, out in outputs.items()}
    same = all(t == next(iter(tokens.values())) for t in tokens.values())
    print(
        f"decode {args.run_dir} [{args.split}, {len(lines)} sentences] {' '.join(args.overrides)}"
        f", {torch.get_num_threads()} threads; warm passes taking turns, median of {args.repeat}"
    )
    for arm, values in rates.items():
        sps = spread(values)
        print(
            f"  {arm}: {sps['median']:.1f} sentences/s (min {sps['min']:.1f}, max {sps['max']:.1f})"
        )
    print(f"  the arms' outputs are {'the same' if same else 'not the same'}")
    return {
        "kind": "decode-alternate",
        "run": str(args.run_dir),
        "split": args.split,
        "sentences": len(lines),
        "overrides": list(args.overrides),
        "arms": {arm: spread(values) for arm, values in rates.items()},
        "same_outputs": same,
    }


def _load_engine(translator: Any) -> float:
    """Seconds to set up the ONNX engine (its export, once per run, and its sessions),
    timed apart from decoding; 0 for the torch engine."""
    if translator.engine != "onnx":
        return 0.0
    started = time.perf_counter()
    translator.onnx_model()
    return time.perf_counter() - started


def _shortlist_words(search: Any) -> str:
    return f", shortlist {search.shortlist} per source token + {search.shortlist_frequent}"
