"""Opening and checking the files of a finished run folder: one place, one line per problem.

Every file :mod:`raybt.run_folder` reads is found by :func:`run_file` and
opened by :func:`open_run_file`: a symbolic link, or anything but a regular
file, is refused (a results folder must not make raybt read, or show parts
of, a file elsewhere), and the file is opened without following links, so a
link swapped in after the check is refused too. The column checks here
(:func:`need_columns`, :func:`check_times`, :func:`check_numbers`,
:func:`check_text`, :func:`check_bools`) and the JSON ones
(:func:`check_object`, :func:`check_scalars`) raise :data:`ReportError` with
one line ``file: column 'c', data row N: what is wrong`` (data rows count
from 1, the first row under a CSV header, as for bars files) or
``file: key 'a.b': what is wrong``.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from raybt.errors import ConfigError
from raybt.tables import FORMATS, SUFFIX, read_table

#: unusable run folders raise this (one line naming the file)
ReportError = ConfigError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block the open


def run_file(run_dir: Path, name: str) -> Path | None:
    """``run_dir/name`` when it is a regular file, None when absent; a symlink or other entry is refused."""
    path = Path(run_dir) / name
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    if stat.S_ISLNK(mode):
        raise ReportError(f"{path}: is a symbolic link; the files of a run folder must be regular files in it")
    if not stat.S_ISREG(mode):
        raise ReportError(f"{path}: not a regular file")
    return path


def find_run_table(run_dir: Path, stem: str) -> Path | None:
    """``<stem>.parquet`` or ``.csv`` of the run folder (Parquet first, as :func:`raybt.tables.find_table`)."""
    for fmt in FORMATS:
        path = run_file(run_dir, stem + SUFFIX[fmt])
        if path is not None:
            return path
    return None


@contextmanager
def open_run_file(path: Path):
    """The file opened for binary reading, refusing a symlink (even one swapped in since :func:`run_file`)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError as exc:
        raise ReportError(f"{path}: cannot open: {exc.strerror or type(exc).__name__}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ReportError(f"{path}: not a regular file")
        yield handle


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_run_table(path: Path, *, text=()) -> pd.DataFrame:
    """A table (Parquet or CSV) as :func:`raybt.tables.read_table` reads it, an empty frame for an empty file."""
    import pyarrow as pa

    with open_run_file(path) as handle:
        try:
            return read_table(path, text=text, handle=handle)
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
        except UnicodeDecodeError as exc:
            raise ReportError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        except (ValueError, OSError, pd.errors.ParserError, pa.ArrowException) as exc:
            raise ReportError(f"{path}: cannot read: {first_line(exc)}") from None


def read_run_text(path: Path) -> str:
    """A text file's content (undecodable bytes replaced)."""
    with open_run_file(path) as handle:
        return handle.read().decode("utf-8", errors="replace")


def read_run_json(path: Path):
    """A JSON file's document; any decoding problem is one line naming the file."""
    from raybt.config.common import json_document

    with open_run_file(path) as handle:
        return json_document(handle.read(), path)


# ------------------------------------------------------------------ table columns

def _at(path: Path, column, row: int) -> str:
    return f"{path}: column '{column}', data row {row + 1}"


def _shown(value) -> str:
    value = value.item() if isinstance(value, np.generic) else value
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _first(mask) -> int:
    return int(np.flatnonzero(np.asarray(mask, dtype=bool))[0])


def need_columns(path: Path, frame: pd.DataFrame, names) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ReportError(f"{path}: missing column(s) {', '.join(repr(n) for n in missing)}")


def check_times(path: Path, frame: pd.DataFrame, column: str, *, unit: str | None = "ns") -> None:
    """Make ``frame[column]`` UTC times (in ``unit``; None: as parsed), refusing numbers, empty cells
    and text that is no date/time."""
    col = frame[column]
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = pd.to_datetime(col, utc=True)
    elif pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col):
        with warnings.catch_warnings():  # "could not infer format": the bad row is named below instead
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(col, utc=True, errors="coerce")
    else:
        raise ReportError(f"{_at(path, column, 0)}: {_shown(col.iloc[0]) if len(col) else col.dtype} "
                          f"is not a date/time ({col.dtype} column)")
    if parsed.isna().any():
        row = _first(parsed.isna())
        raise ReportError(f"{_at(path, column, row)}: not a date/time: {_shown(col.iloc[row])}")
    frame[column] = parsed.dt.as_unit(unit) if unit else parsed


def check_numbers(path: Path, frame: pd.DataFrame, column, *, finite: bool = True, nan_ok: bool = False) -> np.ndarray:
    """The column as float64; text, booleans, empty cells (unless ``nan_ok``) and, with ``finite``, inf refused."""
    col = frame[column]
    if len(col) == 0:  # a header-only table (no events, no trades): its columns read as text
        return np.zeros(0)
    if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        numbers = (pd.Series(np.nan, index=col.index) if pd.api.types.is_bool_dtype(col)
                   else pd.to_numeric(col, errors="coerce"))
        bad = (col.notna() & numbers.isna()).to_numpy()
        row = _first(bad) if bad.any() else 0
        raise ReportError(f"{_at(path, column, row)}: not a number: {_shown(col.iloc[row]) if len(col) else ''}")
    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values) if finite else np.zeros(len(values), dtype=bool)
    if nan_ok:
        bad &= ~np.isnan(values)
    elif not finite:
        bad = np.isnan(values)
    if bad.any():
        row = _first(bad)
        raise ReportError(f"{_at(path, column, row)}: {_shown(values[row])} "
                          f"(must be {'a finite number' if finite else 'a number'})")
    return values


def check_text(path: Path, frame: pd.DataFrame, column: str, allowed=None, what: str = "") -> None:
    """Non-empty text in every row; with ``allowed``, one of those (``what`` says which)."""
    col = frame[column]
    bad = col.isna().to_numpy()
    if allowed is not None:
        bad = bad | ~col.astype(str).isin(list(allowed)).to_numpy()
    if bad.any():
        row = _first(bad)
        raise ReportError(f"{_at(path, column, row)}: {_shown(col.iloc[row])} is not {what or 'text'}")


def check_bools(path: Path, frame: pd.DataFrame, column: str) -> None:
    col = frame[column]
    if len(col) == 0 or pd.api.types.is_bool_dtype(col):
        return
    ok = col.isin([True, False, "True", "False"]).to_numpy() & col.notna().to_numpy()
    if ok.all():  # True/False written as text: booleans
        frame[column] = col.isin([True, "True"])
        return
    row = _first(~ok)
    raise ReportError(f"{_at(path, column, row)}: not True/False: {_shown(col.iloc[row])}")


def check_increasing(path: Path, index: pd.DatetimeIndex, column: str = "timestamp") -> None:
    """Strictly increasing (sorted, no duplicate) times."""
    stamps = index.asi8
    bad = stamps[1:] <= stamps[:-1]
    if bad.any():
        row = _first(bad) + 1
        how = "repeats" if stamps[row] == stamps[row - 1] else "is earlier than"
        raise ReportError(f"{_at(path, column, row)}: {index[row]} {how} data row {row}'s; "
                          "times must be sorted and unique")


# ------------------------------------------------------------------ JSON documents

def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def check_object(path: Path, key: str, value, *, optional: bool = True) -> dict:
    """``value`` as a JSON object (``{}`` for an absent/null optional one)."""
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        where = f"key '{key}'" if key else "the document"
        raise ReportError(f"{path}: {where} must be a JSON object, got {_kind(value)}")
    return value


def check_scalars(path: Path, key: str, doc: dict, *, text=(), any_text: bool = False) -> None:
    """Each value of ``doc``: null or a finite number, text for the keys in ``text`` (or any with
    ``any_text``, which also takes booleans)."""
    for name, value in doc.items():
        if value is None or (isinstance(value, str) and (any_text or name in text)):
            continue
        if isinstance(value, bool):
            if any_text:
                continue
        elif isinstance(value, (int, float)):
            try:
                if math.isfinite(float(value)):
                    continue
            except OverflowError:
                pass
            raise ReportError(f"{path}: key '{key}.{name}': {_shown(value)} is not a finite number")
        raise ReportError(f"{path}: key '{key}.{name}' must be {'a value' if any_text else 'a number or null'}, "
                          f"got {_kind(value)}")
