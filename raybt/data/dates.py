"""Reading the time column(s) of a bars file into UTC timestamps.

Naive times are UTC; numeric times are Unix epoch seconds, or milliseconds
when above 1e11, except integers that all read as ``yyyymmdd`` dates.
``dd/mm/yyyy`` versus ``mm/dd/yyyy`` (also with ``.`` or ``-``) is settled by
the file itself (a row with a day above 12 in one position decides the whole
column) or by a ``timestamp_format``; otherwise the column is refused as
ambiguous. Separate Date and Time columns are combined.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from raybt.data.messages import _col, _fail, _num
from raybt.errors import ConfigError


_MIN_TIME = pd.Timestamp.min.tz_localize("UTC")


_MAX_TIME = pd.Timestamp.max.tz_localize("UTC")


_DAY_MONTH = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?=$|[ T])(.*)$", re.DOTALL)


_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")


def _one_time(text):
    try:
        stamp = pd.Timestamp(text)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    except (ValueError, OverflowError, TypeError):
        return pd.NaT


def _example_format(text: str, day_first: bool = True) -> str:
    """A strptime format matching ``text`` (a d/m/y date), for the hint of an error."""
    match = _DAY_MONTH.match(text)
    if not match:
        return "%d/%m/%Y %H:%M"
    sep, year, rest = match.group(2), match.group(4), match.group(5)
    date = (f"%d{sep}%m{sep}" if day_first else f"%m{sep}%d{sep}") + ("%Y" if len(year) == 4 else "%y")
    clock = re.match(r"^([ T])\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$", rest)
    if not clock:
        return date
    return date + clock.group(1) + "%H:%M" + (":%S" if clock.group(2) else "") + (".%f" if clock.group(3) else "")


def _settle_day_month(text: pd.Series, source: str, where: str) -> pd.Series:
    """Rewrite d/m/y or m/d/y dates to ISO ``yyyy-mm-dd`` in the order the column settles.

    A row with its first number above 12 makes the column day-first, one
    with its second above 12 month-first; rows on both sides, or no row
    deciding while some row reads differently either way, are refused.
    """
    parts = text.str.extract(_DAY_MONTH.pattern)
    unmatched = parts[0].isna().to_numpy()
    if unmatched.any():
        row = int(np.flatnonzero(unmatched)[0])
        _fail(source, where, row + 1, None, f"cannot parse timestamp {text.iloc[row]!r} (row 1 is a "
                                            f"day/month/year or month/day/year date, this row is not)")
    first = parts[0].astype(np.int64).to_numpy()
    second = parts[2].astype(np.int64).to_numpy()
    day_first = np.flatnonzero(first > 12)
    month_first = np.flatnonzero(second > 12)
    if len(day_first) and len(month_first):
        a, b = int(day_first[0]), int(month_first[0])
        k, other = max(a, b), min(a, b)
        order = "day-first" if other == a else "month-first"
        _fail(source, where, k + 1, None,
              f"date {text.iloc[k]!r} contradicts data row {other + 1} ({text.iloc[other]!r}, {order}); "
              f"set timestamp_format (e.g. {_example_format(text.iloc[k], order == 'day-first')}) "
              f"in the asset config or --date-format")
    if not len(day_first) and not len(month_first):
        differ = np.flatnonzero(first != second)
        if len(differ):
            row = int(differ[0])
            _fail(source, where, row + 1, None,
                  f"ambiguous date {text.iloc[row]!r} (day-first or month-first?): set timestamp_format "
                  f"(e.g. {_example_format(text.iloc[row])}) in the asset config or --date-format")
    if len(month_first):
        month, day = parts[0], parts[2]
    else:
        day, month = parts[0], parts[2]
    year = parts[3]
    short = year.str.len() == 2
    if short.any():  # strptime's %y: 69..99 -> 1969..1999, 00..68 -> 2000..2068
        yy = year.astype(np.int64)
        year = year.where(~short, (yy + np.where(yy >= 69, 1900, 2000)).astype(str))
    return year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + parts[4]


def _as_text(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_integer_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype(np.int64).astype(str)
    return raw.astype(str).str.strip()


def _in_range(parsed: pd.DatetimeIndex, shown: pd.Series, source: str, where: str) -> pd.DatetimeIndex:
    try:
        return pd.DatetimeIndex(parsed).as_unit("ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        bad = np.array([not (_MIN_TIME <= t <= _MAX_TIME) for t in parsed], dtype=bool)
    row = int(np.flatnonzero(bad)[0]) if bad.any() else 0
    _fail(source, where, row + 1, None, f"timestamp {shown.iloc[row]!r} out of range "
                                        f"({_MIN_TIME.year + 1}..{_MAX_TIME.year - 1})")


def _yyyymmdd(raw: pd.Series) -> bool:
    """Integers that all read as dates ``yyyymmdd`` (1900..2261, month 1..12, day 1..31)."""
    if not pd.api.types.is_integer_dtype(raw) or pd.api.types.is_bool_dtype(raw) or not len(raw):
        return False
    values = raw.to_numpy(dtype=np.int64)
    if values.min() < 19000101 or values.max() > 22611231:
        return False
    month, day = (values // 100) % 100, values % 100
    return bool(((month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)).all())


def _parse_times(raw: pd.Series, source: str, where: str, fmt: str | None = None,
                 fmt_said: str | None = None) -> pd.DatetimeIndex:
    """UTC stamps of a time column; ``fmt``: a strptime format for every row (``fmt_said``: how
    errors name it, default ``with timestamp_format 'FMT'``)."""
    if raw.isna().any():
        row = int(np.flatnonzero(raw.isna().to_numpy())[0]) + 1
        _fail(source, where, row, None, "missing timestamp")
    if fmt is not None:
        text = _as_text(raw)
        try:
            parsed = pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
        except (ValueError, TypeError) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{source}: timestamp_format {fmt!r} is not a valid format ({message})") from None
        bad = parsed.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            said = fmt_said or f"with timestamp_format {fmt!r}"
            _fail(source, where, row + 1, None, f"cannot parse timestamp {text.iloc[row]!r} {said}")
        return _in_range(parsed, text, source, where)
    if pd.api.types.is_datetime64_any_dtype(raw):
        stamps = pd.DatetimeIndex(raw)
        return stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
    if _yyyymmdd(raw):  # 20190102: a date, not 20 million epoch seconds (August 1970)
        return _parse_times(raw, source, where, "%Y%m%d", "(read as a yyyymmdd date)")
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.to_numpy(dtype=np.float64)
        unit = "ms" if np.nanmax(np.abs(values)) > 1e11 else "s"
        limit = 9.2e12 if unit == "ms" else 9.2e9  # ~years 1678..2261, the range of ns timestamps
        bad = ~np.isfinite(values) | (np.abs(values) > limit)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            _fail(source, where, row + 1, None, f"epoch timestamp out of range: {_num(values[row])}")
        return pd.DatetimeIndex(pd.to_datetime(values, unit=unit, utc=True))
    shown = raw.astype(str).str.strip()
    text = shown
    if len(text) and _DAY_MONTH.match(text.iloc[0]):
        text = _settle_day_month(text, source, where)
    try:
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        if parsed.isna().any():
            # rows that are not ISO: a d/m/y or m/d/y date among them would be read month-first, row
            # by row, whatever the file meant
            other = np.flatnonzero(parsed.isna().to_numpy() & text.str.match(_DAY_MONTH.pattern).to_numpy())
            if len(other):
                row = int(other[0])
                _fail(source, where, row + 1, None,
                      f"date {shown.iloc[row]!r} is day/month/year or month/day/year while row 1 "
                      f"({shown.iloc[0]!r}) is not: one date format per file, or set timestamp_format "
                      f"(e.g. {_example_format(shown.iloc[row])}) in the asset config or --date-format")
            parsed = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        parsed = pd.Series([_one_time(x) for x in text], index=text.index)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        _fail(source, where, row + 1, None, f"cannot parse timestamp {shown.iloc[row]!r}")
    return _in_range(parsed, shown, source, where)


def _file_times(frame: pd.DataFrame, columns: tuple, source: str, fmt: str | None):
    """``(UTC stamps, where)`` from a file's time column, or its Date and Time columns combined."""
    if len(columns) == 1:
        where = _col(columns[0])
        return _parse_times(frame[columns[0]], source, where, fmt), where
    date, time = (frame[c] for c in columns)
    where = f"columns '{columns[0]}' and '{columns[1]}'"
    for part in (date, time):
        if part.isna().any():
            row = int(np.flatnonzero(part.isna().to_numpy())[0]) + 1
            _fail(source, _col(part.name), row, None, "missing timestamp")
    combined = _as_text(date) + " " + _as_text(time)
    return _parse_times(combined, source, where, fmt), where
