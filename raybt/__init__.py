"""raybt: multi-asset portfolio backtesting on Ray.

Public API (imported lazily, so ``import raybt`` stays light):
``PortfolioBacktester``, ``load_portfolio_from_config``, ``run_backtest``.
"""

__version__ = "0.1.0"

__all__ = ["PortfolioBacktester", "load_portfolio_from_config", "run_backtest", "__version__"]


def __getattr__(name):
    if name == "PortfolioBacktester":
        from raybt.engine import PortfolioBacktester

        return PortfolioBacktester
    if name == "load_portfolio_from_config":
        from raybt.universe import load_portfolio_from_config

        return load_portfolio_from_config
    if name == "run_backtest":
        from raybt.backtest import run_backtest

        return run_backtest
    raise AttributeError(f"module 'raybt' has no attribute {name!r}")
