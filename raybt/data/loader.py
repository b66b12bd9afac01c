"""Loading and validating one asset's OHLC(V) bars from CSV or Parquet.

Result: a DataFrame indexed by a tz-aware UTC ``DatetimeIndex`` named
``timestamp`` with float64 columns ``open, high, low, close, volume`` (volume
0.0 when the file has none). Column names are matched case-insensitively
(``Open``/``open``/``OPEN``, ``vol``/``volume``); the time column is
``timestamp``/``date``/``datetime``/``time`` or the first unnamed column.
Naive times are UTC; numeric times are Unix epoch seconds, or milliseconds
when above 1e11.

Every problem raises :class:`~raybt.errors.DataError` with one line naming
the file, the column and the first bad row, counted as *data rows* from 1 (the
first row under the CSV header is ``data row 1``, i.e. CSV line 2 when the
file has no blank lines; for Parquet the first record), e.g.
``data/x.csv: column 'high', data row 17 (2024-01-01 01:20:00+00:00): high 1.099 < low 1.1``.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from raybt.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
COLUMNS = PRICE_COLUMNS + ("volume",)
_ALIASES = {"open": ("open", "o"), "high": ("high", "h"), "low": ("low", "l"),
            "close": ("close", "c"), "volume": ("volume", "vol", "v")}
_TIME_NAMES = ("timestamp", "date", "datetime", "time")


# the range of nanosecond timestamps (pandas' DatetimeIndex[ns])
_MIN_TIME = pd.Timestamp.min.tz_localize("UTC")
_MAX_TIME = pd.Timestamp.max.tz_localize("UTC")


def _num(value) -> str:
    """A value for a message: ``1.099`` rather than ``np.float64(1.099)``."""
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return repr(value)


def _fail(source, column, row, stamp, message):
    where = f"column '{column}', " if column else ""
    at = f"data row {row}" if row is not None else ""
    if stamp is not None and at:
        at += f" ({stamp})"
    raise DataError(f"{source}: {where}{at}: {message}" if at else f"{source}: {where}{message}")


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, skipinitialspace=True)
            if not isinstance(frame.index, pd.RangeIndex):
                # pandas took the first column as the index: data rows have more fields than the header
                raise DataError(f"{path}: data row 1 has more fields than the header "
                                f"({len(frame.columns)} column names); a stray comma or a missing column name?")
            return frame
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            if isinstance(frame.index, pd.DatetimeIndex) or frame.index.name:
                frame = frame.reset_index()
            return frame
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file (no header, no rows)") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: cannot parse file: not UTF-8 text (a binary or differently encoded file?)") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", first)
        if fields:
            want, line, saw = fields.groups()
            raise DataError(f"{path}: CSV line {line}: expected {want} fields (as in the header), "
                            f"saw {saw}") from None
        quote = re.search(r"EOF inside string starting at row (\d+)", first)
        if quote:
            raise DataError(f"{path}: CSV line {int(quote.group(1)) + 1}: unclosed quote (\") runs to the end "
                            f"of the file") from None
        if isinstance(exc, OSError) and exc.strerror:
            first = exc.strerror
        raise DataError(f"{path}: cannot parse file: {first}") from None
    except Exception as exc:  # pyarrow raises its own types for corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read file: {first}") from None
    raise DataError(f"{path}: unsupported file type '{suffix}' (use .csv, .parquet or .pq)")


def load_bars(path) -> pd.DataFrame:
    """Load, normalise and validate one asset's bars (see module docstring)."""
    path = Path(path)
    try:
        if not path.exists():
            raise DataError(f"{path}: file not found")
        if path.is_dir():
            raise DataError(f"{path}: is a folder, expected a CSV or Parquet file")
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file (0 bytes)")
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or type(exc).__name__})") from None
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
    known = set(_TIME_NAMES).union(*_ALIASES.values())
    for n in names:
        mangled = re.fullmatch(r"(.+)\.\d+", n)  # pandas renames a repeated header 'close' to 'close.1'
        if mangled and mangled.group(1) in names and mangled.group(1).strip().lower() in known:
            raise DataError(f"{source}: duplicate column '{mangled.group(1)}' in the header")
    for col, aliases in _ALIASES.items():
        same = [n for n in names if n.strip().lower() in aliases]
        if len(same) > 1:
            raise DataError(f"{source}: columns {', '.join(repr(n) for n in same)} all mean '{col}'; keep one")
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
        limit = 9.2e12 if unit == "ms" else 9.2e9  # ~years 1678..2261, the range of ns timestamps
        bad = ~np.isfinite(values) | (np.abs(values) > limit)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            _fail(source, column, row + 1, None, f"epoch timestamp out of range: {_num(values[row])}")
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
    try:
        return pd.DatetimeIndex(parsed).as_unit("ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        bad = np.array([not (_MIN_TIME <= t <= _MAX_TIME) for t in parsed], dtype=bool)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        _fail(source, column, row + 1, None, f"timestamp {text.iloc[row]!r} out of range "
                                             f"({_MIN_TIME.year + 1}..{_MAX_TIME.year - 1})")
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
    try:
        stamps = stamps.as_unit("ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        i = next(k for k, t in enumerate(stamps) if not (_MIN_TIME <= t <= _MAX_TIME))
        _fail(source, time_col, i + 1, None, f"timestamp {str(stamps[i])!r} out of range "
                                             f"({_MIN_TIME.year + 1}..{_MAX_TIME.year - 1})")
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
            _fail(source, cols[col], i + 1, shown(i), f"non-positive price {_num(values[col][i])}")
    o, h, lo, c = (values[k] for k in PRICE_COLUMNS)
    bad = h < lo
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, cols["high"], i + 1, shown(i), f"high {_num(h[i])} < low {_num(lo[i])}")
    bad = h < np.maximum(o, c)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, cols["high"], i + 1, shown(i), f"high {_num(h[i])} below open/close {_num(max(o[i], c[i]))}")
    bad = lo > np.minimum(o, c)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, cols["low"], i + 1, shown(i), f"low {_num(lo[i])} above open/close {_num(min(o[i], c[i]))}")
    bad = values["volume"] < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, cols["volume"], i + 1, shown(i), f"negative volume {_num(values['volume'][i])}")
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
