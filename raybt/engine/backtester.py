"""PortfolioBacktester: one run, one direction: intake -> plan -> execute -> assemble.

``PortfolioBacktester(assets, portfolio_config).run()`` simulates every asset
of the portfolio on one union clock, chunk by chunk:

1. intake (:mod:`raybt.engine.intake`, at construction): the bars validated
   and stored once (on Ray, in the object store as they load);
2. plan (:mod:`raybt.engine.plan`): weights (an estimation window cut off
   when the allocation needs one), timeline, chunks, sleeve parameters, layout;
3. execute (:mod:`raybt.engine.execute`): the Coordinator and its shards in
   this process (``engine="local"``) or on Ray (:mod:`raybt.ray.execute`,
   ``colocated`` or ``actors``), driven chunk by chunk with progress and
   checkpoints;
4. assemble (:mod:`raybt.result`): the tables and metrics.

Every path runs the same Coordinator and kernel and gives bit-identical
results for the same config and chunk size. The kernel reads the bars in
place (the frames' columns locally, the stored arrays on Ray), never a copy.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from raybt.engine.execute import LocalExecution, drive
from raybt.engine.inputs import (check_arguments, check_assets, check_checkpoint_dir, check_config, check_weights,
                                 check_weights_allowed)
from raybt.engine.intake import take_bars
from raybt.engine.read_ahead import read_files_ahead
from raybt.engine.plan import make_plan
from raybt.errors import ConfigError, RaybtWarning
from raybt.numba_cache import kernels_fingerprint
from raybt.phases import PhaseTimer, phase
from raybt.result import PortfolioResult, assemble_result


@dataclass(frozen=True)
class RunInfo:
    """How a run ran: engine, layout, where its shards were, lost workers recovered."""

    engine: str  # local | ray
    layout: str  # local | colocated | actors
    layout_description: str
    n_shards: int
    nodes: tuple = ()  # Ray node id of each shard
    recoveries: int = 0

    def to_dict(self) -> dict:
        return {"engine": self.engine, "layout": self.layout, "layout_description": self.layout_description,
                "n_shards": self.n_shards, "nodes": list(self.nodes), "recoveries": self.recoveries}


class PortfolioBacktester:
    """Run a portfolio: ``PortfolioBacktester(assets, config).run()``.

    ``assets``: ``{name: (AssetConfig, bars DataFrame)}`` in portfolio order or
    a list of :class:`~raybt.config.AssetConfig` (bars are then loaded, two
    files at a time, from their ``data`` paths; ``universe`` lets the bundled
    synthetic universe be generated on first use, ``timeframe`` resamples);
    each asset's ``params`` are validated as an asset config file's are (keys
    left out take the spec default);
    ``portfolio_config``: a :class:`~raybt.portfolio_config.PortfolioConfig`
    (its ``engine`` section says the chunk length, the layout on Ray and the
    checkpoints); ``engine``: ``ray`` or ``local``; ``weights``: fixed target
    weights instead of the allocation model (a Series or ``{asset: weight}``
    naming every asset, each >= 0, summing to 1; assets weighted 0 are not
    simulated); ``ranking``: ``{asset: score}`` for the ``max_assets``
    selection; ``progress``: a callback given each batch of chunk summaries;
    ``timer``: a :class:`~raybt.phases.PhaseTimer` that gets the ``load.*``,
    ``setup.*``, ``run.*``, ``assemble.*`` and ``metrics.*`` phases. After
    :meth:`run`, ``run_info`` says how it ran.
    """

    def __init__(self, assets, portfolio_config, *, engine: str = "ray", address: str | None = None,
                 weights: pd.Series | None = None, ranking: dict | None = None, progress=None,
                 timer: PhaseTimer | None = None, universe=None, timeframe: str | None = None, echo=None,
                 run_name: str | None = None):
        if engine not in ("ray", "local"):
            raise ConfigError(f"engine: must be ray or local, got {engine!r}")
        portfolio_config = check_config(portfolio_config)
        assets = check_assets(assets)  # every asset's params validated, before a process starts
        names = list(assets) if isinstance(assets, dict) else [a.name for a in assets]
        weights = check_weights(weights, names)
        for line in check_weights_allowed(weights, getattr(portfolio_config, "allocation", None)):
            warnings.warn(line, RaybtWarning, stacklevel=2)
        timeframe, ranking = check_arguments(names, timeframe=timeframe, ranking=ranking, progress=progress,
                                             timer=timer)
        self.config = portfolio_config
        self.engine = engine
        self.progress = progress
        self.timer = timer if timer is not None else PhaseTimer()
        self.fixed_weights = weights
        self.run_info: RunInfo | None = None
        self.simulated = None  # the Intake a run simulates (after selection and the estimation window)
        self.execution = None
        frames = None  # the files, read while Ray starts (on the Ray engine, when this starts it)
        try:
            if engine == "local":
                self.execution = LocalExecution()
            else:
                from raybt.ray.execute import RayExecution
                from raybt.ray.runtime import ray_started

                if not isinstance(assets, dict) and not ray_started():  # Ray starts now: read the files meanwhile
                    frames = read_files_ahead(assets, universe=universe, timeframe=timeframe, echo=echo)
                with phase(self.timer, "ray.init"):
                    # the coordinator's actor starts now: it loads the kernels while the bars load
                    self.execution = RayExecution(portfolio_config.engine, len(assets), address=address,
                                                  run_name=run_name or getattr(portfolio_config, "name", "run"),
                                                  names=names)
            self.intake = take_bars(assets, store=self.execution.store, universe=universe, timeframe=timeframe,
                                    echo=echo, timer=self.timer, frames=frames)
        except BaseException:
            if frames is not None:
                frames.close()
            if self.execution is not None:
                self.execution.abort()  # nothing will run: do not leave the coordinator's process behind
            raise
        from raybt.allocation.estimator import WeightEstimator

        allocation = getattr(portfolio_config, "allocation", None)
        ranks = None if ranking is None else [float(ranking.get(n, -np.inf)) for n in self.intake.names]
        self.estimator = (WeightEstimator.from_config(allocation, ranks)
                          if allocation is not None and weights is None else None)

    @property
    def names(self) -> list:
        """The portfolio's assets (once a run has planned: the ones simulated)."""
        return list((self.simulated or self.intake).names)

    @property
    def bars(self) -> list:
        return list(self.intake.bars)

    def _provenance(self) -> dict:
        """The config hash and each asset's data hash (checked by ``--resume``) and parameters."""
        from raybt.checkpoints import config_hash

        intake = self.intake
        return {
            "config_hash": config_hash({"portfolio": self.config.to_dict(),
                                        "assets": {n: a.params for n, a in zip(intake.names, intake.configs)},
                                        "weights": None if self.fixed_weights is None
                                        else self.fixed_weights.to_dict()}),
            "data_hashes": intake.hashes(),
            "kernels": kernels_fingerprint(),
            "asset_params": {n: dict(a.params) for n, a in zip(intake.names, intake.configs)},
        }

    def run(self, *, checkpoint_dir=None, resume: bool = False) -> PortfolioResult:
        """Simulate the portfolio; BLAS is kept to one thread meanwhile.

        ``checkpoint_dir``: a run's ``.partial`` folder; checkpoints go there
        every ``engine.checkpoint_seconds`` (and/or ``checkpoint_every``
        chunks; :mod:`raybt.checkpoints`). ``resume``: continue from the
        checkpoint in ``checkpoint_dir`` (the config and data must hash the
        same); the results equal an uninterrupted run's, bit for bit.

        Multi-threaded BLAS (the correlation estimate's matrix product) would
        otherwise spin on the cores the numba kernel threads need.
        """
        from threadpoolctl import threadpool_limits

        from raybt.checkpoints import check_fits, load_checkpoint

        checkpoint_dir = check_checkpoint_dir(checkpoint_dir, resume)
        timer = self.timer
        with phase(timer, "setup.hash"):
            self.intake.check_unchanged()
            provenance = self._provenance()
            hashes = {"config": provenance["config_hash"], "data": provenance["data_hashes"],
                      "kernels": provenance["kernels"]}
            snapshot = load_checkpoint(checkpoint_dir, hashes) if resume and checkpoint_dir else None
            blas = threadpool_limits(limits=1, user_api="blas")
        with blas:
            with phase(timer, "setup.compile"):
                self.execution.ready()
            t0 = time.perf_counter()
            plan = make_plan(self.intake, self.config, estimator=self.estimator, fixed_weights=self.fixed_weights,
                             timer=timer)
            self.simulated = plan.intake
            if snapshot is not None:
                check_fits(checkpoint_dir, *snapshot, len(plan.names), plan.bounds)
            with phase(timer, "setup.engine"):
                self.execution.start(plan, self.config)
            timings = {"setup_s": time.perf_counter() - t0}
            t1 = time.perf_counter()
            with phase(timer, "run.loop"):
                checkpoints, checkpoint_s = drive(self.execution.call, self.config, progress=self.progress,
                                                  checkpoint_dir=checkpoint_dir, resume=snapshot, hashes=hashes)
            timings["loop_s"] = time.perf_counter() - t1
            timings.update(checkpoints=checkpoints, checkpoint_s=checkpoint_s)  # within loop_s
            with phase(timer, "run.output"):
                output, stats = self.execution.finish()
            timings.update(stats.timing)
            timings["engine_s"] = time.perf_counter() - t1
        layout = self.execution.layout
        self.run_info = RunInfo(self.engine, layout.kind, layout.describe(plan.names), layout.n_shards,
                                stats.nodes, stats.recoveries)
        timings.update(n_chunks=len(plan.bounds) - 1, n_shards=layout.n_shards)
        result = self._result(plan, output, timings, provenance)
        with phase(timer, "metrics.warnings"):
            result.provenance["warnings"] = self._warnings(plan, result)
        for line in result.provenance["warnings"]:
            warnings.warn(line, RaybtWarning, stacklevel=2)
        return result

    @staticmethod
    def _warnings(plan, result) -> list[str]:
        """What makes this run say little: an asset the allocation model weighted without a return of
        its in the estimation window, degenerate bars (a constant or vanishing price, sizes that
        round to nothing) and results without trades or a Sharpe (:mod:`raybt.data.checks`)."""
        from concurrent.futures import ThreadPoolExecutor

        from raybt.data.checks import degenerate_warnings, result_warnings

        def check(name, bars, asset):
            return degenerate_warnings(bars, f"asset {name}", asset.params)

        # a few medians per asset (~12 ms at 200,000 bars); numpy releases the GIL in them
        with ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, 8))) as pool:
            per_asset = list(pool.map(check, plan.intake.names, plan.intake.bars, plan.intake.configs))
        found = [f"asset {name}: no bars in the allocation's estimation window (before {plan.start}): "
                 f"its starting weight {float(plan.weights[name]):.4g} is not estimated from its returns"
                 for name in plan.unestimated]
        found += [line for lines in per_asset for line in lines]
        return found + result_warnings({"portfolio": result.metrics["portfolio"], **result.metrics["assets"]})

    def _result(self, plan, output, timings, provenance) -> PortfolioResult:
        import raybt

        config = self.config.to_dict() if hasattr(self.config, "to_dict") else {}
        config["engine_used"] = self.engine
        config["backtest_start"] = str(plan.timeline[0]) if len(plan.timeline) else None
        if plan.start is not None:
            config["estimation_window"] = [str(plan.start - pd.Timedelta(self.config.allocation.lookback)),
                                           str(plan.start)]
            timings["estimated_weights"] = {k: float(v) for k, v in plan.estimated_weights.items()}
        provenance = {"raybt_version": raybt.__version__, **provenance, "run": self.run_info.to_dict()}
        return assemble_result(output, plan.names, [b.index for b in plan.intake.bars], plan.timeline, plan.bounds,
                               plan.weights, config, timings, provenance, self.timer)
