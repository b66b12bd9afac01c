"""raybt: multi-asset portfolio backtesting on Ray.

Public API (imported lazily, so ``import raybt`` stays light):
``PortfolioBacktester``, ``load_portfolio_from_config``, ``run_backtest``.
"""

from raybt.lazy import lazy_getattr
from raybt.numba_cache import refresh_numba_cache

refresh_numba_cache()  # before any kernel is loaded from numba's cache, in every process

__version__ = "0.1.0"

_EXPORTS = {"PortfolioBacktester": "raybt.engine", "load_portfolio_from_config": "raybt.universe",
            "run_backtest": "raybt.backtest"}

__all__ = [*_EXPORTS, "__version__"]
__getattr__ = lazy_getattr(__name__, _EXPORTS)
