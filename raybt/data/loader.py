"""Loading and validating one asset's OHLC(V) bars from CSV or Parquet.

Result: a DataFrame indexed by a tz-aware UTC ``DatetimeIndex`` named
``timestamp`` with float64 columns ``open, high, low, close, volume`` (volume
0.0 when the file has none). Column names are matched case-insensitively
(``Open``/``open``/``OPEN``, ``vol``/``volume``); the time column is
``timestamp``/``date``/``datetime``/``time`` or the first unnamed column.
Naive times are UTC; numeric times are Unix epoch seconds, or milliseconds
when above 1e11.

Every problem raises :class:`~raybt.errors.DataError` with one line naming
the file, the column and the first bad row (1-based data row, the first row
under the header being row 1), e.g.
``data/x.csv: column 'high', row 17 (2024-01-01 01:20:00+00:00): high 1.099 < low 1.1``.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pandas as pd

from raybt.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
COLUMNS = PRICE_COLUMNS + ("volume",)
_ALIASES = {"open": ("open", "o"), "high": ("high", "h"), "low": ("low", "l"),
            "close": ("close", "c"), "volume": ("volume", "vol", "v")}
_TIME_NAMES = ("timestamp", "date", "datetime", "time")


def _fail(source, column, row, stamp, message):
    where = f"column '{column}', " if column else ""
    at = f"row {row}" if row is not None else ""
    if stamp is not None and at:
        at += f" ({stamp})"
    raise DataError(f"{source}: {where}{at}: {message}" if at else f"{source}: {where}{message}")


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, skipinitialspace=True)
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            if isinstance(frame.index, pd.DatetimeIndex) or frame.index.name:
                frame = frame.reset_index()
            return frame
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot parse file: {first}") from None
    except Exception as exc:  # pyarrow raises its own types for corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read file: {first}") from None
    raise DataError(f"{path}: unsupported file type '{suffix}' (use .csv, .parquet or .pq)")


def load_bars(path) -> pd.DataFrame:
    """Load, normalise and validate one asset's bars (see module docstring)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a CSV or Parquet file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    return validate_bars(_read(path), str(path))


def _find_columns(frame: pd.DataFrame, source: str) -> tuple[str, dict]:
    names = [str(c) for c in frame.columns]
    lower = {n.strip().lower(): n for n in names}
    time_col = next((lower[t] for t in _TIME_NAMES if t in lower), None)
    if time_col is None and names and (names[0].startswith("Unnamed") or names[0].strip() == ""):
        time_col = names[0]
    if time_col is None:
        raise DataError(f"{source}: missing timestamp column (one of {', '.join(_TIME_NAMES)}; "
                        f"columns: {', '.join(names)})")
    found = {}
    for col in COLUMNS:
        match = next((lower[a] for a in _ALIASES[col] if a in lower), None)
        if match is None and col != "volume":
            unused = [n for n in names if n != time_col]
            close = difflib.get_close_matches(col, [n.lower() for n in unused], n=1, cutoff=0.6)
            hint = ""
            if close:
                hint = f"; did you mean '{next(n for n in unused if n.lower() == close[0])}'?"
            raise DataError(f"{source}: missing column '{col}' (columns: {', '.join(names)}{hint})")
        if match is not None:
            found[col] = match
    return time_col, found


def _one_time(text):
    try:
        return pd.Timestamp(text).tz_localize("UTC") if pd.Timestamp(text).tzinfo is None else pd.Timestamp(text).tz_convert("UTC")
    except (ValueError, OverflowError, TypeError):
        return pd.NaT


def _parse_times(raw: pd.Series, source: str, column: str) -> pd.DatetimeIndex:
    if raw.isna().any():
        row = int(np.flatnonzero(raw.isna().to_numpy())[0]) + 1
        _fail(source, column, row, None, "missing timestamp")
    if pd.api.types.is_datetime64_any_dtype(raw):
        stamps = pd.DatetimeIndex(raw)
        return stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.to_numpy(dtype=np.float64)
        unit = "ms" if np.nanmax(np.abs(values)) > 1e11 else "s"
        limit = 9.2e15 if unit == "ms" else 9.2e12  # ~year 2262, the end of ns timestamps
        bad = ~np.isfinite(values) | (np.abs(values) > limit)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            _fail(source, column, row + 1, None, f"epoch timestamp out of range: {values[row]!r}")
        return pd.DatetimeIndex(pd.to_datetime(values, unit=unit, utc=True))
    text = raw.astype(str).str.strip()
    try:
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        if parsed.isna().any():
            parsed = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        parsed = pd.Series([_one_time(x) for x in text], index=text.index)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        _fail(source, column, row + 1, None, f"cannot parse timestamp {text.iloc[row]!r}")
    return pd.DatetimeIndex(parsed)


def validate_bars(frame: pd.DataFrame, source: str = "bars") -> pd.DataFrame:
    """Normalise columns and check every rule; return the loader's frame format."""
    if len(frame.columns) == 0 or len(frame) == 0:
        raise DataError(f"{source}: empty file (no rows)")
    if isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.reset_index()
    time_col, cols = _find_columns(frame, source)
    stamps = _parse_times(frame[time_col], source, time_col)
    shown = lambda i: stamps[i]  # noqa: E731 - timestamp of a positional row
    values = {}
    for col in COLUMNS:
        if col not in cols:
            values[col] = np.zeros(len(frame))
            continue
        raw = frame[cols[col]]
        numeric = pd.to_numeric(raw, errors="coerce") if not pd.api.types.is_numeric_dtype(raw) else raw
        bad = numeric.isna().to_numpy() & raw.notna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            _fail(source, cols[col], i + 1, shown(i), f"not a number: {raw.iloc[i]!r}")
        arr = numeric.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            _fail(source, cols[col], i + 1, shown(i), f"{'missing value (NaN)' if np.isnan(arr[i]) else 'infinite value'}")
        values[col] = arr
    stamps = stamps.as_unit("ns")
    ns = stamps.asi8
    step = np.diff(ns)
    if (step == 0).any():
        i = int(np.flatnonzero(step == 0)[0]) + 1
        _fail(source, time_col, i + 1, shown(i), "duplicate timestamp")
    if (step < 0).any():
        i = int(np.flatnonzero(step < 0)[0]) + 1
        _fail(source, time_col, i + 1, shown(i), f"timestamps not sorted (earlier than row {i})")
    for col in PRICE_COLUMNS:
        bad = values[col] <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            _fail(source, cols[col], i + 1, shown(i), f"non-positive price {values[col][i]!r}")
    o, h, lo, c = (values[k] for k in PRICE_COLUMNS)
    bad = h < lo
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, cols["high"], i + 1, shown(i), f"high {h[i]!r} < low {lo[i]!r}")
    bad = h < np.maximum(o, c)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, cols["high"], i + 1, shown(i), f"high {h[i]!r} below open/close {max(o[i], c[i])!r}")
    bad = lo > np.minimum(o, c)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, cols["low"], i + 1, shown(i), f"low {lo[i]!r} above open/close {min(o[i], c[i])!r}")
    bad = values["volume"] < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, cols["volume"], i + 1, shown(i), f"negative volume {values['volume'][i]!r}")
    out = pd.DataFrame({k: np.ascontiguousarray(values[k]) for k in COLUMNS},
                       index=pd.DatetimeIndex(stamps, name="timestamp").as_unit("ns"))
    return out


def save_bars(df: pd.DataFrame, path, fmt: str | None = None) -> None:
    """Write bars as CSV or Parquet (``fmt``, default from the extension)."""
    path = Path(path)
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "parquet")
    if fmt == "csv":
        df.to_csv(path, index_label="timestamp")
    else:
        df.to_parquet(path)
