"""Forecasting examples: (context window -> horizon) pairs cut from each series.

Held out: the last ``horizon`` values of every series are its test target, the
``horizon`` before them its validation target; training windows lie wholly before the
validation target, so neither held-out target is ever trained on. A training window
ends every ``stride`` values and reads up to ``context`` values before its horizon (at
least ``min_context``: short contexts are trained too, so a short history is not out of
distribution). Each window is scaled by its own context (bins.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from seq2seq.config import ConfigError, Data, format_options, ranged
from seq2seq.data.readers import Corpus, DataError
from seq2seq.tasks.forecasting.bins import Quantizer, Scale
from seq2seq.tasks.forecasting.series import Series, load_series

PARTS = ("train", "valid", "test")


@dataclass(frozen=True)
class SeriesOptions:
    """``data.series``: which series (series.py), the windows and the bins."""

    files: str = "statsmodels:nile"  # comma-separated sources (series.py)
    season: int = ranged(1, 1, 100_000)  # of CSV series: the period seasonal naive uses
    fill: Literal["error", "interpolate"] = "error"  # CSV gaps
    context: int = ranged(64, 1, 100_000)  # values read before a horizon, at most
    min_context: int = ranged(8, 1, 100_000)  # ... and at least (training windows)
    horizon: int = ranged(12, 1, 10_000)  # values forecast per window
    stride: int = ranged(1, 1, 100_000)  # between training windows
    bins: int = ranged(512, 2, 100_000)  # v0 ... v<bins-1> over [low, high] (bins.py)
    low: float = ranged(-8.0, -1e6, 0.0, open_hi=True)
    high: float = ranged(8.0, 0.0, 1e6, open_lo=True)

    def __post_init__(self) -> None:
        if self.min_context > self.context:
            raise ConfigError(
                f"data.series.min_context: {self.min_context} is more than "
                f"data.series.context ({self.context})"
            )

    def quantizer(self) -> Quantizer:
        return Quantizer(self.bins, self.low, self.high)


@dataclass(frozen=True)
class Window:
    series: Series
    context: np.ndarray
    target: np.ndarray


def series_of(data: Data) -> tuple[SeriesOptions, list[Series]]:
    """The options and the series of a recipe's data section, each long enough."""
    opts = format_options(data, SeriesOptions)
    series = load_series(data.root, opts.files, opts.season, opts.fill)
    need = opts.min_context + 3 * opts.horizon
    for s in series:
        if len(s) < need:
            raise DataError(
                f"series {s.name}: {len(s)} values; it needs at least data.series.min_context "
                f"+ 3 x data.series.horizon = {need} (training windows, valid and test)"
            )
    return opts, series


def held_out(series: Series, horizon: int, part: str) -> tuple[np.ndarray, np.ndarray]:
    """(history, target) of a held-out part: test = the last ``horizon`` values, valid =
    the ``horizon`` before them; the history is everything before the target."""
    end = len(series) - (horizon if part == "valid" else 0)
    return series.values[: end - horizon], series.values[end - horizon : end]


def windows(series: Series, opts: SeriesOptions, part: str) -> list[Window]:
    if part not in PARTS:
        raise DataError(f"data.splits: series splits are {', '.join(PARTS)}, not '{part}'")
    if part != "train":
        history, target = held_out(series, opts.horizon, part)
        return [Window(series, history[-opts.context :], target)]
    values = series.values[: len(series) - 2 * opts.horizon]
    found = []
    for end in range(opts.min_context, len(values) - opts.horizon + 1, opts.stride):
        context = values[max(0, end - opts.context) : end]
        found.append(Window(series, context, values[end : end + opts.horizon]))
    return found


def read_windows(data: Data, part: str, split: str, seed: int = 0) -> Corpus:
    """The examples of a split as bin tokens: the context -> the horizon."""
    opts, series = series_of(data)
    quantizer = opts.quantizer()
    src, tgt = [], []
    for s in series:
        for w in windows(s, opts, part):
            scale = Scale.of(w.context)
            src.append(quantizer.encode(w.context, scale))
            tgt.append(quantizer.encode(w.target, scale))
    return Corpus(split, src, tgt)
