"""Allocation inside the engine: estimation window, no look-ahead, rebalancing, attribution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raybt.config.universe import AssetConfig
from raybt.config.params import validate_params
from raybt.data.synth import generate_universe
from raybt.engine import PortfolioBacktester
from raybt.config.portfolio import portfolio_config_from_dict

N_BARS = 20 * 288  # twenty days of 5-minute bars
PARAMS = {"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.0, "leverage": 10, "bb_period": 20,
          "entry_z": 1.8}


def _assets(universe):
    return {name: (AssetConfig(name=name, data=None, timeframe="5m", params=validate_params(PARAMS)), bars)
            for name, bars in universe.items()}


def _config(model="risk_parity", rebalance="daily", **allocation):
    doc = {"name": "alloc", "initial_capital": 1_000_000, "rebalance": rebalance, "engine": {"chunk": "1D"},
           "allocation": {"model": model, "lookback": "5D", **allocation},
           "risk": {"max_portfolio_drawdown": 0.3, "cluster_correlation": None}}
    return portfolio_config_from_dict(doc, "test")


@pytest.fixture(scope="module")
def universe():
    return generate_universe(n_assets=6, n_bars=N_BARS, timeframe="5m", seed=11, calendar="24x7")


@pytest.fixture(scope="module")
def result(universe):
    return PortfolioBacktester(_assets(universe), _config(), engine="local").run()


def test_backtest_starts_after_the_estimation_window(universe, result):
    first = next(iter(universe.values())).index[0]
    assert result.equity.index[0] == first + pd.Timedelta("5D")
    assert result.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert result.weights.nunique() > 1  # risk parity, not 1/n


def test_starting_weights_use_only_the_window(universe, result):
    """Changing every bar after the window cannot change the starting weights."""
    cut = next(iter(universe.values())).index[0] + pd.Timedelta("5D")
    changed = {}
    for name, bars in universe.items():
        b = bars.copy()
        after = b.index >= cut
        b.loc[after, ["open", "high", "low", "close"]] *= 1.37
        changed[name] = b
    other = PortfolioBacktester(_assets(changed), _config(), engine="local").run()
    pd.testing.assert_series_equal(result.weights, other.weights, check_exact=True)


def test_rebalances_reestimate_weights_from_the_past_only(result):
    history = result.weight_history
    assert len(history) >= 10  # the start + daily re-estimates
    events = result.events[result.events["event"] == "rebalance"]
    assert len(events) == len(history) - 1
    chunk_start = result.multipliers.drop_duplicates("chunk").set_index("chunk")["chunk_start"]
    for chunk, decided in zip(history["chunk"].iloc[1:], history["decided_at"].iloc[1:]):
        assert decided < chunk_start[chunk]  # decided before the chunk it applies to
    moved = result.multipliers.groupby("chunk")["capital_adjustment"].sum()
    assert np.allclose(moved.to_numpy(), 0.0, atol=1e-6)  # transfers only move cash between sleeves


def test_asset_pnl_sums_to_portfolio_pnl(result):
    """Per-asset PnL (net of rebalancing transfers) adds up to the portfolio's PnL."""
    portfolio_pnl = result.equity["equity"].iloc[-1] - result.equity["equity"].iloc[0]
    per_asset = sum(m["pnl"] for m in result.metrics["assets"].values())
    assert per_asset == pytest.approx(portfolio_pnl, rel=1e-9, abs=1e-6)
    for m in result.metrics["assets"].values():  # time-weighted: transfers do not make returns or drawdowns
        assert -1 < m["total_return"] and 0 <= m["max_drawdown"] < 1
    raw = sum(result.equity[n].iloc[-1] - result.equity[n].iloc[0] for n in result.metrics["assets"])
    assert raw == pytest.approx(portfolio_pnl, rel=1e-9, abs=1e-6)  # transfers net to zero


def test_max_assets_keeps_the_top_ranked(universe):
    names = list(universe)
    ranking = {n: float(i) for i, n in enumerate(names)}  # the last asset ranks first
    bt = PortfolioBacktester(_assets(universe), _config("equal_weight", "none", max_assets=2), engine="local",
                             ranking=ranking)
    res = bt.run()
    assert list(res.weights.index) == names[-2:]
    assert res.equity.index[0] == next(iter(universe.values())).index[0]  # no window needed


@pytest.mark.parametrize("layout", ["colocated", "actors"])
def test_ray_equals_local_with_reestimated_weights(ray_session, universe, result, layout):
    config = _config().with_overrides(layout=layout, assets_per_actor=-(-len(universe) // 2) if layout == "actors"
                                      else None)
    ray_result = PortfolioBacktester(_assets(universe), config, engine="ray").run()
    pd.testing.assert_frame_equal(result.equity, ray_result.equity, check_exact=True)
    pd.testing.assert_frame_equal(result.trades, ray_result.trades, check_exact=True)
    pd.testing.assert_frame_equal(result.weight_history, ray_result.weight_history, check_exact=True)


def test_the_three_readers_of_transfers_agree_on_a_sleeves_own_return(result):
    """A sleeve's return net of rebalancing transfers, ``E_t / (E_{t-1} + moved_t) - 1``, as the
    coordinator's estimator (flow_adjusted_returns), the result's time-weighted index and the analysis
    of a saved run (sleeve_returns with the multipliers' flows) compute it: the same numbers."""
    from raybt.allocation.estimator import flow_adjusted_returns
    from raybt.analysis import capital_flows, sleeve_returns

    names = list(result.weights.index)
    equity = result.equity[names].to_numpy(dtype=np.float64).T
    m = result.multipliers
    assert (m["capital_adjustment"] != 0).any()  # the run moved cash between sleeves
    flows = capital_flows(m, result.equity.index, names)
    analysed = sleeve_returns(result.equity, names, flows).to_numpy()
    # the result's index: final/initial of its per-bar growth is the time-weighted return in metrics.json
    index = np.cumprod(np.r_[[np.ones(len(names))], 1.0 + analysed], axis=0)
    for j, name in enumerate(names):
        assert index[-1, j] - 1.0 == pytest.approx(result.metrics["assets"][name]["total_return"], rel=1e-9)
    # the coordinator's estimator over the whole run, transfers at the first bar of their chunk
    starts = m.groupby("chunk")["chunk_start"].first()
    bounds = result.equity.index.get_indexer(pd.to_datetime(starts, utc=True))
    adjustments = {int(chunk): frame.set_index("asset").reindex(names)["capital_adjustment"].to_numpy(float)
                   for chunk, frame in m.groupby("chunk") if (frame["capital_adjustment"] != 0).any()}
    chunk_of = dict(zip(starts.index.astype(int), bounds))
    estimated = flow_adjusted_returns(equity, 1, equity.shape[1], equity[:, 0],
                                      np.array([chunk_of.get(k, -1) for k in range(max(chunk_of) + 1)]),
                                      adjustments)
    np.testing.assert_allclose(estimated, analysed, rtol=0, atol=1e-15)


def test_one_definition_of_a_sleeves_return_also_where_a_sleeve_is_ruined():
    """The correlation blocks, the estimator and result index, and the analysis read a sleeve's return
    through one function: bit-identical, also at a zero or negative base and at NaN equity (a zero
    return there, not inf or NaN)."""
    from raybt.allocation.estimator import growth_net_of_transfers
    from raybt.analysis import sleeve_returns
    from raybt.kernels.portfolio import block_returns_nb

    rng = np.random.default_rng(5)
    equity = 1e5 * np.exp(np.cumsum(rng.normal(0, 0.01, (4, 200)), axis=1))
    equity[1, 80:] = 0.0  # ruined: a zero base from bar 81
    equity[2, 50] = -20.0  # a negative base once
    equity[3, 120] = np.nan  # a missing value
    growth = growth_net_of_transfers(equity[:, 1:], equity[:, :-1])
    index = pd.date_range("2024-01-01", periods=200, freq="5min", tz="UTC")
    frame = pd.DataFrame(equity.T, index=index, columns=list("abcd"))
    analysed = sleeve_returns(frame, list("abcd")).to_numpy().T
    per_bar, _ = block_returns_nb(np.ascontiguousarray(equity[:, 1:]), equity[:, 0].copy(), 0, 1, np.zeros(4), -1)
    assert np.isfinite(analysed).all() and (analysed[1, 80:] == 0).all() and analysed[2, 50] == 0
    assert np.array_equal(growth - 1.0, analysed) and np.array_equal(per_bar.T, analysed)
