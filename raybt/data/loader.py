"""Loading and validating one asset's OHLC(V) bars from CSV, Parquet or a DataFrame.

Result: a DataFrame indexed by a tz-aware UTC ``DatetimeIndex[ns]`` named
``timestamp`` with float64 columns ``open, high, low, close, volume`` (volume
0.0 when the data has none). Column names are matched case-insensitively,
ignoring surrounding spaces and ``<>`` (``Open``/``open``/``<OPEN>``,
``vol``/``volume``); the time column is ``timestamp``/``date``/``datetime``/
``time``/``gmt time`` or the first unnamed column, and separate ``Date`` and
``Time`` columns (``2019.01.02,00:05`` as MetaTrader writes them) are combined
into one timestamp. Naive times are UTC; numeric times are Unix epoch
seconds, or milliseconds when above 1e11, except integers that all read as
``yyyymmdd`` dates (``20190102``). Tab-separated files (MetaTrader 5
exports) are recognised from their header line.

Dates written ``dd/mm/yyyy`` or ``mm/dd/yyyy`` (also with ``.`` or ``-``) are
read in the order the file itself settles (a row with a day above 12 in one
position decides it for the whole column); when no row settles it the column
is refused as ambiguous unless a ``timestamp_format`` (strptime, e.g.
``%d/%m/%Y %H:%M``) is given, which then parses every row.

Every problem raises :class:`~raybt.errors.DataError` with one line naming
the file (or ``asset NAME`` for a DataFrame), the column and the first bad
row, counted as *data rows* from 1 (the first row under the CSV header is
``data row 1``, i.e. CSV line 2 when the file has no blank lines; for Parquet
the first record, for a DataFrame its first row), e.g.
``data/x.csv: column 'high', data row 17 (2024-01-01 01:20:00+00:00): high 1.099 < low 1.1``.

:func:`validate_frame` applies the same rules to a DataFrame handed to the
Python API (timestamps in its ``DatetimeIndex``) and returns exactly the frame
the same data gives through a file, viewing the caller's columns where they
already are contiguous float64 (no copy).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from raybt.data.dates import _MAX_TIME, _MIN_TIME, _TIME_OF_DAY, _file_times
from raybt.data.messages import _col, _fail, _num, _shown
from raybt.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
COLUMNS = PRICE_COLUMNS + ("volume",)
_ALIASES = {"open": ("open", "o"), "high": ("high", "h"), "low": ("low", "l"),
            "close": ("close", "c"), "volume": ("volume", "vol", "v")}
_TIME_NAMES = ("timestamp", "date", "datetime", "time", "gmt time")


# the range of nanosecond timestamps (pandas' DatetimeIndex[ns])

# d/m/y or m/d/y dates (also with '.' or '-'), optionally followed by a time part
# a time of day alone, as in a separate Time column


def _norm(name) -> str:
    """A column name as matched: ``' <Close> '`` -> ``close``."""
    return str(name).strip().lower().strip("<>").strip()


def _sniff_separator(path: Path) -> str:
    """``\\t`` for a tab-separated file (a header with tabs and no comma), else ``,``."""
    try:
        with open(path, "rb") as handle:
            head = handle.readline(1 << 16)
    except OSError:
        return ","
    return "\t" if b"\t" in head and b"," not in head else ","


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            frame = pd.read_csv(path, skipinitialspace=True, sep=_sniff_separator(path))
            if not isinstance(frame.index, pd.RangeIndex):
                # pandas took the first column as the index: data rows have more fields than the header
                raise DataError(f"{path}: data row 1 has more fields than the header "
                                f"({len(frame.columns)} column names); a stray comma or a missing column name?")
            return frame
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            if isinstance(frame.index, pd.DatetimeIndex) and frame.index.name is None \
                    and "timestamp" not in frame.columns:
                frame.index = frame.index.rename("timestamp")  # an unnamed DatetimeIndex holds the times
            if isinstance(frame.index, (pd.DatetimeIndex, pd.MultiIndex)) or frame.index.name:
                frame = frame.reset_index()  # index levels become columns (the time may be one of them)
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
    raise DataError(f"{path}: unsupported file type '{suffix}' (use .csv, .tsv, .parquet or .pq)")


def load_bars(path, *, timestamp_format: str | None = None) -> pd.DataFrame:
    """Load, normalise and validate one asset's bars (see module docstring).

    ``timestamp_format``: a strptime format for the time column (e.g.
    ``%d/%m/%Y %H:%M``); it settles day/month order and parses every row.
    """
    path = Path(path)
    try:
        if not path.exists():
            raise DataError(f"{path}: file not found")
        if path.is_dir():
            raise DataError(f"{path}: is a folder, expected a CSV or Parquet file")
        if not path.is_file():
            raise DataError(f"{path}: not a regular file (a named pipe or a device?), expected a CSV or Parquet file")
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file (0 bytes)")
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or type(exc).__name__})") from None
    return validate_bars(_read(path), str(path), timestamp_format=timestamp_format)


# --- columns -----------------------------------------------------------------------------

def _price_columns(frame: pd.DataFrame, source: str, exclude=(), missing=None) -> dict:
    """``{open/high/low/close[/volume]: column name}``; DataError for a missing or repeated one.

    ``missing(col, names, hint)`` words the error for a missing column.
    """
    names = list(frame.columns)
    shown = [str(n) for n in names]
    known = set(_TIME_NAMES).union(*_ALIASES.values())
    for n in shown:
        mangled = re.fullmatch(r"(.+)\.\d+", n)  # pandas renames a repeated header 'close' to 'close.1'
        if mangled and mangled.group(1) in shown and _norm(mangled.group(1)) in known:
            raise DataError(f"{source}: duplicate column '{mangled.group(1)}' in the header")
    for col, aliases in _ALIASES.items():
        same = [n for n in shown if _norm(n) in aliases]
        if len(same) > 1:
            if len(set(same)) == 1:
                raise DataError(f"{source}: duplicate column '{same[0]}'")
            raise DataError(f"{source}: columns {', '.join(repr(n) for n in same)} all mean '{col}'; keep one")
    lower = {_norm(n): n for n in names}
    found = {}
    for col in COLUMNS:
        match = next((lower[a] for a in _ALIASES[col] if a in lower), None)
        if match is None and col != "volume":
            unused = [str(n) for n in names if n not in exclude]
            close = difflib.get_close_matches(col, [n.lower() for n in unused], n=1, cutoff=0.6)
            hint = ""
            if close:
                hint = f"; did you mean '{next(n for n in unused if n.lower() == close[0])}'?"
            if missing is not None:
                missing(col, unused, hint)
            raise DataError(f"{source}: missing column '{col}' (columns: {', '.join(shown)}{hint})")
        if match is not None:
            found[col] = match
    return found


def _time_columns(frame: pd.DataFrame, source: str) -> tuple:
    """The time column(s): ``(name,)``, or ``(date, time)`` for separate Date and Time columns."""
    names = list(frame.columns)
    lower = {}
    for n in names:
        lower.setdefault(_norm(n), n)
    if "timestamp" not in lower and "datetime" not in lower and "gmt time" not in lower \
            and "date" in lower and "time" in lower:
        date, time = frame[lower["date"]], frame[lower["time"]]
        first_time = str(time.iloc[0]).strip() if len(time) and not pd.isna(time.iloc[0]) else ""
        first_date = str(date.iloc[0]).strip() if len(date) and not pd.isna(date.iloc[0]) else ""
        if _TIME_OF_DAY.match(first_time) and ":" not in first_date:
            return lower["date"], lower["time"]
    time_col = next((lower[t] for t in _TIME_NAMES if t in lower), None)
    counter = bool(names) and _row_counter(frame[names[0]])
    if time_col is None and names and (str(names[0]).startswith("Unnamed") or str(names[0]).strip() == "") \
            and not counter:
        time_col = names[0]
    if time_col is None:
        shown = [str(n) for n in names]
        hint = ""
        if shown and re.match(r"^\s*\d", shown[0]):
            hint = "; the file has no header line? add one, e.g. Date,Time,Open,High,Low,Close,Volume"
        elif counter:
            hint = (f"; the first column counts the rows 0, 1, 2, ... (a pandas index written by to_csv), "
                    f"name the time column timestamp")
        raise DataError(f"{source}: missing timestamp column (one of {', '.join(_TIME_NAMES)}; "
                        f"columns: {', '.join(shown)}{hint})")
    return (time_col,)


def _row_counter(column: pd.Series) -> bool:
    """Integers counting the rows from 0 or 1: a written index, not times."""
    if not pd.api.types.is_integer_dtype(column) or pd.api.types.is_bool_dtype(column) or not len(column):
        return False
    values = column.to_numpy(dtype=np.int64)
    return values[0] in (0, 1) and bool((np.diff(values) == 1).all())


# --- timestamps ----------------------------------------------------------------------------


# --- values and rules ----------------------------------------------------------------------

def _float_or_nan(value) -> float:
    try:
        return float(value)
    except (OverflowError, TypeError, ValueError):
        return float("nan")


def _is_plain_number(dtype) -> bool:
    return (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            and not pd.api.types.is_complex_dtype(dtype))


def _float_values(raw: pd.Series, source: str, where: str, stamps) -> np.ndarray:
    """A price/volume column as float64 (a view when it already is contiguous float64)."""
    if isinstance(raw.dtype, pd.CategoricalDtype):  # its values, as Parquet gives them back
        raw = pd.Series(np.asarray(raw), index=raw.index, name=raw.name)
    dtype = raw.dtype
    if _is_plain_number(dtype):
        numeric = raw
    elif pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        try:
            numeric = pd.to_numeric(raw, errors="coerce")
        except (OverflowError, TypeError, ValueError):  # e.g. a Python int beyond float range
            numeric = pd.Series([_float_or_nan(v) for v in raw], index=raw.index, dtype=np.float64)
        bad = numeric.isna().to_numpy() & raw.notna().to_numpy()
        if pd.api.types.is_object_dtype(dtype):  # True/False are not prices (nor are they in a CSV file)
            bad |= raw.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            _fail(source, where, i + 1, stamps[i], f"not a number: {_shown(raw.iloc[i])}")
        if not _is_plain_number(numeric.dtype):
            _fail(source, where, 1, stamps[0], f"not a number: {_shown(raw.iloc[0])}")
    else:
        _fail(source, where, 1, stamps[0], f"not a number: {_shown(raw.iloc[0])} (a {dtype} column)")
    if isinstance(numeric.dtype, np.dtype):
        arr = numeric.to_numpy(dtype=np.float64)
    else:  # nullable / Arrow-backed numbers: missing values become NaN
        arr = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.ascontiguousarray(arr)


def _check_rules(stamps: pd.DatetimeIndex, raw_columns: dict, source: str, time_where: str) -> pd.DataFrame:
    """Every rule on UTC ``stamps`` and the raw OHLC(V) Series; the loader's frame.

    The rules, in the order their errors win: per column in ``COLUMNS`` order, a
    value that is not a number, then NaN/infinite (so a NaN in ``open`` beats
    text in ``close``); then duplicate, unsorted timestamps; a non-positive
    price per price column; a price outside ``PRICE_MIN..PRICE_MAX`` per price
    column; high < low; high < max(open, close); low >
    min(open, close); negative volume. Each error names its rule's first row.
    One kernel pass (:func:`raybt.data.nb.check_bars_nb`) finds every rule's
    first row; this picks the first failing rule.
    """
    from raybt.data import nb  # numba, imported when bars are first checked

    try:
        stamps = stamps.as_unit("ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        i = next(k for k, t in enumerate(stamps) if not (_MIN_TIME <= t <= _MAX_TIME))
        _fail(source, time_where, i + 1, None, f"timestamp {str(stamps[i])!r} out of range "
                                               f"({_MIN_TIME.year + 1}..{_MAX_TIME.year - 1})")
    n = len(stamps)
    values, where, not_a_number = {}, {}, None
    for col in COLUMNS:
        if col not in raw_columns or not_a_number is not None:
            values[col] = np.zeros(n)  # missing volume; after a conversion error, finite placeholders
            continue
        raw = raw_columns[col]
        where[col] = _col(raw.name)
        try:
            values[col] = _float_values(raw, source, where[col], stamps)
        except DataError as exc:  # raised below unless an earlier column has a NaN/infinite value
            not_a_number = exc
            values[col] = np.zeros(n)
    ns = np.ascontiguousarray(stamps.asi8)
    first = nb.check_bars_nb(ns, *(values[k] for k in COLUMNS)).tolist()
    for k, col in enumerate(COLUMNS):
        i = first[nb.NON_FINITE + k]
        if i >= 0:
            _fail(source, where[col], i + 1, stamps[i],
                  f"{'missing value (NaN)' if np.isnan(values[col][i]) else 'infinite value'}")
    if not_a_number is not None:
        raise not_a_number
    i = first[nb.DUPLICATE]
    if i >= 0:
        _fail(source, time_where, i + 1, stamps[i], "duplicate timestamp")
    i = first[nb.UNSORTED]
    if i >= 0:
        _fail(source, time_where, i + 1, stamps[i], f"timestamps not sorted (earlier than row {i})")
    for k, col in enumerate(PRICE_COLUMNS):
        i = first[nb.NON_POSITIVE + k]
        if i >= 0:
            _fail(source, where[col], i + 1, stamps[i], f"non-positive price {_num(values[col][i])}")
    for k, col in enumerate(PRICE_COLUMNS):
        i = first[nb.OUT_OF_RANGE + k]
        if i >= 0:
            _fail(source, where[col], i + 1, stamps[i],
                  f"price {_num(values[col][i])} outside {_num(nb.PRICE_MIN)}..{_num(nb.PRICE_MAX)} "
                  "(a bad tick, or prices in the wrong units?)")
    o, h, lo, c = (values[k] for k in PRICE_COLUMNS)
    i = first[nb.HIGH_BELOW_LOW]
    if i >= 0:
        _fail(source, where["high"], i + 1, stamps[i], f"high {_num(h[i])} < low {_num(lo[i])}")
    i = first[nb.HIGH_BELOW_BODY]
    if i >= 0:
        _fail(source, where["high"], i + 1, stamps[i], f"high {_num(h[i])} below open/close {_num(max(o[i], c[i]))}")
    i = first[nb.LOW_ABOVE_BODY]
    if i >= 0:
        _fail(source, where["low"], i + 1, stamps[i], f"low {_num(lo[i])} above open/close {_num(min(o[i], c[i]))}")
    i = first[nb.NEGATIVE_VOLUME]
    if i >= 0:
        _fail(source, where["volume"], i + 1, stamps[i], f"negative volume {_num(values['volume'][i])}")
    # copy=False: columns that were contiguous float64 stay views of the caller's arrays
    return pd.DataFrame({k: values[k] for k in COLUMNS},
                        index=pd.DatetimeIndex(stamps, name="timestamp"), copy=False)


def validate_bars(frame: pd.DataFrame, source: str = "bars", *, timestamp_format: str | None = None) -> pd.DataFrame:
    """Normalise columns and check every rule; return the loader's frame format.

    ``frame``: as read from a file (a time column, or times in a
    ``DatetimeIndex``); ``source``: the file named in errors.
    """
    if len(frame.columns) == 0 or len(frame) == 0:
        raise DataError(f"{source}: empty file (no rows)")
    if isinstance(frame.index, pd.DatetimeIndex):
        if frame.index.name is None and "timestamp" not in frame.columns:
            frame = frame.rename_axis("timestamp")
        frame = frame.reset_index()
    times = _time_columns(frame, source)
    cols = _price_columns(frame, source, exclude=times)
    stamps, time_where = _file_times(frame, times, source, timestamp_format)
    return _check_rules(stamps, {k: frame[v] for k, v in cols.items()}, source, time_where)


def validate_frame(bars, name: str) -> pd.DataFrame:
    """Validate one asset's bars given as a DataFrame (the Python API); the loader's frame format.

    The same rules and one-line :class:`DataError` as :func:`load_bars`, the
    source named ``asset NAME`` and the time column ``index``: the
    timestamps are the frame's ``DatetimeIndex`` (named or not; tz-naive
    means UTC, like naive times in a file; any other index is an error);
    OHLC(V) columns are matched as the loader matches them, other columns
    are ignored. A frame that passes gives exactly the frame its data gives
    written to Parquet and loaded (to CSV too, for float64 prices); columns
    that already are contiguous float64 are not copied.
    """
    source = f"asset {name}"
    if not isinstance(bars, pd.DataFrame):
        raise DataError(f"{source}: bars must be a pandas DataFrame (DatetimeIndex; open, high, low, close "
                        f"columns), got {type(bars).__name__}")
    index = bars.index
    if not isinstance(index, pd.DatetimeIndex):
        named = [str(n) for n in bars.columns if _norm(n) in _TIME_NAMES]
        hint = f"; make it the index: bars.set_index({named[0]!r})" if named else ""
        raise DataError(f"{source}: bars have a {type(index).__name__}, not a DatetimeIndex "
                        f"(need a DatetimeIndex and open, high, low, close{hint})")

    def missing(col, unused, hint):
        raise DataError(f"{source}: bars have no column '{col}' (columns: {', '.join(unused) or 'none'}{hint}; "
                        f"need a DatetimeIndex and open, high, low, close)")

    cols = _price_columns(bars, source, missing=missing)
    if len(bars) == 0:
        raise DataError(f"{source}: no bars (an empty frame)")
    if index.hasnans:
        row = int(np.flatnonzero(index.isna())[0]) + 1
        _fail(source, "index", row, None, "missing timestamp (NaT)")
    stamps = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    raw = {}
    for col, label in cols.items():
        column = bars[label]
        if isinstance(column, pd.DataFrame):  # a repeated label
            raise DataError(f"{source}: duplicate column '{label}'")
        raw[col] = column
    return _check_rules(stamps, raw, source, "index")


def save_bars(df: pd.DataFrame, path, fmt: str | None = None) -> None:
    """Write bars as CSV or Parquet (``fmt``, default from the extension)."""
    path = Path(path)
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "parquet")
    if fmt == "csv":
        df.to_csv(path, index_label="timestamp")
    else:
        df.to_parquet(path)
