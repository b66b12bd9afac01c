"""Ray shells over the plain engine objects.

* :class:`~raybt.ray.shard.Shard` (:mod:`raybt.ray.shard`) owns a shard of
  assets in its own actor.
* :class:`RayGroupSet` is the coordinator's group set over those actors: one
  fan-out and one ``ray.get`` per chunk, never a get per actor in a loop.
* :class:`ColocatedShards` is the group set living inside the coordinator's
  own actor (the ``colocated`` layout).
* :class:`CoordinatorHost` (made remote as ``CoordinatorActor``) is the
  plain :class:`~raybt.coordinator.Coordinator` in an actor; the driver asks
  it to advance a few chunks at a time (for the progress display) and
  fetches the output at the end.

Actors are named after what they hold (``raybt coordinator of <run>``,
``raybt shard EURUSD..GOLD of <run>``), as the Ray dashboard lists them.
"""

from __future__ import annotations

import logging

import numpy as np
import ray

from raybt.ray.shard import group_from_refs, start_shards
from raybt.coordinator import Coordinator, WorkerLost
from raybt.config.portfolio import TRANSPORTS
from raybt.types import neutral_instructions


class CoordinatorHost(Coordinator):
    """The Coordinator as hosted by an actor: BLAS limited to one thread, equity in shared memory.

    Started in two steps, so that its process gets ready while the driver is
    still loading the bars: the actor is created right after Ray starts (its
    constructor imports raybt and loads the kernels, compiling them into
    numba's cache if they are not there yet); :meth:`start` then builds the
    Coordinator itself. ``ready()`` answers once the constructor has run.

    The sleeve equity matrix lives in a memfd (:mod:`raybt.shared_memory`)
    when the platform has them: a driver on the same node maps it at the end
    (:func:`fetch_output`) instead of receiving a copy.
    """

    def __init__(self):  # noqa: D107 - the Coordinator is built by start()
        from threadpoolctl import threadpool_limits

        from raybt.compile import warm_up_kernels

        self._blas_limit = threadpool_limits(limits=1, user_api="blas")
        logging.getLogger("ray.dag").setLevel(logging.WARNING)  # no compile/teardown chatter
        warm_up_kernels()

    def ready(self) -> bool:
        return True

    def start(self, groups, layout, timeline_ns, *args, **kwargs) -> None:
        """Build the Coordinator (the arguments of :class:`~raybt.coordinator.Coordinator`)."""
        from raybt.shared_memory import create_shared, populate_for_writing

        self._shared = create_shared((sum(len(idx) for idx in layout), len(timeline_ns)))
        if self._shared is not None and not hasattr(groups, "share_equity"):
            populate_for_writing(self._shared.array)  # it writes every row itself: no page faults in the chunks
        super().__init__(groups, layout, timeline_ns, *args,
                         equity_buffer=None if self._shared is None else self._shared.array, **kwargs)
        if self._shared is not None and hasattr(groups, "share_equity"):  # shards on this node write there
            from raybt.chunk_digest import ChunkDigest

            widest = int(np.diff(self.bounds).max()) if len(self.bounds) > 1 else 0
            groups.share_equity(ray.get_runtime_context().get_node_id(), self._shared.handle,
                                [int(idx[0]) for idx in self.layout],
                                [ChunkDigest.wire_size(int(idx[0]), int(idx[-1]) + 1, widest, self.returns.block)
                                 for idx in self.layout])

    def equity_handle(self):
        """(node id, :class:`~raybt.shared_memory.SharedHandle` or None) of the equity matrix."""
        return ray.get_runtime_context().get_node_id(), None if self._shared is None else self._shared.handle

    def prepare(self) -> None:
        """Build every shard (actors started, bars fetched, kernels loaded) before the clock starts."""
        from raybt.compile import warm_up_kernels

        warm_up_kernels()
        self._group_states()


def fetch_output(coordinator):
    """The finished run's :class:`~raybt.coordinator.CoordinatorOutput` from a coordinator actor.

    On the coordinator's node the equity matrix is mapped from its shared
    memory (no copy); elsewhere it comes through the object store. Call it
    before the actor is killed.
    """
    from raybt.shared_memory import attach_shared

    node, handle = ray.get(coordinator.equity_handle.remote())
    equity = attach_shared(handle) if node == ray.get_runtime_context().get_node_id() else None
    output = ray.get(coordinator.output.remote(equity is None))
    if equity is not None:
        output.equity = equity[:, : output.bars_done]
    output.trades = resolve_trades(output.trades)
    return output


def resolve_trades(parts: list) -> list:
    """``parts`` with the shards' trades passed on by reference fetched (one ``ray.get``; on this
    node mapped from the object store, not copied), each reference replaced by the trade arrays it
    holds (:meth:`~raybt.chunk_digest.DigestingGroup.collect_apart`). Call it while the coordinator,
    which owns the references, is alive; the mapped arrays stay valid after it goes."""
    held = [part for part in parts if isinstance(part, ray.ObjectRef)]
    if not held:
        return parts
    fetched = iter(ray.get(held))
    out = []
    for part in parts:
        if isinstance(part, ray.ObjectRef):
            out.extend(next(fetched))
        else:
            out.append(part)
    return out


CoordinatorActor = ray.remote(num_cpus=0)(CoordinatorHost)


#: Errors meaning "a worker (actor process, node or channel) is gone".
_LOST = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError, ray.exceptions.RayChannelError)



class RayGroupSet:
    """Group set over shard actors: one fan-out and one gather per chunk.

    ``transport="socket"`` (default): the shards on the coordinator's node
    (those writing into its shared equity, :meth:`share_equity`) each run a
    serving call that answers chunk requests over a local Unix socket
    (:mod:`raybt.chunk_channel`, one frame each way, tens of microseconds);
    shards on other nodes get plain actor tasks. ``transport="tasks"``: plain
    actor tasks for every shard (one ``.remote()`` per actor, one
    ``ray.get``): 1.5-3 ms per chunk here, most of it Ray's submission and
    threads on a machine whose cores run the shards. ``transport=
    "compiled"`` runs the fan-out as a Ray Compiled Graph (``ray.dag``: the
    actors' ``step`` bound once to an ``InputNode`` and compiled): 0.6 ms per
    empty round trip, but its channel readers busy-poll (two spinning threads
    per participating process, measured), which starves CPU-bound actors
    when there are no spare cores. All call the same ``step_bytes``.

    The sockets (or the graph) are set up lazily at the first chunk and torn
    down before any plain call (states, recovery), then set up again when
    needed. Keeps each
    shard's constructor arguments (object-store references), so an actor
    whose process died can be started again; the coordinator then restores
    every shard's state from its last checkpoint and replays.
    """

    keeps_outputs = True  # per chunk a ChunkDigest; equity and trades on collect()

    def __init__(self, shard_args, options, transport: str = "socket", labels=None, actors=None):
        """``actors``: shard actors already started (:func:`start_shards`, same labels), else started here.

        Every shard is given its bars at once and waited for together (one ``ray.get``).
        """
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, got {transport!r}")
        self.shard_args = list(shard_args)
        self.options = dict(options)
        self.transport = transport
        self.labels = list(labels) if labels is not None else [f"shard {k}" for k in range(len(self.shard_args))]
        self._dag = None
        self._channels = None  # (listener, {shard: connection}, {shard: its serving call}) while they serve
        self._shared = None  # (node id, handle, first rows, mailbox handles) of the coordinator's shared equity
        self._mailboxes = [None] * len(self.shard_args)  # shared arrays the shards on this node post digests to
        self._on_node = [False] * len(self.shard_args)  # shards on the coordinator's node (share_equity)
        self.counts = {"channel_chunks": 0}  # chunks whose requests went over local sockets
        if actors is None:
            actors = start_shards(self.labels, self.options)
        if len(actors) != len(self.shard_args):
            raise ValueError(f"{len(actors)} shard actors for {len(self.shard_args)} shards")
        self.actors = list(actors)
        self._get([a.load.remote(*args) for a, args in zip(self.actors, self.shard_args)])

    def _start(self, i: int):
        """Shard i's actor again, after its process died: started, given its bars and, with shared
        equity, told where it is (waited for: it decides whether its chunks go over a socket)."""
        actor = start_shards([self.labels[i]], self.options)[0]
        actor.load.remote(*self.shard_args[i])
        if self._shared is not None:
            node, handle, rows, mailboxes = self._shared
            # where it now runs decides how its chunks travel (a socket only on the coordinator's node)
            shared = actor.share_equity.remote(node, handle, rows[i], mailboxes[i])
            try:
                self._on_node[i] = bool(self._get([shared])[0])
            except WorkerLost:  # lost again: its next actor call says so, and it is started once more
                self._on_node[i] = False
        return actor

    #: Above this many bytes a shard's mailbox is not made (its digests travel in the replies).
    MAILBOX_LIMIT = 64 << 20

    def share_equity(self, node_id: str, handle, first_rows, digest_sizes=None) -> list:
        """Shards on ``node_id`` write their equity into the shared matrix of ``handle`` (rows from
        ``first_rows[i]``) instead of keeping it, and post their digests (up to ``digest_sizes[i]``
        float64, see :meth:`~raybt.chunk_digest.ChunkDigest.wire_size`) to a shared mailbox made here;
        returns which shards do."""
        from raybt.shared_memory import create_shared

        if digest_sizes is not None:
            self._mailboxes = [create_shared((size,)) if size * 8 <= self.MAILBOX_LIMIT else None
                               for size in digest_sizes]
        handles = [None if box is None else box.handle for box in self._mailboxes]
        self._shared = (node_id, handle, list(first_rows), handles)
        shared = self._get([a.share_equity.remote(node_id, handle, row, box)
                            for a, row, box in zip(self.actors, first_rows, handles)])
        for i, on_node in enumerate(shared):
            if not on_node:  # another node: its replies carry the digests
                self._mailboxes[i] = None
        self._on_node = [bool(on_node) for on_node in shared]
        return shared

    def _compiled_dag(self):
        if self._dag is None:
            from ray.dag import InputNode, MultiOutputNode

            with InputNode() as inp:
                outputs = [a.step_bytes.bind(inp[i]) for i, a in enumerate(self.actors)]
                dag = MultiOutputNode(outputs)
            self._dag = dag.experimental_compile()
        return self._dag

    def _open_channels(self):
        """``(connections, serving calls)`` of the shards on this node, set up if they are not."""
        if self._channels is None:
            from raybt.chunk_channel import ChannelClosed, ChannelListener

            local = [i for i, on_node in enumerate(self._on_node) if on_node]
            listener = ChannelListener()
            serving = {i: self.actors[i].serve.remote(listener.address, listener.token, i) for i in local}

            def alive():
                return not ray.wait(list(serving.values()), timeout=0)[0]

            try:
                connections = listener.accept(local, alive)
            except ChannelClosed:
                listener.close()
                self._raise_from_serving(serving.values())
                raise WorkerLost("a shard actor stopped before it connected") from None
            self._channels = (listener, connections, serving)
        return self._channels[1], self._channels[2]

    def _raise_from_serving(self, calls, timeout: float = 10.0) -> None:
        """Raise what ended a serving call: WorkerLost for a dead actor, a shard's own error as it is."""
        done, _ = ray.wait(list(calls), num_returns=len(calls), timeout=timeout)
        if done:
            self._get(done)

    def _close_channels(self) -> None:
        """Tell every serving shard to stop (an empty frame) and close the sockets; the actors then take
        plain calls again (queued behind their serving call, so no wait is needed)."""
        if self._channels is None:
            return
        from raybt.chunk_channel import send_frame

        listener, connections, _ = self._channels
        self._channels = None
        for conn in connections.values():
            try:
                send_frame(conn, b"")
            except OSError:  # its process is gone
                pass
            conn.close()
        listener.close()

    def teardown(self):
        """Release the sockets or the compiled graph (the actors stay alive)."""
        self._close_channels()
        if self._dag is not None:
            dag, self._dag = self._dag, None
            try:
                dag.teardown()
            except Exception:  # noqa: BLE001 - a graph broken by a dead actor is already shut down
                pass

    def step_digest(self, t_start, t_end, instructions, extras):
        """One chunk on every shard: their :class:`~raybt.chunk_digest.ChunkDigest` (see :meth:`Shard.step_digest`)."""
        from raybt.chunk_digest import ChunkDigest, chunk_request, read_reply

        requests = [chunk_request(t_start, t_end, ins, ext) for ins, ext in zip(instructions, extras)]
        if self.transport == "compiled":
            try:
                wires = self._get(self._compiled_dag().execute(*requests))
            except WorkerLost:
                self.teardown()
                raise
        elif self.transport == "socket" and any(self._on_node):
            wires = self._step_over_channels(requests)
        else:  # one bytes object each way: cheaper through Ray than numpy arguments
            wires = self._get([a.step_bytes.remote(r) for a, r in zip(self.actors, requests)])
        return [ChunkDigest.from_wire(read_reply(w, None if box is None else box.array))
                for w, box in zip(wires, self._mailboxes)]

    def _step_over_channels(self, requests) -> list:
        """Every shard's reply: the sockets' first (requests sent, then the other nodes' actor calls
        submitted, then the replies read)."""
        from raybt.chunk_channel import ChannelClosed, recv_frame, send_frame

        connections, serving = self._open_channels()
        try:
            for i, conn in connections.items():
                send_frame(conn, requests[i])
            remote = {i: self.actors[i].step_bytes.remote(r) for i, r in enumerate(requests) if i not in connections}
            wires = [None] * len(requests)
            for i, conn in connections.items():
                wires[i] = recv_frame(conn)
        except (ChannelClosed, OSError):
            self.teardown()
            self._raise_from_serving(serving.values())
            raise WorkerLost("a shard actor's channel closed") from None
        for i, wire in zip(remote, self._get(list(remote.values()))):
            wires[i] = wire
        self.counts["channel_chunks"] += 1
        return wires

    def collect(self, by_reference: bool = False):
        """What every shard kept since the last call (:meth:`Shard.collect`), in shard order, the trades'
        asset indices global. ``by_reference``: each shard's trades stay in the object store, as an
        ``ObjectRef`` (to the list of its chunks' trade arrays) in place of the bytes (the run's end:
        the driver fetches them from there itself, so they are not copied through the coordinator).
        """
        self.teardown()
        if not by_reference:
            return self._get([a.collect.remote() for a in self.actors])
        pairs = [a.collect_apart.options(num_returns=2).remote() for a in self.actors]
        heads = self._get([head for head, _ in pairs])  # both returns exist once the head does
        return [(*head, trades) for head, (_, trades) in zip(heads, pairs)]

    def get_states(self):
        self.teardown()
        return self._get([a.get_state.remote() for a in self.actors])

    def set_states(self, states):
        self.teardown()
        self._get([a.set_state.remote(s) for a, s in zip(self.actors, states)])

    def _get(self, refs):
        try:
            return ray.get(refs)
        except _LOST as exc:
            raise WorkerLost(str(exc).splitlines()[0] if str(exc) else "actor died") from None

    def recover(self):
        """Start a fresh actor for every shard whose actor no longer answers."""
        self.teardown()
        for i, actor in enumerate(self.actors):
            try:
                ray.get(actor.pid.remote(), timeout=30)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError,
                    ray.exceptions.GetTimeoutError):
                self.actors[i] = self._start(i)

    def pids(self):
        self.teardown()
        return ray.get([a.pid.remote() for a in self.actors])

    def node_ids(self):
        self.teardown()
        return ray.get([a.node_id.remote() for a in self.actors])

    def kill(self):
        self.teardown()
        for a in self.actors:
            ray.kill(a)


class ColocatedShards:
    """Group set living in the coordinator's own actor: its shards advanced in-process.

    The fastest layout on one node: the shards' bars come from the object
    store (references resolved inside the coordinator's process), the
    parallel kernel spreads the assets over the actor's CPUs with numba
    threads, and no chunk costs an RPC (a Ray actor call round trip is
    1.5-3 ms here, about the work of a whole 1D chunk of 100 assets).
    """

    def __init__(self, shard_args):
        self.shard_args = list(shard_args)
        self._local = None

    def _groups(self):
        if self._local is None:
            from raybt.compile import warm_up_kernels
            from raybt.coordinator import LocalGroupSet

            warm_up_kernels()
            groups = []
            for assets, params in self.shard_args:
                group = group_from_refs(assets, params, parallel=True)
                state = group.get_state()
                group.step(0, 0, neutral_instructions(group.n_assets))  # compile/load this signature now
                group.set_state(state)
                groups.append(group)
            self._local = LocalGroupSet(groups)
        return self._local

    def step(self, t_start, t_end, instructions):
        return self._groups().step(t_start, t_end, instructions)

    def get_states(self):
        return self._groups().get_states()

    def set_states(self, states):
        self._groups().set_states(states)

    def recover(self):
        """Nothing to restart: the shards live and die with the coordinator."""

    def node_ids(self):
        return [ray.get_runtime_context().get_node_id()] * len(self.shard_args)


PRICE_COLUMNS = ("open", "high", "low", "close")


def store_bars(bars):
    """Put one asset's OHLC in the object store: (reference, a frame viewing the stored arrays).

    The object is a tuple of four float64 arrays, which any process on the
    same node maps without a copy and which reach other nodes through Ray's
    object transfer. The returned frame has the same index and OHLC columns
    (read-only, zero-copy); other columns (volume) are not kept.
    """
    import pandas as pd

    ref = ray.put(tuple(np.ascontiguousarray(bars[c].to_numpy(), dtype=np.float64) for c in PRICE_COLUMNS))
    arrays = ray.get(ref)
    return ref, pd.DataFrame(dict(zip(PRICE_COLUMNS, arrays)), index=bars.index, copy=False)


def shard_arguments(stored, layout, params_per_shard) -> list:
    """Constructor arguments per shard: its assets' :class:`StoredBars` and parameters."""
    return [([stored[i] for i in idx], params) for idx, params in zip(layout, params_per_shard)]


def shard_labels(names, layout, run: str) -> list[str]:
    """``shard EURUSD..GOLD of <run>`` for each shard: what a user sees in the dashboard's Actors view."""
    labels = []
    for idx in layout:
        first, last = names[int(idx[0])], names[int(idx[-1])]
        labels.append(f"shard {first}..{last} of {run}" if len(idx) > 1 else f"shard {first} of {run}")
    return labels


def actor_options(cpus_per_actor: float, spread: bool = False) -> dict:
    options = {"num_cpus": cpus_per_actor}
    if spread:
        options["scheduling_strategy"] = "SPREAD"
    return options
