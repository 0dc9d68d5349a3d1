"""Forecasts from a trained run: sample paths, their quantiles, a CSV and a plot.

With ``search.sampling`` each history gets ``samples`` paths (its quantiles and median
come from them); without it, the search's single output is a point forecast (every
quantile equals it). A horizon longer than the one trained on is forecast window by
window: each path continues from its own history plus what it has drawn so far.
Every search runs with the task's grammar (bins only) and exactly the window's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seq2seq.config import ConfigError
from seq2seq.data.files import atomic_write, output_file
from seq2seq.data.readers import DataError
from seq2seq.tasks.forecasting.bins import Scale
from seq2seq.tasks.forecasting.metrics import QUANTILES, sample_quantiles
from seq2seq.tasks.forecasting.windows import SeriesOptions
from seq2seq.tasks.plotting import pyplot

if TYPE_CHECKING:
    from seq2seq.inference import Translator


@dataclass(frozen=True)
class Forecast:
    name: str
    history: np.ndarray  # (T,)
    paths: np.ndarray  # (N, H)

    @property
    def quantiles(self) -> np.ndarray:
        """(Q, H) at QUANTILES."""
        return sample_quantiles(self.paths)

    @property
    def median(self) -> np.ndarray:
        return np.median(self.paths, axis=0)


def sample_paths(
    translator: Translator,
    options: SeriesOptions,
    histories: Sequence[np.ndarray],
    horizon: int,
    samples: int,
) -> list[np.ndarray]:
    """Per history (T,), its paths (N, horizon): N = ``samples`` when sampling, else 1."""
    sampling = translator.search.sampling and samples > 1
    count = samples if sampling else 1
    # the first window: one source per history, ``count`` outputs each
    first = min(options.horizon, horizon)
    contexts = [history[-options.context :] for history in histories]
    paths = [np.stack(d) for d in _draw(translator, options, contexts, first, count)]
    while paths[0].shape[1] < horizon:  # then one source per path, one output each
        step = min(options.horizon, horizon - paths[0].shape[1])
        contexts = [
            np.concatenate([history, path])[-options.context :]
            for history, drawn in zip(histories, paths, strict=True)
            for path in drawn
        ]
        flat = iter(d[0] for d in _draw(translator, options, contexts, step, 1))
        paths = [np.stack([np.concatenate([p, next(flat)]) for p in ps]) for ps in paths]
    return paths


def _draw(
    translator: Translator,
    options: SeriesOptions,
    contexts: list[np.ndarray],
    length: int,
    outputs: int,
) -> list[list[np.ndarray]]:
    """``outputs`` continuations of ``length`` values per context."""
    quantizer = options.quantizer()
    scales = [Scale.of(c) for c in contexts]
    sources = [quantizer.encode(c, s) for c, s in zip(contexts, scales, strict=True)]
    search = translator.with_search(
        nbest=outputs,
        min_len=length,
        max_len_a=0.0,
        max_len_b=length,
        constrained=True,
    )
    result = []
    for scale, hyps in zip(scales, search.hypotheses(sources), strict=True):
        values = [quantizer.decode(search.output_pieces(h)[:-1], scale) for h in hyps]
        if any(len(v) != length or np.isnan(v).any() for v in values):
            raise DataError("the model gave an output that is not a forecast (not all bins)")
        result.append(values)
    return result


def write_csv(path: str | None, forecasts: list[Forecast], inputs: Sequence[str | None]) -> None:
    """One row per series and step: median, mean and the quantiles."""
    header = ["series", "step", "median", "mean", *[f"q{q:g}" for q in QUANTILES]]
    with output_file(path, inputs=list(inputs)) as sink:
        sink.write(",".join(header) + "\n")
        for f in forecasts:
            quantiles, median, mean = f.quantiles, f.median, f.paths.mean(axis=0)
            for step in range(f.paths.shape[1]):
                row = [median[step], mean[step], *quantiles[:, step]]
                sink.write(",".join([_csv_name(f.name), str(step + 1)] + [f"{v:.6g}" for v in row]))
                sink.write("\n")


def _csv_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if any(c in name for c in ',"\n') else name


def plot(path: Path, forecasts: list[Forecast], shown_history: int = 200) -> None:
    """A PNG: per series the last ``shown_history`` values, the median and the 10-90%
    band (one panel each)."""
    plt = pyplot()
    rows = len(forecasts)
    figure, axes = plt.subplots(rows, 1, figsize=(9, 2.6 * rows), squeeze=False)
    for ax, f in zip(axes[:, 0], forecasts, strict=True):
        history = f.history[-shown_history:]
        start = len(f.history) - len(history)
        steps = np.arange(len(f.history), len(f.history) + f.paths.shape[1])
        quantiles = f.quantiles
        ax.plot(np.arange(start, len(f.history)), history, color="black", lw=1, label="history")
        ax.fill_between(steps, quantiles[0], quantiles[-1], alpha=0.3, label="10-90%")
        ax.plot(steps, f.median, lw=1.5, label="median")
        ax.set_title(f.name, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
    plt.close(figure)


def check_request(horizon: int, samples: int) -> None:
    if not 1 <= horizon <= 100_000:
        raise ConfigError(f"--horizon must be between 1 and 100,000, got {horizon}")
    if not 1 <= samples <= 10_000:
        raise ConfigError(f"-n must be between 1 and 10,000, got {samples}")
