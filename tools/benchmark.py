#!/usr/bin/env python3
"""Measure speed and memory; never asserted by tests, reported in issue notes.

    python tools/benchmark.py all [RECIPE] [k=v ...] [--run RUN_DIR] [--json FILE]
        the table: training for each precision this device runs (fp32, bf16; fp16 on
        CUDA), then decoding of the test split with greedy and beam 5 at batch 1 and 64
        with fp32, bf16 and (CPU) int8 weights (needs a trained run: --run, default the
        recipe's output_dir). Each measurement runs in its own process, so peak memory
        is its own. RECIPE defaults to recipes/translation/multi30k_de_en.yaml.
    python tools/benchmark.py train RECIPE [k=v ...] [--steps 60] [--warmup 10] [--compile]
        real (non-pad) target tokens/s per update after warm-up: median, min and max, as
        in ../shared/PEERS.md; s/update; padding share; peak resident memory; the warm-up
        time (with --compile, torch.compile's compile time is in it).
    python tools/benchmark.py decode RUN_DIR --split test2016 [k=v ...] [--repeat 3] [--limit N]
        sentences/s and output tokens/s for the whole split or its first N sentences
        (model loaded once; median, min and max of the repeats), BLEU and peak memory.
        shortlist=N decodes with a vocabulary shortlist (its table read before the timer).
        --alternate K=V [K=V ...]: one model, each search change an arm, the arms' passes
        taking turns after a warm pass each (a drifting host then slows all arms alike).

Every subcommand takes --json FILE to write its results, and --compete busy|niced-torch
to measure beside a competing process (tools/competitor.py). Run with nothing else heavy
on the machine, and compare numbers taken in one sitting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from seq2seq import threads
from seq2seq.config import load_recipe
from seq2seq.data.batching import token_batches
from seq2seq.data.dataset import build_tokenizers, encode_examples, load_corpus
from seq2seq.model.encoder_decoder import build_model, count_parameters
from seq2seq.runtime import TRIM_EVERY_STEPS, release_memory, tune_allocator, tune_onednn
from seq2seq.training.distributed import setup_distributed
from seq2seq.training.precision import cpu_trains_bf16
from seq2seq.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported
from bench_decode import bench_alternate, bench_decode
from bench_measure import peak_device_gb, peak_rss_gb, spread, sync
from bench_table import gemm_rates, table, train_line
from competitor import COMMANDS, competing

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RECIPE = ROOT / "recipes" / "translation" / "multi30k_de_en.yaml"


def bench_train(args: argparse.Namespace) -> dict[str, Any]:
    recipe, trainer, train = _train_setup(args)
    batches = token_batches(
        train.src.lengths + 1,
        train.tgt.lengths + 1,  # type: ignore[union-attr]
        recipe.train.batch_tokens,
        seed=recipe.seed,
        epoch=0,
    )
    timed = _timed_steps(args, trainer, train, batches, recipe.train.accumulate)
    rates, seconds, tokens, real, cells, warmup_s = timed
    # matmul work per target token: forward 2 + backward 4 FLOPs per dense weight (the
    # embedding lookups cost none; a tied output projection does). Source and target
    # lengths are close on Multi30k; attention scores are left out: an estimate.
    dense = sum(
        p.numel()
        for name, p in trainer.model.named_parameters(remove_duplicate=False)
        if not name.endswith("embedding.weight")
    )
    result = {
        "kind": "train",
        "dense_parameters": dense,
        "approx_gflop_per_s": 6 * dense * statistics.median(rates) / 1e9,
        "recipe": str(args.recipe),
        "precision": trainer.precision,
        "parameters": count_parameters(trainer.model),
        "threads": torch.get_num_threads(),
        "steps": f"{args.warmup + 1}-{args.warmup + args.steps}",
        "compiled": bool(args.compile),
        "trim_every": args.trim_every,
        "warmup_s": warmup_s,
        "tokens_per_s": spread(rates),
        "tokens_per_s_overall": sum(tokens) / sum(seconds),  # as the peers' scripts count
        "s_per_update": statistics.median(seconds),
        "tokens_per_update": statistics.mean(tokens),
        "padding": {side: 1 - real[side] / max(cells[side], 1) for side in real},
        "peak_rss_gb": peak_rss_gb(),
        "peak_device_gb": peak_device_gb(),
    }
    print(train_line(result))
    return result


def _train_setup(args: argparse.Namespace) -> tuple[Any, Trainer, Any]:
    """The recipe, a Trainer without a run directory, and the tokenized training split."""
    recipe = load_recipe(args.recipe, [*args.overrides, "train.progress=false"])
    if recipe.train.num_threads:
        torch.set_num_threads(recipe.train.num_threads)
    info = setup_distributed(args.device)
    corpus = load_corpus(recipe, "train")
    with tempfile.TemporaryDirectory() as tmp:
        tokenizers = build_tokenizers(recipe, Path(tmp), corpus)
        train = encode_examples(corpus, *tokenizers, max_len=recipe.data.max_len)
    torch.manual_seed(recipe.seed)
    model = build_model(recipe.model, len(tokenizers[0]), len(tokenizers[1]))
    trainer = Trainer(recipe, None, model, tokenizers, train, None, info)  # type: ignore[arg-type]
    if args.compile:  # compiling happens in the first steps: it shows in warmup_s
        trainer.net = torch.compile(trainer.net)
    return recipe, trainer, train


def _timed_steps(
    args: argparse.Namespace, trainer: Trainer, train: Any, batches: list[Any], per: int
) -> tuple[list[float], list[float], list[int], dict[str, int], dict[str, int], float]:
    """Warm-up, then the timed updates: per update its rate, seconds and tokens; the real
    and padded cells of each side; the warm-up's seconds."""
    rates, seconds, tokens = [], [], []
    real, cells = {"src": 0, "tgt": 0}, {"src": 0, "tgt": 0}
    started = time.perf_counter()
    warmup_s = 0.0
    for i in range(args.warmup + args.steps):
        micro = [batches[(i * per + j) % len(batches)] for j in range(per)]
        sync()
        start = time.perf_counter()
        stats = trainer.train_step(micro)
        if args.trim_every and (i + 1) % args.trim_every == 0:  # as Trainer.fit does
            release_memory()
        threads.tick()  # as Trainer.fit does
        sync()
        elapsed = time.perf_counter() - start
        if i + 1 == args.warmup:
            warmup_s = time.perf_counter() - started
        if i >= args.warmup and stats is not None:
            rates.append(stats[2] / elapsed)
            seconds.append(elapsed)
            tokens.append(stats[2])
            for indices in micro:  # padded rows hold length + 1 (EOS) ids each
                for side, ids in (("src", train.src), ("tgt", train.tgt)):
                    lengths = ids.lengths[indices] + 1
                    real[side] += int(lengths.sum())
                    cells[side] += len(indices) * int(lengths.max())
    return rates, seconds, tokens, real, cells, warmup_s


def bench_gemm(args: argparse.Namespace) -> dict[str, Any]:
    """The machine's matrix-multiply ceiling: GFLOP/s of a square matmul per dtype."""
    n, result = args.size, {"kind": "gemm", "size": args.size, "threads": torch.get_num_threads()}
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    # bf16 where this device trains in it: elsewhere oneDNN's fallback takes minutes
    bf16 = device.type == "cuda" or cpu_trains_bf16()
    for dtype in (torch.float32, torch.bfloat16) if bf16 else (torch.float32,):
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        rates = []
        for i in range(args.repeat + 2):
            start = time.perf_counter()
            a @ b
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:  # the first two warm up
                rates.append(2 * n**3 / (time.perf_counter() - start) / 1e9)
        result[str(dtype).removeprefix("torch.")] = spread(rates)
    print(
        f"gemm {n}x{n}, {result['threads']} threads: {gemm_rates(result)} (median of {args.repeat})"
    )
    return result


def precisions(device: str | None) -> list[str]:
    """fp32 always; bf16 where autocast trains it (CPUs with AVX2 or AVX-512: slow without
    AVX512-BF16, which the table then shows); fp16 on CUDA only (no fp16 LSTM kernels for
    the CPU)."""
    if torch.cuda.is_available() and device != "cpu":
        return ["fp32", "bf16", "fp16"]
    return ["fp32", "bf16"] if cpu_trains_bf16() else ["fp32"]


def decode_precisions(device: str | None) -> list[str]:
    """fp32 and bf16 weights; on CPU also int8 (the decoder's products in int8, oneDNN)."""
    cuda = torch.cuda.is_available() and device != "cpu"
    return ["fp32", "bf16"] if cuda else ["fp32", "bf16", "int8"]


def _child(args: list[str]) -> dict[str, Any]:
    """Run one measurement in a fresh process; its JSON result."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        subprocess.run([sys.executable, __file__, *args, "--json", str(out)], check=True)
        return json.loads(out.read_text())


def bench_all(args: argparse.Namespace) -> dict[str, Any]:
    recipe_path = args.recipe or str(DEFAULT_RECIPE)
    device = ["--device", args.device] if args.device else []
    steps = ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    gemm = _child(["gemm", "--repeat", str(args.repeat), *device])
    results: dict[str, Any] = {"gemm": gemm, "train": [], "decode": []}
    for precision in precisions(args.device):
        overrides = [*args.overrides, f"train.precision={precision}"]
        results["train"].append(_child(["train", recipe_path, *overrides, *steps, *device]))
    run_dir = Path(args.run or load_recipe(recipe_path, args.overrides).output_dir)
    if (run_dir / "recipe.yaml").is_file():
        split = args.split or _test_split(run_dir)
        for precision in decode_precisions(args.device):
            for beam in (1, 5):
                for batch in (1, 64):
                    repeat = "1" if batch == 1 else str(args.repeat)
                    results["decode"].append(
                        _child(
                            [
                                "decode",
                                str(run_dir),
                                f"beam_size={beam}",
                                f"batch_size={batch}",
                                f"precision={precision}",
                                "--split",
                                split,
                                "--repeat",
                                repeat,
                                *device,
                            ]
                        )
                    )
    else:
        print(f"no trained run at {run_dir}: decoding skipped (train it, or give --run)")
    print()
    print(table(results))
    return results


def _test_split(run_dir: Path) -> str:
    splits = load_recipe(run_dir / "recipe.yaml").data.splits
    return "test" if "test" in splits else next(k for k in splits if k.startswith("test"))


def main() -> int:
    tune_allocator()
    tune_onednn()
    parser = _parser()
    # key=value overrides may also come after the options, as in the seq2seq CLI
    args, extra = parser.parse_known_args()
    stray = [x for x in extra if x.startswith("-") or "=" not in x]
    if stray or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    with competing(args.compete):
        result = args.func(args)
    result["compete"] = args.compete
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(required=True)
    p = sub.add_parser("all")
    p.add_argument("recipe", nargs="?")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--run", help="trained run to decode with (default: the recipe's output_dir)")
    p.add_argument("--split", help="default: the run's test split")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.set_defaults(func=bench_all)
    p = sub.add_parser("gemm")
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--repeat", type=int, default=10)
    p.set_defaults(func=bench_gemm)
    p = sub.add_parser("train")
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--compile", action="store_true", help="torch.compile the model first")
    p.add_argument(
        "--trim-every",
        type=int,
        default=TRIM_EVERY_STEPS,
        help="return free heap memory every N updates, as training does (0: never)",
    )
    p.set_defaults(func=bench_train)
    p = sub.add_parser("decode")
    p.add_argument("run_dir")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--split", required=True)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--limit", type=int, default=0, help="the first N sentences only")
    p.add_argument(
        "--alternate",
        nargs="+",
        metavar="K=V",
        help="compare search changes on one model, their warm passes taking turns",
    )
    p.set_defaults(func=lambda a: (bench_alternate if a.alternate else bench_decode)(a))
    for p in sub.choices.values():
        p.add_argument("--device", choices=["cpu", "cuda"])
        p.add_argument("--json", help="also write the results to this file")
        p.add_argument(
            "--compete",
            choices=sorted(COMMANDS),
            help="measure beside a competing process (tools/competitor.py)",
        )
    return parser


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
