"""Figures and the HTML report of a portfolio run folder.

:func:`build_report` turns a finished run folder into PNG figures,
``portfolio_summary.txt``, ``analysis.json`` and a self-contained
``report.html``; the ``plot_*`` functions draw one figure each.
"""

from raybt.plots.figures import (
    plot_attribution,
    plot_correlation,
    plot_drawdown,
    plot_equity,
    plot_frontier,
    plot_multipliers,
    plot_rolling_sharpe,
)
from raybt.plots.report import FIGURES, ReportError, build_report, load_run, write_figures

__all__ = [
    "FIGURES", "ReportError", "build_report", "load_run", "plot_attribution",
    "plot_correlation", "plot_drawdown", "plot_equity", "plot_frontier",
    "plot_multipliers", "plot_rolling_sharpe", "write_figures",
]
