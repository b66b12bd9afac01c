"""Issue 12, class 1: bars handed to the Python API are validated as files are.

* every malformed frame gives ONE DataError line ``asset NAME: ...`` naming the
  column (or ``index``) and the data row, before anything runs;
* a frame that passes gives exactly what its data gives through a file
  (Parquet, and CSV for float64/int prices): equity and trades equal bit for bit;
* the caller's float64 columns are used without a copy;
* the shard/kernel entry refuses positions, lengths and states that would make
  the kernels read or write out of bounds (they do not check bounds);
* a hypothesis run in a subprocess feeds random malformed frames through
  ``PortfolioBacktester(...).run()``: the process never dies, every case is a
  clean one-line error or matches the file path. Run this file as a script
  (``python tests/test_trust_api.py --worker``) to run that fuzz directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from raybt.asset import AssetGroup, ShardError, compact_positions, shard_bars
from raybt.broker import param_records
from raybt.config.params import validate_params
from raybt.config.universe import AssetConfig
from raybt.engine import PortfolioBacktester
from raybt.errors import DataError, RaybtError
from raybt.config.portfolio import portfolio_config_from_dict
from raybt.types import neutral_instructions

PARAMS = {"bb_period": 5, "atr_period": 3, "entry_z": 1.0}


def bars_frame(n=300, seed=1, freq="5min", start="2024-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 3e-3, n)))
    open_ = np.r_[close[:1], close[:-1]]
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * 1.001,
                         "low": np.minimum(open_, close) * 0.999, "close": close, "volume": 1.0},
                        index=pd.date_range(start, periods=n, freq=freq, tz="UTC", name="timestamp"))


def config():
    return portfolio_config_from_dict({"name": "t", "engine": {"chunk": "1D"}}, "t")


def asset(name, data=None, timeframe="5m", params=None):
    return AssetConfig(name=name, data=data, timeframe=timeframe, params=validate_params(params or PARAMS))


def run_frames(frames: dict):
    assets = {name: (asset(name), frame) for name, frame in frames.items()}
    return PortfolioBacktester(assets, config(), engine="local").run()


def run_files(paths: dict, timeframe="5m"):
    return PortfolioBacktester([asset(name, Path(p), timeframe) for name, p in paths.items()], config(),
                               engine="local").run()


def assert_same_result(a, b) -> None:
    assert np.array_equal(a.equity.to_numpy(), b.equity.to_numpy())
    assert a.equity.index.equals(b.equity.index) and list(a.equity.columns) == list(b.equity.columns)
    pd.testing.assert_frame_equal(a.trades.reset_index(drop=True), b.trades.reset_index(drop=True), check_exact=True)


def api_error(frame, name="EURUSD") -> str:
    with pytest.raises(DataError) as err:
        PortfolioBacktester({name: (asset(name), frame), "OTHER": (asset("OTHER"), bars_frame(seed=9))},
                            config(), engine="local")
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"asset {name}: "), message
    return message


# --- class 1: every malformed frame is one clear error ----------------------------------------

def _edit(frame, fn):
    frame = frame.copy()
    fn(frame)
    return frame


def _set_index(frame, index):
    frame = frame.copy()
    frame.index = index
    return frame


GOOD = bars_frame()
T = GOOD.index

API_CASES = [
    ("descending index", GOOD.iloc[::-1],
     f"asset EURUSD: index, data row 2 ({T[-2]}): timestamps not sorted (earlier than row 1)"),
    ("shuffled index", GOOD.iloc[[0, 1, 3, 2] + list(range(4, 300))],
     f"asset EURUSD: index, data row 4 ({T[2]}): timestamps not sorted (earlier than row 3)"),
    ("duplicate timestamp", _set_index(GOOD, T.where(np.arange(300) != 10, T[9])),
     f"asset EURUSD: index, data row 11 ({T[9]}): duplicate timestamp"),
    ("NaT in the index", _set_index(GOOD, T.where(np.arange(300) != 7, pd.NaT)),
     "asset EURUSD: index, data row 8: missing timestamp (NaT)"),
    ("NaN close", _edit(GOOD, lambda f: f.iloc.__setitem__((50, 3), np.nan)),
     f"asset EURUSD: column 'close', data row 51 ({T[50]}): missing value (NaN)"),
    ("infinite open", _edit(GOOD, lambda f: f.iloc.__setitem__((5, 0), np.inf)),
     f"asset EURUSD: column 'open', data row 6 ({T[5]}): infinite value"),
    ("negative price", _edit(GOOD, lambda f: f.iloc.__setitem__((20, 2), -1.0)),
     f"asset EURUSD: column 'low', data row 21 ({T[20]}): non-positive price -1.0"),
    ("high < low", _edit(GOOD, lambda f: f.iloc.__setitem__((30, 1), GOOD["low"].iloc[30] * 0.99)),
     f"asset EURUSD: column 'high', data row 31 ({T[30]}): high {float(GOOD['low'].iloc[30] * 0.99)!r} < low "
     f"{float(GOOD['low'].iloc[30])!r}"),
    ("negative volume", _edit(GOOD, lambda f: f.iloc.__setitem__((3, 4), -5.0)),
     f"asset EURUSD: column 'volume', data row 4 ({T[3]}): negative volume -5.0"),
    ("not a number", _edit(GOOD, lambda f: f.__setitem__("close", f["close"].astype(object).where(
        np.arange(300) != 12, "abc"))), f"asset EURUSD: column 'close', data row 13 ({T[12]}): not a number: 'abc'"),
    ("bool column", _edit(GOOD, lambda f: f.__setitem__("volume", True)),
     f"asset EURUSD: column 'volume', data row 1 ({T[0]}): not a number: True (a bool column)"),
    ("one bar", GOOD.iloc[:1], "asset EURUSD: only 1 bar(s); a backtest needs at least 2"),
    ("fewer bars than the windows", GOOD.iloc[:4],
     "asset EURUSD: only 4 bar(s), fewer than the minimum 6 its indicator windows need (max(bb_period=5, "
     "atr_period=3) + 1)"),
    ("empty frame", GOOD.iloc[:0], "asset EURUSD: no bars (an empty frame)"),
    ("RangeIndex", GOOD.reset_index(),
     "asset EURUSD: bars have a RangeIndex, not a DatetimeIndex (need a DatetimeIndex and open, high, low, close; "
     "make it the index: bars.set_index('timestamp'))"),
    ("string index", _set_index(GOOD, T.astype(str)), "asset EURUSD: bars have a Index, not a DatetimeIndex"),
    ("misspelt column", GOOD.rename(columns={"close": "clsoe"}),
     "asset EURUSD: bars have no column 'close' (columns: open, high, low, clsoe, volume; did you mean 'clsoe'?; "
     "need a DatetimeIndex and open, high, low, close)"),
    ("two closes", GOOD.assign(Close=GOOD["close"]), "asset EURUSD: columns 'close', 'Close' all mean 'close'; keep one"),
    ("a Series", GOOD["close"], "asset EURUSD: bars must be a pandas DataFrame (DatetimeIndex; open, high, low, "
                                "close columns), got Series"),
    ("None", None, "asset EURUSD: bars must be a pandas DataFrame"),
]


@pytest.mark.parametrize("case,frame,expected", API_CASES, ids=[c[0] for c in API_CASES])
def test_malformed_frame_is_one_clear_error(case, frame, expected):
    assert api_error(frame).startswith(expected)


def test_descending_index_does_not_kill_the_process(tmp_path):
    """Before: a descending index segfaulted (``malloc(): invalid size``). Now: one error line, exit 2."""
    script = tmp_path / "descending.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_trust_api import GOOD, asset, config\n"
        "from raybt.engine import PortfolioBacktester\n"
        "from raybt.errors import RaybtError\n"
        "try:\n"
        "    PortfolioBacktester({'A': (asset('A'), GOOD.iloc[::-1]), 'B': (asset('B'), GOOD)}, config(),\n"
        "                        engine='local').run()\n"
        "except RaybtError as exc:\n"
        "    print(f'error: {exc}', file=sys.stderr)\n"
        "    sys.exit(2)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env=os.environ.copy())
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert done.stderr.splitlines() == [f"error: asset A: index, data row 2 ({T[-2]}): timestamps not sorted "
                                        f"(earlier than row 1)"]


# --- accepted variants give exactly the file path's result --------------------------------------

def _naive(f):
    return _set_index(f, f.index.tz_localize(None))


VARIANTS = [
    ("as loaded", lambda f: f),
    ("tz-naive index (UTC)", _naive),
    ("another time zone", lambda f: _set_index(f, f.index.tz_convert("America/New_York"))),
    ("unnamed index", lambda f: f.rename_axis(None)),
    ("seconds unit", lambda f: _set_index(f, f.index.as_unit("s"))),
    ("capitalised columns, no volume", lambda f: f.drop(columns="volume").rename(columns=str.title)),
    ("one-letter columns and extras", lambda f: f.rename(columns={"open": "o", "high": "h", "low": "l",
                                                                  "close": "c"}).assign(note="x")),
    ("integer prices", lambda f: (f * 1000).round().astype(np.int64).assign(high=lambda g: g["high"] + 1)),
    ("numbers as strings", lambda f: f.astype(str)),
    ("nullable Float64", lambda f: f.astype("Float64")),
]


@pytest.mark.parametrize("case,make", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_valid_frame_equals_the_file_path(tmp_path, case, make):
    a, b = make(bars_frame(seed=3)), bars_frame(seed=4, n=250, freq="7min")
    from_frames = run_frames({"A": a, "B": b})
    assert len(from_frames.trades) > 5  # something to compare
    b_path = tmp_path / "B.parquet"
    b.to_parquet(b_path)
    for suffix in (".parquet", ".csv"):
        path = tmp_path / f"A{suffix}"
        a.to_parquet(path) if suffix == ".parquet" else a.to_csv(path)
        assert_same_result(from_frames, run_files({"A": path, "B": b_path}))


def test_frame_validation_is_the_loaders(tmp_path):
    """validate_frame returns exactly load_bars' frame for the same data, and views float64 columns."""
    from raybt.data.loader import load_bars, validate_frame

    frame = _naive(bars_frame(seed=5)).rename_axis(None)
    frame.to_csv(tmp_path / "x.csv")
    checked = validate_frame(frame, "X")
    pd.testing.assert_frame_equal(checked, load_bars(tmp_path / "x.csv"), check_exact=True)
    for col in ("open", "high", "low", "close", "volume"):
        assert np.shares_memory(checked[col].to_numpy(), frame[col].to_numpy())


def test_local_engine_reads_the_callers_columns():
    a, b = bars_frame(seed=6), bars_frame(seed=7)
    bt = PortfolioBacktester({"A": (asset("A"), a), "B": (asset("B"), b)}, config(), engine="local")
    for kept, original in zip(bt.bars, (a, b)):
        for col in ("open", "high", "low", "close"):
            assert np.shares_memory(kept[col].to_numpy(), original[col].to_numpy())
    assert np.isfinite(bt.run().equity.to_numpy()).all()


# --- the kernel entry refuses what would take it out of bounds -----------------------------------

def _columns(n, seed=0):
    f = bars_frame(n=n, seed=seed)
    return [f[c].to_numpy() for c in ("open", "high", "low", "close")]


def test_shard_refuses_unsorted_or_negative_positions_and_unequal_columns():
    o, h, lo, c = _columns(50)
    with pytest.raises(ShardError, match=r"shard asset 0: union positions not strictly increasing at bar 1 "
                                         r"\(49 then 48\)"):
        shard_bars([o], [h], [lo], [c], [(np.arange(49, -1, -1), 0)])
    with pytest.raises(ShardError, match=r"union positions not strictly increasing at bar 2 \(5 then 2\)"):
        compact_positions(np.r_[0, 5, 2])  # its ends alone would pass it as consecutive
    with pytest.raises(ShardError, match=r"union positions: negative union position -3 at bar 0"):
        shard_bars([o], [h], [lo], [c], [np.arange(-3, 47)])
    with pytest.raises(ShardError, match=r"shard asset 0: columns of unequal length \(open 49, high 50"):
        shard_bars([o[:-1]], [h], [lo], [c], [np.arange(50)])
    with pytest.raises(ShardError, match=r"shard asset 0: 10 union positions for 50 bars"):
        shard_bars([o], [h], [lo], [c], [(np.arange(0, 20, 2), 0)])
    with pytest.raises(ShardError, match=r"shard asset 0: negative union base -1"):
        shard_bars([o], [h], [lo], [c], [(np.zeros(0, np.int64), -1)])


def test_group_refuses_chunks_out_of_order_corrupt_state_and_empty_windows():
    o, h, lo, c = _columns(100)
    bars = shard_bars([o], [h], [lo], [c], [np.arange(100)])
    params = param_records([validate_params(PARAMS)])
    group = AssetGroup(bars, params)
    ins = neutral_instructions(1)
    with pytest.raises(ShardError, match=r"next bar 0 sits at union position 0, before the chunk start 50"):
        group.step(50, 100, ins)  # bars 0..49 would be written past the chunk's 50 columns
    assert group.step(0, 50, ins).equity.shape == (1, 50)
    assert group.step(50, 100, ins).equity.shape == (1, 50)
    state = group.get_state()
    state["next_bar"] = 500
    group.set_state(state)
    with pytest.raises(ShardError, match=r"state next_bar 500 outside its 100 bars"):
        group.step(100, 120, ins)
    state["next_bar"] = 10
    group.set_state(state)
    with pytest.raises(ShardError, match=r"before the chunk start 60"):
        group.step(60, 80, ins)
    with pytest.raises(ShardError, match=r"need 0 <= t_start <= t_end"):
        group.step(-5, 10, ins)
    broken = params.copy()
    broken["bb_period"] = 0
    with pytest.raises(ShardError, match=r"bb_period 0 < 1"):
        AssetGroup(bars, broken)


def test_chunked_steps_still_equal_one_step():
    """The state check (only when a chunk does not follow the last one) leaves results unchanged."""
    o, h, lo, c = _columns(400, seed=2)
    params = param_records([validate_params(PARAMS)])
    whole = AssetGroup(shard_bars([o], [h], [lo], [c], [np.arange(400)]), params).step(0, 400,
                                                                                         neutral_instructions(1))
    group = AssetGroup(shard_bars([o], [h], [lo], [c], [np.arange(400)]), params)
    parts = [group.step(t, min(400, t + 37), neutral_instructions(1)) for t in range(0, 400, 37)]
    assert np.array_equal(np.concatenate([p.equity[0] for p in parts]), whole.equity[0])
    assert np.concatenate([p.trades for p in parts]).tobytes() == whole.trades.tobytes()
    assert len(whole.trades) > 3


# --- random malformed frames through the API, in a subprocess -------------------------------------

FUZZ_EXAMPLES = int(os.environ.get("RAYBT_API_FUZZ_EXAMPLES", "60"))


def test_fuzz_api_frames_in_a_subprocess(tmp_path):
    """The process never dies; each case is one clean error line or equals the file path (see _fuzz_worker)."""
    log = tmp_path / "cases.jsonl"
    done = subprocess.run([sys.executable, __file__, "--worker", str(log), str(FUZZ_EXAMPLES)],
                          capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert done.returncode >= 0, f"the process died from signal {-done.returncode}: {done.stderr[-3000:]}"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    cases = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(cases) >= FUZZ_EXAMPLES
    outcomes = {c["outcome"] for c in cases}
    assert {"error", "match"} <= outcomes, outcomes  # both kinds were exercised
    for c in cases:
        if c["outcome"] == "error":
            assert "\n" not in c["message"] and c["message"].startswith("asset A: "), c


def _fuzz_worker(log_path: str, n_examples: int) -> None:
    """Hypothesis over malformed frames; every outcome appended to ``log_path`` (JSON lines).

    Its files go in a folder beside the log (the test's own tmp_path), not in the system's temp folder."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    out = open(log_path, "a")
    folder = Path(log_path).parent / "fuzz-files"
    folder.mkdir(exist_ok=True)
    other = bars_frame(n=120, seed=11, freq="10min")
    other_path = folder / "B.parquet"
    other.to_parquet(other_path)

    @st.composite
    def frames(draw):
        n = draw(st.sampled_from([120, 40, 8, 3, 1, 0]))
        frame = bars_frame(n=n, seed=draw(st.integers(0, 50)), freq=draw(st.sampled_from(["5min", "15min", "1h"])))
        ops = draw(st.lists(st.sampled_from([
            "descending", "shuffle", "dup_stamp", "nat", "naive", "tokyo", "unnamed", "range_index",
            "str_index", "sec_unit", "nan", "inf", "neg", "zero", "huge", "tiny_cell", "swap_hl", "scale_small",
            "scale_large", "constant", "float32", "int", "strings", "bad_string", "bool_vol", "nullable_na",
            "category", "drop_open", "drop_volume", "caps", "aliases", "extra", "dup_label", "truncate",
            "not_frame"]), min_size=1, max_size=3))
        row = draw(st.integers(0, 10 ** 6))
        col = draw(st.sampled_from(["open", "high", "low", "close", "volume"]))
        for op in ops:
            if not isinstance(frame, pd.DataFrame):
                break
            try:
                frame = mutate(frame, op, row, col, draw)
            except (TypeError, ValueError, OverflowError):  # pandas refuses this edit of this frame: skip it
                pass
        return frame, ops

    def mutate(frame, op, row, col, draw):
        """``frame`` after one edit ``op`` (a copy)."""
        frame = frame.copy()
        k = row % len(frame) if len(frame) else None
        cols = list(frame.columns)
        c = col if col in cols else (cols[0] if cols else None)
        if op == "descending":
            frame = frame.iloc[::-1]
        elif op == "shuffle" and len(frame) > 1:
            frame = frame.sample(frac=1.0, random_state=row % 1000)
        elif op == "dup_stamp" and len(frame) > 1 and isinstance(frame.index, pd.DatetimeIndex):
            frame.index = frame.index.where(np.arange(len(frame)) != max(k, 1), frame.index[max(k, 1) - 1])
        elif op == "nat" and k is not None and isinstance(frame.index, pd.DatetimeIndex):
            frame.index = frame.index.where(np.arange(len(frame)) != k, pd.NaT)
        elif op == "naive" and isinstance(frame.index, pd.DatetimeIndex) and frame.index.tz is not None:
            frame.index = frame.index.tz_localize(None)
        elif op == "tokyo" and isinstance(frame.index, pd.DatetimeIndex) and frame.index.tz is not None:
            frame.index = frame.index.tz_convert("Asia/Tokyo")
        elif op == "unnamed":
            frame = frame.rename_axis(None)
        elif op == "range_index":
            frame = frame.reset_index(drop=True)
        elif op == "str_index":
            frame.index = frame.index.astype(str)
        elif op == "sec_unit" and isinstance(frame.index, pd.DatetimeIndex):
            frame.index = frame.index.as_unit("s")
        elif op in ("nan", "inf", "neg", "zero", "huge", "tiny_cell") and k is not None and c is not None:
            value = {"nan": np.nan, "inf": -np.inf, "neg": -1.5, "zero": 0.0, "huge": 1e300,
                     "tiny_cell": 1e-300}[op]
            try:
                frame.iloc[k, cols.index(c)] = value
            except (TypeError, ValueError):
                pass
        elif op == "swap_hl" and k is not None and {"high", "low"} <= set(cols):
            frame.iloc[k, [cols.index("high"), cols.index("low")]] = frame.iloc[
                k, [cols.index("low"), cols.index("high")]].to_numpy()
        elif op in ("scale_small", "scale_large", "constant"):
            prices = [x for x in ("open", "high", "low", "close") if x in cols]
            try:
                if op == "constant":
                    frame[prices] = 1.25
                else:
                    frame[prices] = frame[prices] * (1e-12 if op == "scale_small" else 1e12)
            except (TypeError, ValueError):
                pass
        elif op == "float32":
            frame = frame.astype("float32", errors="ignore")
        elif op == "int" and c is not None:
            try:
                frame[c] = frame[c].astype(np.int64)
            except (TypeError, ValueError, OverflowError):
                pass
        elif op == "strings":
            frame = frame.astype(str)
        elif op == "bad_string" and k is not None and c is not None:
            frame[c] = frame[c].astype(object)
            frame.iloc[k, cols.index(c)] = "1,5"
        elif op == "bool_vol" and "volume" in cols:
            frame["volume"] = np.ones(len(frame), dtype=bool)
        elif op == "nullable_na" and k is not None and c is not None:
            try:
                frame[c] = frame[c].astype("Float64")
                frame.iloc[k, cols.index(c)] = pd.NA
            except (TypeError, ValueError):
                pass
        elif op == "category" and c is not None:
            frame[c] = frame[c].astype("category")
        elif op == "drop_open" and "open" in cols:
            frame = frame.drop(columns="open")
        elif op == "drop_volume" and "volume" in cols:
            frame = frame.drop(columns="volume")
        elif op == "caps":
            frame.columns = [str(x).upper() for x in frame.columns]
        elif op == "aliases":
            frame = frame.rename(columns={"open": "o", "high": "H", "low": " Low ", "close": "<CLOSE>",
                                          "volume": "vol"})
        elif op == "extra":
            frame["note"] = "x"
        elif op == "dup_label" and c is not None:
            frame = pd.concat([frame, frame[[c]]], axis=1)
        elif op == "truncate":
            frame = frame.iloc[: row % 5]
        elif op == "not_frame":
            frame = draw(st.sampled_from([None, 3.0, "bars.csv", frame.to_numpy(), frame.iloc[:, 0]
                                          if len(frame.columns) else None, frame.to_dict()]))
        return frame

    def record(**fields):
        out.write(json.dumps(fields, default=str) + "\n")
        out.flush()

    def file_result(frame, suffix):
        path = folder / f"A{suffix}"
        try:
            frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path)
        except Exception:  # noqa: BLE001 - pyarrow refuses some malformed frames; nothing to compare then
            return None
        try:
            return run_files({"A": path, "B": other_path}, timeframe="1m")
        except RaybtError as exc:
            return exc

    @settings(max_examples=n_examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(frames())
    def fuzz(case):
        frame, ops = case
        try:
            result = run_frames({"A": frame, "B": other})
        except RaybtError as exc:
            message = str(exc)
            assert "\n" not in message and message.startswith("asset A: "), message
            record(outcome="error", ops=ops, message=message)
            if isinstance(frame, pd.DataFrame) and isinstance(frame.index, pd.DatetimeIndex):
                via_file = file_result(frame, ".parquet")  # the file path refuses the same data
                assert via_file is None or isinstance(via_file, RaybtError), (ops, message)
            return
        compared = []
        suffixes = [".parquet"]
        if all(frame[c].dtype in (np.float64, np.int64) for c in frame.columns):
            suffixes.append(".csv")  # text holds float64 and int64 exactly (float32 would print shorter)
        for suffix in suffixes:
            via_file = file_result(frame, suffix)
            if via_file is None:
                continue
            assert not isinstance(via_file, Exception), (ops, suffix, str(via_file))
            assert_same_result(result, via_file)
            compared.append(suffix)
        assert compared, ops
        record(outcome="match", ops=ops, files=compared, trades=len(result.trades))

    fuzz()
    out.close()


if __name__ == "__main__" and len(sys.argv) >= 2 and sys.argv[1] == "--worker":
    sys.path.insert(0, str(Path(__file__).parent))
    _fuzz_worker(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 60)
