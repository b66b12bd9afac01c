"""Figures and the HTML report of a portfolio run folder.

:func:`build_report` turns a finished run folder into PNG figures,
``portfolio_summary.txt``, ``analysis.json`` and a self-contained
``report.html``; the ``plot_*`` functions draw one figure each.
"""

from raybt.plots.figures import (
    plot_asset_monthly_returns,
    plot_attribution,
    plot_correlation,
    plot_costs,
    plot_drawdown,
    plot_equity,
    plot_exposure,
    plot_frontier,
    plot_monthly_returns,
    plot_multipliers,
    plot_rolling_sharpe,
    plot_trades,
    plot_weights,
)
from raybt.plots.report import FIGURES, ReportError, build_report, load_run, write_figures

__all__ = [
    "FIGURES", "ReportError", "build_report", "load_run", "plot_asset_monthly_returns",
    "plot_attribution", "plot_correlation", "plot_costs", "plot_drawdown", "plot_equity",
    "plot_exposure", "plot_frontier", "plot_monthly_returns", "plot_multipliers",
    "plot_rolling_sharpe", "plot_trades", "plot_weights", "write_figures",
]
