"""The floor under the actors layout: a bare Ray fan-out round trip, measured on this cluster.

:func:`fanout_round_trip` starts ``n_actors`` actors holding the same CPUs a
shard actor holds, and an actor that plays the coordinator (it calls a no-op
method on every one of them and waits for all the answers, as the coordinator
does once per chunk); it returns the seconds per round trip. The engine's
overhead per chunk in the ``actors`` layout is measured against it
(``scripts/bench_engine.py --layouts``).

With ``work_seconds`` each actor instead spends that much CPU time per
call, as a shard runs its kernel: the round trip of a fan-out whose actors
work. On a machine with no core to spare (2 vCPUs: two working actors, the
caller and Ray's own threads) the round trip then grows beyond the work
itself, which the idle floor does not show.
"""

from __future__ import annotations

import time

import ray


class _Idle:
    def noop(self, *args):
        return None

    def busy(self, seconds: float):
        """Spin until this thread has used ``seconds`` of CPU (as a kernel does its work: on a shared
        core it takes longer in wall time)."""
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass


class _Caller:
    def rounds(self, actors, n_calls: int, warm: int = 20, work_seconds: float = 0.0) -> list:
        """Seconds of each of ``n_calls`` fan-outs (one ``ray.get`` over every actor's no-op, or
        over each actor's ``work_seconds`` of spinning)."""
        def fan_out():
            if work_seconds > 0:
                return ray.get([a.busy.remote(work_seconds) for a in actors])
            return ray.get([a.noop.remote() for a in actors])

        for _ in range(warm):
            fan_out()
        times = []
        for _ in range(n_calls):
            t = time.perf_counter()
            fan_out()
            times.append(time.perf_counter() - t)
        return times


IdleActor = ray.remote(_Idle)
CallerActor = ray.remote(num_cpus=0)(_Caller)


def fanout_round_trip(n_actors: int, n_calls: int = 300, cpus_per_actor: float | None = None,
                      work_seconds: float = 0.0) -> dict:
    """Seconds per bare fan-out round trip to ``n_actors`` no-op actors, from an actor.

    ``cpus_per_actor``: as the actors layout gives its shard actors (default:
    the cluster's CPUs shared out, at most 1). ``work_seconds``: each actor
    spins for that much CPU time per call instead of returning at once (the
    seconds returned include it). Returns ``{"median": s, "best": s, "mean": s}``
    over ``n_calls`` round trips.
    """
    if cpus_per_actor is None:
        cpus = max(float(ray.cluster_resources().get("CPU", 1)), 1.0)
        cpus_per_actor = min(1.0, cpus / n_actors)
    actors = [IdleActor.options(num_cpus=cpus_per_actor).remote() for _ in range(n_actors)]
    caller = CallerActor.remote()
    try:
        times = sorted(ray.get(caller.rounds.remote(actors, n_calls, work_seconds=work_seconds)))
    finally:
        for a in [*actors, caller]:
            ray.kill(a)
    return {"median": times[len(times) // 2], "best": times[0], "mean": sum(times) / len(times)}
