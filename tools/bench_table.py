"""The Markdown table of ``benchmark.py all``: the GEMM ceiling, training per precision
(with its share of that ceiling), decoding per precision, search and batch size."""

from __future__ import annotations

from typing import Any


def gemm_rates(gemm: dict[str, Any]) -> str:
    """'fp32 N GFLOP/s, bf16 M GFLOP/s' for the dtypes measured."""
    names = (("fp32", "float32"), ("bf16", "bfloat16"))
    return ", ".join(f"{a} {gemm[k]['median']:,.0f} GFLOP/s" for a, k in names if k in gemm)


def memory(result: dict[str, Any]) -> str:
    """Peak resident memory, and the GPU's peak where it ran on one."""
    text = f"{result['peak_rss_gb']:.2f} GB"
    if result.get("peak_device_gb") is not None:
        text += f" (GPU {result['peak_device_gb']:.2f} GB)"
    return text


def table(results: dict[str, Any]) -> str:
    gemm = results.get("gemm")
    rows = []
    if gemm:
        rows.append(f"GEMM {gemm['size']}x{gemm['size']}: {gemm_rates(gemm)}\n")
    rows += [
        "| training | target tokens/s median (min-max) | overall | s/update | padding src/tgt "
        "| peak RSS | ~GFLOP/s (share of GEMM peak) |"
    ]
    rows.append("|---|---|---|---|---|---|---|")
    dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
    for r in results["train"]:
        share = ""
        if gemm and dtype[r["precision"]] in gemm:
            share = f" ({r['approx_gflop_per_s'] / gemm[dtype[r['precision']]]['median']:.0%})"
        t = r["tokens_per_s"]
        rows.append(
            f"| {r['precision']} | {t['median']:,.0f} ({t['min']:,.0f}-{t['max']:,.0f}) | "
            f"{r['tokens_per_s_overall']:,.0f} | {r['s_per_update']:.3f} | "
            f"{r['padding']['src']:.1%} / {r['padding']['tgt']:.1%} | "
            f"{memory(r)} | {r['approx_gflop_per_s']:,.0f}{share} |"
        )
    if results["decode"]:
        rows += [
            "",
            "| decoding | sentences/s median (min-max) | first pass | output tokens/s | BLEU "
            "| peak RSS |",
        ]
        rows.append("|---|---|---|---|---|---|")
        for r in results["decode"]:
            s = r["sentences_per_s"]
            search = "greedy" if r["beam_size"] == 1 else f"beam {r['beam_size']}"
            rows.append(
                f"| {r['precision']} {search}, batch {r['batch_size']} | {s['median']:.1f} "
                f"({s['min']:.1f}-{s['max']:.1f}) | {r['first_pass_sentences_per_s']:.1f} | "
                f"{r['output_tokens_per_s']:,.0f} | "
                f"{r['bleu']:.2f} | {memory(r)} |"
            )
    return "\n".join(rows)


def train_line(result: dict[str, Any]) -> str:
    """What ``benchmark.py train`` prints of its result."""
    tps = result["tokens_per_s"]
    return (
        f"train {result['recipe']}: {result['parameters']:,} parameters, precision "
        f"{result['precision']}{', compiled' if result['compiled'] else ''}, {result['threads']} "
        f"threads, steps {result['steps']} (warm-up {result['warmup_s']:.1f} s)\n"
        f"  {tps['median']:,.0f} target tokens/s median (min {tps['min']:,.0f}, max "
        f"{tps['max']:,.0f}), {result['tokens_per_s_overall']:,.0f} overall, "
        f"{result['s_per_update']:.3f} s/update, "
        f"{result['tokens_per_update']:,.0f} tokens/update, padding "
        f"{result['padding']['src']:.1%} source / {result['padding']['tgt']:.1%} target, "
        f"peak RSS {result['peak_rss_gb']:.2f} GB"
    )
