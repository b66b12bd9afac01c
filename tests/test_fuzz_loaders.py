"""Fuzzing the input edges: every failure is a clear RaybtError, never another exception.

* ``load_bars`` on mutations of a valid bars CSV (dropped, duplicated,
  shuffled lines, random cell edits, random bytes, truncation);
* the portfolio config loader and the asset config loader on random YAML
  documents (recursive dicts/lists/scalars, mutations of valid configs) and on
  random text.

A success must be a fully validated result (bars: sorted unique UTC index,
finite positive prices, high >= max(open, close) >= min(open, close) >= low).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raybt.broker import param_record
from raybt.config.universe import load_asset_universe
from raybt.data.timeframes import parse_timeframe
from raybt.data.loader import load_bars
from raybt.errors import RaybtError
from raybt.config.portfolio import PortfolioConfig, load_portfolio_config

# RAYBT_FUZZ_EXAMPLES=2000 for a longer hunt; 150 per test keeps the suite quick
FUZZ = settings(max_examples=int(os.environ.get("RAYBT_FUZZ_EXAMPLES", "150")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _valid_csv(n=12) -> str:
    lines = ["timestamp,open,high,low,close,volume"]
    t0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")
    for i in range(n):
        o = 1.10 + 0.001 * i
        c = o + (0.0005 if i % 2 else -0.0005)
        lines.append(f"{(t0 + pd.Timedelta(minutes=5 * i)).strftime('%Y-%m-%d %H:%M:%S')},"
                     f"{o:.4f},{max(o, c) + 0.0007:.4f},{min(o, c) - 0.0007:.4f},{c:.4f},{10 + i}")
    return "\n".join(lines) + "\n"


VALID = _valid_csv()

CELLS = st.one_of(
    st.sampled_from(["", "nan", "NaN", "inf", "-inf", "0", "-1", "1e400", "1e-400", "abc", "null", " ", '"',
                     "2024-13-01", "9999-12-31", "0001-01-01", "1970-01-01", "1e20", "True", "2024-01-01T00:00Z",
                     "1704067200", "1704067200000", "-9e18", "\u00e9", ",", "\t", "1,5", "1.1.1"]),
    st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**20, 10**20).map(str),
)

TIMES = st.one_of(
    CELLS,
    st.sampled_from(["2024-01-01", "2024-01-01 00:05", "2024-01-01T00:00:00+05:00", "2024-02-30 00:00",
                     "2262-04-12", "1677-09-20", "2261-12-31", "9999-12-31 23:59", "99999-01-01", "24:00",
                     "2024-01-01 25:00", "1e11", "1e12", "9.3e9", "1704067200.5", "-1", "0", "Mon Jan 1 2024",
                     "2024-W01", "20240101", "NaT", "now", "today"]),
    st.datetimes(min_value=__import__("datetime").datetime(1, 1, 1)).map(str),
)


@st.composite
def mutated_csv(draw) -> bytes:
    lines = VALID.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "dup", "shuffle", "cell", "swap", "header", "bytes", "truncate",
                                   "blank", "extra", "time", "time", "cell", "cell"]))
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "shuffle":
            lines = draw(st.permutations(lines))
            lines = list(lines)
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "bytes":
            pos = draw(st.integers(0, len(lines[i])))
            junk = draw(st.binary(min_size=1, max_size=4)).decode("latin-1")
            lines[i] = lines[i][:pos] + junk + lines[i][pos:]
        elif op == "cell":
            cells = lines[i].split(",")
            k = draw(st.integers(0, len(cells) - 1))
            cells[k] = draw(CELLS)
            lines[i] = ",".join(cells)
        elif op == "header":
            cells = lines[0].split(",")
            k = draw(st.integers(0, len(cells) - 1))
            cells[k] = draw(st.sampled_from(["", "clsoe", "Close", "HIGH", "date", "time", "o", "vol", "x",
                                             "timestamp", "close", "open"]))
            lines[0] = ",".join(cells)
        elif op == "time":
            cells = lines[i].split(",")
            cells[0] = draw(TIMES)
            lines[i] = ",".join(cells)
        elif op == "blank":
            lines.insert(i, draw(st.sampled_from(["", ",,,,,", " ", "#"])))
        elif op == "extra":
            lines[i] = lines[i] + "," + draw(CELLS)
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass") if lines else b""
    if draw(st.integers(0, 4)) == 0:
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + draw(st.binary(max_size=6)) + data[pos:]
    if draw(st.integers(0, 5)) == 0:
        data = data[:draw(st.integers(0, len(data)))]
    return data


def _check_bars(df: pd.DataFrame) -> None:
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC" and len(df) >= 1
    assert df.index.is_monotonic_increasing and df.index.is_unique
    values = df.to_numpy(np.float64)
    assert np.isfinite(values).all()
    o, h, lo, c, v = values.T
    assert (lo > 0).all() and (h >= lo).all()
    assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all() and (v >= 0).all()


def test_valid_csv_loads(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text(VALID)
    _check_bars(load_bars(path))


@FUZZ
@given(data=mutated_csv())
def test_fuzz_bars_csv(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fz") / "bars.csv"
    path.write_bytes(data)
    try:
        df = load_bars(path)
    except RaybtError as exc:
        message = str(exc)
        assert message and "\n" not in message and str(path) in message, message
    else:
        _check_bars(df)


# --- configs ------------------------------------------------------------------------------

KEYS = st.sampled_from([
    "name", "description", "asset_config", "assets", "preference", "initial_capital", "allocation",
    "rebalance", "risk", "engine", "model", "lookback", "max_assets", "max_single_asset_weight",
    "max_asset_correlation", "cluster_correlation", "max_entry_margin", "enabled", "portfolio_risk", "max_portfolio_drawdown", "resume", "chunk",
    "cooldown_chunks", "resume_drawdown", "correlation_window", "transport", "checkpoint_every",
    "defaults", "synthetic", "strategy", "broker", "data", "timeframe", "timestamp_format", "class", "bb_period",
    "sl_atr", "leverage", "weight", "sizing", "dir", "n_assets", "seed", "format", "A", "B",
]) | st.text(max_size=6)

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**400, -10**400, 2**63, float("nan"), float("inf"), "nan", "inf", "1e999", "a\x00b", ""]),
    st.text(max_size=10), st.sampled_from(["all", "1D", "5m", "1min", "equal_weight", "risk_parity", "0D",
                                           "-1D", "none", "weekly", "cooldown", "fixed", "x.csv", "..", "/",
                                           "%d/%m/%Y %H:%M", "%Q", "%", "%Y\x00"]),
)

DOCS = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
                    max_leaves=25)


def _yaml_text(doc) -> str:
    try:
        return yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return "{}"


RANDOM_TEXT = st.text(alphabet=st.sampled_from(list("abc:-[]{}, \n\t'\"&*!|>%@`#?0123.") + ["\u00e9", "\x00"]),
                      max_size=120)


def _expect_clear(load, path):
    try:
        return load(path)
    except RaybtError as exc:
        message = str(exc)
        assert message and "\n" not in message, message
        return None


def _write(path, text: str, junk: bytes) -> None:
    data = text.encode("utf-8", "surrogatepass")
    if junk:
        data = data[: len(data) // 2] + junk + data[len(data) // 2:]
    path.write_bytes(data)


def _numbers(node):
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            yield from _numbers(getattr(node, f.name))
    elif isinstance(node, dict):
        for v in node.values():
            yield from _numbers(v)
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield node


JUNK = st.sampled_from([b"", b"", b"", b"\xff\xfe", b"\x80", b"\x00", b"\xc3"])


@FUZZ
@given(doc=DOCS, text=RANDOM_TEXT, use_text=st.booleans(), junk=JUNK, suffix=st.sampled_from([".yaml", ".json"]))
def test_fuzz_portfolio_config(tmp_path_factory, doc, text, use_text, junk, suffix):
    path = tmp_path_factory.mktemp("pc") / f"p{suffix}"
    body = text if use_text else (json.dumps(doc, default=str) if suffix == ".json" else _yaml_text(doc))
    _write(path, body, junk)
    config = _expect_clear(load_portfolio_config, path)
    if config is not None:
        assert isinstance(config, PortfolioConfig)
        assert config.risk.resume_drawdown <= config.risk.max_portfolio_drawdown
        assert all(math.isfinite(x) for x in _numbers(config)), config
        assert config.chunk_timedelta > pd.Timedelta(0) and config.lookback_timedelta > pd.Timedelta(0)


@st.composite
def asset_docs(draw):
    """Mostly well-shaped asset configs with random values, sometimes random documents."""
    if draw(st.integers(0, 3)) == 0:
        return draw(DOCS)
    section = st.dictionaries(KEYS, SCALARS, max_size=3)
    asset = st.fixed_dictionaries({"data": SCALARS | st.just("bars.csv")},
                                  optional={"timeframe": SCALARS, "timestamp_format": SCALARS, "class": SCALARS,
                                            "strategy": section | SCALARS, "broker": section | SCALARS})
    doc = {"assets": draw(st.dictionaries(st.text(max_size=5) | st.integers(), asset, max_size=3))}
    if draw(st.booleans()):
        doc["defaults"] = draw(st.fixed_dictionaries({}, optional={"timeframe": SCALARS, "timestamp_format": SCALARS,
                                                                   "strategy": section, "broker": section}) | SCALARS)
    if draw(st.booleans()):
        doc["synthetic"] = draw(st.dictionaries(KEYS, SCALARS, max_size=4) | SCALARS)
    return doc


@FUZZ
@given(doc=asset_docs(), text=RANDOM_TEXT, mode=st.sampled_from(["json", "yaml", "text"]), junk=JUNK)
def test_fuzz_asset_config(tmp_path_factory, doc, text, mode, junk):
    folder = tmp_path_factory.mktemp("ac")
    if mode == "json":
        path = folder / "a.json"
        _write(path, json.dumps(doc, default=str), junk)
    elif mode == "yaml":
        path = folder / "a.yaml"
        _write(path, _yaml_text(doc), junk)
    else:
        path = folder / "a.yaml"
        _write(path, text, junk)
    universe = _expect_clear(load_asset_universe, path)
    if universe is not None:
        assert universe.assets
        for asset in universe.assets.values():
            assert asset.params["bb_period"] >= 2 and asset.params["sl_atr"] > 0
            assert all(math.isfinite(x) for x in _numbers(asset.params))
            param_record(asset.params)  # packs into the kernel record without overflow
            assert isinstance(asset.data, Path) and asset.data.is_absolute()
            parse_timeframe(asset.timeframe)
            if asset.timestamp_format is not None:  # a format that strptime takes
                assert isinstance(asset.timestamp_format, str) and "%" in asset.timestamp_format
                pd.to_datetime(pd.Series([pd.Timestamp("2019-01-02 03:04:05").strftime(asset.timestamp_format)]),
                               format=asset.timestamp_format)


# --- day/month order ----------------------------------------------------------------------------

DAY_MONTH_FORMATS = ["%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y %H:%M", "%m-%d-%Y %H:%M:%S", "%d/%m/%y", "%m/%d/%y %H:%M"]


@FUZZ
@given(days=st.lists(st.integers(0, 3000), min_size=1, max_size=25, unique=True),
       fmt=st.sampled_from(DAY_MONTH_FORMATS), settle=st.sampled_from([None, "given"]))
def test_fuzz_day_month_order(tmp_path_factory, days, fmt, settle):
    """Dates written day-first or month-first: read right, or refused as ambiguous; never silently swapped.

    The file settles the order when some date has its day above 12; when
    none does, only files whose dates read the same either way (day == month)
    load without ``timestamp_format``.
    """
    stamps = pd.DatetimeIndex(sorted(pd.Timestamp("2001-01-01", tz="UTC") + pd.Timedelta(days=d) for d in days))
    if "%H" in fmt:
        stamps = stamps + pd.Timedelta(hours=13, minutes=7)
    path = tmp_path_factory.mktemp("dm") / "bars.csv"
    path.write_text("date,open,high,low,close\n" + "".join(f"{t.strftime(fmt)},1,2,0.5,1.5\n" for t in stamps))
    try:
        bars = load_bars(path, timestamp_format=fmt if settle else None)
    except RaybtError as exc:
        message = str(exc)
        assert "\n" not in message and str(path) in message
        assert settle is None and (stamps.day <= 12).all() and (stamps.day != stamps.month).any(), message
        assert "ambiguous date" in message and "timestamp_format" in message and "--date-format" in message
        return
    assert bars.index.equals(stamps.rename("timestamp").as_unit("ns"))
