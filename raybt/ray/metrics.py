"""The ``raybt_*`` gauges on Ray's metrics endpoint (Prometheus), updated while a run runs.

``raybt_portfolio_equity`` (currency), ``raybt_portfolio_drawdown``
(fraction), ``raybt_breaker_tripped`` (1 while the breaker halts entries),
``raybt_chunks_done`` (a counter) and ``raybt_asset_equity`` (tagged by
``asset``), all tagged by ``run``. Prometheus sees them prefixed ``ray_``
(``ray_raybt_portfolio_equity``, ``ray_raybt_chunks_done_total``, ...).
"""

from __future__ import annotations

import ray
from ray.util.metrics import Counter, Gauge


class DashboardMetrics:
    """Ray gauges updated from chunk summaries (no-op when Ray is not running)."""

    def __init__(self, run: str, assets=lambda: ()):
        """``assets``: a callable giving the simulated asset names (known once the run starts)."""
        self.enabled = ray.is_initialized()
        if not self.enabled:
            return
        tags = ("run",)
        self.tags = {"run": run}
        self.equity = Gauge("raybt_portfolio_equity", "portfolio equity (currency)", tag_keys=tags)
        self.drawdown = Gauge("raybt_portfolio_drawdown", "portfolio drawdown (fraction)", tag_keys=tags)
        self.breaker = Gauge("raybt_breaker_tripped", "1 while the breaker halts entries", tag_keys=tags)
        self.chunks = Counter("raybt_chunks_done", "chunks simulated", tag_keys=tags)
        self.assets = assets
        self.asset_equity = Gauge("raybt_asset_equity", "sleeve equity per asset (currency)",
                                  tag_keys=("run", "asset"))

    def update(self, summaries) -> None:
        if not self.enabled or not summaries:
            return
        last = summaries[-1]
        self.equity.set(last.equity, tags=self.tags)
        self.drawdown.set(last.drawdown, tags=self.tags)
        self.breaker.set(1.0 if last.halted else 0.0, tags=self.tags)
        self.chunks.inc(len(summaries), tags=self.tags)
        names = list(self.assets())
        if last.sleeves is not None and len(last.sleeves) == len(names):
            for name, value in zip(names, last.sleeves):
                self.asset_equity.set(float(value), tags={"run": self.tags["run"], "asset": name})
