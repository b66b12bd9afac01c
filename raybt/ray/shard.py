"""The shard actor: a shard of assets advanced chunk by chunk in its own Ray actor.

Kept apart from :mod:`raybt.ray.actors` so that a shard actor's process
imports only what a shard needs (numpy, numba, the kernels, the digests):
not the coordinator, pandas or scipy, about a second less per actor to start.

* :class:`Shard` (made remote as ``ShardActor``, started by
  :func:`start_shards`) gets its bars as object-store references
  (:class:`StoredBars`, put once by the driver, so they reach actors on any
  node), builds an :class:`~raybt.asset.AssetGroup` and advances it one chunk
  per call, sending back only the chunk's digest.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

import numpy as np
import ray

from raybt.asset import AssetGroup, shard_bars
from raybt.chunk_digest import DigestingGroup


class Shard(DigestingGroup):
    """Plain class hosted by an actor: a shard's AssetGroup (serial kernel) from the object store.

    Per chunk it sends the coordinator only a :class:`~raybt.chunk_digest.ChunkDigest`
    (:meth:`step_digest`) and keeps its assets' equity and trades until
    :meth:`collect` (:class:`~raybt.chunk_digest.DigestingGroup`).
    """

    def __init__(self, after=()):
        """Started before its bars are known (while the driver loads them): loads the kernels now.

        ``after``: object references to wait for before loading them (the coordinator's ``ready()``,
        so that one process at a time writes numba's cache when it is cold), given inside a list so
        that Ray does not hold the actor's start for them: its process starts and imports numba and
        the kernels' modules alongside the coordinator's, and only the cache load waits.
        """
        from raybt.compile import skip_numba_blas_probe, warm_up_shard_kernels

        skip_numba_blas_probe()
        if after:
            ray.get(list(after))
        warm_up_shard_kernels()  # numba's start-up and the kernels from its cache, not inside the first chunk
        super().__init__(None)

    def load(self, assets, params) -> bool:
        """Its assets: :class:`StoredBars` (mapped from the object store on this node) and PARAM_DT records."""
        self.group = group_from_refs(assets, params, parallel=False)
        self._clear()
        return True

    def share_equity(self, node_id: str, handle, first_row: int, mailbox=None) -> bool:
        """Write the equity straight into the coordinator's shared matrix when it is on this node
        (:mod:`raybt.shared_memory`), and the digests into its ``mailbox`` (a handle of another
        shared array, if given); True if so, else the equity is kept and collected and the digests
        travel in the replies."""
        from raybt.shared_memory import attach_shared, populate_for_writing

        if node_id != ray.get_runtime_context().get_node_id():
            return False
        shared = attach_shared(handle)
        if shared is None:
            return False
        rows = shared[first_row:first_row + self.n_assets]
        populate_for_writing(rows)  # no page faults inside the chunks
        self.write_equity_to(rows)
        self.reply_through(attach_shared(mailbox))
        return True

    def serve(self, address: str, token: bytes, index: int) -> int:
        """Answer chunk requests over the coordinator's local socket until it says stop
        (:func:`raybt.chunk_channel.serve_channel`); meanwhile this actor takes no other call."""
        from raybt.chunk_channel import serve_channel

        return serve_channel(address, token, index, self.step_bytes)

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def pid(self) -> int:
        return os.getpid()


ShardActor = ray.remote(Shard)


def start_shards(labels, options, after=None) -> list:
    """One shard actor per label, all started at once (none waited for), named after what they hold.

    ``after``: an object reference their constructors wait for before loading the kernels (see
    :class:`Shard`); their processes start at once.
    """
    waits = [] if after is None else [after]  # in a list: a dependency of the constructor's body, not of its start
    # the names are unique: a restart must not wait for the dead actor's name
    return [ShardActor.options(name=f"raybt {label} #{secrets.token_hex(3)}", **options).remote(waits)
            for label in labels]


@dataclass(frozen=True)
class StoredBars:
    """Where a shard finds one asset's bars: its stored OHLC from row ``start``, and its union positions.

    ``positions``/``base``: as :func:`raybt.timeline.asset_positions` gives them.
    """

    ref: "ray.ObjectRef"
    start: int
    positions: np.ndarray
    base: int


def group_from_refs(assets, params, *, parallel: bool) -> AssetGroup:
    """An AssetGroup over :class:`StoredBars` (the arrays mapped zero-copy on this node)."""
    stored = ray.get([a.ref for a in assets])
    columns = [[], [], [], []]
    for asset, arrays in zip(assets, stored):
        for column, values in zip(columns, arrays):
            view = values[asset.start:]
            view.sum()  # fault the shared-memory pages in now, not one by one inside the chunks
            column.append(view)
    bars = shard_bars(*columns, [(a.positions, a.base) for a in assets])
    return AssetGroup(bars, params, parallel=parallel)
