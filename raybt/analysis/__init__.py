"""Post-run analysis of a portfolio backtest: attribution, diversification,
the efficient frontier of the sleeves and a plain-text summary.

All functions are pure functions on pandas objects loaded from a run folder
(only :func:`write_portfolio_summary` writes a file).  Conventions follow
:mod:`raybt.metrics`: simple returns as fractions, ``ddof=1``, annualisation
by ``sqrt(periods_per_year)``, risk-free 0, drawdowns as positive fractions.

Scale: :func:`analyse_run` makes one pass over the sleeve equity
(:func:`raybt.analysis.attribution.sleeve_pass`: returns, shares,
drawdowns), one blocked pass over the returns for the means and covariance
that every cross-asset number shares (:mod:`raybt.analysis.moments`), one
grouped pass over the trades, and traces the exact frontier with the
critical line algorithm (:mod:`raybt.analysis.cla`).  The tear sheet
(:mod:`raybt.analysis.tearsheet`: returns by month and year, drawdown
periods, the breaker's own drawdown, trade statistics, costs, exposure,
turnover) adds a pass over the sleeve returns per period and a few numba
passes over the trades.
"""

from raybt.analysis.attribution import (
    as_weight_series,
    asset_columns,
    capital_flows,
    equity_weights,
    pnl_attribution,
    portfolio_equity,
    return_contribution,
    risk_attribution,
    sleeve_returns,
)
from raybt.analysis.diversification import (
    annualised_sharpe,
    annualised_volatility,
    correlation_matrix,
    diversification_benefits,
    diversification_ratio,
)
from raybt.analysis.frontier import (
    efficient_frontier,
    frontier_volatility_at,
    min_variance_weights,
    portfolio_point,
)
from raybt.analysis.periods import breaker_drawdown, drawdown_periods, period_returns
from raybt.analysis.summary import (
    analyse_run,
    analysis_to_json,
    asset_table,
    portfolio_summary_text,
    write_portfolio_summary,
)
from raybt.analysis.trades import trade_analysis, trade_costs
from raybt.analysis.exposure import exposure_frame, rebalance_turnover

__all__ = [
    "analyse_run", "analysis_to_json", "annualised_sharpe", "annualised_volatility",
    "breaker_drawdown", "drawdown_periods", "exposure_frame", "period_returns",
    "rebalance_turnover", "trade_analysis", "trade_costs",
    "as_weight_series", "asset_columns", "asset_table", "capital_flows",
    "correlation_matrix", "diversification_benefits", "diversification_ratio",
    "efficient_frontier", "equity_weights", "frontier_volatility_at",
    "min_variance_weights", "pnl_attribution", "portfolio_equity",
    "portfolio_point", "portfolio_summary_text", "return_contribution",
    "risk_attribution", "sleeve_returns", "write_portfolio_summary",
]
