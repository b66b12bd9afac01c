"""PortfolioBacktester: wires asset configs, bars, shards and the coordinator.

``PortfolioBacktester(asset_configs, portfolio_config).run()`` simulates every
asset of the portfolio on one union clock, chunk by chunk, either in-process
(``engine="local"``: one AssetGroup with every asset, numba threads over
assets) or on Ray (``engine="ray"``: the coordinator a Ray actor, which on a
one-node cluster advances the shards itself and otherwise fans out to
AssetActors; each asset's bars are put in the object store once, as they are
taken, and read there without copies). Both run the same Coordinator and
kernel, and give bit-identical results for the same config and chunk size.

The kernel reads the bars in place: per-asset views of the frames' columns
(local) or of the stored arrays (Ray), never a concatenated copy.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from raybt.asset import AssetGroup, ShardBars, shard_bars
from raybt.broker import param_records
from raybt.coordinator import Coordinator, LocalGroupSet
from raybt.errors import ConfigError, DataError
from raybt.phases import PhaseTimer, phase
from raybt.result import PortfolioResult, assemble_result
from raybt.timeline import asset_positions, chunk_bounds, union_timeline


def shard_layout(n_assets: int, n_shards: int) -> list[np.ndarray]:
    """Split asset indices 0..n-1 into ``n_shards`` contiguous, near-equal blocks."""
    n_shards = max(1, min(n_shards, n_assets))
    return [np.asarray(block, dtype=np.int64) for block in np.array_split(np.arange(n_assets), n_shards)]


def release_free_memory() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    glibc keeps freed blocks of a few MB (one asset's columns) in its heap
    rather than unmapping them, so a process that dropped its bars would
    still hold their pages.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def pack_assets(bars_list, timeline, indices) -> ShardBars:
    """The bars of the assets ``indices`` for a shard: views of their columns, no copy."""
    return shard_bars(
        [bars_list[i]["open"].to_numpy() for i in indices],
        [bars_list[i]["high"].to_numpy() for i in indices],
        [bars_list[i]["low"].to_numpy() for i in indices],
        [bars_list[i]["close"].to_numpy() for i in indices],
        [asset_positions(bars_list[i].index, timeline) for i in indices],
    )


class PortfolioBacktester:
    """Run a portfolio: ``PortfolioBacktester(assets, config).run()``.

    ``assets``: ``{name: (AssetConfig, bars DataFrame)}`` in portfolio order or
    a list of :class:`~raybt.config.AssetConfig` (bars are then loaded, two
    files at a time, from their ``data`` paths; ``universe`` lets the bundled
    synthetic universe be generated on first use, ``timeframe`` resamples);
    ``portfolio_config``: a :class:`~raybt.portfolio_config.PortfolioConfig`;
    ``timer``: a :class:`~raybt.phases.PhaseTimer` that gets the ``load.*``,
    ``setup.*``, ``run.*``, ``assemble.*`` and ``metrics.*`` phases.
    """

    def __init__(self, assets, portfolio_config, *, engine: str = "ray", address: str | None = None,
                 n_actors: int | None = None, progress=None, weights: pd.Series | None = None,
                 spread_actors: bool = False, ranking: dict | None = None, timer: PhaseTimer | None = None,
                 universe=None, timeframe: str | None = None, echo=None):
        if engine not in ("ray", "local"):
            raise ConfigError(f"--engine must be ray or local, got {engine!r}")
        self.config = portfolio_config
        self.engine = engine
        self.address = address
        self.n_actors = n_actors
        self.progress = progress
        self.spread_actors = spread_actors
        self.timer = timer if timer is not None else PhaseTimer()
        if isinstance(assets, dict):
            self.names = list(assets)
            self.asset_configs = [assets[n][0] for n in self.names]
            frames = (assets[n][1] for n in self.names)
        else:
            from raybt.universe import iter_asset_bars

            self.asset_configs = list(assets)
            self.names = [a.name for a in self.asset_configs]
            frames = iter_asset_bars(self.asset_configs, universe, timeframe, echo=echo)
        if not self.names:
            raise ConfigError("the portfolio has no assets")
        from raybt.portfolio import check_portfolio_asset

        for asset in self.asset_configs:
            check_portfolio_asset(asset, f"asset {asset.name}")
        self._take_bars(frames, validated=not isinstance(assets, dict))
        from raybt.weights import WeightEstimator

        allocation = getattr(portfolio_config, "allocation", None)
        ranks = None if ranking is None else [float(ranking.get(n, -np.inf)) for n in self.names]
        self.estimator = WeightEstimator.from_config(allocation, ranks) if allocation is not None and weights is None \
            else None
        self.fixed_weights = weights
        self.weights = weights if weights is not None else pd.Series(1.0 / len(self.names), index=self.names)
        self.start = None  # first timestamp of the backtest (after any estimation window)

    # --- set-up ---------------------------------------------------------------------

    def _take_bars(self, frames, validated: bool = False) -> None:
        """Keep each asset's bars; for the Ray engine, put them in the object store as they come.

        With ``engine="ray"`` every asset's OHLC goes to the object store
        once, as it is loaded, and ``self.bars`` holds frames *viewing* the
        stored arrays (no second copy in the driver; the loaded frame is
        dropped unless the caller keeps it). Frames from the caller are
        validated here (``validated``: they came from the loader, which did). ``self.bar_refs[i]`` is the
        stored object and ``self.bar_starts[i]`` the row of it where
        ``self.bars[i]`` begins (after an estimation window is cut off).
        """
        self.bars, self.bar_refs = [], []
        self._host = None
        if self.engine == "ray":
            from raybt.ray_runtime import ensure_ray

            with phase(self.timer, "ray.init"):
                ensure_ray(self.address)
            self._host = self._start_host()  # its process imports and loads the kernels while the bars load
        try:
            self._store_bars(iter(frames), validated)
        except BaseException:
            if self._host is not None:  # nothing will run: do not leave the coordinator's process behind
                import ray

                ray.kill(self._host)
                self._host = None
            raise

    def _store_bars(self, frames, validated: bool) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from raybt.checkpoints import bars_hash

        if self.engine == "ray":
            from raybt.actors import store_bars
        # each asset's data hash (for --resume) is computed by a thread as the next files load (sha256 drops the GIL)
        hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raybt-hash")
        self._data_hashes = {}  # name -> future of its bars_hash
        from raybt.universe import validate_asset_bars

        for name, asset in zip(self.names, self.asset_configs):
            with phase(self.timer, "load.bars"):
                bars = next(frames)
                if not validated:  # the caller's frames pass the loader's rules (float64 columns not copied)
                    bars = validate_asset_bars(bars, name, getattr(asset, "params", None))
            ref = None
            if self.engine == "ray":
                with phase(self.timer, "load.store"):
                    ref, bars = store_bars(bars)
            self.bars.append(bars)
            self.bar_refs.append(ref)
            self._data_hashes[name] = hasher.submit(bars_hash, bars)
            del bars
        hasher.shutdown(wait=False)
        self.bar_starts = [0] * len(self.bars)
        if self.engine == "ray":
            with phase(self.timer, "load.store"):
                release_free_memory()  # the loaded frames' pages go back to the OS now

    def _sleeve_params(self):
        capital = float(self.config.initial_capital)
        out = []
        for a, name in zip(self.asset_configs, self.names):
            params = dict(a.params)
            params["initial_capital"] = capital
            params["weight"] = float(self.weights[name])
            out.append(params)
        return out

    def _colocated(self) -> bool:
        """Default Ray layout on a one-node cluster: shards advanced inside the coordinator actor."""
        import ray

        if self.n_actors or self.config.engine.assets_per_actor or self.spread_actors:
            return False
        return len([node for node in ray.nodes() if node.get("Alive")]) <= 1

    def _n_shards(self) -> int:
        n = len(self.names)
        per_actor = self.config.engine.assets_per_actor
        if self.n_actors:
            return min(n, self.n_actors)
        if per_actor:
            return math.ceil(n / per_actor)
        import ray

        if self._colocated():
            return 1
        cpus = int(ray.available_resources().get("CPU", 1)) or 1
        return min(n, max(1, cpus))

    # --- run ---------------------------------------------------------------------------

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

        from raybt.checkpoints import load_checkpoint

        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        with phase(self.timer, "setup.hash"):
            self._hash_inputs()
            hashes = {"config": self.provenance["config_hash"], "data": self.provenance["data_hashes"]}
            self.resume_snapshot = load_checkpoint(self.checkpoint_dir, hashes) if resume and checkpoint_dir else None
            blas = threadpool_limits(limits=1, user_api="blas")
        with blas:
            return self._run()

    def _hash_inputs(self) -> None:
        """``provenance``: the config hash and each asset's data hash (checked by ``--resume``)."""
        from raybt.checkpoints import config_hash

        self.provenance = {
            "config_hash": config_hash({"portfolio": self.config.to_dict(),
                                        "assets": {n: a.params for n, a in zip(self.names, self.asset_configs)},
                                        "weights": None if self.fixed_weights is None
                                        else self.fixed_weights.to_dict()}),
            "data_hashes": {n: self._data_hashes[n].result() for n in self.names},
            "asset_params": {n: dict(a.params) for n, a in zip(self.names, self.asset_configs)},
        }

    def _estimate_start(self) -> None:
        """Starting weights; with an estimation window, cut it off and drop unselected assets."""
        from raybt.weights import strategy_returns, window_end

        if self.estimator is None:
            return
        returns = None
        if self.estimator.needs_window:
            timeline = union_timeline([b.index for b in self.bars])
            end = window_end(timeline, self.config.allocation.lookback)
            cut = timeline[end]
            cut_rows = [int(b.index.searchsorted(cut)) for b in self.bars]
            window = [b.iloc[:k] for b, k in zip(self.bars, cut_rows)]
            params = param_records([dict(a.params, initial_capital=float(self.config.initial_capital),
                                         weight=1.0 / len(self.names)) for a in self.asset_configs])
            from raybt.ray_runtime import warm_up_kernels

            warm_up_kernels()  # this process runs the estimation window itself
            group = AssetGroup(pack_assets(window, timeline[:end], np.arange(len(self.names))), params,
                               parallel=True)
            from raybt.types import neutral_instructions

            report = group.step(0, end, neutral_instructions(len(self.names)))
            returns = strategy_returns(report.equity, self.names)
            self.bars = [b.iloc[k:] for b, k in zip(self.bars, cut_rows)]  # views, not copies
            self.bar_starts = [s + k for s, k in zip(self.bar_starts, cut_rows)]
            self.start = cut
        weights = self.estimator.initial(self.names, returns)
        keep = [i for i, n in enumerate(self.names) if weights[n] > 0]
        empty = [self.names[i] for i in keep if len(self.bars[i]) == 0]
        if empty:
            raise ConfigError(f"asset {empty[0]} has no bars after the allocation lookback window")
        self.estimated_weights = weights
        self.names = [self.names[i] for i in keep]
        self.asset_configs = [self.asset_configs[i] for i in keep]
        self.bars = [self.bars[i] for i in keep]
        self.bar_refs = [self.bar_refs[i] for i in keep]
        self.bar_starts = [self.bar_starts[i] for i in keep]
        kept = weights[self.names]
        self.weights = kept if len(keep) == len(weights) else kept / kept.sum()

    def _run(self) -> PortfolioResult:
        from raybt.ray_runtime import warm_up_kernels

        with phase(self.timer, "setup.compile"):
            if self.engine == "local":
                warm_up_kernels()  # compiled (or loaded from numba's cache) before the clock starts
            else:
                import ray

                # the coordinator's process compiled them into numba's cache if they were not there yet;
                # anything that uses them here or starts other actors waits for that (one writer)
                if self._host is None:  # a second run of this backtester
                    self._host = self._start_host()
                ray.get(self._host.ready.remote())
        t0 = time.perf_counter()
        with phase(self.timer, "setup.estimate"):
            self._estimate_start()
        with phase(self.timer, "setup.timeline"):
            timeline = union_timeline([b.index for b in self.bars])
            bounds = chunk_bounds(timeline, self.config.engine.chunk)
        params = param_records(self._sleeve_params())
        initial = params["initial_cash"].copy()
        target = self.weights.reindex(self.names).to_numpy(dtype=np.float64)
        settings = self.config.risk
        timings = {}
        if self.engine == "local":
            with phase(self.timer, "setup.engine"):
                layout = [np.arange(len(self.names), dtype=np.int64)]
                group = AssetGroup(pack_assets(self.bars, timeline, layout[0]), params, parallel=True)
                coordinator = Coordinator(LocalGroupSet([group]), layout, timeline.as_unit("ns").asi8, bounds,
                                          initial, target, settings, rebalance=self.config.rebalance,
                                          **self._reweighing())
                coordinator.set_checkpoint_every(self.config.engine.checkpoint_every)
            timings["setup_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            with phase(self.timer, "run.loop"):
                self._drive(lambda method, *args: getattr(coordinator, method)(*args))
            timings["loop_s"] = time.perf_counter() - t1
            with phase(self.timer, "run.output"):
                output = coordinator.output()
            timings.update(coordinator.get_timing())
            del coordinator, group  # its trade records now belong to the output alone
        else:
            output, layout, t1 = self._run_ray(timeline, bounds, params, initial, target, settings, t0, timings)
        timings["engine_s"] = time.perf_counter() - t1
        timings["n_chunks"] = len(bounds) - 1
        timings["n_shards"] = len(layout)
        return self._result(timeline, bounds, output, timings)

    def _reweighing(self) -> dict:
        """Coordinator arguments for re-estimating the weights at rebalances."""
        if self.estimator is None or not self.estimator.reestimates:
            return {}
        return {"estimator": self.estimator, "names": self.names,
                "lookback_ns": pd.Timedelta(self.config.allocation.lookback).value}

    def _drive(self, call) -> None:
        """The chunk loop: advance in batches, show progress, save checkpoints.

        ``call(method, *args)`` calls the coordinator (in-process or remote).
        A checkpoint is taken every ``engine.checkpoint_seconds`` of wall time
        and/or every ``engine.checkpoint_every`` chunks (0 = off), and written
        to the run's folder by a background thread.
        """
        from raybt.checkpoints import CheckpointWriter

        every = int(self.config.engine.checkpoint_every or 0)
        seconds = float(self.config.engine.checkpoint_seconds or 0)
        to_disk = self.checkpoint_dir is not None and (every > 0 or seconds > 0)
        batch = min(64, every) if to_disk and every else 64  # chunks per call: progress and RPC paid per batch
        saved_at, saved_time = 0, time.monotonic()
        if self.resume_snapshot is not None:
            state, outputs = self.resume_snapshot
            call("restore_checkpoint", state, outputs)
            saved_at = int(state["chunk"])
            self.resume_snapshot = None  # the coordinator holds it now
        hashes = {"config": self.provenance["config_hash"], "data": self.provenance["data_hashes"]}
        writer = CheckpointWriter(self.checkpoint_dir, hashes) if to_disk else None
        try:
            while True:
                summaries = call("advance", batch)
                if not summaries:
                    break
                if self.progress:
                    self.progress(summaries)
                done = summaries[-1].chunk + 1
                due = (every and done - saved_at >= every) or (seconds and time.monotonic() - saved_time >= seconds)
                if writer is not None and due and done < summaries[-1].n_chunks:
                    writer.submit(call("checkpoint_delta"))
                    saved_at, saved_time = done, time.monotonic()
        finally:
            if writer is not None:
                writer.close()  # the last checkpoint is on disk before the run goes on (or stops)

    def _run_ray(self, timeline, bounds, params, initial, target, settings, t0, timings):
        import ray

        from raybt.actors import fetch_output

        with phase(self.timer, "setup.engine"):
            coordinator, layout = self._start_coordinator(timeline, bounds, params, initial, target, settings)
        timings["setup_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        with phase(self.timer, "run.loop"):
            self._drive(lambda method, *args: ray.get(getattr(coordinator, method).remote(*args)))
        timings["loop_s"] = time.perf_counter() - t1
        with phase(self.timer, "run.output"):
            output = fetch_output(coordinator)
        self.actor_nodes = ray.get(coordinator.node_ids.remote())
        self.recoveries = ray.get(coordinator.get_recoveries.remote())
        timings.update(ray.get(coordinator.get_timing.remote()))
        ray.get(coordinator.shutdown_groups.remote())
        ray.kill(coordinator)
        self._host = None
        return output, layout, t1

    def _start_host(self):
        """The coordinator actor, created (not yet started): colocated, it reserves the node's CPUs."""
        import ray

        from raybt.actors import CoordinatorActor

        options = {}
        if self._colocated():
            options["num_cpus"] = max(float(ray.available_resources().get("CPU", 1.0)), 1.0)  # its numba threads
        return CoordinatorActor.options(**options).remote()

    def _start_coordinator(self, timeline, bounds, params, initial, target, settings):
        """The coordinator actor with its shards built and warmed up; ``(actor, layout)``."""
        import ray

        from raybt.actors import ColocatedShards, RayGroupSet, StoredBars, actor_options, shard_arguments

        layout = shard_layout(len(self.names), self._n_shards())
        cpus = max(float(ray.available_resources().get("CPU", 1.0)), 1.0)
        cpus_per_actor = min(1.0, cpus / len(layout))
        # the actors map each asset's stored columns (put once, when the bars were taken)
        stored = [StoredBars(ref, start, *asset_positions(bars.index, timeline))
                  for ref, start, bars in zip(self.bar_refs, self.bar_starts, self.bars)]
        args = shard_arguments(stored, layout, [params[idx] for idx in layout])
        if self._colocated():
            groups = ColocatedShards(args)
        else:
            groups = RayGroupSet(args, actor_options(cpus_per_actor, self.spread_actors),
                                 self.config.engine.transport)
        self.layout_kind = "colocated" if isinstance(groups, ColocatedShards) else "actors"
        if self._host is None:  # a second run of this backtester
            self._host = self._start_host()
        coordinator = self._host
        ray.get(coordinator.start.remote(groups, layout, timeline.as_unit("ns").asi8, bounds, initial, target,
                                         settings, self.config.rebalance, **self._reweighing()))
        ray.get(coordinator.set_checkpoint_every.remote(self.config.engine.checkpoint_every))
        ray.get(coordinator.advance.remote(0))
        ray.get(coordinator.prepare.remote())  # every shard built before the clock starts
        return coordinator, layout

    # --- results ---------------------------------------------------------------------

    def _result(self, timeline, bounds, output, timings) -> PortfolioResult:
        config = self.config.to_dict() if hasattr(self.config, "to_dict") else {}
        config["engine_used"] = self.engine
        config["backtest_start"] = str(timeline[0]) if len(timeline) else None
        if self.estimator is not None and self.estimator.needs_window:
            config["estimation_window"] = [str(self.start - pd.Timedelta(self.config.allocation.lookback)),
                                           str(self.start)]
            timings["estimated_weights"] = {k: float(v) for k, v in self.estimated_weights.items()}
        import raybt

        provenance = {"raybt_version": raybt.__version__, **getattr(self, "provenance", {})}
        return assemble_result(output, self.names, [b.index for b in self.bars], timeline, bounds, self.weights,
                               config, timings, provenance, self.timer)
