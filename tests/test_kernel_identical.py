"""The package's strategy kernel against the frozen kernel of f7a5f7f, bit for bit.

``kernel_f7a5f7f`` is the kernel as it was before it was rewritten for speed
(a copy under tests/, not in the package). Both run on the same shards, chunk
by chunk, with the same instructions; after every chunk the equity rows, the
trade counts, every byte of every trade record and every byte of the state
records must be equal. Shards mix assets on consecutive union positions
(nothing stored) and assets with gaps in the union timeline; bars come from
random walks (quantised, with flat stretches) and from closes built to put
the rolling z within a hair of the thresholds and of the edges of their
guard bands, with equal-close runs and spikes; parameters cover costs, risk
sizing, lot sizes, leverage and stop-outs, max-hold; instructions cover size
multipliers, halts, flattens, cash moves and margin caps.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit

import kernel_f7a5f7f as old
from kernel_strategies import adversarial_bars, bar_series, instruction_records, param_sets
from raybt.asset import shard_bars
from raybt.broker import initial_state, param_records
from raybt.config.params import validate_params
from raybt.kernels import mean_reversion as new
from raybt.kernels.indicators import (
    guard_band_nb,
    screened_zscore_nb,
    undecidable_zscore_nb,
    zscore_zones_nb,
)
from raybt.types import TRADE_DT, Z_TOLERANCE, neutral_instructions


def slow(max_examples):
    """Hypothesis settings for tests that run numba kernels on generated shards."""
    return settings(max_examples=max_examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def asset_params(draw):
    p = draw(param_sets())
    p["spread"] = draw(st.sampled_from([0.0, 0.0, 1e-4, 1e-2]))
    p["slippage"] = draw(st.sampled_from([0.0, 0.5])) * p["spread"]
    return p


@st.composite
def asset_bars(draw, params, max_bars):
    if draw(st.booleans()):
        return draw(adversarial_bars(params, max_bars=max_bars))
    return tuple(np.asarray(x) for x in draw(bar_series(max_bars=max_bars)))


@st.composite
def shards(draw, max_assets=4, max_bars=300):
    """(bars per asset, union positions per asset, PARAM_DT records, union length)."""
    n_assets = draw(st.integers(1, max_assets))
    params = [draw(asset_params()) for _ in range(n_assets)]
    bars = [draw(asset_bars(p, max_bars)) for p in params]
    longest = max(len(b[3]) for b in bars)
    width = longest + draw(st.sampled_from([0, 0, 7, 60]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    positions = []
    for b in bars:
        n = len(b[3])
        if draw(st.booleans()):  # on consecutive union positions from a base
            base = int(rng.integers(0, width - n + 1))
            positions.append(np.arange(base, base + n))
        else:  # gaps in the union timeline
            positions.append(np.sort(rng.choice(width, n, replace=False)))
    return bars, positions, param_records([validate_params(p) for p in params]), width


@st.composite
def chunk_plans(draw, width, n_assets):
    """[(t_start, t_end, INSTR_DT records)] covering [0, width)."""
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, width - 1)), max_size=8))) - {width})
    bounds = [0] + cuts + [width]
    plan = []
    for t0, t1 in zip(bounds[:-1], bounds[1:]):
        instr = draw(instruction_records(n_assets)) if t0 > 0 else neutral_instructions(n_assets)
        plan.append((t0, t1, instr))
    return plan


def _run_shard(kernel, packed, params, plan, width):
    """Run ``kernel`` over the plan; per chunk: (equity bytes, trades bytes per asset, counts, state bytes)."""
    n_assets = packed.n_assets
    state = initial_state(params)
    trades = np.zeros((n_assets, width), dtype=TRADE_DT)
    counts = np.zeros(n_assets, dtype=np.int64)
    out = []
    for t0, t1, instr in plan:
        equity = np.full((n_assets, t1 - t0), np.nan)  # every slot must be written
        trades[:] = np.zeros(1, dtype=TRADE_DT)
        kernel(packed.opens, packed.highs, packed.lows, packed.closes, packed.union_pos, packed.union_base,
               params, state, instr, t0, t1, equity, trades, counts)
        out.append((equity.tobytes(), [trades[a, :counts[a]].tobytes() for a in range(n_assets)],
                    counts.tolist(), state.tobytes()))
    return out


def _assert_same_runs(expected, actual):
    assert len(expected) == len(actual)
    for k, (e, a) in enumerate(zip(expected, actual)):
        assert e[2] == a[2], f"chunk {k}: trade counts {a[2]} != {e[2]}"
        assert e[1] == a[1], f"chunk {k}: trade records differ"
        assert e[0] == a[0], f"chunk {k}: equity differs"
        assert e[3] == a[3], f"chunk {k}: state differs"


@slow(250)
@given(data=st.data())
def test_shards_equal_the_f7a5f7f_kernel(data):
    bars, positions, params, width = data.draw(shards())
    packed = shard_bars(*[list(col) for col in zip(*bars)], positions)
    plan = data.draw(chunk_plans(width, packed.n_assets))
    expected = _run_shard(old.advance_shard_nb, packed, params, plan, width)
    _assert_same_runs(expected, _run_shard(new.advance_shard_nb, packed, params, plan, width))
    _assert_same_runs(expected, _run_shard(new.advance_shard_parallel_nb, packed, params, plan, width))


def test_long_adversarial_series_equal_the_f7a5f7f_kernel():
    """Thousands of bars with needles near every threshold: the screen's rare paths all taken."""
    from kernel_strategies import close_for_z

    rng = np.random.default_rng(12)
    n, period = 20_000, 20
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 3e-4, n)))
    targets = []
    for t in (2.0, 0.0, 0.5):
        band = 1e-6 * max(1.0, t)
        targets += [t, t - band, t + band, t - 1e-9, t + 1e-9]
    for i in range(period, n, 7):  # every 7th close sits near a threshold or a band edge
        z = rng.choice(targets) * rng.choice([-1.0, 1.0]) * (1 + rng.choice([0.0, 1e-15, -1e-15, 1e-12, -1e-12]))
        close[i] = close_for_z(close[i - period + 1: i], z)
    close[5030:5100] = close[5029]  # long runs of equal closes, over chunk boundaries
    close[5960:6000] = close[5959]
    # closes alternating around a level, then at the level: z exactly 0 at bars equal to the one before
    level = close[7000]
    close[7000:7210] = np.tile(np.r_[[level * 0.999, level * 1.001] * 9, [level] * 3], 10)
    close[9000] *= 50.0  # a spike: ill-conditioned rolling sums after it
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 2e-4, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 2e-4, n)))
    packed = shard_bars([open_], [high], [low], [close], [np.arange(n)])
    for p in ({}, {"exit_z": 0.5, "max_hold_bars": 10}, {"entry_z": 0.5, "exit_z": 0.5}, {"exit_z": -0.5}):
        params = param_records([validate_params(p)])
        for chunk in (n, 997, 64):
            plan = [(t, min(n, t + chunk), neutral_instructions(1)) for t in range(0, n, chunk)]
            expected = _run_shard(old.advance_shard_nb, packed, params, plan, n)
            _assert_same_runs(expected, _run_shard(new.advance_shard_nb, packed, params, plan, n))
            assert sum(sum(e[2]) for e in expected) > 50


def test_entries_at_the_margin_cap_equal_the_f7a5f7f_kernel():
    """Fixed sizing with the margin cap a hair above, at or below the units (a rounding apart)."""
    rng = np.random.default_rng(4)
    n = 3000
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 5e-4, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * 1.0003
    low = np.minimum(open_, close) * 0.9997
    packed = shard_bars([open_], [high], [low], [close], [np.arange(n)])
    base = {"size": 1000.0, "contract_size": 100.0, "leverage": 30.0, "lot_size": 0.0, "stop_out_level": 0.0}
    plan = [(0, n, neutral_instructions(1))]
    first = _run_shard(old.advance_shard_nb, packed, param_records([validate_params(base)]), plan, n)
    fill = np.frombuffer(first[0][1][0], dtype=TRADE_DT)[0]["entry_price"]
    capped = 0
    for lot in (0.0, 0.01, 1.0):
        for rel in (-1e-11, -1e-12, -1e-13, -1e-15, 0.0, 1e-15, 1e-13, 1e-12, 1e-11):
            # the first entry's margin equals the sleeve's capital (times 1 + rel)
            capital = 1000.0 * fill * 100.0 / 30.0 * (1 + rel)
            params = param_records([validate_params(dict(base, lot_size=lot, initial_capital=capital))])
            expected = _run_shard(old.advance_shard_nb, packed, params, plan, n)
            _assert_same_runs(expected, _run_shard(new.advance_shard_nb, packed, params, plan, n))
            units = np.frombuffer(expected[0][1][0], dtype=TRADE_DT)["units"]
            capped += int(units[0] != 1000.0)
    assert 0 < capped < 27  # the cap binds in some cases and not in others


# --- advance_asset_nb on a span of a longer array (the optimizer's call) ------------------

@njit
def _asset_span_old(o, h, lo, c, start, end, params, states, instr, t0, t1, equity, trades):
    return old.advance_asset_nb(0, o, h, lo, c, np.zeros(0, np.int64), start, start, end - start, params[0],
                                states[0], instr[0], t0, t1, equity, trades)


@njit
def _asset_span_new(o, h, lo, c, start, end, params, states, instr, t0, t1, equity, trades):
    return new.advance_asset_nb(0, o, h, lo, c, np.zeros(0, np.int64), start, start, end - start, params[0],
                                states[0], instr[0], t0, t1, equity, trades)


@slow(120)
@given(data=st.data())
def test_asset_span_equals_the_f7a5f7f_kernel(data):
    """A job of raybt.optimize: bars [start, end) of longer arrays (off = start), fixed-size chunks."""
    p = data.draw(asset_params())
    o, h, lo, c = (np.ascontiguousarray(x, dtype=np.float64) for x in data.draw(asset_bars(p, 300)))
    n = len(c)
    start = data.draw(st.integers(0, n - 1))
    end = data.draw(st.integers(start + 1, n))
    chunk = data.draw(st.sampled_from([1, 5, 64, 4096]))
    params = param_records([validate_params(p)])
    instr = neutral_instructions(1)
    results = []
    for run in (_asset_span_old, _asset_span_new):
        states = initial_state(params)
        equity = np.full(chunk, np.nan)
        trades = np.zeros(chunk, dtype=TRADE_DT)
        parts = []
        for t0 in range(start, end, chunk):
            t1 = min(end, t0 + chunk)
            k = run(o, h, lo, c, start, end, params, states, instr, t0, t1, equity, trades)
            parts.append((equity[: t1 - t0].tobytes(), trades[:k].tobytes()))
        results.append((parts, states.tobytes()))
    assert results[0] == results[1]


# --- the z screen on its own ------------------------------------------------------------

THRESHOLDS = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 1e-7, 7.3]


@given(entry_z=st.sampled_from(THRESHOLDS), exit_z=st.sampled_from(THRESHOLDS + [-0.5, -2.0, -1e-7]),
       which=st.integers(0, 4), side=st.sampled_from([-1.0, 1.0]),
       rel=st.sampled_from([0.0, 1e-16, -1e-16, 1e-15, -1e-15, 1e-12, -1e-12, 1e-9, -1e-9, 5e-7, -5e-7]),
       log_var=st.floats(-320.0, 300.0), fuzz=st.floats(0.5, 2.0))
@settings(max_examples=3000, deadline=None)
def test_screen_decides_only_where_the_rolling_z_decides(entry_z, exit_z, which, side, rel, log_var, fuzz):
    """Where the screen answers, the rolling z is decidable and every comparison agrees.

    num is aimed at a threshold, a band edge or nothing in particular (``which``)
    times sqrt(var), over variances from subnormal to huge.
    """
    var = 10.0 ** log_var
    band = {"entry": guard_band_nb(entry_z), "exit": guard_band_nb(exit_z)}
    aims = [abs(entry_z), abs(entry_z) + band["entry"], abs(exit_z) - band["exit"], abs(exit_z), fuzz]
    num = side * aims[which] * (1.0 + rel) * math.sqrt(var)
    mean_square = var * fuzz  # well-conditioned (ratio < 1000) unless var is extreme
    zones = zscore_zones_nb(entry_z, exit_z)
    stand_in = screened_zscore_nb(num, var, mean_square, *zones)
    if stand_in == math.inf:
        return
    assert math.isfinite(stand_in)
    z = num / math.sqrt(var)  # the rolling z the kernel would have computed
    assert mean_square <= 1e3 * var and var > 0
    assert not undecidable_zscore_nb(z, abs(entry_z), guard_band_nb(entry_z), abs(exit_z), guard_band_nb(exit_z))
    for threshold, below in ((-entry_z - Z_TOLERANCE, True), (entry_z + Z_TOLERANCE, False),
                             (exit_z - Z_TOLERANCE, False), (-exit_z + Z_TOLERANCE, True)):
        if below:
            assert (stand_in < threshold) == (z < threshold) and (stand_in <= threshold) == (z <= threshold)
        else:
            assert (stand_in > threshold) == (z > threshold) and (stand_in >= threshold) == (z >= threshold)


def test_screen_answers_for_typical_bars():
    """The screen is not vacuous: away from the bands it answers, inside them it does not."""
    zones = zscore_zones_nb(2.0, 0.0)
    answered = [screened_zscore_nb(z * 0.3, 0.09, 0.1, *zones) for z in (-3.0, -1.0, 0.5, 1.999, 2.5)]
    assert all(math.isfinite(v) for v in answered)
    assert [np.sign(v) for v in answered] == [-1, -1, 1, 1, 1]
    for z in (2.0, 2.0 + 5e-7, -2.0 + 5e-7, 0.0, 1e-7):
        assert screened_zscore_nb(z * 0.3, 0.09, 0.1, *zones) == math.inf
    assert screened_zscore_nb(0.3, 0.09, 1e3, *zones) == math.inf  # ill-conditioned window
