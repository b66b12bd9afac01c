"""A portfolio run on Ray: the Ray side of :mod:`raybt.engine.execute`.

:class:`RayExecution` joins (or starts) Ray, decides the layout from the
cluster's shape (``colocated`` on one node, ``actors`` on several, unless the
config says; see :mod:`raybt.engine.plan`) and creates the coordinator's
actor at once, so that its process imports raybt and loads the compiled
kernels while the driver is still loading the bars. ``store`` puts each
asset's bars in the object store as the intake takes them. ``start`` builds
the shards (inside the coordinator's actor, or as shard actors) and the
Coordinator; ``call`` is one remote call to it; ``finish`` collects the
outputs (the equity matrix mapped from the coordinator's shared memory on the
same node) and releases every actor.
"""

from __future__ import annotations

import secrets

import ray

from raybt.coordinator import CoordinatorOutput
from raybt.engine.execute import RunStats
from raybt.engine.plan import Layout, Plan, choose_layout
from raybt.ray.actors import (ColocatedShards, CoordinatorActor, RayGroupSet, actor_options, fetch_output,
                              shard_arguments, shard_labels, store_bars)
from raybt.ray.shard import StoredBars, start_shards
from raybt.ray.runtime import ensure_ray
from raybt.timeline import asset_positions


def cluster_shape() -> tuple[int, int]:
    """(alive nodes, CPUs of the cluster)."""
    nodes = len([node for node in ray.nodes() if node.get("Alive")])
    return max(nodes, 1), max(int(ray.cluster_resources().get("CPU", 1)), 1)


class RayExecution:
    """The coordinator in a Ray actor, its shards inside it (colocated) or in shard actors (actors)."""

    store = staticmethod(store_bars)

    def __init__(self, engine_config, n_assets: int, *, address: str | None = None, run_name: str = "run",
                 names=None):
        """``names``: the assets in portfolio order, if known: the shard actors start now, named after them."""
        ensure_ray(address)
        self.engine_config = engine_config
        self.run_name = run_name
        n_nodes, self.cpus = cluster_shape()
        self.n_nodes = n_nodes
        self.layout: Layout = choose_layout("ray", engine_config.layout, n_assets, engine_config.assets_per_actor,
                                            n_nodes, self.cpus)
        self.host = self._start_host()
        self.early_shards = None  # (labels, actors) started with the coordinator, while the bars load
        if self.layout.kind == "actors" and names is not None and len(names) == n_assets:
            labels = shard_labels(list(names), self.layout.shards, run_name)
            # their kernels load once the coordinator's have (one writer of a cold numba cache)
            self.early_shards = (labels, start_shards(labels, self._shard_options(self.layout),
                                                      after=self.host.ready.remote()))

    def _shard_options(self, layout: Layout) -> dict:
        return actor_options(min(1.0, self.cpus / layout.n_shards), spread=self.n_nodes > 1)

    def _shard_actors(self, labels):
        """The shard actors started early if they are the ones ``labels`` name (else they go)."""
        early, self.early_shards = self.early_shards, None
        if early is None:
            return None
        if early[0] == labels:
            return early[1]
        for actor in early[1]:  # other assets simulated (a selection): started again under the right names
            ray.kill(actor)
        return None

    def _start_host(self):
        """The coordinator's actor, created now and started later; colocated, it reserves the node's CPUs."""
        options = {"name": f"raybt coordinator of {self.run_name} #{secrets.token_hex(3)}"}
        if self.layout.kind == "colocated":
            options["num_cpus"] = float(self.cpus) / self.n_nodes  # its numba threads do the simulation
        return CoordinatorActor.options(**options).remote()

    def ready(self) -> None:
        """Wait until the coordinator's process has compiled (or loaded) the kernels: one writer of numba's cache."""
        from raybt.compile import warm_up_analysis

        if self.host is None:  # a second run of the same backtester
            self.host = self._start_host()
        loaded = self.host.ready.remote()
        if not ray.wait([loaded], timeout=0)[0]:  # still loading (a small universe loads faster than that)
            warm_up_analysis()  # this process's kernels (none of them the coordinator's) meanwhile
        ray.get(loaded)

    def start(self, plan: Plan, config) -> None:
        """Build the shards and the Coordinator; every shard is built before the clock starts."""
        n = len(plan.names)
        self.layout = choose_layout("ray", self.layout.kind, n, self.engine_config.assets_per_actor,
                                    self.n_nodes, self.cpus)
        intake = plan.intake
        stored = [StoredBars(ref, start, *asset_positions(bars.index, plan.timeline))
                  for ref, start, bars in zip(intake.refs, intake.starts, intake.bars)]
        shards = self.layout.shards
        args = shard_arguments(stored, shards, [plan.params[idx] for idx in shards])
        if self.layout.kind == "colocated":
            groups = ColocatedShards(args)
        else:
            labels = shard_labels(plan.names, shards, self.run_name)
            groups = RayGroupSet(args, self._shard_options(self.layout), self.engine_config.transport, labels,
                                 actors=self._shard_actors(labels))
        host = self.host
        ray.get(host.start.remote(groups, list(shards), plan.timeline.as_unit("ns").asi8, plan.bounds,
                                  plan.initial_sleeves, plan.target, config.risk, config.rebalance,
                                  **plan.reweighing))
        ray.get(host.set_checkpoint_every.remote(config.engine.checkpoint_every))
        ray.get(host.advance.remote(0))
        ray.get(host.prepare.remote())

    def call(self, method: str, *args):
        return ray.get(getattr(self.host, method).remote(*args))

    def finish(self) -> tuple[CoordinatorOutput, RunStats]:
        host = self.host
        output = fetch_output(host)
        stats = RunStats(tuple(ray.get(host.node_ids.remote())), ray.get(host.get_recoveries.remote()),
                         ray.get(host.get_timing.remote()))
        ray.get(host.shutdown_groups.remote())
        self.abort()
        return output, stats

    def abort(self) -> None:
        """Release the coordinator (and with it its shards)."""
        self._shard_actors(None)  # shard actors started early and never used
        if self.host is not None:
            ray.kill(self.host)
            self.host = None
