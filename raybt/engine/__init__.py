"""The portfolio engine: intake -> plan -> execute -> assemble (see :mod:`raybt.engine.backtester`).

Names are imported lazily: importing one of its modules (say
:mod:`raybt.engine.read_ahead`) does not import the whole engine (pandas,
numba, the result assembly).
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
