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
from raybt.coordinator import Coordinator


class AssetShard:
    """Plain class hosted by an actor: a shard's AssetGroup (serial kernel)."""

    def __init__(self, open_, high, low, close, union_pos, offsets, params):
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


AssetActor = ray.remote(AssetShard)
CoordinatorActor = ray.remote(num_cpus=0)(Coordinator)


class RayGroupSet:
    """Group set over AssetActors: one fan-out and one ray.get per chunk."""

    def __init__(self, actors):
        self.actors = list(actors)

    def step(self, t_start, t_end, instructions):
        return ray.get([a.step.remote(t_start, t_end, ins) for a, ins in zip(self.actors, instructions)])

    def get_states(self):
        return ray.get([a.get_state.remote() for a in self.actors])

    def set_states(self, states):
        ray.get([a.set_state.remote(s) for a, s in zip(self.actors, states)])


def start_shard_actors(shards, params_per_shard, *, cpus_per_actor: float, spread: bool = False):
    """Put each shard's bars in the object store once and start one actor per shard."""
    options = {"num_cpus": cpus_per_actor}
    if spread:
        options["scheduling_strategy"] = "SPREAD"
    actors = []
    for packed, params in zip(shards, params_per_shard):
        refs = [ray.put(x) for x in (packed.open, packed.high, packed.low, packed.close,
                                      packed.union_pos, packed.offsets)]
        actors.append(AssetActor.options(**options).remote(*refs, params))
    return actors
