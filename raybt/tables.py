"""The large tables of a run folder, in Parquet (default) or CSV, and reading either back.

A run's large tables (``portfolio_equity``, ``trades``, ``multipliers``) are
written as ``<stem>.parquet`` (pyarrow, zstd-compressed, floats with the
byte-stream-split encoding, which compresses float64 equity about a third
better) or, with ``format="csv"``, as ``<stem>.csv`` for spreadsheets.
:func:`read_table` finds whichever is there. Both keep every float64 exactly
(CSV floats are written with Python's shortest round-trip repr, which pandas
reads back exactly); timestamps are UTC.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from raybt.errors import ConfigError

FORMATS = ("parquet", "csv")
SUFFIX = {"parquet": ".parquet", "csv": ".csv"}
_ZSTD_LEVEL = 1  # measured at 100 x 200k: level 3 writes 1.6x slower for 2 % smaller files


def check_format(fmt: str, where: str = "format") -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"{where}: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def table_path(folder: Path, stem: str, fmt: str) -> Path:
    return Path(folder) / f"{stem}{SUFFIX[check_format(fmt)]}"


def write_table(frame: pd.DataFrame, folder: Path, stem: str, fmt: str, *, index_label: str | None = None) -> Path:
    """Write ``frame`` as ``folder/<stem>.parquet`` or ``.csv``; the index is kept as column
    ``index_label`` when given (the equity table's timestamps), dropped otherwise."""
    path = table_path(folder, stem, fmt)
    if fmt == "csv":
        if index_label is None:
            frame.to_csv(path, index=False)
        else:
            frame.to_csv(path, index_label=index_label)
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    if index_label is not None:
        frame = frame.rename_axis(index_label)
    table = pa.Table.from_pandas(frame, preserve_index=index_label is not None)
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    pq.write_table(table, path, compression="zstd", compression_level=_ZSTD_LEVEL,
                   use_byte_stream_split=floats or False,
                   use_dictionary=[f.name for f in table.schema if f.name not in floats] or False)
    return path


def find_table(folder: Path, stem: str) -> Path | None:
    """``folder/<stem>.parquet`` or ``.csv``, whichever exists (Parquet first), else None."""
    for fmt in FORMATS:
        path = table_path(folder, stem, fmt)
        if path.is_file():
            return path
    return None


def read_table(path: Path, *, index_col: str | None = None, times=(), text=(), handle=None) -> pd.DataFrame:
    """Read a table written by :func:`write_table` (either format).

    ``index_col``: the column to make the index (parsed as UTC times);
    ``times``: other columns to parse as UTC times (CSV stores ISO text);
    ``text``: columns kept as text (an all-empty CSV column would read as NaN, names such as
    ``1`` as numbers); only an empty CSV cell is missing (not ``NA``, ``null``, ``nan``...);
    ``handle``: the file already open (binary) to read instead of ``path``,
    whose suffix still says the format (:mod:`raybt.run_files` opens it).
    Raises ``pandas.errors.EmptyDataError``, ``ValueError`` or ``OSError``
    as pandas/pyarrow do; callers name the file in their message.
    """
    path = Path(path)
    source = path if handle is None else handle
    if path.suffix == ".parquet":
        frame = pd.read_parquet(source)
        if frame.index.name is not None:  # a stored index (the equity's timestamps) comes back as a column
            frame = frame.reset_index()
        if index_col is not None and index_col in frame.columns:
            frame = frame.set_index(index_col)
    else:
        # only an empty cell is missing (what to_csv writes for NaN): an asset named NA, None or nan stays text
        frame = pd.read_csv(source, dtype={c: str for c in text} or None, keep_default_na=False, na_values=[""])
        for column in text:
            if column in frame.columns:
                frame[column] = frame[column].fillna("")
        for column in times:
            if column in frame.columns:
                frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("ns")
        if index_col is not None and index_col in frame.columns:
            frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop(index_col), utc=True), name=index_col).as_unit("ns")
    return frame

