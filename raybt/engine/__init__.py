"""The portfolio engine: intake -> plan -> execute -> assemble (see :mod:`raybt.engine.backtester`)."""

from raybt.engine.backtester import PortfolioBacktester, RunInfo
from raybt.engine.intake import Intake, pack_assets, release_free_memory
from raybt.engine.plan import LAYOUTS, Layout, Plan, choose_layout, shard_layout
from raybt.result import PortfolioResult

__all__ = ["LAYOUTS", "Intake", "Layout", "Plan", "PortfolioBacktester", "PortfolioResult", "RunInfo",
           "choose_layout", "pack_assets", "release_free_memory", "shard_layout"]
