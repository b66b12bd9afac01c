"""Reading the time column(s) of a bars file into UTC timestamps.

Naive times are UTC; numeric times are Unix epoch seconds, or milliseconds
when above 1e11, except integers that all read as ``yyyymmdd``,
``yyyymmddHHMM`` or ``yyyymmddHHMMSS`` dates; epoch times less than a second
apart are refused (not bar times read right). Texts without a date (``now``,
``today``, ``23:55``: pandas reads them as today's) and a column mixing times
with and without a UTC offset are refused.
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


#: integer date-times by digit count: strptime format, smallest and largest value
_DIGIT_DATES = {8: ("%Y%m%d", 19000101, 22611231), 12: ("%Y%m%d%H%M", 190001010000, 226112312359),
                14: ("%Y%m%d%H%M%S", 19000101000000, 22611231235959)}
_DIGIT_NAMES = {"%Y%m%d": "yyyymmdd", "%Y%m%d%H%M": "yyyymmddHHMM", "%Y%m%d%H%M%S": "yyyymmddHHMMSS"}


def _digit_date_format(raw: pd.Series) -> str | None:
    """The format of integers that all read as ``yyyymmdd``, ``yyyymmddHHMM`` or
    ``yyyymmddHHMMSS`` (years 1900..2261, valid month, day, hour, minute,
    second), else None: such a column is dates, not epoch seconds or milliseconds."""
    if not pd.api.types.is_integer_dtype(raw) or pd.api.types.is_bool_dtype(raw) or not len(raw):
        return None
    values = raw.to_numpy(dtype=np.int64)
    for digits, (fmt, lo, hi) in _DIGIT_DATES.items():
        if values.min() < lo or values.max() > hi:
            continue
        date = values // 10 ** (digits - 8)
        month, day = (date // 100) % 100, date % 100
        ok = (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
        if digits >= 12:
            clock = values % 10 ** (digits - 8)
            if digits == 14:
                ok &= clock % 100 <= 59
                clock //= 100
            ok &= (clock // 100 <= 23) & (clock % 100 <= 59)
        return fmt if ok.all() else None
    return None


#: texts pandas reads relative to the moment of reading (``now``, ``today``, a time of day alone)
_RELATIVE = r"^(?:now|today|tomorrow|yesterday|\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$"
#: a UTC offset (or zone) after the time of day
_OFFSET = r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?|UTC|GMT)$"


def _check_texts(shown: pd.Series, source: str, where: str) -> None:
    """Refuse texts that pandas would read relative to today, and a column mixing times with and
    without a UTC offset (naive times are UTC: a mix is almost always local time and UTC together).

    Arrow's regular expressions over the column: ~40 ms for 200,000 rows, a
    quarter of the same test row by row in pandas."""
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = pa.array(shown.to_numpy(dtype=object), type=pa.string())
    relative = pc.match_substring_regex(texts, _RELATIVE, ignore_case=True).to_numpy(zero_copy_only=False)
    if relative.any():
        row = int(np.argmax(relative))
        _fail(source, where, row + 1, None, f"cannot parse timestamp {shown.iloc[row]!r} "
                                            f"(no date: it would be read as today's)")
    offset = pc.match_substring_regex(texts, _OFFSET, ignore_case=True).to_numpy(zero_copy_only=False)
    if offset.any() and not offset.all():
        row = int(np.argmax(offset != offset[0]))
        has, other = ("has a UTC offset", "has none") if offset[row] else ("has no UTC offset", "has one")
        _fail(source, where, row + 1, None, f"timestamp {shown.iloc[row]!r} {has} while data row 1 "
                                            f"({shown.iloc[0]!r}) {other}: one convention per file")


def _check_epoch_spacing(values: np.ndarray, unit: str, source: str, where: str, first) -> None:
    """Epoch numbers whose typical step is under a second are not bar times read right
    (``202401010005``, a ``yyyymmddHHMM`` column with a gap, read as milliseconds)."""
    steps = np.abs(np.diff(values))
    steps = steps[steps > 0]  # repeated times are the duplicate rule's, which names the row
    if not len(steps):
        return
    step = np.median(steps) * (1e-3 if unit == "ms" else 1.0)
    if step < 1.0:
        _fail(source, where, 1, None,
              f"{first} read as epoch {'milliseconds' if unit == 'ms' else 'seconds'} gives bars "
              f"{step:g} s apart: not epoch times? set timestamp_format (e.g. %Y%m%d%H%M) in the asset "
              f"config or --date-format")


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
    digits = _digit_date_format(raw)
    if digits is not None:  # 20190102: a date, not 20 million epoch seconds (August 1970)
        return _parse_times(raw, source, where, digits, f"(read as a {_DIGIT_NAMES[digits]} date)")
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        values = raw.to_numpy(dtype=np.float64)
        unit = "ms" if np.nanmax(np.abs(values)) > 1e11 else "s"
        limit = 9.2e12 if unit == "ms" else 9.2e9  # ~years 1678..2261, the range of ns timestamps
        bad = ~np.isfinite(values) | (np.abs(values) > limit)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            _fail(source, where, row + 1, None, f"epoch timestamp out of range: {_num(values[row])}")
        counter = np.arange(len(values), dtype=np.float64)
        if len(values) > 1 and (np.array_equal(values, counter) or np.array_equal(values, counter + 1)):
            _fail(source, where, 1, None, f"the times {values[0]:.0f}, {values[1]:.0f}, ... count the rows "
                                          f"(a row number, not epoch times): give the bars' dates and times")
        _check_epoch_spacing(values, unit, source, where, raw.iloc[0])
        return pd.DatetimeIndex(pd.to_datetime(values, unit=unit, utc=True))
    shown = raw.astype(str).str.strip()
    _check_texts(shown, source, where)
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
