"""Figures and the HTML report of a portfolio run folder.

:func:`build_report` turns a finished run folder into PNG figures,
``portfolio_summary.txt``, ``analysis.json`` and a self-contained
``report.html``; the ``plot_*`` functions draw one figure each.

Names are imported lazily, so that ``import raybt.plots.pool`` (a command
starting its figure workers before Ray) does not import matplotlib here:
the workers' server imports it, and this process when it draws.
"""

_EXPORTS = {
    **dict.fromkeys(["plot_asset_monthly_returns", "plot_attribution", "plot_correlation", "plot_costs",
                     "plot_drawdown", "plot_equity", "plot_exposure", "plot_frontier", "plot_monthly_returns",
                     "plot_multipliers", "plot_rolling_sharpe", "plot_trades", "plot_weights"], "figures"),
    **dict.fromkeys(["FIGURES", "ReportError", "build_report", "load_run", "write_figures"], "report"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'raybt.plots' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"raybt.plots.{module}"), name)
