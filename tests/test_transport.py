"""``engine.transport``: the chunk fan-out to shard actors over local sockets (the default), actor
tasks, or a Ray Compiled Graph.

The same portfolio as tests/test_engine.py (15 assets, a market shock, every
risk rule active) on two shard actors must equal the in-process engine bit
for bit whichever carries the chunks.
"""

from __future__ import annotations

import pandas as pd
import pytest

from test_engine import N_BARS, _assets
from raybt.data.synth import generate_universe
from raybt.engine import PortfolioBacktester
from raybt.config.portfolio import portfolio_config_from_dict


def _config(transport):
    return portfolio_config_from_dict({
        "name": "transport", "initial_capital": 1_000_000, "engine": {"chunk": "4h", "transport": transport},
        "risk": {"max_portfolio_drawdown": 0.02, "dd_scale_start": 0.005, "dd_scale_floor": 0.5,
                 "cluster_correlation": 0.3, "correlation_window": 200, "resume": "cooldown",
                 "cooldown_chunks": 2, "resume_drawdown": 0.01, "max_entry_margin": 0.05}}, "transport")


@pytest.fixture(scope="module")
def universe():
    return generate_universe(n_assets=15, n_bars=N_BARS, timeframe="5m", seed=3, shocks=[(0.5, -0.2, 24)])


@pytest.fixture(scope="module")
def local(universe):
    result = PortfolioBacktester(_assets(universe), _config("tasks"), engine="local").run()
    m = result.multipliers
    assert len(result.trades) > 50 and (m["correlation"] < 1).any() and m["halted"].any()
    return result


@pytest.mark.ray
@pytest.mark.parametrize("transport", ["compiled", "socket", "tasks"])
def test_every_transport_equals_local(ray_session, universe, local, transport):
    config = _config(transport).with_overrides(layout="actors", assets_per_actor=8)
    backtester = PortfolioBacktester(_assets(universe), config, engine="ray")
    remote = backtester.run()
    assert (backtester.run_info.layout, backtester.run_info.n_shards) == ("actors", 2)  # a fan-out to two
    assert remote.config["engine"]["transport"] == transport
    chunks = remote.timings["n_chunks"]
    assert remote.timings.get("channel_chunks", 0) == (chunks if transport == "socket" else 0), remote.timings
    for table in ("equity", "trades", "multipliers", "events"):
        pd.testing.assert_frame_equal(getattr(local, table), getattr(remote, table), check_exact=True)
