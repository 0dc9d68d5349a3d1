"""Forecast scores and the baselines they are compared with, as the Chronos benchmark
(Ansari et al. 2024) reports them.

- MASE: mean absolute error of the point forecast (our median) over the horizon, divided
  by the mean absolute error of seasonal naive within the history (lag = the season;
  lag 1 where the history is not longer than a season).
- WQL: the weighted quantile loss over the quantiles 0.1 ... 0.9: for each, twice the
  summed pinball loss over the horizon divided by the summed absolute actual values; then
  their mean. A point forecast (naive, seasonal naive) uses its point for every quantile.
- Aggregate: per method, the geometric mean over series of its score divided by seasonal
  naive's on that series (below 1 beats seasonal naive).

Baselines: naive (the last value), seasonal naive (the last season repeated) and ETS:
statsmodels' ETSModel with additive errors, the best by AIC of no trend / additive trend
/ damped additive trend, each without and (where the history holds two seasons) with
additive seasonality; its quantiles from 500 simulated paths.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def mase(actual: np.ndarray, point: np.ndarray, history: np.ndarray, season: int) -> float:
    """actual, point (H,); history (T,). NaN where the history never changes at the lag."""
    lag = season if len(history) > season else 1
    scale = float(np.mean(np.abs(history[lag:] - history[:-lag])))
    if scale == 0.0:
        return math.nan
    return float(np.mean(np.abs(actual - point))) / scale


def wql(actual: np.ndarray, quantiles: np.ndarray) -> float:
    """actual (H,); quantiles (Q, H) at QUANTILES. NaN where the actual values are all 0."""
    total = float(np.sum(np.abs(actual)))
    if total == 0.0:
        return math.nan
    losses = []
    for q, predicted in zip(QUANTILES, quantiles, strict=True):
        error = actual - predicted
        losses.append(2.0 * float(np.sum(np.maximum(q * error, (q - 1.0) * error))) / total)
    return float(np.mean(losses))


def sample_quantiles(paths: np.ndarray) -> np.ndarray:
    """(N, H) sample paths -> (Q, H) quantiles at QUANTILES."""
    return np.quantile(paths, QUANTILES, axis=0)


def point_quantiles(point: np.ndarray) -> np.ndarray:
    return np.tile(point, (len(QUANTILES), 1))


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    return np.full(horizon, history[-1], dtype=np.float64)


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    if season <= 1 or len(history) < season:
        return naive(history, horizon)
    last = history[-season:]
    return np.array([last[i % season] for i in range(horizon)], dtype=np.float64)


def ets(history: np.ndarray, horizon: int, season: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ETS by AIC (module docstring): (point (H,), quantiles (Q, H))."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    seasonal = [None, "add"] if season > 1 and len(history) >= 2 * season + 2 else [None]
    trends = [(None, False), ("add", False), ("add", True)]
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from the optimiser
        for trend, damped in trends:
            for kind in seasonal:
                try:
                    fitted = ETSModel(
                        history,
                        error="add",
                        trend=trend,
                        damped_trend=damped,
                        seasonal=kind,
                        seasonal_periods=season if kind else None,
                    ).fit(disp=False)
                except (ValueError, np.linalg.LinAlgError):
                    continue
                if math.isfinite(fitted.aic) and (best is None or fitted.aic < best.aic):
                    best = fitted
        if best is None:  # nothing fitted: the naive forecast, honestly labelled as ETS's
            point = naive(history, horizon)
            return point, point_quantiles(point)
        point = np.asarray(best.forecast(horizon), dtype=np.float64)
        paths = best.simulate(horizon, anchor="end", repetitions=500, rng=np.random.default_rng(0))
    return point, np.quantile(np.asarray(paths).T, QUANTILES, axis=0)


def geometric_mean(values: list[float]) -> float:
    """Of the finite positive values; NaN if there are none."""
    kept = [v for v in values if math.isfinite(v) and v > 0]
    if not kept:
        return math.nan
    return math.exp(sum(math.log(v) for v in kept) / len(kept))
