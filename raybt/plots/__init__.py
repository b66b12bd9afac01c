"""Figures and the HTML report of a portfolio run folder.

:func:`build_report` turns a finished run folder into PNG figures,
``portfolio_summary.txt``, ``analysis.json`` and a self-contained
``report.html``; the ``plot_*`` functions draw one figure each.

Names are imported lazily, so that ``import raybt.plots.pool`` (a command
starting its figure workers before Ray) does not import matplotlib here:
the workers' server imports it, and this process when it draws.
"""

from raybt.lazy import lazy_getattr

_EXPORTS = {
    **dict.fromkeys(["plot_asset_monthly_returns", "plot_attribution", "plot_correlation", "plot_costs",
                     "plot_drawdown", "plot_equity", "plot_exposure", "plot_frontier", "plot_monthly_returns",
                     "plot_multipliers", "plot_rolling_sharpe", "plot_trades", "plot_weights"], "figures"),
    **dict.fromkeys(["FIGURES", "ReportError", "build_report", "load_run", "write_figures"], "report"),
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)
