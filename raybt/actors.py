"""Ray shells over the plain engine objects (the only module importing ray).

* :class:`AssetShard` (made remote as ``AssetActor``) owns a shard of assets:
  its bars arrive as object-store references (put once by the driver, so
  they reach actors on any node), it builds an :class:`~raybt.asset.AssetGroup`
  and advances it one chunk per call.
* :class:`RayGroupSet` is the coordinator's group set over those actors: one
  fan-out and one ``ray.get`` per chunk, never a get per actor in a loop.
* ``CoordinatorActor`` is the plain :class:`~raybt.coordinator.Coordinator`
  made remote; the driver asks it to advance a few chunks at a time (for the
  progress display) and fetches the output at the end.
"""

from __future__ import annotations

import os

import numpy as np
import ray

from raybt.asset import AssetGroup, PackedBars
from raybt.coordinator import Coordinator, WorkerLost


class AssetShard:
    """Plain class hosted by an actor: a shard's AssetGroup (serial kernel)."""

    def __init__(self, open_, high, low, close, union_pos, offsets, params):
        from raybt.ray_runtime import warm_up_kernels

        warm_up_kernels()  # load the compiled kernel now, not inside the first chunk
        bars = PackedBars(np.ascontiguousarray(open_), np.ascontiguousarray(high),
                          np.ascontiguousarray(low), np.ascontiguousarray(close),
                          np.ascontiguousarray(union_pos), np.ascontiguousarray(offsets))
        self.group = AssetGroup(bars, params, parallel=False)

    def step(self, t_start, t_end, instructions):
        return self.group.step(t_start, t_end, instructions)

    def get_state(self):
        return self.group.get_state()

    def set_state(self, state):
        self.group.set_state(state)

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def pid(self) -> int:
        return os.getpid()


class CoordinatorShell(Coordinator):
    """The Coordinator as hosted by an actor: BLAS limited to one thread."""

    def __init__(self, *args, **kwargs):
        from threadpoolctl import threadpool_limits

        self._blas_limit = threadpool_limits(limits=1, user_api="blas")
        super().__init__(*args, **kwargs)


AssetActor = ray.remote(AssetShard)
CoordinatorActor = ray.remote(num_cpus=0)(CoordinatorShell)


class RayGroupSet:
    """Group set over AssetActors: one fan-out and one ray.get per chunk.

    Keeps each shard's constructor arguments (object-store references), so an
    actor whose process died can be started again; the coordinator then
    restores every shard's state from its last checkpoint and replays.
    """

    def __init__(self, shard_args, options):
        self.shard_args = list(shard_args)
        self.options = dict(options)
        self.actors = [AssetActor.options(**self.options).remote(*args) for args in self.shard_args]

    def step(self, t_start, t_end, instructions):
        refs = [a.step.remote(t_start, t_end, ins) for a, ins in zip(self.actors, instructions)]
        return self._get(refs)

    def get_states(self):
        return self._get([a.get_state.remote() for a in self.actors])

    def set_states(self, states):
        self._get([a.set_state.remote(s) for a, s in zip(self.actors, states)])

    def _get(self, refs):
        try:
            return ray.get(refs)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            raise WorkerLost(str(exc).splitlines()[0] if str(exc) else "actor died") from None

    def recover(self):
        """Start a fresh actor for every shard whose actor no longer answers."""
        for i, actor in enumerate(self.actors):
            try:
                ray.get(actor.pid.remote(), timeout=30)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError,
                    ray.exceptions.GetTimeoutError):
                self.actors[i] = AssetActor.options(**self.options).remote(*self.shard_args[i])

    def pids(self):
        return ray.get([a.pid.remote() for a in self.actors])

    def node_ids(self):
        return ray.get([a.node_id.remote() for a in self.actors])

    def kill(self):
        for a in self.actors:
            ray.kill(a)


def shard_arguments(shards, params_per_shard):
    """Put each shard's bars in the object store once: constructor args per shard."""
    args = []
    for packed, params in zip(shards, params_per_shard):
        refs = [ray.put(x) for x in (packed.open, packed.high, packed.low, packed.close,
                                      packed.union_pos, packed.offsets)]
        args.append((*refs, params))
    return args


def actor_options(cpus_per_actor: float, spread: bool = False) -> dict:
    options = {"num_cpus": cpus_per_actor}
    if spread:
        options["scheduling_strategy"] = "SPREAD"
    return options
