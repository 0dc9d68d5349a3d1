"""``seq2seq forecast RUN --input series.csv``: the forecasting task's own verb."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from seq2seq.config import ConfigError, format_options
from seq2seq.tasks.base import Command
from seq2seq.tasks.forecasting.forecast import (
    Forecast,
    check_request,
    plot,
    sample_paths,
    write_csv,
)
from seq2seq.tasks.forecasting.series import read_csv
from seq2seq.tasks.forecasting.windows import SeriesOptions

if TYPE_CHECKING:
    from seq2seq.inference import Translator


def _forecast_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="CSV: a time column, then value columns")
    p.add_argument("--horizon", type=int, help="values to forecast (default: the trained one)")
    p.add_argument("-n", "--samples", type=int, default=100, help="sample paths per series")
    p.add_argument("-o", "--output", help="CSV of median, mean and quantiles (default stdout)")
    p.add_argument("--plot", help="PNG of history, median and the 10-90%% band")
    p.add_argument(
        "--fill", choices=["error", "interpolate"], default="error", help="missing values"
    )


def _check_forecast(args: argparse.Namespace) -> None:
    check_request(1 if args.horizon is None else args.horizon, args.samples)
    if args.plot and not args.plot.lower().endswith(".png"):
        raise ConfigError(f"--plot {args.plot}: name a .png file")


def _forecast(translator: Translator, args: argparse.Namespace) -> int:
    """``seq2seq forecast RUN --input series.csv [--horizon H] [-n N] [-o F] [--plot P]``."""
    opts = format_options(translator.recipe.data, SeriesOptions)
    series = read_csv(Path(args.input), 1, args.fill, fill_key="--fill interpolate")
    horizon = args.horizon or opts.horizon
    histories = [s.values for s in series]
    paths = sample_paths(translator, opts, histories, horizon, args.samples)
    forecasts = [Forecast(s.name, s.values, p) for s, p in zip(series, paths, strict=True)]
    write_csv(args.output, forecasts, [args.input])
    if args.plot:
        plot(Path(args.plot), forecasts)
    return 0


FORECAST = Command(
    "forecast",
    "forecasting: sample paths for each series of a CSV; quantiles, a CSV and a plot",
    _forecast_arguments,
    _forecast,
    _check_forecast,
)
