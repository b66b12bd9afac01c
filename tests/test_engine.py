"""Portfolio engine: Ray vs local, sharding, single-asset equivalence, breaker, no look-ahead."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from raybt.backtest import run_backtest
from raybt.config.universe import AssetConfig
from raybt.engine import PortfolioBacktester
from raybt.config.portfolio import portfolio_config_from_dict
from raybt.config.params import validate_params
from raybt.data.synth import generate_universe

N_BARS = 6 * 288  # six days of 5-minute bars on the 24/7 calendar


def _assets(universe, params=None):
    out = {}
    for name, bars in universe.items():
        p = validate_params(params or {"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.0,
                                        "leverage": 10, "bb_period": 20, "entry_z": 1.8})
        out[name] = (AssetConfig(name=name, data=None, timeframe="5m", params=p), bars)
    return out


def _config(**risk):
    doc = {"name": "test", "initial_capital": 1_000_000, "engine": {"chunk": "4h"},
           "risk": {"max_portfolio_drawdown": 0.02, "dd_scale_start": 0.005, "dd_scale_floor": 0.5,
                    "cluster_correlation": 0.3, "correlation_window": 200, "resume": "cooldown",
                    "cooldown_chunks": 2, "resume_drawdown": 0.01, **risk}}
    return portfolio_config_from_dict(doc, "test")


@pytest.fixture(scope="module")
def universe():
    return generate_universe(n_assets=15, n_bars=N_BARS, timeframe="5m", seed=3,
                             shocks=[(0.5, -0.2, 24)])


@pytest.fixture(scope="module")
def local_result(universe):
    return PortfolioBacktester(_assets(universe), _config(), engine="local").run()


def _assert_identical(a, b):
    pd.testing.assert_frame_equal(a.equity, b.equity, check_exact=True)
    pd.testing.assert_frame_equal(a.trades, b.trades, check_exact=True)
    pd.testing.assert_frame_equal(a.multipliers, b.multipliers, check_exact=True)
    pd.testing.assert_frame_equal(a.events, b.events, check_exact=True)


def test_risk_rules_are_active(local_result):
    m = local_result.multipliers
    assert len(local_result.trades) > 50
    assert (m["correlation"] < 1).any(), "correlation scaling never acted"
    assert (m["drawdown"] < 1).any(), "drawdown scaling never acted"
    assert (local_result.events["event"] == "trip").any(), "breaker never tripped"


# None: colocated; 15, 8: 1 and 2 shard actors (one actor per asset: tests/test_layout_cli.py, on the default run)
@pytest.mark.parametrize("assets_per_actor", [None, 15, 8])
def test_ray_equals_local(ray_session, universe, local_result, assets_per_actor):
    config = _config()
    if assets_per_actor:
        config = config.with_overrides(layout="actors", assets_per_actor=assets_per_actor)
    bt = PortfolioBacktester(_assets(universe), config, engine="ray")
    result = bt.run()
    expected = ("actors", len(universe) // assets_per_actor + (len(universe) % assets_per_actor > 0)) \
        if assets_per_actor else ("colocated", 1)
    assert (bt.run_info.layout, bt.run_info.n_shards) == expected
    _assert_identical(local_result, result)


def test_breaker_halts_after_trip_and_not_before(local_result):
    events = local_result.events
    trip = events[events["event"] == "trip"].iloc[0]
    m = local_result.multipliers
    trip_chunk = int(trip["chunk"])
    assert not m[m["chunk"] < trip_chunk]["halted"].any()
    assert m[m["chunk"] == trip_chunk]["halted"].all()
    # the decision was taken at the last bar of the previous chunk, before the chunk starts
    rows = m[m["chunk"] == trip_chunk]
    assert (rows["decided_at"] < rows["chunk_start"]).all()
    # the drawdown that tripped it is visible in the equity up to the decision time
    eq = local_result.equity
    seen = eq.loc[:trip["decided_at"], "equity"]
    assert 1 - seen.iloc[-1] / seen.cummax().iloc[-1] > 0.02 - 1e-12 or seen.iloc[-1] < seen.max()
    # no entries while halted: every trade entered in the halted chunk(s) entered before the trip
    halted_starts = rows["chunk_start"].iloc[0]
    next_chunks = m[(m["chunk"] > trip_chunk) & ~m["halted"]]
    resume_at = next_chunks["chunk_start"].min() if len(next_chunks) else eq.index[-1] + pd.Timedelta("1D")
    during = local_result.trades[(local_result.trades["entry_time"] >= halted_starts)
                                 & (local_result.trades["entry_time"] < resume_at)]
    assert during.empty, during
    flattened = local_result.trades[local_result.trades["exit_reason"] == "breaker"]
    assert (flattened["exit_time"] >= halted_starts).all()


def test_no_lookahead_decisions_precede_chunks(local_result):
    m = local_result.multipliers
    later = m[m["chunk"] > 0]
    assert (later["decided_at"] < later["chunk_start"]).all()


def test_rules_off_equals_single_asset_backtests(universe):
    assets = _assets(universe)
    config = _config(enabled=False)
    result = PortfolioBacktester(assets, config, engine="local").run()
    sleeve = 1_000_000 / len(assets)
    for name, (asset, bars) in assets.items():
        params = dict(asset.params, initial_capital=sleeve, weight=1.0)
        single = run_backtest(bars, params, asset=name)
        mine = result.trades[result.trades["asset"] == name].reset_index(drop=True)
        labels = {c: str for c in ("asset", "side", "exit_reason")}  # categoricals: the portfolio's has every asset
        pd.testing.assert_frame_equal(mine.astype(labels), single.trades.astype(labels), check_exact=True)
        own = result.equity[name].reindex(bars.index)
        assert np.array_equal(own.to_numpy(), single.equity["equity"].to_numpy())


# multi-node: tests/test_cluster.py (auto layout on a 4-node cluster, equal to local byte for byte)
