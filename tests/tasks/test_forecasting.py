"""Forecasting (seq2seq/tasks/forecasting/): bins, series readers, held-out windows,
metrics and baselines on known values; then a tiny model trained through the CLI on
series made here, evaluated, forecast (CSV, plot, a horizon past the trained one) and
used from the shell."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from tasks.test_tasks import train

from seq2seq.config import ConfigError, Data
from seq2seq.data.readers import DataError
from seq2seq.tasks.forecasting import metrics
from seq2seq.tasks.forecasting.bins import Quantizer, Scale
from seq2seq.tasks.forecasting.series import Series, interpolate, read_csv
from seq2seq.tasks.forecasting.windows import SeriesOptions, held_out, read_windows, windows

# ---- bins ------------------------------------------------------------------------------


def test_values_come_back_within_half_a_bin():
    rng = np.random.default_rng(0)
    quantizer = Quantizer(512, -8.0, 8.0)
    for _ in range(20):
        context = rng.normal(rng.uniform(-100, 100), rng.uniform(0.1, 50), size=40)
        scale = Scale.of(context)
        back = quantizer.decode(quantizer.encode(context, scale).split(), scale)
        assert np.all(np.abs(back - context) <= quantizer.width / 2 * scale.scale + 1e-9)


def test_values_beyond_the_range_fall_in_the_edge_bins_and_odd_tokens_are_nan():
    quantizer = Quantizer(4, -1.0, 1.0)
    scale = Scale(0.0, 1.0)
    assert quantizer.encode(np.array([-50.0, 50.0]), scale) == "v0 v3"
    assert np.isnan(quantizer.decode(["v4", "x", "<unk>"], scale)).all()


def test_a_constant_context_has_a_scale_in_proportion_to_its_level():
    assert Scale.of(np.full(10, 200.0)) == Scale(200.0, 20.0)
    assert Scale.of(np.zeros(5)) == Scale(0.0, 1.0)
    quantizer = Quantizer(512, -8.0, 8.0)
    tokens = quantizer.encode(np.full(10, 200.0), Scale.of(np.full(10, 200.0))).split()
    assert set(tokens) == {"v256"}  # the centre: no NaN, no division by zero


# ---- series ----------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_gives_one_series_per_value_column(tmp_path: Path):
    path = write(tmp_path / "s.csv", "t,a,b\n1,1.5,10\n2,2.5,20\n3,3.5,30\n")
    a, b = read_csv(path, season=4, fill="error")
    assert (a.name, b.name, a.season) == ("s.csv:a", "s.csv:b", 4)
    assert a.values.tolist() == [1.5, 2.5, 3.5] and b.values.tolist() == [10, 20, 30]


@pytest.mark.parametrize(
    "body,message",
    [
        ("t,a\n1,1\n2,\n3,3\n", r"s\.csv:3: column 'a': missing value"),
        ("t,a\n1,1\n2,nan\n3,3\n", r"s\.csv:3: column 'a': missing value"),
        ("t,a\n1,1\n2,lots\n", r"s\.csv:3: column 'a': 'lots' is not a number"),
        ("t,a\n1,1\n2,inf\n", r"s\.csv:3: column 'a': 'inf' is not a finite number"),
        ("t,a\n1,1\n2,2,2\n", r"s\.csv:3: 3 cells, the header has 2"),
        ("t\n1\n", r"s\.csv:1: needs a header"),
        ("t,a\n1,1\n", r"column 'a' has fewer than 2 values"),
    ],
)
def test_bad_csv_cells_name_file_line_and_column(tmp_path: Path, body: str, message: str):
    with pytest.raises(DataError, match=message):
        read_csv(write(tmp_path / "s.csv", body), season=1, fill="error")


def test_interpolate_fills_inner_gaps_and_drops_unknown_ends(tmp_path: Path):
    values = np.array([np.nan, 1.0, np.nan, 3.0, np.nan, np.nan, 6.0, np.nan])
    assert interpolate(values).tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    path = write(tmp_path / "s.csv", "t,a\n1,\n2,1\n3,\n4,3\n")
    (series,) = read_csv(path, season=1, fill="interpolate")
    assert series.values.tolist() == [1.0, 2.0, 3.0]


def test_the_bundled_series_load_without_gaps():
    pytest.importorskip("statsmodels")
    from seq2seq.tasks.forecasting.series import bundled

    (co2,) = bundled("co2")
    assert co2.season == 52 and np.isfinite(co2.values).all() and len(co2) > 2000
    (elnino,) = bundled("elnino")
    assert len(elnino) == 61 * 12
    assert [s.name for s in bundled("macrodata/cpi")] == ["macrodata/cpi"]
    with pytest.raises(DataError, match="statsmodels:lynx is not one of"):
        bundled("lynx")


# ---- windows ---------------------------------------------------------------------------


def test_held_out_targets_are_never_in_a_training_window():
    values = np.arange(100, dtype=np.float64)  # each value names its position
    series = Series("s", values)
    opts = SeriesOptions(context=16, min_context=4, horizon=6)
    trained = {int(v) for w in windows(series, opts, "train") for v in [*w.context, *w.target]}
    _, valid = held_out(series, 6, "valid")
    history, test = held_out(series, 6, "test")
    assert valid.tolist() == list(range(88, 94)) and test.tolist() == list(range(94, 100))
    assert history.tolist() == list(range(94))
    assert trained == set(range(88))  # everything before the validation target, no more
    assert all(
        4 <= len(w.context) <= 16 and len(w.target) == 6 for w in windows(series, opts, "train")
    )


def test_a_series_too_short_is_one_line_naming_the_keys(tmp_path: Path):
    write(tmp_path / "s.csv", "t,a\n" + "".join(f"{i},{i}\n" for i in range(20)))
    data = Data(root=str(tmp_path), format="series", options=SeriesOptions(files="s.csv"))
    with pytest.raises(DataError, match=r"s\.csv:a: 20 values; it needs at least data\.series"):
        read_windows(data, "train", "train")


def test_min_context_above_context_is_refused():
    with pytest.raises(ConfigError, match=r"data\.series\.min_context: 9 is more than"):
        SeriesOptions(context=8, min_context=9)


# ---- metrics ---------------------------------------------------------------------------


def test_mase_and_wql_on_known_values():
    history = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # naive in-sample error: 1 per step
    actual = np.array([6.0, 7.0])
    assert metrics.mase(actual, actual, history, 1) == 0.0
    assert metrics.mase(actual, np.array([5.0, 5.0]), history, 1) == pytest.approx(1.5)
    # a point forecast's WQL is its absolute error over the absolute actuals
    point = np.array([5.0, 9.0])
    wql = metrics.wql(actual, metrics.point_quantiles(point))
    assert wql == pytest.approx(3.0 / 13.0)
    assert metrics.wql(actual, metrics.point_quantiles(actual)) == 0.0
    assert math.isnan(metrics.mase(actual, point, np.ones(5), 1))  # no in-sample change


def test_seasonal_naive_repeats_the_last_season():
    season = np.array([1.0, 5.0, 2.0, 8.0])
    history = np.tile(season, 5)
    forecast = metrics.seasonal_naive(history, 6, 4)
    assert forecast.tolist() == [1.0, 5.0, 2.0, 8.0, 1.0, 5.0]
    # a periodic series does not change at its season's lag: no MASE scale, NaN (not inf)
    assert math.isnan(metrics.mase(forecast, forecast, history, 4))
    assert metrics.seasonal_naive(history, 3, 1).tolist() == [8.0, 8.0, 8.0]


def test_geometric_mean_skips_what_it_cannot_average():
    assert metrics.geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert metrics.geometric_mean([2.0, math.nan, 0.0, 8.0]) == pytest.approx(4.0)
    assert math.isnan(metrics.geometric_mean([]))


def test_ets_follows_a_trend():
    pytest.importorskip("statsmodels")
    history = 10.0 + 0.5 * np.arange(60) + np.random.default_rng(0).normal(0, 0.1, 60)
    point, quantiles = metrics.ets(history, 5, 1)
    assert np.allclose(point, 10.0 + 0.5 * np.arange(60, 65), atol=0.5)
    assert quantiles.shape == (9, 5) and np.all(np.diff(quantiles, axis=0) >= 0)


# ---- end to end ------------------------------------------------------------------------


def series_csv(path: Path, length: int = 160) -> Path:
    t = np.arange(length)
    a = 50 + 10 * np.sin(2 * np.pi * t / 12) + 0.1 * t
    b = 5 + np.cos(2 * np.pi * t / 8)
    rows = "".join(f"{i},{x:.4f},{y:.4f}\n" for i, x, y in zip(t, a, b, strict=True))
    return write(path, "t,a,b\n" + rows)


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("series")
    series_csv(data / "s.csv")
    return train(
        tmp_path_factory,
        "forecasting/statsmodels_series.yaml",
        "forecast",
        data,
        "data.series.files=s.csv",
        "data.series.season=12",
        "data.series.horizon=6",
        "data.series.context=24",
        "search.nbest=8",
        "search.min_len=6",
        "search.max_len_b=6",
        "train.max_steps=30",
        "train.validate_every=30",
    )


@pytest.mark.slow
def test_evaluate_scores_every_series_against_the_baselines(
    forecast_run: Path, monkeypatch, capsys
):
    pytest.importorskip("statsmodels")
    monkeypatch.setenv("SEQ2SEQ_DATA", str(forecast_run.parent))
    args = ["evaluate", str(forecast_run), "--split", "test", "--json"]
    code, out, err = run_cli(args, "", monkeypatch, capsys)
    assert code == 0, err
    report = json.loads(out)
    assert [r["series"] for r in report["series"]] == ["s.csv:a", "s.csv:b"]
    for row in report["series"]:
        for method in ("ours", "naive", "seasonal_naive", "ets"):
            assert row[f"mase_{method}"] >= 0 and row[f"wql_{method}"] >= 0
    assert report["relative_to_seasonal_naive"]["mase_seasonal_naive"] == 1.0


@pytest.mark.slow
def test_forecast_writes_quantiles_a_plot_and_rolls_past_the_horizon(
    forecast_run: Path, tmp_path: Path, monkeypatch, capsys
):
    source = series_csv(tmp_path / "in.csv", length=50)
    out, png = tmp_path / "f.csv", tmp_path / "f.png"
    args = ["forecast", str(forecast_run), "--input", str(source), "--horizon", "15"]
    code, _, err = run_cli(
        [*args, "-n", "10", "-o", str(out), "--plot", str(png)], "", monkeypatch, capsys
    )
    assert code == 0, err
    lines = out.read_text().splitlines()
    assert lines[0].startswith("series,step,median,mean,q0.1")
    assert len(lines) == 1 + 2 * 15  # two series, 15 steps each (trained on 6: rolled)
    for line in lines[1:]:
        quantiles = [float(x) for x in line.split(",")[4:]]
        assert quantiles == sorted(quantiles) and all(math.isfinite(q) for q in quantiles)
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_forecast_refuses_bad_input_in_one_line(
    forecast_run: Path, tmp_path: Path, monkeypatch, capsys
):
    gap = write(tmp_path / "gap.csv", "t,a\n1,1\n2,\n3,3\n")
    cases = [
        (["--input", str(gap)], "gap.csv:3: column 'a': missing value (--fill interpolate"),
        (["--input", str(gap), "--horizon", "0"], "--horizon must be between"),
        (["--input", str(gap), "--plot", "x.jpg"], "name a .png file"),
    ]
    for extra, message in cases:
        code, out, err = run_cli(["forecast", str(forecast_run), *extra], "", monkeypatch, capsys)
        assert code == 2 and message in err and err.count("\n") == 1, err
        assert out == ""


@pytest.mark.slow
def test_the_shell_forecasts_a_typed_history(forecast_run: Path, monkeypatch, capsys):
    history = " ".join(f"{50 + 10 * math.sin(2 * math.pi * t / 12):.2f}" for t in range(30))
    args = ["shell", str(forecast_run), "nbest=1"]
    code, out, err = run_cli(args, history + "\nnot numbers\n", monkeypatch, capsys)
    assert code == 0, err
    first = out.splitlines()[0].split()
    assert len(first) == 6 and all(math.isfinite(float(v)) for v in first)
    assert "'not' is not a number" in err
