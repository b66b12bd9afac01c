"""The fan-out transports of the actors layout: plain actor tasks and a Ray Compiled Graph, both equal to local."""

from __future__ import annotations

import pandas as pd
import pytest

from test_engine import _assets, _config


@pytest.mark.ray
@pytest.mark.parametrize("transport", ["tasks", "compiled"])
def test_actors_layout_equals_local_over_either_transport(ray_session, transport):
    from raybt.config.portfolio import portfolio_config_from_dict
    from raybt.data.synth import generate_universe
    from raybt.engine import PortfolioBacktester

    universe = generate_universe(n_assets=6, n_bars=2 * 288, timeframe="5m", seed=9, shocks=[(0.5, -0.2, 24)])
    doc = _config().to_dict()
    doc["engine"].update(layout="actors", assets_per_actor=3, transport=transport, checkpoint_every=5)
    config = portfolio_config_from_dict(doc, "transport")
    bt = PortfolioBacktester(_assets(universe), config, engine="ray")
    result = bt.run()
    assert (bt.run_info.layout, bt.run_info.n_shards) == ("actors", 2)
    local = PortfolioBacktester(_assets(universe), _config(), engine="local").run()
    for name in ("equity", "trades", "multipliers", "events"):
        pd.testing.assert_frame_equal(getattr(local, name), getattr(result, name), check_exact=True)
