"""Issue 12, classes 5 (dates) and 11 (degenerate data), on files, configs and the CLI.

Dates: day/month order is settled by the file (a day above 12 in one
position) or refused as ambiguous with a hint, unless ``timestamp_format`` (asset
config) or ``--date-format`` (CLI) settles it; separate Date and Time columns
(MetaTrader, Dukascopy exports) are one timestamp. Degenerate data: valid bars
that cannot give a meaningful backtest produce warning lines.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raybt.config.params import validate_params
from raybt.cli import main
from raybt.config.universe import load_asset_universe
from raybt.data import degenerate_warnings, load_bars, result_warnings
from raybt.errors import ConfigError, DataError
from raybt.universe import load_asset_bars


def ohlc_rows(n, seed=0, scale=1.0):
    """``n`` rows of consistent open, high, low, close, volume (random walk around 1.1 * scale)."""
    rng = np.random.default_rng(seed)
    close = 1.1 * scale * np.exp(np.cumsum(rng.normal(0, 2e-3, n)))
    open_ = np.r_[close[:1], close[:-1]]
    high = np.maximum(open_, close) * 1.0005
    low = np.minimum(open_, close) * 0.9995
    return np.column_stack([open_, high, low, close, np.full(n, 10.0)])


def write_csv(path: Path, header: str, stamps, rows, sep=",") -> Path:
    lines = [header]
    for stamp, row in zip(stamps, rows):
        lines.append(sep.join([stamp] + [repr(float(x)) for x in row]))
    path.write_text("\n".join(lines) + "\n")
    return path


def one_line_error(capsys, rc) -> str:
    captured = capsys.readouterr()
    assert rc == 2, (rc, captured.err)
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


# --- class 5: day/month order -------------------------------------------------------------------

DAILY = pd.date_range("2015-01-05", "2019-11-29", freq="D", tz="UTC")  # 4.9 years


@pytest.mark.parametrize("fmt", ["%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d/%m/%y"])
def test_dates_in_the_order_the_file_settles(tmp_path, fmt):
    """A 4.9-year daily file written day-first (or month-first) keeps its dates (it became 4.0 years)."""
    path = write_csv(tmp_path / "daily.csv", "date,open,high,low,close,volume", DAILY.strftime(fmt),
                     ohlc_rows(len(DAILY)))
    bars = load_bars(path)
    assert bars.index.equals(DAILY.rename("timestamp").as_unit("ns"))
    assert round((bars.index[-1] - bars.index[0]).days / 365.25, 1) == 4.9


AMBIGUOUS = pd.date_range("2019-02-01", periods=12 * 24, freq="1h", tz="UTC")  # days 1..12 only


def ambiguous_file(tmp_path, name="amb.csv") -> Path:
    return write_csv(tmp_path / name, "date,open,high,low,close,volume", AMBIGUOUS.strftime("%d/%m/%Y %H:%M"),
                     ohlc_rows(len(AMBIGUOUS), seed=1))


def test_ambiguous_dates_are_refused_with_a_hint(tmp_path):
    path = ambiguous_file(tmp_path)
    with pytest.raises(DataError) as err:
        load_bars(path)
    assert str(err.value) == (f"{path}: column 'date', data row 1: ambiguous date '01/02/2019 00:00' "
                              f"(day-first or month-first?): set timestamp_format (e.g. %d/%m/%Y %H:%M) in the "
                              f"asset config or --date-format")


def test_iso_rows_then_day_first_rows_are_refused(tmp_path):
    """ISO dates, then d/m/y dates from row 1001 on (a file appended to by another tool): the later
    rows were read month-first one by one (4 January became 1 April)."""
    stamps = pd.date_range("2024-01-01", periods=2000, freq="5min", tz="UTC")
    text = list(stamps[:1000].strftime("%Y-%m-%d %H:%M")) + list(stamps[1000:].strftime("%d/%m/%Y %H:%M"))
    path = write_csv(tmp_path / "mixed.csv", "date,open,high,low,close,volume", text, ohlc_rows(len(text)))
    with pytest.raises(DataError, match=r"mixed.csv: column 'date', data row 1001: date '04/01/2024 11:20' is "
                                        r"day/month/year or month/day/year while row 1 \('2024-01-01 00:00'\) "
                                        r"is not: one date format per file"):
        load_bars(path)


def test_first_ambiguous_row_is_named(tmp_path):
    path = write_csv(tmp_path / "x.csv", "Date,Open,High,Low,Close", ["01/01/2019", "02/02/2019", "03/02/2019"],
                     ohlc_rows(3)[:, :4])
    with pytest.raises(DataError, match=r"x.csv: column 'Date', data row 3: ambiguous date '03/02/2019' "
                                        r"\(day-first or month-first\?\)"):
        load_bars(path)


def test_contradicting_rows_are_refused(tmp_path):
    path = write_csv(tmp_path / "x.csv", "date,open,high,low,close", ["13/02/2019", "14/02/2019", "02/15/2019"],
                     ohlc_rows(3)[:, :4])
    with pytest.raises(DataError) as err:
        load_bars(path)
    assert str(err.value) == (f"{path}: column 'date', data row 3: date '02/15/2019' contradicts data row 1 "
                              f"('13/02/2019', day-first); set timestamp_format (e.g. %d/%m/%Y) in the asset "
                              f"config or --date-format")


def test_timestamp_format_settles_it(tmp_path):
    path = ambiguous_file(tmp_path)
    day_first = load_bars(path, timestamp_format="%d/%m/%Y %H:%M")
    assert day_first.index.equals(AMBIGUOUS.rename("timestamp").as_unit("ns"))
    month_first = load_bars(path, timestamp_format="%m/%d/%Y %H:%M")
    assert month_first.index[0] == pd.Timestamp("2019-01-02", tz="UTC")
    with pytest.raises(DataError) as err:
        load_bars(path, timestamp_format="%Y-%m-%d %H:%M")
    assert str(err.value) == (f"{path}: column 'date', data row 1: cannot parse timestamp '01/02/2019 00:00' with "
                              f"timestamp_format '%Y-%m-%d %H:%M'")


def test_timestamp_format_in_the_asset_config(tmp_path):
    path = ambiguous_file(tmp_path)
    doc = {"defaults": {"timestamp_format": "%m/%d/%Y %H:%M"},
           "assets": {"A": {"data": str(path), "timeframe": "1h", "timestamp_format": "%d/%m/%Y %H:%M"},
                      "B": {"data": str(path), "timeframe": "1h"}}}
    config = tmp_path / "assets.json"
    config.write_text(json.dumps(doc))
    universe = load_asset_universe(config)
    assert universe.get("A").timestamp_format == "%d/%m/%Y %H:%M"
    assert universe.get("B").timestamp_format == "%m/%d/%Y %H:%M"  # from defaults
    assert load_asset_bars(universe.get("A"), universe).index[0] == pd.Timestamp("2019-02-01", tz="UTC")
    assert load_asset_bars(universe.get("B"), universe).index[0] == pd.Timestamp("2019-01-02", tz="UTC")
    for bad, needle in ((42, "must be a strptime format"), ("%d/%m/%Q", "not a usable strptime format '%d/%m/%Q'"),
                        ("dd/mm/yyyy", "must be a strptime format")):
        doc["assets"]["A"]["timestamp_format"] = bad
        config.write_text(json.dumps(doc))
        with pytest.raises(ConfigError) as err:
            load_asset_universe(config)
        assert str(err.value).startswith(f"{config}: assets.A.timestamp_format: ") and needle in str(err.value)


def test_cli_backtest_date_format(tmp_path, capsys):
    path = ambiguous_file(tmp_path)
    message = one_line_error(capsys, main(["backtest", "--data", str(path), "--out", str(tmp_path / "o1")]))
    assert message == (f"error: {path}: column 'date', data row 1: ambiguous date '01/02/2019 00:00' (day-first or "
                       f"month-first?): set timestamp_format (e.g. %d/%m/%Y %H:%M) in the asset config or "
                       f"--date-format")
    assert not (tmp_path / "o1").exists()
    out = tmp_path / "o2"
    assert main(["backtest", "--data", str(path), "--date-format", "%d/%m/%Y %H:%M", "--out", str(out)]) == 0
    equity = pd.read_csv(out / "equity.csv")
    assert equity["timestamp"].iloc[0] == "2019-02-01 00:00:00+00:00"
    assert equity["timestamp"].iloc[-1] == "2019-02-12 23:00:00+00:00"
    capsys.readouterr()
    message = one_line_error(capsys, main(["backtest", "--data", str(path), "--date-format", "%d/%Q",
                                           "--out", str(tmp_path / "o3")]))
    assert message.startswith("error: --date-format: not a usable strptime format '%d/%Q'")


def test_cli_run_date_format(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assets = {"assets": {n: {"data": str(ambiguous_file(tmp_path, f"{n}.csv")), "timeframe": "1h"}
                         for n in ("A", "B")}}
    (tmp_path / "assets.json").write_text(json.dumps(assets))
    portfolio = tmp_path / "p.yaml"
    portfolio.write_text(f"name: t\nasset_config: {tmp_path / 'assets.json'}\nengine:\n  chunk: 1D\n")
    args = ["run", str(portfolio), "--engine", "local", "--no-progress"]
    message = one_line_error(capsys, main(args + ["--out", str(tmp_path / "r1")]))
    assert message.startswith(f"error: {tmp_path / 'A.csv'}: column 'date', data row 1: ambiguous date")
    assert main(args + ["--date-format", "%d/%m/%Y %H:%M", "--out", str(tmp_path / "r2")]) == 0
    request = json.loads((tmp_path / "r2" / "run_request.json").read_text())
    assert request["date_format"] == "%d/%m/%Y %H:%M"  # kept for --resume
    equity = pd.read_parquet(tmp_path / "r2" / "portfolio_equity.parquet")
    assert equity.index[0] == pd.Timestamp("2019-02-01", tz="UTC")
    assert equity.index[-1] == pd.Timestamp("2019-02-12 23:00", tz="UTC")


# --- class 5: separate Date and Time columns --------------------------------------------------------

FIVE_MIN = pd.date_range("2019-01-02 00:00", periods=40, freq="5min", tz="UTC")


def test_metatrader_date_and_time_columns_are_one_timestamp(tmp_path):
    """``Date,Time`` with ``2019.01.02,00:05``: was 'duplicate timestamp' at data row 2."""
    rows = ohlc_rows(len(FIVE_MIN))
    lines = ["Date,Time,Open,High,Low,Close,Volume"] + [
        f"{t:%Y.%m.%d},{t:%H:%M}," + ",".join(repr(float(x)) for x in row) for t, row in zip(FIVE_MIN, rows)]
    path = tmp_path / "mt4.csv"
    path.write_text("\n".join(lines) + "\n")
    bars = load_bars(path)
    assert bars.index.equals(FIVE_MIN.rename("timestamp").as_unit("ns"))
    assert np.array_equal(bars.to_numpy(), rows)
    bad = path.read_text().replace("2019.01.02,00:10", "2019.01.02,25:10")
    path.write_text(bad)
    with pytest.raises(DataError) as err:
        load_bars(path)
    assert str(err.value) == f"{path}: columns 'Date' and 'Time', data row 3: cannot parse timestamp '2019.01.02 25:10'"


def test_metatrader5_tab_separated_export(tmp_path):
    rows = ohlc_rows(len(FIVE_MIN))
    lines = ["<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>"] + [
        f"{t:%Y.%m.%d}\t{t:%H:%M:%S}\t" + "\t".join(repr(float(x)) for x in row[:4]) + "\t12"
        for t, row in zip(FIVE_MIN, rows)]
    path = tmp_path / "mt5.csv"
    path.write_text("\n".join(lines) + "\n")
    bars = load_bars(path)
    assert bars.index.equals(FIVE_MIN.rename("timestamp").as_unit("ns"))
    assert np.array_equal(bars[["open", "high", "low", "close"]].to_numpy(), rows[:, :4])


def test_dukascopy_day_first_gmt_time(tmp_path):
    stamps = pd.date_range("2019-01-10 22:00", periods=60, freq="5min", tz="UTC")  # crosses into the 11th..
    stamps = stamps.append(pd.DatetimeIndex([pd.Timestamp("2019-01-13", tz="UTC")]))  # .. and a day > 12
    path = write_csv(tmp_path / "duka.csv", "Gmt time,Open,High,Low,Close,Volume",
                     [f"{t:%d.%m.%Y %H:%M:%S}.000" for t in stamps], ohlc_rows(len(stamps)))
    assert load_bars(path).index.equals(stamps.rename("timestamp").as_unit("ns"))


def test_date_and_time_columns_with_a_format(tmp_path):
    stamps = AMBIGUOUS[:30]
    rows = ohlc_rows(len(stamps))
    lines = ["Date,Time,Open,High,Low,Close"] + [
        f"{t:%d/%m/%Y},{t:%H:%M}," + ",".join(repr(float(x)) for x in row[:4]) for t, row in zip(stamps, rows)]
    path = tmp_path / "x.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"columns 'Date' and 'Time', data row 1: ambiguous date '01/02/2019 00:00'.*"
                                        r"e\.g\. %d/%m/%Y %H:%M"):
        load_bars(path)
    assert load_bars(path, timestamp_format="%d/%m/%Y %H:%M").index.equals(stamps.rename("timestamp").as_unit("ns"))


def test_integer_yyyymmdd_dates_are_dates_not_epoch_seconds(tmp_path):
    """``20190102`` was read as 20 million epoch seconds (1970-08-20)."""
    path = write_csv(tmp_path / "x.csv", "date,open,high,low,close", DAILY[:5].strftime("%Y%m%d"),
                     ohlc_rows(5)[:, :4])
    assert load_bars(path).index.equals(DAILY[:5].rename("timestamp").as_unit("ns"))
    path.write_text(path.read_text().replace("20150107", "20150231"))
    with pytest.raises(DataError) as err:
        load_bars(path)
    assert str(err.value) == f"{path}: column 'date', data row 3: cannot parse timestamp '20150231' (read as a " \
                             f"yyyymmdd date)"
    epoch = write_csv(tmp_path / "e.csv", "timestamp,open,high,low,close", ["1420416000", "1420502400"],
                      ohlc_rows(2)[:, :4])
    assert load_bars(epoch).index[0] == DAILY[0]  # epoch seconds stay epoch seconds


def test_integer_dates_with_a_format(tmp_path):
    path = write_csv(tmp_path / "x.csv", "date,open,high,low,close", DAILY[:5].strftime("%Y%m%d"),
                     ohlc_rows(5)[:, :4])
    assert load_bars(path, timestamp_format="%Y%m%d").index.equals(DAILY[:5].rename("timestamp").as_unit("ns"))


# --- file-side consistency with the API --------------------------------------------------------------

def test_parquet_with_an_unnamed_datetime_index(tmp_path):
    frame = pd.DataFrame(ohlc_rows(5), columns=["open", "high", "low", "close", "volume"], index=DAILY[:5])
    frame.to_parquet(tmp_path / "x.parquet")
    assert load_bars(tmp_path / "x.parquet").index.equals(DAILY[:5].rename("timestamp").as_unit("ns"))


def test_bool_prices_in_a_file_are_not_numbers(tmp_path):
    path = write_csv(tmp_path / "x.csv", "timestamp,open,high,low,close", DAILY[:3].strftime("%Y-%m-%d"),
                     ohlc_rows(3)[:, :4])
    path.write_text(path.read_text().replace("close\n", "close,vol\n").replace("\n2015", ",True\n2015")
                    .rstrip("\n") + ",False\n")
    with pytest.raises(DataError) as err:
        load_bars(path)
    assert str(err.value) == f"{path}: column 'vol', data row 1 (2015-01-05 00:00:00+00:00): not a number: True (a bool column)"


# --- class 11: degenerate data gets warnings ------------------------------------------------------

def bars_of(rows, index=None):
    index = index if index is not None else pd.date_range("2024-01-01", periods=len(rows), freq="5min", tz="UTC")
    return pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], index=index.rename("timestamp"))


def test_normal_bars_have_no_warnings():
    bars = bars_of(ohlc_rows(2000))
    assert degenerate_warnings(bars, "data/x.csv") == []
    assert degenerate_warnings(bars, "data/x.csv", validate_params({})) == []


def test_constant_prices():
    bars = bars_of(np.column_stack([np.full((500, 4), 1.25), np.ones(500)]))
    assert degenerate_warnings(bars, "asset X") == [
        "asset X: close is constant (1.25) over all 500 bars: the Bollinger z-score is undefined, so no trade can open",
        "asset X: high == low on every bar (no range): the ATR is 0, so stop-loss and take-profit sit at the entry "
        "price",
    ]


def test_mostly_flat_closes_and_zero_ranges():
    rows = ohlc_rows(1000)
    rows[::4, 1] = rows[::4, 2] = rows[::4, 0] = rows[::4, 3]  # every 4th bar a doji without range
    flat = rows.copy()
    flat[1:700, :4] = flat[0, 3]  # 70 % of bars unchanged
    assert degenerate_warnings(bars_of(rows), "x") == []  # 25 % zero ranges: normal enough
    lines = degenerate_warnings(bars_of(flat), "x")
    assert lines == ["x: close unchanged from the previous bar on 70% of bars: the z-score is undefined over flat "
                     "windows, few or no trades",
                     "x: high == low on 78% of bars: the ATR is often 0 (stops at the entry price)"]


def test_tiny_prices():
    bars = bars_of(ohlc_rows(2000, scale=1e-12))
    assert degenerate_warnings(bars, "x") == [
        f"x: prices are tiny (median close {np.median(bars['close']):.4g}): a fixed-size position's PnL rounds to "
        f"nothing against the capital; prices scaled wrong?"]
    (line,) = degenerate_warnings(bars, "x", validate_params({}))
    assert line.startswith("x: a typical bar move (") and "of the capital 1e+05: the PnL rounds to nothing" in line
    # risk sizing scales the position to the stop distance: no warning
    assert degenerate_warnings(bars, "x", validate_params({"sizing": "risk"})) == []


def test_moves_below_float_resolution():
    close = 1.0 + 1e-14 * np.arange(1, 501)
    rows = np.column_stack([close, close + 1e-14, close - 1e-14, close, np.ones(500)])
    (line,) = degenerate_warnings(bars_of(rows), "x")
    assert line.startswith("x: the median bar range is 1.998e-14 of the price: the indicators work at float resolution")


def test_spread_larger_than_a_bar():
    bars = bars_of(ohlc_rows(2000))
    (line,) = degenerate_warnings(bars, "x", validate_params({"spread": 0.01}))
    assert line.startswith("x: spread + 2 x slippage (0.01) is at least the median bar range (")


def test_result_warnings_match_what_the_run_gives(tmp_path):
    """Tiny prices run: Sharpe NaN; constant prices: no trades. The warnings say so."""
    from raybt.backtest import run_backtest

    params = validate_params({})
    tiny = run_backtest(bars_of(ohlc_rows(3000, scale=1e-12)), params, asset="TINY")
    flat = run_backtest(bars_of(np.column_stack([np.full((3000, 4), 1.25), np.ones(3000)])), params, asset="FLAT")
    normal = run_backtest(bars_of(ohlc_rows(3000)), params, asset="OK")
    assert math.isnan(tiny.metrics["sharpe"]) and flat.metrics["n_trades"] == 0
    assert normal.metrics["n_trades"] > 0 and not math.isnan(normal.metrics["sharpe"])
    lines = result_warnings({"TINY": tiny.metrics, "FLAT": flat.metrics, "OK": normal.metrics})
    assert lines == ["TINY: Sharpe is NaN (the equity never changed, or too few bars)", "FLAT: no trades",
                     "FLAT: Sharpe is NaN (the equity never changed, or too few bars)"]


def test_the_python_api_warns_like_the_cli():
    """PortfolioBacktester.run issues a RaybtWarning per finding and keeps the lines in
    ``result.provenance["warnings"]`` (run_info.json's warnings); only raybt run printed them."""
    from raybt.config.portfolio import portfolio_config_from_dict
    from raybt.config.universe import AssetConfig
    from raybt.engine import PortfolioBacktester
    from raybt.errors import RaybtWarning

    params = validate_params({})
    frames = {"OK": bars_of(ohlc_rows(3000)),
              "FLAT": bars_of(np.column_stack([np.full((3000, 4), 1.25), np.ones(3000)]))}
    assets = {name: (AssetConfig(name=name, data=None, timeframe="5m", params=params), bars)
              for name, bars in frames.items()}
    config = portfolio_config_from_dict({"name": "w", "risk": {"cluster_correlation": None}}, "w")
    with pytest.warns(RaybtWarning) as caught:
        result = PortfolioBacktester(assets, config, engine="local").run()
    said = [str(w.message) for w in caught]
    assert said == result.provenance["warnings"]
    assert "FLAT: no trades" in said and any(line.startswith("asset FLAT: ") for line in said)
    assert not any(line.startswith(("OK", "asset OK")) for line in said)


def test_cli_timeframe_finer_than_the_bars_is_refused(tmp_path, capsys, monkeypatch):
    """--timeframe 1m on 1h bars ran the 1h bars without a word."""
    monkeypatch.chdir(tmp_path)
    assets = {"assets": {n: {"data": str(ambiguous_file(tmp_path, f"{n}.csv")), "timeframe": "1h",
                             "timestamp_format": "%d/%m/%Y %H:%M"} for n in ("A", "B")}}
    (tmp_path / "assets.json").write_text(json.dumps(assets))
    portfolio = tmp_path / "p.yaml"
    portfolio.write_text(f"name: t\nasset_config: {tmp_path / 'assets.json'}\nengine:\n  chunk: 1D\n")
    rc = main(["run", str(portfolio), "--engine", "local", "--no-progress", "--timeframe", "1m",
               "--out", str(tmp_path / "r")])
    message = one_line_error(capsys, rc)
    assert message == (f"error: {tmp_path / 'A.csv'}: --timeframe 1m is finer than the 1h bars of asset A; "
                       f"bars can only be resampled to a coarser timeframe")
    assert not (tmp_path / "r").exists()


def test_cli_backtest_prints_the_warnings_raybt_run_prints(tmp_path, capsys):
    """``raybt backtest`` on constant prices: exit 0 and the run's "no trades" lines (it printed none)."""
    path = tmp_path / "flat.csv"
    stamps = pd.date_range("2024-01-01", periods=300, freq="5min", tz="UTC").strftime("%Y-%m-%d %H:%M")
    write_csv(path, "timestamp,open,high,low,close,volume", stamps,
              np.column_stack([np.full((300, 4), 1.25), np.ones(300)]))
    assert main(["backtest", "--data", str(path), "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "warning: flat: no trades" in err
    assert any(line.startswith(f"warning: {path}: close is constant") for line in err), err


def _hourly_universe(tmp_path, asset_keys: dict, defaults: dict | None = None):
    from raybt.config.universe import load_asset_universe

    doc = {"assets": {"A": {"data": str(ambiguous_file(tmp_path, "A.csv")), "timestamp_format": "%d/%m/%Y %H:%M",
                            **asset_keys}}}
    if defaults is not None:
        doc["defaults"] = defaults
    (tmp_path / "assets.json").write_text(json.dumps(doc))
    return load_asset_universe(tmp_path / "assets.json")


def test_an_asset_timeframe_finer_than_its_bars_is_refused_naming_the_key(tmp_path):
    """``"timeframe": "1m"`` in the asset config on 1h bars ran the 1h bars (as --timeframe 1m did)."""
    from raybt.errors import ConfigError
    from raybt.universe import load_asset_bars

    universe = _hourly_universe(tmp_path, {"timeframe": "1m"})
    with pytest.raises(ConfigError) as caught:
        load_asset_bars(universe.get("A"), universe)
    assert str(caught.value) == (f"{tmp_path / 'A.csv'}: timeframe 1m ({tmp_path / 'assets.json'}: assets.A.timeframe)"
                                 f" is finer than the 1h bars of asset A; bars can only be resampled to a coarser "
                                 f"timeframe")
    universe = _hourly_universe(tmp_path, {}, defaults={"timeframe": "5m"})
    with pytest.raises(ConfigError, match=r"defaults\.timeframe\) is finer than the 1h bars"):
        load_asset_bars(universe.get("A"), universe)


def test_an_asset_timeframe_coarser_than_its_bars_resamples_and_a_left_out_one_keeps_them(tmp_path):
    from raybt.universe import load_asset_bars

    native = load_asset_bars(_hourly_universe(tmp_path, {}).get("A"))  # left out: the 5m default, 1h bars kept
    assert native.index.to_series().diff().dropna().min() == pd.Timedelta("1h")
    universe = _hourly_universe(tmp_path, {"timeframe": "4h"})
    coarse = load_asset_bars(universe.get("A"), universe)
    assert coarse.index.to_series().diff().dropna().min() == pd.Timedelta("4h")
    assert len(coarse) < len(native)
    same = _hourly_universe(tmp_path, {"timeframe": "1h"})
    pd.testing.assert_frame_equal(load_asset_bars(same.get("A"), same), native, check_exact=True)
