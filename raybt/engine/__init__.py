"""The portfolio engine: intake -> plan -> execute -> assemble (see :mod:`raybt.engine.backtester`).

Names are imported lazily, so that :mod:`raybt.engine.read_ahead` can be
imported (and files read) before the engine's own imports (pandas, numba).
"""

_EXPORTS = {
    "PortfolioBacktester": "backtester", "RunInfo": "backtester",
    "Intake": "intake", "pack_assets": "intake", "release_free_memory": "intake",
    "LAYOUTS": "plan", "Layout": "plan", "Plan": "plan", "choose_layout": "plan", "shard_layout": "plan",
}

__all__ = sorted([*_EXPORTS, "PortfolioResult"])


def __getattr__(name):
    import importlib

    if name == "PortfolioResult":
        from raybt.result import PortfolioResult

        return PortfolioResult
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'raybt.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"raybt.engine.{module}"), name)
