"""Series for forecasting: the ones bundled with statsmodels, and a user's CSV.

A ``Series`` is a name, its values (float64, oldest first, no gaps) and its season (the
period seasonal naive uses: 52 for weekly, 12 monthly, 4 quarterly, 1 where there is
none). Sources, as ``data.series.files`` names them (comma-separated):

- ``statsmodels:NAME`` or ``statsmodels:NAME/COLUMN``: a data set shipped inside the
  statsmodels package (no download; each is public domain, as its module's COPYRIGHT
  says): co2 (weekly Mauna Loa CO2, 1958-2001), elnino (monthly sea surface temperature,
  1950-2010), sunspots (yearly, 1700-2008), nile (yearly Nile flow, 1871-1970),
  macrodata/COLUMN (quarterly US macro series, 1959-2009), interest_inflation/COLUMN
  (quarterly German inflation and interest, 1972-1998);
- a CSV file under ``data.root``: a header line, a time column first, then one or more
  value columns, each a series named ``FILE:COLUMN`` with season ``data.series.season``.

Missing values: statsmodels' co2 has 59 missing weeks, filled by linear interpolation
(as statsmodels' own examples do). In a CSV an empty, NaN or non-numeric cell is an error
naming file, line and column, unless ``data.series.fill: interpolate``, which fills a gap
between two known values linearly and drops unknown values at either end.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seq2seq.data.readers import DataError, data_root, iter_lines

# name -> (season, columns read when none is named); elnino is reshaped year x month
BUNDLED: dict[str, tuple[int, tuple[str, ...]]] = {
    "co2": (52, ("co2",)),
    "elnino": (12, ("temperature",)),
    "sunspots": (1, ("SUNACTIVITY",)),
    "nile": (1, ("volume",)),
    "macrodata": (4, ("realgdp", "cpi", "unemp", "tbilrate", "infl", "m1")),
    "interest_inflation": (4, ("Dp", "R")),
}


@dataclass(frozen=True)
class Series:
    name: str
    values: np.ndarray  # (T,) float64, finite
    season: int = 1

    def __len__(self) -> int:
        return len(self.values)


def load_series(root: str, files: str, season: int, fill: str) -> list[Series]:
    """Every series ``files`` names (comma-separated sources, see the module docstring)."""
    found: list[Series] = []
    for source in [s.strip() for s in files.split(",") if s.strip()]:
        if source.startswith("statsmodels:"):
            found += bundled(source.removeprefix("statsmodels:"))
        else:
            found += read_csv(data_root(root) / source, season, fill)
    if not found:
        raise DataError("data.series.files: names no series")
    return found


def bundled(spec: str) -> list[Series]:
    """``NAME`` (its default columns) or ``NAME/COLUMN`` of statsmodels' data sets."""
    name, _, column = spec.partition("/")
    if name not in BUNDLED:
        known = ", ".join(sorted(BUNDLED))
        raise DataError(f"data.series.files: statsmodels:{name} is not one of {known}")
    try:
        from statsmodels import datasets
    except ImportError:
        raise DataError(
            "data.series.files: statsmodels:* needs the statsmodels package "
            "(pip install 'seq2seq[forecast]')"
        ) from None
    season, defaults = BUNDLED[name]
    frame = getattr(datasets, name).load_pandas().data
    if name == "elnino":  # one row per year, one column per month
        values = frame.drop(columns="YEAR").to_numpy(dtype=np.float64).reshape(-1)
        return [Series("elnino", values, season)]
    columns = (column,) if column else defaults
    out = []
    for col in columns:
        if col not in frame.columns:
            raise DataError(
                f"data.series.files: statsmodels:{name} has no column {col!r} "
                f"(it has {', '.join(map(str, frame.columns))})"
            )
        values = frame[col].to_numpy(dtype=np.float64)
        label = name if len(defaults) == 1 and not column else f"{name}/{col}"
        out.append(Series(label, interpolate(values), season))
    return out


def read_csv(
    path: Path, season: int, fill: str, fill_key: str = "data.series.fill: interpolate"
) -> list[Series]:
    """A CSV: header, time column, value columns -> one series per value column
    (``fill_key``: how the caller's user asks for gaps to be filled)."""
    rows = list(csv.reader(iter_lines(path)))
    if not rows or len(rows[0]) < 2:
        raise DataError(f"{path}:1: needs a header: a time column, then value columns")
    header = [h.strip() for h in rows[0]]
    columns: list[list[float]] = [[] for _ in header[1:]]
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(f"{path}:{number}: {len(row)} cells, the header has {len(header)}")
        for j, cell in enumerate(row[1:]):
            where = f"{path}:{number}: column {header[j + 1]!r}"
            columns[j].append(_number(cell, fill, where, fill_key))
    series = []
    for name, values in zip(header[1:], columns, strict=True):
        filled = interpolate(np.array(values, dtype=np.float64))
        if len(filled) < 2:
            raise DataError(f"{path}: column {name!r} has fewer than 2 values")
        series.append(Series(f"{path.name}:{name}", filled, season))
    return series


def _number(cell: str, fill: str, where: str, fill_key: str) -> float:
    text = cell.strip()
    try:
        value = float(text) if text else math.nan
    except ValueError:
        raise DataError(f"{where}: {text[:40]!r} is not a number") from None
    if math.isinf(value):
        raise DataError(f"{where}: {text[:40]!r} is not a finite number")
    if math.isnan(value) and fill != "interpolate":
        raise DataError(f"{where}: missing value ({fill_key} fills gaps linearly)")
    return value


def interpolate(values: np.ndarray) -> np.ndarray:
    """Gaps (NaN) between known values filled linearly; unknown ends dropped."""
    known = np.flatnonzero(~np.isnan(values))
    if known.size == 0:
        return values[:0]
    values = values[known[0] : known[-1] + 1]
    missing = np.isnan(values)
    if missing.any():
        index = np.arange(len(values))
        values = values.copy()
        values[missing] = np.interp(index[missing], index[~missing], values[~missing])
    return values
