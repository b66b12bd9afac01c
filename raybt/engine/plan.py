"""Plan, the second stage of a run: the clock, the estimation window, the weights and the layout.

:func:`make_plan` takes the :class:`~raybt.engine.intake.Intake` and the
portfolio config and decides everything the run needs before its first
chunk: the starting weights (estimated on a window of each asset's own
strategy returns before the backtest start when the allocation model needs
one, which is then cut off; unselected assets are dropped), the union
timeline and its chunks, the sleeves' kernel parameters, and the
:class:`Layout`: which process advances which assets.

Layouts (``engine.layout``, ``--layout``):

* ``local`` (``--engine local``): this process, one shard, numba threads over the assets;
* ``colocated``: the coordinator's Ray actor advances every asset itself with
  numba threads; no call per chunk crosses a process. The fastest on one
  machine, and the default there (``auto``);
* ``actors``: the assets are split into shards of ``engine.assets_per_actor``
  (default: one shard per CPU), each advanced by its own Ray actor, with one
  fan-out per chunk. The default (``auto``) on a multi-node cluster, where
  the work has to spread over machines; ``--layout actors
  --assets-per-actor 1`` runs literally one actor per asset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from raybt.broker import param_records
from raybt.engine.intake import Intake, pack_assets
from raybt.errors import ConfigError
from raybt.phases import PhaseTimer, phase
from raybt.config.portfolio import LAYOUTS
from raybt.timeline import chunk_bounds, union_timeline


@dataclass(frozen=True)
class Layout:
    """Which process advances which assets: ``kind`` and the asset indices of each shard."""

    kind: str  # local | colocated | actors
    shards: tuple  # int64 arrays of asset indices, contiguous blocks in portfolio order

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    def describe(self, names) -> str:
        """One line for the terminal and run_info.json."""
        n = len(names)
        if self.kind == "local":
            return f"local: this process advances all {n} assets (numba threads)"
        if self.kind == "colocated":
            return f"colocated: the coordinator's Ray actor advances all {n} assets (numba threads)"
        sizes = sorted({len(s) for s in self.shards})
        per = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
        return f"actors: {self.n_shards} Ray shard actors of {per} asset(s) each, one fan-out per chunk"


def shard_layout(n_assets: int, n_shards: int) -> tuple:
    """Split asset indices 0..n-1 into ``n_shards`` contiguous, near-equal blocks."""
    n_shards = max(1, min(n_shards, n_assets))
    return tuple(np.asarray(block, dtype=np.int64) for block in np.array_split(np.arange(n_assets), n_shards))


def choose_layout(engine: str, requested: str, n_assets: int, assets_per_actor: int | None = None,
                  n_nodes: int = 1, cpus: int = 1) -> Layout:
    """The :class:`Layout` for ``engine`` (``local`` or ``ray``) and ``engine.layout`` (see the module docstring).

    ``auto``: colocated on one node unless ``assets_per_actor`` is set, actors
    on several nodes; actors without ``assets_per_actor`` get one shard per CPU.
    """
    if requested not in LAYOUTS:
        raise ConfigError(f"engine.layout: must be one of {', '.join(LAYOUTS)}, got {requested!r}")
    if engine == "local":
        return Layout("local", shard_layout(n_assets, 1))
    kind = requested
    if kind == "auto":
        kind = "actors" if n_nodes > 1 or assets_per_actor else "colocated"
    if kind == "colocated":
        return Layout("colocated", shard_layout(n_assets, 1))
    n_shards = math.ceil(n_assets / assets_per_actor) if assets_per_actor else min(n_assets, max(1, cpus))
    return Layout("actors", shard_layout(n_assets, n_shards))


@dataclass
class Plan:
    """Everything decided before the first chunk (see the module docstring)."""

    intake: Intake  # the simulated assets, their bars from the backtest start
    timeline: pd.DatetimeIndex  # the union clock (UTC)
    bounds: np.ndarray  # chunk boundaries: positions on the timeline
    weights: pd.Series  # starting target weights, portfolio order, summing to 1
    params: np.ndarray  # PARAM_DT records of the sleeves (capital x weight each)
    start: pd.Timestamp | None = None  # first bar after an estimation window (None: no window)
    estimated_weights: pd.Series | None = None  # the estimate before unselected assets were dropped
    reweighing: dict = field(default_factory=dict)  # Coordinator arguments for re-estimates at rebalances
    #: assets with fewer than 2 bars in the estimation window: the model saw no return of theirs
    unestimated: tuple = ()

    @property
    def names(self) -> list:
        return list(self.intake.names)

    @property
    def initial_sleeves(self) -> np.ndarray:
        return self.params["initial_cash"].copy()

    @property
    def target(self) -> np.ndarray:
        return self.weights.reindex(self.names).to_numpy(dtype=np.float64)


def estimate_start(intake: Intake, config, estimator):
    """Starting weights; with an estimation window, it is cut off and unselected assets dropped.

    Returns ``(intake of the simulated assets, their weights, first timestamp
    of the backtest or None, the estimate for every asset, the assets with
    fewer than 2 bars in the window)``. The window's strategy runs happen in
    this process (numba threads over the window).
    """
    from raybt.asset import AssetGroup
    from raybt.compile import warm_up_kernels
    from raybt.types import neutral_instructions
    from raybt.allocation.estimator import strategy_returns, window_end

    names = list(intake.names)
    returns, start, unestimated = None, None, ()
    if estimator.needs_window:
        timeline = union_timeline([b.index for b in intake.bars])
        end = window_end(timeline, config.allocation.lookback)
        start = timeline[end]
        rows = [int(b.index.searchsorted(start)) for b in intake.bars]
        unestimated = tuple(n for n, k in zip(names, rows) if k < 2)
        window = [b.iloc[:k] for b, k in zip(intake.bars, rows)]
        params = param_records([dict(a.params, initial_capital=float(config.initial_capital),
                                     weight=1.0 / len(names)) for a in intake.configs])
        warm_up_kernels()
        group = AssetGroup(pack_assets(window, timeline[:end], np.arange(len(names))), params, parallel=True)
        report = group.step(0, end, neutral_instructions(len(names)))
        returns = strategy_returns(report.equity, names)
        intake = intake.cut(rows)  # views, not copies
    weights = estimator.initial(names, returns)
    keep = [i for i, n in enumerate(names) if weights[n] > 0]
    empty = [names[i] for i in keep if len(intake.bars[i]) == 0]
    if empty:
        raise ConfigError(f"asset {empty[0]} has no bars after the allocation lookback window")
    kept = intake.keep(keep)
    selected = weights[list(kept.names)]
    return (kept, (selected if len(keep) == len(weights) else selected / selected.sum()), start, weights,
            tuple(n for n in unestimated if n in kept.names))


def sleeve_params(intake: Intake, config, weights: pd.Series) -> np.ndarray:
    """The kernel's PARAM_DT records: each asset's parameters with capital x its weight."""
    capital = float(config.initial_capital)
    return param_records([dict(a.params, initial_capital=capital, weight=float(weights[n]))
                          for a, n in zip(intake.configs, intake.names)])


def make_plan(intake: Intake, config, *, estimator=None, fixed_weights: pd.Series | None = None,
              timer: PhaseTimer | None = None) -> Plan:
    """The :class:`Plan` (phases ``setup.estimate`` and ``setup.timeline``).

    ``estimator``: a :class:`~raybt.allocation.estimator.WeightEstimator` (None: equal or
    ``fixed_weights``, checked by :func:`raybt.engine.inputs.check_weights`; assets weighted 0 are
    not simulated).
    """
    start = estimated = None
    unestimated = ()
    with phase(timer, "setup.estimate"):
        if estimator is not None:
            intake, weights, start, estimated, unestimated = estimate_start(intake, config, estimator)
        elif fixed_weights is not None:  # assets weighted 0 are dropped, as unselected ones are
            intake = intake.keep([i for i, n in enumerate(intake.names) if fixed_weights[n] > 0])
            weights = fixed_weights[list(intake.names)]
        else:
            weights = pd.Series(1.0 / intake.n_assets, index=list(intake.names))
    with phase(timer, "setup.timeline"):
        timeline = union_timeline([b.index for b in intake.bars])
        bounds = chunk_bounds(timeline, config.engine.chunk)
    reweighing = {}
    if estimator is not None and estimator.reestimates:
        reweighing = {"estimator": estimator, "names": list(intake.names),
                      "lookback_ns": pd.Timedelta(config.allocation.lookback).value}
    return Plan(intake, timeline, bounds, weights, sleeve_params(intake, config, weights), start, estimated,
                reweighing, unestimated)
