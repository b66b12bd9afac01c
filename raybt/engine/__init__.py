"""The portfolio engine: intake -> plan -> execute -> assemble (see :mod:`raybt.engine.backtester`).

Names are imported lazily, so that :mod:`raybt.engine.read_ahead` can be
imported (and files read) before the engine's own imports (pandas, numba).
"""

from raybt.lazy import lazy_getattr

_EXPORTS = {
    "PortfolioBacktester": "backtester", "RunInfo": "backtester",
    "Intake": "intake", "pack_assets": "intake", "release_free_memory": "intake",
    "LAYOUTS": "plan", "Layout": "plan", "Plan": "plan", "choose_layout": "plan", "shard_layout": "plan",
    "PortfolioResult": "raybt.result",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)
