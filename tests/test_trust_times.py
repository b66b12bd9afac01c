"""Time columns that used to load as the wrong times, silently (found by a review, stop 23).

A written pandas index taken as epoch seconds; ``now``, ``today`` and a time
of day alone read as today's date; ``yyyymmddHHMM`` integers read as epoch
milliseconds; naive and offset times in one column. Each now gives one
``DataError`` line naming the file, the column and the row; the good forms of
the same data still load to the right times. Also the kernel's lot rounding,
which wrapped past 2**63 lots and made a huge size trade nothing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from raybt.data import load_bars
from raybt.errors import DataError
from raybt.kernels import floor_lot_nb

STAMPS = pd.date_range("2024-01-01", periods=30, freq="5min", tz="UTC")


def bars_frame(times=None) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(STAMPS))))
    frame = pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                          "volume": 1.0})
    frame.insert(0, "timestamp", STAMPS.strftime("%Y-%m-%d %H:%M:%S") if times is None else times)
    return frame


def test_a_written_row_counter_is_not_taken_for_times(tmp_path):
    path = tmp_path / "x.csv"
    bars_frame().rename(columns={"timestamp": "Local time"}).to_csv(path)  # index written as 0, 1, 2, ...
    with pytest.raises(DataError) as err:
        load_bars(path)
    assert str(err.value).startswith(f"{path}: missing timestamp column")
    assert "the first column counts the rows 0, 1, 2" in str(err.value)
    bars_frame().to_csv(path)  # the same counter beside a time column: ignored
    assert load_bars(path).index.equals(STAMPS.rename("timestamp").as_unit("ns"))


@pytest.mark.parametrize("text", ["now", "today", "Yesterday", "23:55", "23:55:00"])
def test_texts_without_a_date_are_refused(tmp_path, text):
    frame = bars_frame()
    frame.loc[17, "timestamp"] = text
    path = tmp_path / "x.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        load_bars(path)
    assert str(err.value) == (f"{path}: column 'timestamp', data row 18: cannot parse timestamp {text!r} "
                              f"(no date: it would be read as today's)")


@pytest.mark.parametrize("fmt", ["%Y%m%d%H%M", "%Y%m%d%H%M%S"])
def test_integer_date_times_are_dates(tmp_path, fmt):
    path = tmp_path / "x.csv"
    bars_frame(STAMPS.strftime(fmt).astype(np.int64)).to_csv(path, index=False)
    assert load_bars(path).index.equals(STAMPS.rename("timestamp").as_unit("ns"))


def test_epoch_times_under_a_second_apart_are_refused(tmp_path):
    """An invalid yyyymmddHHMM (hour 25) is no date; as epoch ms its bars are 5 ms apart."""
    times = STAMPS.strftime("%Y%m%d%H%M").astype(np.int64).to_numpy().copy()
    times[4] = 202401012500
    path = tmp_path / "x.csv"
    bars_frame(times).to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"^{path}: column 'timestamp', data row 1: 202401010000 read as epoch "
                                        r"milliseconds gives bars 0.005 s apart: not epoch times\? set "
                                        r"timestamp_format"):
        load_bars(path)
    seconds = STAMPS.as_unit("s").asi8  # real epoch seconds and milliseconds still load
    for scale in (1, 1000):
        bars_frame(seconds * scale).to_csv(path, index=False)
        assert load_bars(path).index.equals(STAMPS.rename("timestamp").as_unit("ns"))


def test_a_column_mixing_naive_and_offset_times_is_refused(tmp_path):
    local = STAMPS.tz_convert("Europe/Berlin")
    times = list(STAMPS.strftime("%Y-%m-%d %H:%M:%S")[:10]) + [str(t) for t in local[10:]]
    path = tmp_path / "x.csv"
    bars_frame(times).to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        load_bars(path)
    assert str(err.value) == (f"{path}: column 'timestamp', data row 11: timestamp '{local[10]}' has a UTC offset "
                              f"while data row 1 ('2024-01-01 00:00:00') has none: one convention per file")
    bars_frame([str(t) for t in local]).to_csv(path, index=False)  # offsets on every row: fine
    assert load_bars(path).index.equals(STAMPS.rename("timestamp").as_unit("ns"))


def test_lot_rounding_does_not_wrap_for_huge_sizes():
    assert floor_lot_nb(1e19, 1.0) == 1e19  # was int64 wrap-around: a negative size, no trade
    assert floor_lot_nb(1e7, 1e-12) == pytest.approx(1e7)
    assert floor_lot_nb(math.inf, 0.01) == math.inf


@settings(max_examples=300, deadline=None)
@given(units=st.floats(0.0, 1e15), lot=st.sampled_from([0.01, 0.1, 1.0, 1000.0, 1e-5]))
def test_lot_rounding_matches_python_floor(units, lot):
    assert floor_lot_nb(units, lot) == math.floor(units / lot + 1e-9) * lot


def test_backtest_timeframe_finer_than_the_bars_is_refused(tmp_path, capsys):
    """``raybt backtest --timeframe 1m`` on 5-minute bars ran on the 5-minute bars, exit 0."""
    from raybt.cli import main

    path = tmp_path / "x.csv"
    pd.concat([bars_frame()] * 4, ignore_index=True).assign(
        timestamp=pd.date_range("2024-01-01", periods=120, freq="5min").strftime("%Y-%m-%d %H:%M")).to_csv(
        path, index=False)
    rc = main(["backtest", "--data", str(path), "--timeframe", "1m", "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert rc == 2 and "Traceback" not in captured.err and not (tmp_path / "r").exists()
    assert captured.err.strip() == (f"error: {path}: --timeframe 1m is finer than the 5m bars; bars can only be "
                                    f"resampled to a coarser timeframe")


def test_parquet_with_the_time_in_an_index_level(tmp_path):
    """A (symbol, timestamp) MultiIndex, as a multi-asset export writes it: "missing timestamp column"."""
    frame = bars_frame().drop(columns="timestamp")
    frame.index = pd.MultiIndex.from_arrays([["EURUSD"] * len(STAMPS), STAMPS], names=["symbol", "timestamp"])
    frame.to_parquet(tmp_path / "x.parquet")
    assert load_bars(tmp_path / "x.parquet").index.equals(STAMPS.rename("timestamp").as_unit("ns"))


def test_a_named_pipe_is_not_called_an_empty_file(tmp_path):
    import os

    pipe = tmp_path / "bars.csv"
    os.mkfifo(pipe)
    with pytest.raises(DataError, match=r"bars.csv: not a regular file \(a named pipe or a device\?\)"):
        load_bars(pipe)
