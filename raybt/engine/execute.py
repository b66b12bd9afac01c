"""Execute, the third stage of a run: the coordinator and its shards, and the chunk loop.

An *execution* holds a :class:`~raybt.coordinator.Coordinator` and the shards
it advances, behind one small protocol, so the chunk loop (:func:`drive`) is
the same whoever runs them:

* :class:`LocalExecution`: in this process (the ``local`` layout);
* :class:`raybt.ray.execute.RayExecution`: the coordinator in a Ray actor,
  with its shards inside it (``colocated``) or in shard actors (``actors``).

Protocol: ``store`` (None, or how the intake puts bars where the shards
read them), ``ready()`` (the kernels are compiled before the clock starts),
``start(plan, config)`` (which sets ``layout``), ``call(method, *args)`` (a Coordinator method),
``finish() -> (CoordinatorOutput, RunStats)`` and ``abort()``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from raybt.coordinator import Coordinator, CoordinatorOutput, LocalGroupSet
from raybt.engine.intake import pack_assets
from raybt.engine.plan import Layout, Plan, choose_layout


@dataclass(frozen=True)
class RunStats:
    """What an execution reports besides the outputs."""

    nodes: tuple = ()  # Ray node id of each shard (empty in-process)
    recoveries: int = 0  # lost workers restarted and replayed
    timing: dict = field(default_factory=dict)  # groups_s (shards), coordinator_s (portfolio rules)


class LocalExecution:
    """The coordinator and one shard of every asset in this process (numba threads over the assets)."""

    store = None  # the bars stay where they are: the kernel reads the frames' own columns

    def __init__(self):
        self.layout: Layout | None = None  # decided at start(), when the simulated assets are known
        self.coordinator: Coordinator | None = None

    def ready(self) -> None:
        from raybt.compile import warm_up_kernels

        warm_up_kernels()  # compiled (or loaded from numba's cache) before the clock starts

    def start(self, plan: Plan, config) -> None:
        from raybt.asset import AssetGroup

        self.layout = choose_layout("local", "auto", len(plan.names))
        shard = self.layout.shards[0]
        group = AssetGroup(pack_assets(plan.intake.bars, plan.timeline, shard), plan.params, parallel=True)
        self.coordinator = Coordinator(LocalGroupSet([group]), list(self.layout.shards),
                                       plan.timeline.as_unit("ns").asi8, plan.bounds, plan.initial_sleeves,
                                       plan.target, config.risk, rebalance=config.rebalance, **plan.reweighing)
        # no in-memory checkpoints (set_checkpoint_every): in one process there is no worker to lose

    def call(self, method: str, *args):
        return getattr(self.coordinator, method)(*args)

    def finish(self) -> tuple[CoordinatorOutput, RunStats]:
        output = self.coordinator.output()
        stats = RunStats((), self.coordinator.get_recoveries(), self.coordinator.get_timing())
        self.coordinator = None  # its trade records now belong to the output alone
        return output, stats

    def abort(self) -> None:
        self.coordinator = None


def drive(call, config, *, progress=None, checkpoint_dir: Path | None = None, resume=None,
          hashes: dict | None = None) -> tuple[int, float]:
    """The chunk loop: advance in batches, show progress, save checkpoints.

    ``call(method, *args)`` calls the coordinator (in-process or remote).
    ``resume``: ``(state, outputs)`` of a checkpoint to continue from. A
    checkpoint is taken every ``engine.checkpoint_seconds`` of wall time
    and/or every ``engine.checkpoint_every`` chunks (0 = off), and written to
    ``checkpoint_dir`` (:class:`~raybt.checkpoints.CheckpointWriter`).
    Returns ``(checkpoints, seconds)``: how many were taken and the seconds
    the loop spent taking and writing them (fsync at the end included).
    """
    from raybt.checkpoints import CheckpointWriter

    every = int(config.engine.checkpoint_every or 0)
    seconds = float(config.engine.checkpoint_seconds or 0)
    to_disk = checkpoint_dir is not None and (every > 0 or seconds > 0)
    batch = min(64, every) if to_disk and every else 64  # chunks per call: progress and RPC paid per batch
    saved_at, saved_time = 0, time.monotonic()
    if resume is not None:
        state, outputs = resume
        call("restore_checkpoint", state, outputs)
        saved_at = int(state["chunk"])
    writer = CheckpointWriter(checkpoint_dir, hashes) if to_disk else None
    taken, spent = 0, 0.0
    try:
        while True:
            summaries = call("advance", batch)
            if not summaries:
                break
            if progress:
                progress(summaries)
            done = summaries[-1].chunk + 1
            due = (every and done - saved_at >= every) or (seconds and time.monotonic() - saved_time >= seconds)
            if writer is not None and due and done < summaries[-1].n_chunks:
                clock = time.perf_counter()
                writer.save(call("checkpoint_delta"))
                taken, spent = taken + 1, spent + time.perf_counter() - clock
                saved_at, saved_time = done, time.monotonic()
    finally:
        if writer is not None:
            clock = time.perf_counter()
            writer.close()  # every checkpoint is on disk before the run goes on (or stops)
            spent += time.perf_counter() - clock
    return taken, spent
