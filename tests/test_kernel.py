"""The numba kernel against the plain reference loop, and chunk invariance.

Exact comparison: trades (every field) and equity must be equal to the bit.
The reference computes z from the window directly; the kernel decides with
rolling sums guarded by an exact recomputation near thresholds, so decisions
agree; ATR, prices, PnL and equity follow the same literal formulas.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel_harness import kernel_run
from kernel_strategies import bar_series, chunk_lists, param_sets
from reference_sim import reference_run
from scenarios import SCENARIOS
from raybt.kernels import exact_zscore_nb
from raybt.kernels.indicators import fast_zscore_nb, rebuild_window_sums_nb


def _assert_same(kernel, reference):
    k_trades, k_equity, _ = kernel
    r_trades, r_equity = reference
    assert len(k_trades) == len(r_trades), (k_trades, r_trades)
    for i, (kt, rt) in enumerate(zip(k_trades, r_trades)):
        for key in ("side", "units", "entry_bar", "entry_price", "exit_bar", "exit_price",
                    "exit_reason", "pnl", "commission"):
            assert kt[key] == rt[key], f"trade {i} field {key}: kernel {kt[key]!r} != reference {rt[key]!r}"
    assert len(k_equity) == len(r_equity)
    mismatch = [i for i, (a, b) in enumerate(zip(k_equity, r_equity)) if a != b]
    assert not mismatch, f"equity differs first at bar {mismatch[0]}: {k_equity[mismatch[0]]} != {r_equity[mismatch[0]]}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenarios_match_reference(scenario):
    args = (scenario["open"], scenario["high"], scenario["low"], scenario["close"])
    kernel = kernel_run(*args, scenario.get("params"), scenario.get("chunks"))
    reference = reference_run(*args, scenario.get("params"), scenario.get("chunks"))
    _assert_same(kernel, reference)


# --- random bars and parameters ----------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_bars_match_reference(data):
    bars = data.draw(bar_series())
    params = data.draw(param_sets())
    spread_ticks = data.draw(st.sampled_from([0.0, 0.0, 1e-4, 1e-3]))
    params["spread"] = spread_ticks * bars[3][0]
    params["slippage"] = data.draw(st.sampled_from([0.0, 0.5])) * params["spread"]
    chunks = data.draw(chunk_lists(len(bars[3])))
    _assert_same(kernel_run(*bars, params, chunks), reference_run(*bars, params, chunks))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_chunk_invariance(data):
    """Splitting a run at random bars (no new instructions) changes nothing, state included."""
    bars = data.draw(bar_series(min_bars=2, max_bars=400))
    params = data.draw(param_sets())
    chunks = data.draw(chunk_lists(len(bars[3])))
    n = len(bars[3])
    splits = data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=12))
    whole = kernel_run(*bars, params, chunks)
    split = kernel_run(*bars, params, chunks, split_points=splits)
    assert whole[0] == split[0]
    assert np.array_equal(np.asarray(whole[1]), np.asarray(split[1]))
    assert whole[2].tobytes() == split[2].tobytes()


def test_every_bar_chunks_equal_one_chunk_long_series():
    """A long real-looking series: one chunk vs one bar per chunk vs 288-bar chunks."""
    rng = np.random.default_rng(7)
    n = 3000
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 4e-4, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 2e-4, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 2e-4, n)))
    params = {"sizing": "risk", "lot_size": 0.01, "contract_size": 100000, "leverage": 30,
              "spread": 0.0001, "commission": 0.00002}
    whole = kernel_run(open_, high, low, close, params)
    assert len(whole[0]) > 20
    for splits in (range(1, n), range(288, n, 288)):
        part = kernel_run(open_, high, low, close, params, split_points=list(splits))
        assert whole[0] == part[0]
        assert np.array_equal(whole[1], part[1])
        assert whole[2].tobytes() == part[2].tobytes()
    _assert_same(whole, reference_run(open_.tolist(), high.tolist(), low.tolist(), close.tolist(), params))


def test_parallel_shard_equals_serial(monkeypatch):
    """A parallel group (threads for chunks of PARALLEL_MIN_ASSET_BARS or more) equals a serial one."""
    from raybt.asset import AssetGroup, shard_bars
    from raybt.broker import param_records
    from raybt.config.params import validate_params
    from raybt.types import neutral_instructions

    rng = np.random.default_rng(3)
    arrays = []
    for a in range(5):
        n = 500 + 97 * a
        close = 100 * np.exp(np.cumsum(rng.normal(0, 2e-3, n)))
        open_ = np.r_[close[0], close[:-1]]
        arrays.append((open_, np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999, close,
                       np.sort(rng.choice(1200, n, replace=False))))
    packed = shard_bars(*[list(x) for x in zip(*arrays)])
    params = param_records([validate_params({"bb_period": 10 + a}) for a in range(5)])
    # chunks of 100 and 300 bars: 500 and 1,500 asset-bars, either side of the threshold set here
    monkeypatch.setattr("raybt.asset.PARALLEL_MIN_ASSET_BARS", 1000)
    bounds = [0, 100, 400, 500, 800, 900, 1200]
    reports = []
    for parallel in (False, True):
        group = AssetGroup(packed, params, parallel=parallel)
        reports.append([group.step(t0, t1, neutral_instructions(5)) for t0, t1 in zip(bounds[:-1], bounds[1:])])
    for serial, par in zip(*reports):
        assert np.array_equal(serial.equity, par.equity)
        assert serial.trades.tobytes() == par.trades.tobytes()


# --- indicator accuracy ---------------------------------------------------------------

def test_rolling_z_close_to_exact_z():
    rng = np.random.default_rng(11)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 3e-4, 5000)))
    n = 20
    ref, s1, s2 = rebuild_window_sums_nb(close, 0, n - 1, n)
    worst = 0.0
    for j in range(n, len(close)):
        if (j - n) % 64 == 0:
            ref, s1, s2 = rebuild_window_sums_nb(close, 0, j, n)
        else:
            new, old = close[j] - ref, close[j - n] - ref
            s1 += new - old
            s2 += new * new - old * old
        z = fast_zscore_nb(close[j], ref, s1, s2, 1.0 / n)
        worst = max(worst, abs(z - exact_zscore_nb(close, 0, j, n)))
    assert worst < 1e-9


def _moves_then_near_ties(level, move, tie, n_bars, seed):
    """Closes that wander by ``move`` (relative) and, every few bars, repeat the previous close
    to within ``tie`` (relative): windows of two closes whose spread is tiny beside the moves
    the rolled sums have just held."""
    rng = np.random.default_rng(seed)
    close = level * np.exp(np.cumsum(rng.normal(0.0, move, n_bars)))
    for j in range(3, n_bars, 5):
        close[j] = close[j - 1] * (1.0 + tie * rng.choice([-1.0, 1.0]))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1.0 + move)
    low = np.minimum(open_, close) * (1.0 - move)
    return open_, high, low, close


@pytest.mark.parametrize("level", [1e-4, 1.0, 1e4])
@pytest.mark.parametrize("move, tie", [(1e-4, 1e-10), (1e-4, 1e-13), (1e-6, 1e-14), (1e-3, 1e-15)])
def test_two_bar_window_never_enters_at_entry_z_one(level, move, tie):
    """With bb_period 2, z is exactly +-1 whenever the two closes differ, so entry_z 1 (z beyond
    -1 by more than 1e-9) never enters. The kernel's rolled z once came out at -3 for 1e-4 prices
    that moved by 1e-8 and then two closes 1e-14 apart (the rolled sums kept the moves' rounding);
    found by test_random_bars_match_reference."""
    bars = _moves_then_near_ties(level, move, tie, 600, seed=int(-math.log10(tie)))
    params = {"bb_period": 2, "entry_z": 1.0, "exit_z": 0.0, "atr_period": 1, "allow_short": True}
    trades, _, _ = kernel_run(*bars, params)
    assert trades == []
    _assert_same((trades, *kernel_run(*bars, params)[1:]), reference_run(*(b.tolist() for b in bars), params))


def test_rolled_z_decides_like_the_exact_z_after_large_moves():
    """Windows of 3 to 5 closes with near ties after moves: every threshold decision of the kernel's
    z (rolled, screened or rebuilt) is the exact two-pass z's."""
    from raybt.kernels.indicators import ZS_Z, rolling_zscores_nb, zscore_work_nb

    for n in (3, 4, 5):
        close = _moves_then_near_ties(1e-4, 1e-4, 1e-13, 2000, seed=n)[3]
        work = zscore_work_nb(len(close))
        rolling_zscores_nb(close, 0, 0, len(close), n, 1.5, 0.0, 0.0, 0.0, 0.0, 0, 0, work)
        for j in range(n - 1, len(close)):
            exact = exact_zscore_nb(close, 0, j, n)
            kernel = work[ZS_Z, j]
            for threshold in (-1.5 - 1e-9, 1.5 + 1e-9, -1e-9, 1e-9):
                if abs(exact - threshold) > 1e-7:
                    assert (kernel < threshold) == (exact < threshold), (n, j, kernel, exact, threshold)


def test_exact_z_matches_numpy():
    rng = np.random.default_rng(5)
    close = rng.normal(100, 1, 50)
    z = exact_zscore_nb(close, 0, 49, 20)
    window = close[30:50]
    assert math.isclose(z, (close[49] - window.mean()) / window.std(), rel_tol=1e-12)


def test_a_skipped_chunk_is_an_error():
    """Equity is written by union position: a call whose chunk starts after the asset's next bar
    (a chunk was skipped) raises instead of writing outside the row."""
    from raybt.asset import shard_bars
    from raybt.broker import initial_state, param_records
    from raybt.config.params import validate_params
    from raybt.kernels import advance_shard_nb
    from raybt.types import TRADE_DT, neutral_instructions

    close = np.linspace(1.0, 2.0, 100)
    params = param_records([validate_params({})])
    for positions in (np.arange(100), np.arange(0, 200, 2)):  # consecutive, with gaps
        bars = shard_bars([close], [close], [close], [close], [positions])
        equity = np.zeros((1, 50))
        trades = np.zeros((1, 50), dtype=TRADE_DT)
        counts = np.zeros(1, dtype=np.int64)
        with pytest.raises(ValueError, match="before t_start"):
            advance_shard_nb(bars.opens, bars.highs, bars.lows, bars.closes, bars.union_pos, bars.union_base,
                             params, initial_state(params), neutral_instructions(1), 10, 60, equity, trades, counts)
        state = initial_state(params)
        advance_shard_nb(bars.opens, bars.highs, bars.lows, bars.closes, bars.union_pos, bars.union_base,
                         params, state, neutral_instructions(1), 0, 50, equity, trades, counts)
        assert state["next_bar"][0] == (50 if positions[1] == 1 else 25)
