"""What you can see: attention as a text heat map for terminals and as a PNG for
reports; learning curves of one or several runs (``learning_curves``).

Both take the pieces of one source line (with its EOS), the pieces of one output (with
its EOS) and that output's attention (T, S') from a search with ``return_attention``;
columns past the source length (batch padding) are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from seq2seq.data.files import atomic_write
from seq2seq.tasks.plotting import pyplot

SHADES = " ·░▒▓█"
_THRESHOLDS = (0.05, 0.15, 0.3, 0.5, 0.75)  # weight below each -> the shade before it
_MAX_HEADER = 8  # source pieces are printed vertically, cut to this many characters


def _shade(weight: float) -> str:
    return SHADES[sum(weight >= t for t in _THRESHOLDS)]


def _crop(attention: torch.Tensor, src: Sequence[str], tgt: Sequence[str]) -> torch.Tensor:
    weights = attention.float()[: len(tgt), : len(src)]
    if weights.shape != (len(tgt), len(src)):
        raise ValueError(
            f"attention {tuple(attention.shape)} does not cover {len(tgt)} output x "
            f"{len(src)} source pieces"
        )
    return weights


def _readable(piece: str) -> str:
    """A sentencepiece piece without its word-start mark (the terminal shows no spaces)."""
    return piece.replace("\u2581", "") or "_"


def attention_text(
    src: Sequence[str], tgt: Sequence[str], attention: torch.Tensor, width: int = 80
) -> str:
    """A target x source heat map in at most ``width`` columns.

    One row per output piece (its label on the left), one column per source piece (its
    text printed vertically above). Columns are 3, 2 or 1 characters wide, whichever
    fits; a source too long even for 1 is split into blocks printed one under another.
    """
    weights = _crop(attention, src, tgt)
    src = [_readable(p) for p in src]
    tgt = [_readable(p) for p in tgt]
    label_w = min(max((len(t) for t in tgt), default=1), 14)
    room = max(width - label_w - 2, 1)
    cell = next((w for w in (3, 2) if len(src) * w <= room), 1)
    per_block = max(room // cell, 1)
    lines: list[str] = []
    for start in range(0, len(src), per_block):
        cols = range(start, min(start + per_block, len(src)))
        heads = [src[j][:_MAX_HEADER] for j in cols]
        for r in range(max(len(h) for h in heads)):
            chars = "".join((h[r] if r < len(h) else " ").ljust(cell) for h in heads)
            lines.append(" " * (label_w + 2) + chars.rstrip())
        for i, piece in enumerate(tgt):
            row = "".join(_shade(float(weights[i, j])) * cell for j in cols)
            lines.append(f"{piece[:label_w]:>{label_w}}  {row}".rstrip())
        lines.append("")
    lines.append(
        "shades: "
        + "  ".join(f"'{s}' < {t:g}" for s, t in zip(SHADES, _THRESHOLDS, strict=False))
        + f"  '{SHADES[-1]}' >= {_THRESHOLDS[-1]:g}"
    )
    return "\n".join(lines)


def attention_folder(name: str) -> Path:
    """The folder for ``--attention-png`` maps, made before any work (and matplotlib
    checked), or a ``DataError`` naming it."""
    from seq2seq.data.readers import DataError

    pyplot()  # fail before translating anything if matplotlib is missing
    folder = Path(name)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"--attention-png {name}: is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"--attention-png {name}: cannot make the folder: {err.strerror}") from None
    return folder


def save_attention_png(
    path: str | Path,
    src: Sequence[str],
    tgt: Sequence[str],
    attention: torch.Tensor,
    title: str = "",
) -> None:
    """Write a target x source heat map with matplotlib (``pip install matplotlib``)."""
    plt = pyplot()
    weights = _crop(attention, src, tgt).numpy()
    fig, ax = plt.subplots(figsize=(1.5 + 0.35 * len(src), 1.2 + 0.3 * len(tgt)))
    try:
        image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(src)), list(src), rotation=90, fontsize=8)
        ax.set_yticks(range(len(tgt)), list(tgt), fontsize=8)
        ax.set_xlabel("source")
        ax.set_ylabel("output")
        if title:
            ax.set_title(title, fontsize=8, wrap=True)
        fig.colorbar(image, ax=ax, fraction=0.04)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


# the validation metrics a learning-curve plot draws, in this order, where a run has them
CURVES = ("loss", "ppl", "bleu")


def learning_curves(runs: Sequence[str | Path], output: Path) -> list[str]:
    """One PNG of each run's validation curves (loss, perplexity, BLEU where measured;
    rows) against updates and against minutes (columns), from RUN/metrics.jsonl.
    Returns the metrics drawn."""
    from seq2seq.checkpoint import CheckpointError, RunDir

    series: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        records = [r for r in RunDir(run).read_metrics() if isinstance(r, dict) and "step" in r]
        if not records:
            raise CheckpointError(f"{run}: no validations in metrics.jsonl to plot")
        series[str(run)] = records
    drawn = [m for m in CURVES if any(m in r for rs in series.values() for r in rs)]
    plt = pyplot()
    figure, axes = plt.subplots(
        len(drawn), 2, figsize=(10, 2.8 * len(drawn)), squeeze=False, sharex="col"
    )
    for row, metric in enumerate(drawn):
        for col, x in enumerate(("step", "minutes")):
            ax = axes[row][col]
            for name, records in series.items():
                points = [(r[x], r[metric]) for r in records if metric in r and x in r]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, marker=".", label=Path(name).name)
            ax.set_ylabel("perplexity" if metric == "ppl" else metric)
            if metric == "ppl":
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
            if row == len(drawn) - 1:
                ax.set_xlabel("updates" if x == "step" else "minutes")
    axes[0][0].legend(fontsize=8)
    figure.suptitle("validation")
    figure.tight_layout()
    atomic_write(output, lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    plt.close(figure)
    return drawn
