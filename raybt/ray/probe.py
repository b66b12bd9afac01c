"""The floor under the actors layout: a bare Ray fan-out round trip, measured on this cluster.

:func:`fanout_round_trip` starts ``n_actors`` actors holding the same CPUs a
shard actor holds, and an actor that plays the coordinator (it calls a no-op
method on every one of them and waits for all the answers, as the coordinator
does once per chunk); it returns the seconds per round trip. The engine's
overhead per chunk in the ``actors`` layout is measured against it
(``scripts/bench_engine.py --layouts``).
"""

from __future__ import annotations

import time

import ray


class _Idle:
    def noop(self, *args):
        return None


class _Caller:
    def rounds(self, actors, n_calls: int, warm: int = 20) -> list:
        """Seconds of each of ``n_calls`` fan-outs (one ``ray.get`` over every actor's no-op)."""
        for _ in range(warm):
            ray.get([a.noop.remote() for a in actors])
        times = []
        for _ in range(n_calls):
            t = time.perf_counter()
            ray.get([a.noop.remote() for a in actors])
            times.append(time.perf_counter() - t)
        return times


IdleActor = ray.remote(_Idle)
CallerActor = ray.remote(num_cpus=0)(_Caller)


def fanout_round_trip(n_actors: int, n_calls: int = 300, cpus_per_actor: float | None = None) -> dict:
    """Seconds per bare fan-out round trip to ``n_actors`` no-op actors, from an actor.

    ``cpus_per_actor``: as the actors layout gives its shard actors (default:
    the cluster's CPUs shared out, at most 1). Returns ``{"median": s,
    "best": s, "mean": s}`` over ``n_calls`` round trips.
    """
    if cpus_per_actor is None:
        cpus = max(float(ray.cluster_resources().get("CPU", 1)), 1.0)
        cpus_per_actor = min(1.0, cpus / n_actors)
    actors = [IdleActor.options(num_cpus=cpus_per_actor).remote() for _ in range(n_actors)]
    caller = CallerActor.remote()
    try:
        times = sorted(ray.get(caller.rounds.remote(actors, n_calls)))
    finally:
        for a in [*actors, caller]:
            ray.kill(a)
    return {"median": times[len(times) // 2], "best": times[0], "mean": sum(times) / len(times)}
