"""The loader's rules and the timeframe inference in numba kernels (raybt.data.nb) change no result.

``_check_rules`` must raise exactly the DataError the plain-numpy rules raised
before (same rule, column, row, timestamp and wording, same precedence) or
return an equal frame; ``infer_timeframe`` must give what ``np.unique`` of the
positive spacings gives (the smallest of equally common spacings). The old
code is copied here as the reference, deliberately plain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raybt.data import nb
from raybt.data.dates import _MAX_TIME, _MIN_TIME
from raybt.data.loader import COLUMNS, PRICE_COLUMNS, _check_rules, _float_values, validate_frame
from raybt.data.messages import _col, _fail, _num
from raybt.data.timeframes import infer_timeframe
from raybt.errors import DataError

PROPERTY = settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FIVE_MINUTES = 300 * 10**9
T0 = pd.Timestamp("2024-01-01", tz="UTC").value


# --- the reference: the rules as plain numpy passes (raybt/data/loader.py before the kernel) -----------

def reference_check_rules(stamps: pd.DatetimeIndex, raw_columns: dict, source: str, time_where: str) -> pd.DataFrame:
    try:
        stamps = stamps.as_unit("ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        i = next(k for k, t in enumerate(stamps) if not (_MIN_TIME <= t <= _MAX_TIME))
        _fail(source, time_where, i + 1, None, f"timestamp {str(stamps[i])!r} out of range "
                                               f"({_MIN_TIME.year + 1}..{_MAX_TIME.year - 1})")
    n = len(stamps)
    values, where = {}, {}
    for col in COLUMNS:
        if col not in raw_columns:
            values[col] = np.zeros(n)
            continue
        raw = raw_columns[col]
        where[col] = _col(raw.name)
        arr = _float_values(raw, source, where[col], stamps)
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            _fail(source, where[col], i + 1, stamps[i],
                  f"{'missing value (NaN)' if np.isnan(arr[i]) else 'infinite value'}")
        values[col] = arr
    ns = stamps.asi8
    step = np.diff(ns)
    if (step == 0).any():
        i = int(np.flatnonzero(step == 0)[0]) + 1
        _fail(source, time_where, i + 1, stamps[i], "duplicate timestamp")
    if (step < 0).any():
        i = int(np.flatnonzero(step < 0)[0]) + 1
        _fail(source, time_where, i + 1, stamps[i], f"timestamps not sorted (earlier than row {i})")
    for col in PRICE_COLUMNS:
        bad = values[col] <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            _fail(source, where[col], i + 1, stamps[i], f"non-positive price {_num(values[col][i])}")
    for col in PRICE_COLUMNS:
        bad = (values[col] < 1e-100) | (values[col] > 1e100)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            _fail(source, where[col], i + 1, stamps[i],
                  f"price {_num(values[col][i])} outside 1e-100..1e+100 (a bad tick, or prices in the wrong units?)")
    o, h, lo, c = (values[k] for k in PRICE_COLUMNS)
    bad = h < lo
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, where["high"], i + 1, stamps[i], f"high {_num(h[i])} < low {_num(lo[i])}")
    bad = h < np.maximum(o, c)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, where["high"], i + 1, stamps[i], f"high {_num(h[i])} below open/close {_num(max(o[i], c[i]))}")
    bad = lo > np.minimum(o, c)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, where["low"], i + 1, stamps[i], f"low {_num(lo[i])} above open/close {_num(min(o[i], c[i]))}")
    bad = values["volume"] < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, where["volume"], i + 1, stamps[i], f"negative volume {_num(values['volume'][i])}")
    return pd.DataFrame({k: values[k] for k in COLUMNS},
                        index=pd.DatetimeIndex(stamps, name="timestamp"), copy=False)


def reference_infer_timeframe(index: pd.DatetimeIndex) -> pd.Timedelta:
    diffs = np.diff(index.as_unit("ns").asi8)
    diffs = diffs[diffs > 0]
    values, counts = np.unique(diffs, return_counts=True)
    return pd.Timedelta(int(values[np.argmax(counts)]), unit="ns")


def outcome(check, stamps, raw_columns):
    """``("error", type, message, type of its context)`` or ``("frame", frame)`` of one rules function."""
    try:
        return ("frame", check(stamps, dict(raw_columns), "data/x.parquet", "column 'timestamp'"))
    except Exception as exc:  # the type matters too: a conversion's own exception must stay what it was
        return ("error", type(exc), str(exc), type(exc.__context__))  # no "during handling of..." added


# --- random small frames with faults ---------------------------------------------------------------

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, -1.5, 1e-300, 1e300, 1e-100, 1e100, 2e100, 5e-101]
FAULTS = ["nan", "inf", "-inf", "duplicate", "unsorted", "far_jump", "non_positive", "high_below_low",
          "high_below_body", "low_above_body", "negative_volume", "special", "text", "bool", "nullable",
          "no_volume", "integers", "float32", "strided"]


@st.composite
def faulty_bars(draw):
    """``(stamps, raw_columns)`` of 1-12 consistent bars with 0-4 faults injected."""
    n = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 2e-3, n)))
    open_ = np.r_[close[:1], close[:-1]]
    cols = {"open": open_, "high": np.maximum(open_, close) * 1.0005, "low": np.minimum(open_, close) * 0.9995,
            "close": close, "volume": rng.integers(0, 100, n).astype(np.float64)}
    spacing = draw(st.sampled_from([FIVE_MINUTES, 60 * 10**9, 1]))
    ns = T0 + spacing * np.arange(n, dtype=np.int64)
    raw = {}  # whole columns replaced (text, nullable, ...), as they were at that fault
    for _ in range(draw(st.integers(0, 4))):
        fault = draw(st.sampled_from(FAULTS))
        i = draw(st.integers(0, n - 1))
        col = draw(st.sampled_from(COLUMNS))
        price = draw(st.sampled_from(PRICE_COLUMNS))
        if fault in ("nan", "inf", "-inf"):
            cols[col][i] = float(fault)
        elif fault == "special":
            cols[col][i] = draw(st.sampled_from(SPECIAL))
        elif fault == "duplicate" and i > 0:
            ns[i] = ns[i - 1]
        elif fault == "unsorted" and i > 0:
            ns[i] = ns[i - 1] - draw(st.integers(1, 3)) * spacing
        elif fault == "far_jump" and i > 0:  # over 292 years from row i-1 to i: np.diff wraps (kept as it was)
            ns[:i] = -9_200_000_000_000_000_000 + spacing * np.arange(i)
            ns[i:] = 9_200_000_000_000_000_000 + spacing * np.arange(i - n, 0)
        elif fault == "non_positive":
            cols[price][i] = draw(st.sampled_from([0.0, -0.0, -1.0, -1e-9]))
        elif fault == "high_below_low":
            cols["high"][i] = cols["low"][i] * draw(st.sampled_from([0.999, 0.5]))
        elif fault == "high_below_body":
            cols["high"][i] = max(cols["open"][i], cols["close"][i]) * 0.9999
        elif fault == "low_above_body":
            cols["low"][i] = min(cols["open"][i], cols["close"][i]) * 1.0001
        elif fault == "negative_volume":
            cols["volume"][i] = draw(st.sampled_from([-1.0, -0.0, -1e-12]))
        elif fault == "text":  # not a number: converted per column, after earlier columns' NaN checks
            cells = cols[col].astype(object)
            cells[i] = draw(st.sampled_from(["abc", "", "1,5", "nan", "inf"]))
            raw[col] = cells
        elif fault == "bool":
            cells = cols[col].astype(object)
            cells[i] = True
            raw[col] = cells
        elif fault == "nullable":
            cells = pd.array(cols[col], dtype="Float64")
            cells[i] = pd.NA
            raw[col] = cells
        elif fault == "no_volume":
            raw["volume"] = None
        elif fault == "integers":
            raw[col] = np.round(np.clip(np.nan_to_num(cols[col]), -5, 5)).astype(np.int64)
        elif fault == "float32":
            raw[col] = cols[col].astype(np.float32)
        elif fault == "strided":  # a non-contiguous float64 column (copied by the loader)
            raw[col] = np.repeat(cols[col], 2)[::2]
    stamps = pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC")
    columns = {}
    for col in COLUMNS:
        values = raw.get(col, cols[col])
        if values is not None:
            columns[col] = pd.Series(values, name=col.capitalize(), copy=False)
    return stamps, columns


@PROPERTY
@given(faulty_bars())
def test_check_rules_raises_what_the_numpy_passes_raised(case):
    stamps, columns = case
    new, old = outcome(_check_rules, stamps, columns), outcome(reference_check_rules, stamps, columns)
    assert new[0] == old[0], (new, old)
    if new[0] == "error":
        assert new[1:] == old[1:]
    else:
        pd.testing.assert_frame_equal(new[1], old[1], check_exact=True)
        for col in COLUMNS:
            assert new[1][col].to_numpy().dtype == np.float64
            given = columns[col].to_numpy() if col in columns else None
            if given is not None and given.dtype == np.float64 and given.flags.c_contiguous:
                assert np.shares_memory(new[1][col].to_numpy(), given)  # a view, as before


def test_a_nan_in_an_earlier_column_beats_text_in_a_later_one():
    stamps = pd.date_range("2024-01-01", periods=3, freq="5min", tz="UTC")
    price = np.array([1.0, 1.0, 1.0])
    columns = {"open": pd.Series([1.0, np.nan, 1.0], name="open"), "high": pd.Series(price, name="high"),
               "low": pd.Series(price, name="low"), "close": pd.Series(["1", "1", "x"], name="close", dtype=object)}
    with pytest.raises(DataError, match=r"column 'open', data row 2 .*: missing value \(NaN\)$"):
        _check_rules(stamps, columns, "f", "index")
    columns["open"] = pd.Series(price, name="open")  # no NaN before it: the text is the error
    with pytest.raises(DataError, match=r"column 'close', data row 3 .*: not a number: 'x'$"):
        _check_rules(stamps, columns, "f", "index")
    columns["close"] = pd.Series([1.0, np.inf, 1.0], name="close")
    columns["volume"] = pd.Series(["1", "y", "1"], name="volume", dtype=object)  # a later column's text loses
    with pytest.raises(DataError, match=r"column 'close', data row 2 .*: infinite value$"):
        _check_rules(stamps, columns, "f", "index")


def test_the_frame_views_the_callers_float64_columns():
    stamps = pd.date_range("2024-01-01", periods=4, freq="5min")
    frame = pd.DataFrame({"open": [1.0, 1.1, 1.2, 1.1], "high": [1.2] * 4, "low": [0.9] * 4,
                          "close": [1.1, 1.2, 1.1, 1.0]}, index=stamps)
    checked = validate_frame(frame, "X")
    for col in PRICE_COLUMNS:
        assert np.shares_memory(checked[col].to_numpy(), frame[col].to_numpy())
    assert (checked["volume"] == 0.0).all()


# --- the kernel, slot by slot ----------------------------------------------------------------------

def first_rows(ns, cols):
    """Each rule's first row as the numpy passes find it (check_bars_nb's slots)."""
    def first_of(bad, shift=0):
        return int(np.flatnonzero(bad)[0]) + shift if bad.any() else -1

    o, h, lo, c, v = cols
    step = np.diff(ns)
    return ([first_of(~np.isfinite(x)) for x in cols] + [first_of(step == 0, 1), first_of(step < 0, 1)]
            + [first_of(x <= 0) for x in cols[:4]]
            + [first_of(h < lo), first_of(h < np.maximum(o, c)), first_of(lo > np.minimum(o, c)), first_of(v < 0)]
            + [first_of(((0 < x) & (x < 1e-100)) | ((1e100 < x) & (x < np.inf))) for x in cols[:4]])


@PROPERTY
@given(st.integers(0, 40), st.integers(0, 2**32 - 1), st.floats(0.0, 0.5))
def test_check_bars_nb_finds_every_rules_first_row(n, seed, share):
    rng = np.random.default_rng(seed)
    cols = [rng.choice([1.0, 1.1, 1.2, 0.9], n) for _ in COLUMNS]
    for values in cols:
        hit = rng.random(n) < share
        values[hit] = rng.choice(SPECIAL, int(hit.sum()))
    ns = np.cumsum(rng.choice([-1, 0, 1, 1, 1], n)).astype(np.int64)
    first = nb.check_bars_nb(ns, *cols).tolist()
    want = first_rows(ns, cols)
    if np.isnan(np.vstack(cols)).any():  # NaN is reported first; the body rules are never read then
        want[nb.HIGH_BELOW_BODY], want[nb.LOW_ABOVE_BODY] = first[nb.HIGH_BELOW_BODY], first[nb.LOW_ABOVE_BODY]
    assert first == want


@settings(max_examples=60, deadline=None, database=None)
@given(st.integers(1, 3 * nb.BLOCK + 7), st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 7)), max_size=5))
def test_check_bars_nb_across_blocks(n, faults):
    """Rows broken in a later block of the branch-free pass, or in several blocks, each found at its row."""
    cols = [np.full(n, 1.1), np.full(n, 1.2), np.full(n, 1.0), np.full(n, 1.1), np.full(n, 5.0)]
    ns = np.arange(n, dtype=np.int64) * FIVE_MINUTES
    for at, fault in faults:
        i = at % n
        if fault == 0:
            cols[i % 5][i] = np.inf  # one column per row: the body rules see no NaN beside a value
        elif fault == 1 and i > 0:
            ns[i:] -= FIVE_MINUTES  # a duplicate (or, twice, an unsorted) timestamp
        elif fault == 2 and i > 0:
            ns[i:] -= 2 * FIVE_MINUTES + 1  # unsorted
        elif fault == 3:
            cols[i % 4][i] = -0.0
        elif fault == 4:
            cols[1][i] = 0.9  # high below low, open and close
        elif fault == 5:
            cols[1][i] = 1.05  # high below open and close
        elif fault == 6:
            cols[2][i] = 1.15  # low above open and close
        else:
            cols[4][i] = -1.0
    assert nb.check_bars_nb(ns, *cols).tolist() == first_rows(ns, cols)


def test_one_signature_for_read_only_and_writable_arrays():
    """Parquet's columns are read-only, a DataFrame's writable: both use the one compiled signature."""
    values = np.linspace(1.0, 1.1, 8)
    read_only = values.copy()
    read_only.flags.writeable = False
    ns = np.arange(8, dtype=np.int64)
    assert nb.check_bars_nb(ns, values, values, values, values, values).tolist() == [-1] * nb.N_CHECKS
    assert nb.check_bars_nb(ns, read_only, values, read_only, read_only, values).tolist() == [-1] * nb.N_CHECKS
    assert len(nb.check_bars_nb.signatures) == len(nb.majority_spacing_nb.signatures) == 1
    strided = pd.DatetimeIndex((T0 + FIVE_MINUTES * np.arange(20)).astype("datetime64[ns]")[::2])
    assert infer_timeframe(strided) == pd.Timedelta(minutes=10)


def test_check_bars_nb_wraps_spacings_as_np_diff_does():
    ns = np.array([-9_000_000_000_000_000_000, 9_000_000_000_000_000_000, 9_000_000_000_000_000_001], np.int64)
    one = np.ones(3)
    assert np.diff(ns)[0] < 0
    assert nb.check_bars_nb(ns, one, one, one, one, one)[nb.UNSORTED] == 1
    assert nb.majority_spacing_nb(ns) == (1, 1, 1)


# --- infer_timeframe ------------------------------------------------------------------------------

@st.composite
def spacings(draw):
    """Timestamps whose spacings are drawn from a few values (ties, majorities, none), some <= 0."""
    pool = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4, unique=True))
    weights = draw(st.lists(st.integers(0, 5), min_size=len(pool) + 1, max_size=len(pool) + 1))
    steps = [s * 60 * 10**9 for s, w in zip(pool, weights) for _ in range(w)]
    steps += draw(st.lists(st.sampled_from([0, -60 * 10**9]), max_size=weights[-1]))  # not positive: ignored
    steps = draw(st.permutations(steps))
    if not any(s > 0 for s in steps):
        steps.append(pool[0] * 60 * 10**9)
    ns = T0 + np.r_[0, np.cumsum(steps)].astype(np.int64)
    return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC")


@PROPERTY
@given(spacings())
def test_infer_timeframe_is_the_np_unique_mode(index):
    assert infer_timeframe(index) == reference_infer_timeframe(index)


def test_infer_timeframe_ties_take_the_smallest_spacing():
    minutes = np.cumsum([0, 5, 1, 5, 1, 3]) * 60 * 10**9  # 5m twice, 1m twice: 1m
    index = pd.DatetimeIndex((T0 + minutes).astype("datetime64[ns]"))
    assert infer_timeframe(index) == pd.Timedelta(minutes=1) == reference_infer_timeframe(index)
    regular = pd.date_range("2024-01-01", periods=200, freq="5min").delete([7, 50])  # gaps: 5m the majority
    assert infer_timeframe(regular) == pd.Timedelta(minutes=5)


def test_infer_timeframe_without_a_positive_spacing_fails_as_before():
    index = pd.DatetimeIndex(np.full(3, T0).astype("datetime64[ns]"))
    assert nb.majority_spacing_nb(index.asi8) == (0, 0, 0)
    for infer in (infer_timeframe, reference_infer_timeframe):
        with pytest.raises(ValueError, match="empty sequence"):
            infer(index)
