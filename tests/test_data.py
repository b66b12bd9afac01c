"""Data layer: loading, every bad-input case (message names file, column, row), resampling, synth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raybt.data import load_bars, resample_bars, validate_bars
from raybt.data.synth import generate_universe, write_universe
from raybt.data.timeframes import infer_timeframe, parse_timeframe
from raybt.errors import ConfigError, DataError

GOOD = """timestamp,open,high,low,close,volume
2024-01-01 00:00:00,1.1000,1.1010,1.0990,1.1005,10
2024-01-01 00:05:00,1.1005,1.1015,1.0995,1.1010,12
2024-01-01 00:10:00,1.1010,1.1020,1.1000,1.1015,9
"""


def write(tmp_path, text, name="bars.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_csv(tmp_path):
    df = load_bars(write(tmp_path, GOOD))
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert str(df.index.tz) == "UTC" and df.index.name == "timestamp"
    assert df["close"].iloc[-1] == 1.1015 and df.dtypes.eq(np.float64).all()


@pytest.mark.parametrize("header", [
    "Date,Open,High,Low,Close,Volume", "DATETIME,OPEN,HIGH,LOW,CLOSE,VOL", "time,open,high,low,close,volume",
    ",open,high,low,close,volume",
])
def test_column_spellings(tmp_path, header):
    text = header + "\n" + "\n".join(GOOD.splitlines()[1:]) + "\n"
    assert len(load_bars(write(tmp_path, text))) == 3


def test_no_volume_and_tz_conversion_and_epoch(tmp_path):
    text = "timestamp,open,high,low,close\n2024-01-01T01:00:00+01:00,1,2,0.5,1.5\n2024-01-01T01:05:00+01:00,1,2,0.5,1.5\n"
    df = load_bars(write(tmp_path, text))
    assert df.index[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC") and (df["volume"] == 0).all()
    for scale in (1, 1000):
        epoch = "timestamp,open,high,low,close\n" + "\n".join(
            f"{(1704067200 + 300 * i) * scale},1,2,0.5,1.5" for i in range(3))
        df = load_bars(write(tmp_path, epoch, f"e{scale}.csv"))
        assert df.index[1] == pd.Timestamp("2024-01-01 00:05", tz="UTC")


def test_parquet_with_datetime_index(tmp_path):
    df = load_bars(write(tmp_path, GOOD))
    df.to_parquet(tmp_path / "x.parquet")
    pd.testing.assert_frame_equal(load_bars(tmp_path / "x.parquet"), df)


BAD = [
    ("missing column", GOOD.replace("close,volume", "clsoe,volume"), ["missing column 'close'", "did you mean 'clsoe'"]),
    ("non-numeric", GOOD.replace("1.1010,12", "abc,12"), ["column 'close'", "row 2", "not a number"]),
    ("nan", GOOD.replace("1.1020,1.1000", "nan,1.1000"), ["column 'high'", "row 3", "NaN"]),
    ("inf", GOOD.replace("1.1015,9", "inf,9"), ["column 'close'", "row 3", "infinite"]),
    ("unsorted", GOOD.replace("00:10:00", "00:01:00"), ["column 'timestamp'", "row 3", "not sorted"]),
    ("duplicate", GOOD.replace("00:10:00", "00:05:00"), ["column 'timestamp'", "row 3", "duplicate"]),
    ("high<low", GOOD.replace("1.1005,1.1015,1.0995", "1.1005,1.0990,1.0995"), ["column 'high'", "row 2", "< low"]),
    ("high below close", GOOD.replace("1.1010,1.1020,1.1000,1.1015", "1.1010,1.1012,1.1000,1.1015"),
     ["column 'high'", "row 3", "below open/close"]),
    ("low above open", GOOD.replace("1.1000,1.1010,1.0990", "1.1000,1.1010,1.1001"), ["column 'low'", "row 1", "above"]),
    ("non-positive", GOOD.replace("1.1000,1.1010,1.0990,1.1005", "0,1.1010,-1,1.1005"), ["column 'open'", "row 1", "non-positive"]),
    ("bad timestamp", GOOD.replace("2024-01-01 00:05:00", "yesterday"), ["column 'timestamp'", "row 2", "cannot parse"]),
    ("negative volume", GOOD.replace(",12", ",-12"), ["column 'volume'", "row 2", "negative"]),
    ("no timestamp column", GOOD.replace("timestamp,", "when,"), ["missing timestamp column"]),
    ("header only", "timestamp,open,high,low,close\n", ["empty"]),
]


@pytest.mark.parametrize("case,text,needles", BAD, ids=[b[0] for b in BAD])
def test_bad_input_messages(tmp_path, case, text, needles):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        load_bars(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_missing_empty_and_unsupported_files(tmp_path):
    for path, needle in ((tmp_path / "nope.csv", "file not found"), (write(tmp_path, "", "e.csv"), "empty file"),
                         (write(tmp_path, "x", "a.txt"), "unsupported file type"),
                         (write(tmp_path, "garbage", "c.parquet"), "cannot (read|parse)")):
        with pytest.raises(DataError, match=needle):
            load_bars(path)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789.,-:T \nabcdeinfNaAopehlwsmtrv")), max_size=300))
def test_fuzz_csv_only_clear_errors(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "f.csv"
    path.write_text("timestamp,open,high,low,close\n" + text)
    try:
        df = load_bars(path)
    except DataError as exc:
        assert "\n" not in str(exc)
    else:
        validate_bars(df.reset_index(), "again")


def test_resample_aggregation_and_roundtrip():
    idx = pd.date_range("2024-01-05 21:00", periods=12 * 60, freq="1min", tz="UTC")
    rng = np.random.default_rng(0)
    close = 100 + np.cumsum(rng.normal(0, 0.1, len(idx)))
    df = pd.DataFrame({"open": close - 0.05, "high": close + 0.2, "low": close - 0.2, "close": close,
                       "volume": 1.0}, index=idx.rename("timestamp"))
    df = df[(df.index.day_of_week < 5) | (df.index.hour >= 22)]  # a gap
    five = resample_bars(df, "5m")
    first = df.iloc[:5]
    assert five.iloc[0].tolist() == [first["open"].iloc[0], first["high"].max(), first["low"].min(),
                                     first["close"].iloc[-1], 5.0]
    pd.testing.assert_frame_equal(resample_bars(five, "15m"), resample_bars(df, "15m"))
    assert infer_timeframe(five.index) == pd.Timedelta("5min")
    with pytest.raises(ConfigError):
        resample_bars(five, "1m")
    with pytest.raises(ConfigError):
        parse_timeframe("5x")


def test_synth_deterministic_calendars_correlations(tmp_path):
    a = generate_universe(n_assets=15, n_bars=288 * 21, seed=4, shocks=[(0.5, -0.3, 288)])
    b = generate_universe(n_assets=15, n_bars=288 * 21, seed=4, shocks=[(0.5, -0.3, 288)])
    assert list(a) == list(b) and all(a[k].equals(b[k]) for k in a)
    assert "SILVERX_5m" in a and "BTCUSDX_5m" in a
    fx = a["EURUSDX_5m"].index
    closed = ((fx.day_of_week == 4) & (fx.hour >= 22)) | (fx.day_of_week == 5) | ((fx.day_of_week == 6) & (fx.hour < 22))
    assert not closed.any() and len(a["BTCUSDX_5m"]) == 288 * 21
    r = pd.DataFrame({k: np.log(v["close"]).resample("1h").last().diff() for k, v in a.items()}).dropna()
    corr = r.corr()
    assert corr.loc["EURUSDX_5m", "USDCHFX_5m"] < -0.1 and corr.loc["BTCUSDX_5m", "ETHUSDX_5m"] > 0.3
    assert r["BTCUSDX_5m"].std() > 3 * r["EURUSDX_5m"].std()
    for k, v in a.items():
        validate_bars(v, k)
    crash = {k: np.log(v["close"].iloc[-1] / v["close"].iloc[0]) for k, v in
             generate_universe(n_assets=15, n_bars=288 * 2, seed=4, shocks=[(0.25, -0.3, 144)]).items()}
    calm = {k: np.log(v["close"].iloc[-1] / v["close"].iloc[0]) for k, v in
            generate_universe(n_assets=15, n_bars=288 * 2, seed=4).items()}
    assert crash["BTCUSDX_5m"] - calm["BTCUSDX_5m"] < 2 * (crash["EURUSDX_5m"] - calm["EURUSDX_5m"]) - 0.1
    paths = write_universe(tmp_path / "u", n_assets=3, n_bars=500, seed=1, fmt="csv")
    again = generate_universe(n_assets=3, n_bars=500, seed=1)
    for p in paths:
        pd.testing.assert_frame_equal(load_bars(p), again[p.stem], check_exact=False, rtol=1e-12, check_freq=False)
    assert (tmp_path / "u" / "universe.json").is_file()
