"""A small real portfolio run for the tear-sheet tests (local engine, no Ray).

Five synthetic assets over 14 days of five-minute bars with a shock, each
with its own contract size, leverage, spread, slippage and commission; a
breaker tight enough to trip, resume after a one-day cooldown and trip
again; daily rebalancing.  The coordinator's margins are recorded at every
chunk end (``margins``: ``{chunk end time (ns): margins held per asset}``),
read from the coordinator object itself, to check the exposure rebuilt from
the trades.
"""

from __future__ import annotations

import numpy as np

from raybt.config.params import validate_params
from raybt.config import AssetConfig
from raybt.data.synth import generate_universe
from raybt.engine import PortfolioBacktester
from raybt.config.portfolio import portfolio_config_from_dict

N_BARS = 14 * 288
#: per asset: contract size, leverage, spread, slippage, commission (different on purpose)
PARAMS = [(100_000.0, 30.0, 1e-4, 2e-5, 2e-5), (1_000.0, 10.0, 2e-4, 0.0, 5e-5),
          (1_000.0, 20.0, 0.015, 0.003, 0.0), (1.0, 5.0, 1.5e-4, 3e-5, 1e-4),
          (50_000.0, 2.0, 0.0, 5e-5, 1e-5)]


def run_engine(record_margins: dict | None = None):
    """The run's :class:`~raybt.result.PortfolioResult` and its bars ``{name: frame}``.

    With ``record_margins`` (a dict), the coordinator's margins held per asset
    are stored in it at the end of every chunk, keyed by the chunk's last bar (ns).
    """
    import raybt.coordinator as C

    universe = generate_universe(n_assets=len(PARAMS), n_bars=N_BARS, timeframe="5m", seed=11,
                                 shocks=[(0.45, -0.15, 48)])
    assets = {}
    for (name, bars), (cs, lev, spread, slip, comm) in zip(universe.items(), PARAMS):
        params = validate_params({"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.0,
                                  "leverage": lev, "contract_size": cs, "spread": spread,
                                  "slippage": slip, "commission": comm, "bb_period": 20,
                                  "entry_z": 1.8, "max_hold_bars": 48})
        assets[name] = (AssetConfig(name=name, data=None, timeframe="5m", params=params), bars)
    config = portfolio_config_from_dict({
        "name": "tearsheet", "rebalance": "daily", "engine": {"chunk": "4h"},
        "risk": {"max_portfolio_drawdown": 0.02, "dd_scale_start": 0.005, "resume": "cooldown",
                 "cooldown_chunks": 3, "breaker_flatten": True}}, "test")
    original = C.Coordinator._advance_chunk

    def advance(self):
        out = original(self)
        if record_margins is not None:
            end = int(self.timeline_ns[self.bounds[self.chunk] - 1])  # the chunk just done
            record_margins[end] = np.array(self.margins, dtype=np.float64)
        return out

    C.Coordinator._advance_chunk = advance
    try:
        result = PortfolioBacktester(assets, config, engine="local").run()
    finally:
        C.Coordinator._advance_chunk = original
    return result, universe
