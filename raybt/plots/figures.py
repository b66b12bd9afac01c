"""The figures of a portfolio run report, one function per PNG.

Every ``plot_*`` function takes pandas inputs and an output path, draws on
its own :class:`matplotlib.figure.Figure` (no pyplot, so no global figure
state survives a call), writes a PNG and returns the path.  Conventions:
fractions are shown as percent, timestamps are UTC.  Figures stay fast and
readable from a handful of assets to a thousand:

* long series are drawn with at most :data:`MAX_POINTS` points, keeping
  each bucket's minimum and maximum (:func:`downsample`), so peaks and
  drawdown troughs survive;
* above :data:`MANY_ASSETS` assets a figure summarises instead of drawing
  one artist per asset (sleeve percentile bands plus the best and worst
  sleeves named, the largest PnLs plus "others", a few labelled frontier
  points, a clustered heatmap without cell values, the top and bottom
  assets of a table) and says so in its title.

Empty or degenerate inputs give a figure with a "no data" note rather than
an error.  This module gathers the figures of :mod:`raybt.plots.curves`
(equity, drawdown, rolling Sharpe, multipliers), :mod:`raybt.plots.cross`
(correlation, attribution, frontier), :mod:`raybt.plots.breaker`
(drawdown with the breaker, multipliers), :mod:`raybt.plots.sheet` (monthly
returns) and :mod:`raybt.plots.activity` (trades, exposure, weights, costs)
with the shared helpers of :mod:`raybt.plots.base`.
"""

from __future__ import annotations

from raybt.plots.activity import plot_costs, plot_exposure, plot_trades, plot_weights
from raybt.plots.base import (  # noqa: F401  (helpers used by the report and the tests)
    DPI,
    MANY_ASSETS,
    MAX_BARS,
    MAX_POINTS,
    _dates,
    _portfolio_series,
    _save,
    asset_colors,
    asset_styles,
    downsample,
    minmax_rows,
)
from raybt.plots.breaker import _chunk_table, plot_drawdown, plot_multipliers  # noqa: F401
from raybt.plots.cross import (  # noqa: F401
    _labelled_points,
    asset_frontier_points,
    cluster_order,
    frontier_limits,
    plot_attribution,
    plot_correlation,
    plot_frontier,
)
from raybt.plots.curves import _Sleeves, plot_equity, plot_rolling_sharpe, rolling_window_bars  # noqa: F401
from raybt.plots.sheet import plot_asset_monthly_returns, plot_monthly_returns

__all__ = [
    "DPI", "MANY_ASSETS", "MAX_BARS", "MAX_POINTS", "asset_colors", "asset_frontier_points",
    "asset_styles", "cluster_order", "downsample", "minmax_rows", "plot_asset_monthly_returns",
    "plot_attribution", "plot_correlation", "plot_costs", "plot_drawdown", "plot_equity",
    "plot_exposure", "plot_frontier", "plot_monthly_returns", "plot_multipliers",
    "plot_rolling_sharpe", "plot_trades", "plot_weights", "rolling_window_bars",
]
