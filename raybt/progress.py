"""Live feedback while a portfolio runs: a terminal progress bar over chunks
(portfolio equity and drawdown) and Ray dashboard metrics.

Dashboard metrics (``ray.util.metrics``, exported to Prometheus and shown in
the Ray dashboard's Metrics view when Grafana/Prometheus are set up):
``raybt_portfolio_equity``, ``raybt_portfolio_drawdown``,
``raybt_chunks_done`` and ``raybt_breaker_tripped`` (per-asset equity gauges
are not exported yet).
"""

from __future__ import annotations

import contextlib


class DashboardMetrics:
    """Ray gauges updated from chunk summaries (no-op when Ray is not running)."""

    def __init__(self, run: str, assets=lambda: ()):
        """``assets``: a callable giving the simulated asset names (known once the run starts)."""
        import ray
        from ray.util.metrics import Counter, Gauge

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


@contextlib.contextmanager
def chunk_progress(total: int, label: str, enabled: bool = True, dashboard: DashboardMetrics | None = None):
    """Yield a callback taking chunk summaries; shows a rich progress bar."""
    if not enabled:
        def update(summaries):
            if dashboard:
                dashboard.update(summaries)
        yield update
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), transient=False) as bar:
        task = bar.add_task(label, total=total, status="")

        def update(summaries):
            if not summaries:
                return
            last = summaries[-1]
            state = "HALTED" if last.halted else "trading"
            bar.update(task, advance=len(summaries), total=last.n_chunks,
                       status=f"equity {last.equity:,.0f}  dd {last.drawdown:6.2%}  {state}")
            if dashboard:
                dashboard.update(summaries)

        yield update
