#!/usr/bin/env python3
"""Measure speed and memory; never asserted by tests, reported in issue notes.

    python tools/benchmark.py train RECIPE [k=v ...] [--steps 60] [--warmup 10]
        target tokens/s (real, non-pad tokens, as in ../shared/PEERS.md) and s/update over
        the steps after warm-up, on the recipe's training data, with its precision.
    python tools/benchmark.py decode RUN_DIR --split test2016 [k=v ...] [--repeat 3]
        sentences/s and output tokens/s for the whole split (model loaded once), and BLEU.

Peak resident memory of the process is printed with each result. Run with nothing else
heavy on the machine; compare numbers taken in one sitting.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from seq2seq.config import load_recipe
from seq2seq.data.batching import token_batches
from seq2seq.data.dataset import build_tokenizers, encode_examples, load_corpus
from seq2seq.model.encoder_decoder import build_model, count_parameters
from seq2seq.runtime import tune_allocator
from seq2seq.training.distributed import setup_distributed
from seq2seq.training.trainer import Trainer


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def bench_train(args: argparse.Namespace) -> None:
    import tempfile

    recipe = load_recipe(args.recipe, [*args.overrides, "train.progress=false"])
    info = setup_distributed(args.device)
    corpus = load_corpus(recipe, "train")
    with tempfile.TemporaryDirectory() as tmp:
        tokenizers = build_tokenizers(recipe, Path(tmp), corpus)
        train = encode_examples(corpus, *tokenizers, max_len=recipe.data.max_len)
    torch.manual_seed(recipe.seed)
    model = build_model(recipe.model, len(tokenizers[0]), len(tokenizers[1]))
    trainer = Trainer(recipe, None, model, tokenizers, train, None, info)  # type: ignore[arg-type]
    batches = token_batches(
        train.src.lengths + 1,
        train.tgt.lengths + 1,  # type: ignore[union-attr]
        recipe.train.batch_tokens,
        seed=recipe.seed,
        epoch=0,
    )
    times, tokens = [], []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        _, _, n = trainer.train_step(batches[i % len(batches)])
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
            tokens.append(n)
    rate = sum(tokens) / sum(times)
    print(
        f"train {args.recipe}: {count_parameters(model):,} parameters, "
        f"precision {trainer.precision}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"  steps {args.warmup + 1}-{args.warmup + args.steps}: {rate:,.0f} target tokens/s, "
        f"{statistics.median(times):.3f} s/update (median), "
        f"{statistics.mean(tokens):,.0f} tokens/update, "
        f"peak RSS {peak_rss_gb():.2f} GB"
    )


def bench_decode(args: argparse.Namespace) -> None:
    from seq2seq.evaluate import score
    from seq2seq.inference import Translator

    translator = Translator.from_checkpoint(
        args.run_dir, overrides=args.overrides, device=args.device
    )
    corpus = load_corpus(translator.recipe, args.split)
    lines = list(corpus.src)
    rates, outputs = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        hyps = translator.hypotheses(lines)
        seconds = time.perf_counter() - start
        rates.append(len(lines) / seconds)
        outputs = [translator.detokenize(h[0]) if h else "" for h in hyps]
        out_tokens = sum(len(h[0].tokens) + 1 for h in hyps if h)
    search = translator.recipe.search
    bleu = score(outputs, list(corpus.tgt)).bleu if corpus.tgt is not None else float("nan")
    print(
        f"decode {args.run_dir} [{args.split}, {len(lines)} sentences] beam {search.beam_size}, "
        f"batch {search.batch_size}, {torch.get_num_threads()} threads"
    )
    print(
        f"  {statistics.median(rates):.1f} sentences/s median of {args.repeat} "
        f"(min {min(rates):.1f}, max {max(rates):.1f}), "
        f"{out_tokens * statistics.median(rates) / len(lines):,.0f} output tokens/s, "
        f"BLEU {bleu:.2f}, peak RSS {peak_rss_gb():.2f} GB"
    )


def main() -> int:
    tune_allocator()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(required=True)
    p = sub.add_parser("train")
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.set_defaults(func=bench_train)
    p = sub.add_parser("decode")
    p.add_argument("run_dir")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--split", required=True)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.set_defaults(func=bench_decode)
    args = parser.parse_args()
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
