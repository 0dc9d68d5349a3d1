"""Forecasting: a series' recent values in, its next values out, as tokens.

Each window is scaled by its context and quantized into bins (``bins``), so the
encoder-decoder, trainer and search are the translation ones unchanged. Sampling N
paths gives quantiles and a median; greedy or beam a point forecast. Scored by MASE and
WQL against naive, seasonal naive and ETS (``metrics``), on the last horizon of every
series (``windows``: never trained on). ``seq2seq forecast RUN --input series.csv``
forecasts a CSV (``series``), with a CSV of quantiles and a PNG (``forecast``).
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from seq2seq.config import ConfigError, format_options, register_format
from seq2seq.tasks.base import Evaluation, Task, register_task
from seq2seq.tasks.forecasting import metrics
from seq2seq.tasks.forecasting.bins import PREFIX, Scale
from seq2seq.tasks.forecasting.command import FORECAST
from seq2seq.tasks.forecasting.forecast import Forecast, sample_paths
from seq2seq.tasks.forecasting.windows import SeriesOptions, held_out, read_windows, series_of

if TYPE_CHECKING:
    from seq2seq.inference import Translator
    from seq2seq.search.constraint import ConstraintState

register_format("series", SeriesOptions, read_windows)

SAMPLES = 20  # paths per series when evaluating (as the Chronos benchmark)


class BinsOnly:
    """The output grammar: every token a bin (the length rules place EOS)."""

    def __init__(self, vocabulary: list[str], bins: int) -> None:
        wanted = {f"{PREFIX}{k}" for k in range(bins)}
        self.mask = torch.tensor([piece in wanted for piece in vocabulary])
        if int(self.mask.sum()) != bins:
            raise ConfigError(
                f"data.series.bins: {bins} bins, but the run's vocabulary has "
                f"{int(self.mask.sum())} of v0 ... v{bins - 1} (tokenizer.vocab_file?)"
            )

    def start(self, src: torch.Tensor, rows: torch.Tensor) -> ConstraintState:
        return {"rows": rows.clone()}

    def allowed(self, state: ConstraintState) -> torch.Tensor:
        return self.mask.to(state["rows"].device).expand(state["rows"].numel(), -1)

    def advance(self, state: ConstraintState, tokens: torch.Tensor) -> ConstraintState:
        return state


@register_task
class Forecasting(Task):
    name = "forecasting"
    verb = "forecast"
    commands = (FORECAST,)

    def __init__(self) -> None:
        # the shell's prompts: source text -> its scale, to read the output back
        self._scales: OrderedDict[str, Scale] = OrderedDict()

    def constraint(self, translator: Translator) -> BinsOnly:
        opts = format_options(translator.recipe.data, SeriesOptions)
        return BinsOnly(translator.tgt_tok.vocabulary(), opts.bins)

    def source_from_prompt(self, translator: Translator, prompt: str) -> str:
        """A prompt is the history: numbers separated by spaces or commas."""
        opts = format_options(translator.recipe.data, SeriesOptions)
        context = _numbers(prompt)[-opts.context :]
        scale = Scale.of(context)
        source = opts.quantizer().encode(context, scale)
        self._scales[source] = scale
        while len(self._scales) > 1000:
            self._scales.popitem(last=False)
        return source

    def show(self, translator: Translator, source: str, output: str) -> str:
        scale = self._scales.get(source)
        if scale is None:
            return output
        opts = format_options(translator.recipe.data, SeriesOptions)
        values = opts.quantizer().decode(output.split(), scale)
        return " ".join(f"{v:.6g}" for v in values)

    def continuations(
        self, translator: Translator, prompts: list[str], max_len: int | None
    ) -> list[str]:
        """Per prompt (a history), the median forecast of ``max_len`` (default: the
        trained horizon) values; a blank prompt gives ""."""
        opts = format_options(translator.recipe.data, SeriesOptions)
        given = [i for i, p in enumerate(prompts) if p.strip()]
        histories = [_numbers(prompts[i]) for i in given]
        outputs = [""] * len(prompts)
        if histories:
            horizon = max_len or opts.horizon
            paths = sample_paths(translator, opts, histories, horizon, SAMPLES)
            for i, drawn in zip(given, paths, strict=True):
                outputs[i] = " ".join(f"{v:.6g}" for v in np.median(drawn, axis=0))
        return outputs

    def score_split(self, translator: Translator, request: Evaluation) -> ForecastReport:
        """Every series' held-out window of the split: ours, naive, seasonal naive, ETS."""
        self.refuse_hyp_out(request)
        assert request.split is not None
        data = translator.recipe.data
        opts, series = series_of(data)
        part = data.splits.get(request.split, request.split)
        if part not in ("valid", "test"):
            raise ConfigError(f"--split: forecasts are scored on valid or test, not {part}")
        series = series[: request.limit or None]
        windows = [held_out(s, opts.horizon, part) for s in series]
        paths = sample_paths(translator, opts, [h for h, _ in windows], opts.horizon, SAMPLES)
        rows = [
            _score_series(s, history, actual, drawn)
            for s, (history, actual), drawn in zip(series, windows, paths, strict=True)
        ]
        return ForecastReport(rows)


def _score_series(
    series: Any, history: np.ndarray, actual: np.ndarray, paths: np.ndarray
) -> dict[str, Any]:
    horizon, season = len(actual), series.season
    ours = Forecast(series.name, history, paths)
    points = {
        "ours": (ours.median, ours.quantiles),
        "naive": _point(metrics.naive(history, horizon)),
        "seasonal_naive": _point(metrics.seasonal_naive(history, horizon, season)),
        "ets": metrics.ets(history, horizon, season),
    }
    row: dict[str, Any] = {"series": series.name, "season": season}
    for method, (point, quantiles) in points.items():
        row[f"mase_{method}"] = _round(metrics.mase(actual, point, history, season))
        row[f"wql_{method}"] = _round(metrics.wql(actual, quantiles))
    return row


def _point(point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return point, metrics.point_quantiles(point)


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


METHODS = ("ours", "naive", "seasonal_naive", "ets")


class ForecastReport:
    """Per series MASE and WQL of each method, and per method the geometric mean of its
    ratio to seasonal naive over the series."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.aggregate = {
            f"{metric}_{method}": _round(
                metrics.geometric_mean(
                    [
                        r[f"{metric}_{method}"] / r[f"{metric}_seasonal_naive"]
                        for r in rows
                        if r[f"{metric}_{method}"] is not None and r[f"{metric}_seasonal_naive"]
                    ]
                )
            )
            for metric in ("mase", "wql")
            for method in METHODS
        }

    def line(self) -> str:
        head = f"{'series':<26}" + "".join(f"{m:>16}" for m in METHODS)
        lines = ["MASE / WQL per series", head]
        for r in self.rows:
            cells = "".join(
                f"{_cell(r[f'mase_{m}'])}/{_cell(r[f'wql_{m}'])}".rjust(16) for m in METHODS
            )
            lines.append(f"{r['series'][:25]:<26}{cells}")
        ratios = "".join(
            f"{_cell(self.aggregate[f'mase_{m}'])}/{_cell(self.aggregate[f'wql_{m}'])}".rjust(16)
            for m in METHODS
        )
        lines.append(f"{'geomean / seasonal naive':<26}{ratios}")
        return "\n".join(lines)

    def json(self) -> str:
        return json.dumps({"series": self.rows, "relative_to_seasonal_naive": self.aggregate})


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _numbers(text: str) -> np.ndarray:
    """A history typed as numbers separated by spaces or commas."""
    cells = text.replace(",", " ").split()
    try:
        values = np.array([float(c) for c in cells], dtype=np.float64)
    except ValueError:
        bad = next(c for c in cells if not _is_number(c))
        raise ConfigError(f"prompt: {bad[:40]!r} is not a number (give the history)") from None
    if not np.isfinite(values).all():
        raise ConfigError("prompt: every value of the history must be a finite number")
    if len(values) < 2:
        raise ConfigError("prompt: give at least 2 values of history")
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
