"""Coordinator: the portfolio's state machine, advanced one chunk at a time.

A plain class (no Ray here): it owns the portfolio state (sleeve equities,
peak and drawdown, the breaker, a rolling window of per-bar asset returns,
the instructions for the next chunk) and drives a *group set*, anything with
``step(t_start, t_end, instructions_per_group) -> list[ChunkReport]``: a list
of in-process :class:`~raybt.asset.AssetGroup` (``LocalGroupSet``) or Ray
actors (``raybt.actors.RayGroupSet``). Both paths run this same code, so the
engines agree by construction.

Per chunk k: send the instructions decided at the end of chunk k-1, gather
every group's report, assemble the per-asset equity on the union timeline in
global asset order (so the portfolio sum does not depend on sharding), update
the portfolio state, and decide chunk k+1's instructions from data up to the
end of chunk k only:

* breaker: drawdown above ``max_portfolio_drawdown`` halts entries everywhere
  (and optionally flattens); it resumes as the policy says;
* size multiplier = base size x portfolio risk x correlation x drawdown,
  each factor recorded;
* exposure cap: a new entry's margin <= ``risk.max_entry_margin`` x
  portfolio equity (``max_margin`` instruction);
* rebalancing: cash moved between sleeves back to the target weights at the
  first chunk of each day / week / month.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import NamedTuple
import numpy as np

from raybt import risk
from raybt.config.portfolio import RiskConfig
from raybt.decisions import EVENT_COLUMNS, FACTORS, Decision, multiplier_table  # noqa: F401 - re-exported
from raybt.types import INSTR_DT


class WorkerLost(Exception):
    """A group set lost a worker mid-chunk (raised by remote group sets)."""


class LocalGroupSet:
    """In-process group set: the groups stepped one after another."""

    def __init__(self, groups):
        self.groups = list(groups)

    def step(self, t_start, t_end, instructions):
        return [g.step(t_start, t_end, ins) for g, ins in zip(self.groups, instructions)]

    def get_states(self):
        return [g.get_state() for g in self.groups]

    def set_states(self, states):
        for g, s in zip(self.groups, states):
            g.set_state(s)

    def recover(self):
        """Nothing can be lost in-process."""


def breaker_policy(settings: RiskConfig) -> risk.BreakerPolicy:
    """The breaker part of the portfolio risk settings."""
    return risk.BreakerPolicy(
        max_portfolio_drawdown=settings.max_portfolio_drawdown, flatten=settings.breaker_flatten,
        resume=settings.resume, cooldown_chunks=settings.cooldown_chunks,
        resume_drawdown=settings.resume_drawdown,
    )


@dataclass
class ChunkSummary:
    """What the progress display needs after a chunk."""

    chunk: int
    n_chunks: int
    timestamp: int  # ns since epoch, last bar of the chunk
    equity: float
    drawdown: float
    halted: bool
    event: str
    sleeves: np.ndarray | None = None  # each asset's equity at the end of the chunk (global order)


@dataclass
class CheckpointDelta:
    """A checkpoint on disk, as the coordinator hands it out (plain arrays, no objects).

    ``state``: everything needed to continue from chunk boundary ``chunk``;
    ``outputs``: what was produced since the previous checkpoint (equity
    columns from union position ``equity_from``, trades, decisions, events,
    weight re-estimates, rebalancing transfers), so each checkpoint costs the
    work since the last one. See :meth:`Coordinator.checkpoint_delta`.
    """

    chunk: int
    equity_from: int
    state: dict
    outputs: dict


@dataclass
class CoordinatorOutput:
    """Everything a finished run produced (numpy; the engine wraps it in pandas)."""

    equity: np.ndarray | None  # (n_assets, T) sleeve equity on the union timeline
    # TRADE_DT arrays (one per chunk and group, or per group's batch), asset = global index, bars local to
    # the asset; from a Coordinator, possibly references its group set handed over (resolved by the receiver)
    trades: list
    multipliers: dict = field(default_factory=dict)  # columns, one row per chunk and asset
    weight_history: list = field(default_factory=list)  # (chunk, decided_at ns, target weights)
    events: list = field(default_factory=list)  # breaker / rebalance events (dict rows)
    states: list = field(default_factory=list)  # final STATE_DT per group
    bars_done: int = 0  # union positions simulated (the columns of equity)
    portfolio: np.ndarray | None = None  # (bars_done,) the portfolio equity path the rules saw, per bar


class _Marker(NamedTuple):
    """Where the previous checkpoint on disk ended: union bars done, chunk, and list lengths."""

    bars: int
    chunk: int
    trade_parts: int
    decisions: int
    events: int
    weights: int


class Coordinator:
    """Portfolio state + chunk loop over a group set (see module docstring)."""

    def __init__(self, groups, layout, timeline_ns, bounds, initial_sleeves, target_weights,
                 settings: RiskConfig, rebalance: str = "none", base_size=None, estimator=None,
                 lookback_ns: int = 0, names=None, equity_buffer: np.ndarray | None = None):
        self.groups = groups
        self.layout = [np.asarray(idx, dtype=np.int64) for idx in layout]
        # each group's rows of the asset axis: a slice when contiguous (copies into a slice are plain memcpy)
        self._rows = [slice(int(idx[0]), int(idx[-1]) + 1)
                      if len(idx) and np.array_equal(idx, np.arange(idx[0], idx[-1] + 1)) else idx
                      for idx in self.layout]
        self.timeline_ns = np.asarray(timeline_ns, dtype=np.int64)
        self.bounds = np.asarray(bounds, dtype=np.int64)
        self._bounds_sha256 = None  # computed at the first checkpoint on disk (raybt.checkpoint_state)
        self.n_assets = int(sum(len(idx) for idx in self.layout))
        self.settings = settings
        self.rebalance = rebalance
        self.target_weights = np.asarray(target_weights, dtype=np.float64)
        self.base_size = np.ones(self.n_assets) if base_size is None else np.asarray(base_size, float)
        self.chunk = 0
        self.sleeves = np.asarray(initial_sleeves, dtype=np.float64).copy()
        self.initial_sleeves = self.sleeves.copy()
        self.estimator = estimator  # raybt.allocation.estimator.WeightEstimator: re-estimates targets at rebalances
        self.lookback_ns = int(lookback_ns)
        self.names = list(names) if names is not None else [str(a) for a in range(self.n_assets)]
        self.adjustments: dict = {}  # chunk -> cash moved into each sleeve at its first bar
        self.weight_history: list = []  # (chunk, decided_at, target weights) at the start and each re-estimate
        self.peak = float(self.sleeves.sum())
        self.drawdown = 0.0
        self.breaker = risk.BreakerState(tripped=False, chunks_since_trip=0, peak=self.peak)
        # capped one block beyond the timeline: the ring never wraps, the estimates are the asked window's
        window = min(int(settings.correlation_window), len(self.timeline_ns) + risk.CORRELATION_BLOCK_BARS)
        self.returns = risk.RollingBlockMoments(max(window, 2), self.n_assets)
        self.margins = np.zeros(self.n_assets)
        # sleeve equity, filled per chunk; ``equity_buffer`` (e.g. shared memory the driver maps) if given
        shape = (self.n_assets, len(self.timeline_ns))
        if equity_buffer is not None and equity_buffer.shape != shape:
            raise ValueError(f"equity_buffer must have shape {shape}")
        self.equity = np.empty(shape) if equity_buffer is None else equity_buffer
        self.portfolio = np.empty(shape[1])  # the summed path per bar, as the breaker and drawdown saw it
        self.equity.fill(0.0)  # touch the pages now rather than one by one inside the chunk loop
        self._trade_parts: list = []
        self.decisions: list[Decision] = []
        self.events: list = []
        self.instructions = self._first_instructions()
        self.checkpoint_every = 0
        self.last_checkpoint = None
        self._states = None  # per-group kernel states after the last chunk
        self.recoveries = 0
        self.timing = {"groups_s": 0.0, "coordinator_s": 0.0, "collect_s": 0.0}  # wall time, for benchmarks
        # a group set that keeps its equity and trades (shard actors) sends a ChunkDigest per chunk
        # instead; the coordinator collects the outputs when it needs them (checkpoints, re-estimates, the end)
        self.lean = bool(getattr(groups, "keeps_outputs", False))
        if self.lean and any(isinstance(rows, np.ndarray) for rows in self._rows):
            raise ValueError("a group set that keeps its outputs needs contiguous shards")
        self._disk_marker = _Marker(0, 0, 0, 0, 0, 0)  # where the previous checkpoint on disk ended

    @property
    def n_chunks(self) -> int:
        return len(self.bounds) - 1

    @property
    def bars_done(self) -> int:
        """Union positions simulated so far (the filled columns of ``equity``)."""
        return int(self.bounds[self.chunk])

    @property
    def done(self) -> bool:
        return self.chunk >= self.n_chunks

    # --- decisions ---------------------------------------------------------------

    def _first_instructions(self) -> np.ndarray:
        instr = np.zeros(self.n_assets, dtype=INSTR_DT)
        instr["max_margin"] = np.inf
        factors = self._factors(np.ones(self.n_assets), 1.0)
        instr["size_multiplier"] = factors["multiplier"]
        self._record(0, self.timeline_ns[0] if len(self.timeline_ns) else 0, instr, factors, "start")
        return instr

    def _factors(self, correlation, drawdown_factor):
        s = self.settings
        if not s.enabled:
            ones = np.ones(self.n_assets)
            return {"base": ones, "portfolio_risk": ones, "correlation": ones,
                    "drawdown": ones, "multiplier": ones}
        portfolio_risk = np.full(self.n_assets, float(s.portfolio_risk))
        dd = np.full(self.n_assets, float(drawdown_factor))
        multiplier = risk.combine_multipliers(self.base_size, portfolio_risk, correlation, dd)
        return {"base": self.base_size, "portfolio_risk": portfolio_risk,
                "correlation": np.asarray(correlation, float), "drawdown": dd, "multiplier": multiplier}

    def _decide(self, path_max: float, path_last: float) -> None:
        """Instructions for the next chunk from everything up to the end of this one."""
        s = self.settings
        k_next = self.chunk + 1
        decided_at = int(self.timeline_ns[self.bounds[self.chunk + 1] - 1])
        instr = np.zeros(self.n_assets, dtype=INSTR_DT)
        instr["max_margin"] = np.inf
        reason = ""
        if s.enabled:
            self.breaker, decision = risk.step_breaker(self.breaker, path_max, path_last, breaker_policy(s))
            if decision.event:
                self.events.append({"chunk": k_next, "decided_at": decided_at, "event": decision.event,
                                    "drawdown": float(self.drawdown), "breaker_drawdown": float(decision.drawdown),
                                    "equity": float(path_last)})
            instr["halted"] = int(decision.halted)
            instr["flatten"] = int(decision.flatten)
            dd_factor = risk.drawdown_scale(self.drawdown, s.dd_scale_start,
                                            s.max_portfolio_drawdown, s.dd_scale_floor)
            if s.cluster_correlation is not None:
                correlation = self.returns.factors(s.cluster_correlation)
            else:
                correlation = np.ones(self.n_assets)
            if s.max_entry_margin is not None:
                instr["max_margin"] = risk.exposure_max_margin(float(path_last), s.max_entry_margin)
            reason = "breaker" if decision.halted else ""
        else:
            dd_factor, correlation = 1.0, np.ones(self.n_assets)
        factors = self._factors(correlation, dd_factor)
        instr["size_multiplier"] = factors["multiplier"]
        if k_next < self.n_chunks and self.rebalance != "none":
            prev_ts = int(self.timeline_ns[self.bounds[self.chunk]])
            next_ts = int(self.timeline_ns[self.bounds[k_next]])
            if risk.rebalance_due(prev_ts, next_ts, self.rebalance):
                if self.estimator is not None and self.estimator.reestimates:
                    self.target_weights = self._reestimate(decided_at)
                    self.weight_history.append((k_next, decided_at, self.target_weights.copy()))
                adjust = risk.rebalance_adjustments(self.sleeves, self.target_weights)
                instr["capital_adjustment"] = adjust
                self.events.append({"chunk": k_next, "decided_at": decided_at, "event": "rebalance",
                                    "drawdown": float(self.drawdown), "breaker_drawdown": float("nan"),
                                    "equity": float(self.sleeves.sum())})
        self.instructions = instr
        if k_next < self.n_chunks:
            self._record(k_next, decided_at, instr, factors, reason)

    def _reestimate(self, decided_at: int) -> np.ndarray:
        """Model weights from the sleeves' returns over the trailing lookback (no look-ahead)."""
        from raybt.allocation.estimator import flow_adjusted_returns

        last = int(self.bounds[self.chunk + 1])
        first = int(np.searchsorted(self.timeline_ns[:last], decided_at - self.lookback_ns, side="right"))
        first = min(max(first, 0), last - 2)
        self._collect()  # the sleeves' equity over the lookback, from the shards that keep it
        previous = self.equity[:, first - 1] if first > 0 else self.initial_sleeves
        returns = flow_adjusted_returns(self.equity, first, last, previous, self.bounds, self.adjustments)
        return self.estimator.rebalance(returns, self.names)

    def _record(self, chunk, decided_at, instr, factors, reason):
        """Keep this chunk's decision (expanded to one row per asset in :meth:`multiplier_table`)."""
        start_ns = int(self.timeline_ns[self.bounds[chunk]]) if len(self.timeline_ns) else 0
        self.decisions.append(Decision(int(chunk), int(decided_at), start_ns, instr.copy(),
                                       np.array([factors[k] for k in FACTORS], dtype=np.float64), reason))

    def multiplier_table(self) -> dict:
        """The decisions so far as columns, one row per chunk and asset (global asset index)."""
        return multiplier_table(self.decisions, self.n_assets)

    # --- checkpoints -------------------------------------------------------------------

    def set_checkpoint_every(self, chunks: int) -> None:
        """Keep an in-memory checkpoint every ``chunks`` chunks (0: only the start)."""
        self.checkpoint_every = int(chunks or 0)

    def get_recoveries(self) -> int:
        return self.recoveries

    def get_timing(self) -> dict:
        """Seconds in the shards, in the portfolio rules and collecting, and the group set's counts if any."""
        return {**self.timing, **getattr(self.groups, "counts", {})}

    def node_ids(self) -> list:
        return self.groups.node_ids() if hasattr(self.groups, "node_ids") else []

    def shutdown_groups(self) -> None:
        if hasattr(self.groups, "kill"):
            self.groups.kill()

    def _group_states(self) -> list:
        """Every group's kernel state after the last chunk (asked for once, then from the reports)."""
        if self._states is None:
            self._states = [st.copy() for st in self.groups.get_states()]
        return self._states

    def checkpoint(self) -> dict:
        """Everything needed to continue exactly from the current chunk boundary (in memory, for
        recovering from a lost worker; outputs after it are dropped by :meth:`restore`).

        Shards that keep their outputs hand them over first: a shard restarted after the
        checkpoint has only what it replays."""
        self._collect()
        return {
            "chunk": self.chunk,
            "sleeves": self.sleeves.copy(),
            "peak": self.peak,
            "drawdown": self.drawdown,
            "breaker": self.breaker,
            "returns": copy.deepcopy(self.returns),
            "margins": self.margins.copy(),
            "instructions": self.instructions.copy(),
            "target_weights": self.target_weights.copy(),
            "n_weight_history": len(self.weight_history),
            "n_trade_parts": len(self._trade_parts),
            "n_decisions": len(self.decisions),
            "n_events": len(self.events),
            "group_states": [s.copy() for s in self._group_states()],
        }

    def restore(self, snap: dict) -> None:
        """Return to a :meth:`checkpoint` taken by this coordinator (outputs after it are dropped)."""
        self.chunk = snap["chunk"]
        self.sleeves = snap["sleeves"].copy()
        self.peak = snap["peak"]
        self.drawdown = snap["drawdown"]
        self.breaker = snap["breaker"]
        self.returns = copy.deepcopy(snap["returns"])
        self.margins = snap["margins"].copy()
        self.instructions = snap["instructions"].copy()
        self.target_weights = snap["target_weights"].copy()
        del self.weight_history[snap["n_weight_history"]:]
        self.adjustments = {c: a for c, a in self.adjustments.items() if c < self.chunk}
        del self._trade_parts[snap["n_trade_parts"]:]
        del self.decisions[snap["n_decisions"]:]
        del self.events[snap["n_events"]:]
        self.groups.set_states(snap["group_states"])
        self._states = [st.copy() for st in snap["group_states"]]

    # --- checkpoints on disk ---------------------------------------------------------

    def checkpoint_delta(self) -> CheckpointDelta:
        """The state at this chunk boundary and the outputs since the previous call, as plain arrays
        (:func:`raybt.checkpoint_state.checkpoint_delta`)."""
        from raybt.checkpoint_state import checkpoint_delta

        self._recovering(self._gather)
        return checkpoint_delta(self)

    def restore_checkpoint(self, state: dict, outputs: dict) -> None:
        """Continue from the last :meth:`checkpoint_delta` of a coordinator of the same run
        (:func:`raybt.checkpoint_state.restore_checkpoint`)."""
        from raybt.checkpoint_state import restore_checkpoint

        restore_checkpoint(self, state, outputs)

    # --- the chunk loop --------------------------------------------------------------

    def advance_chunk(self) -> ChunkSummary:
        """Run one chunk; on a lost worker, restore the last checkpoint and replay."""
        if self.last_checkpoint is None:
            self.last_checkpoint = self._recovering(self.checkpoint)
        return self._recovering(self._chunk_then_checkpoint)

    def _chunk_then_checkpoint(self) -> ChunkSummary:
        summary = self._advance_chunk()
        if self.checkpoint_every and self.chunk % self.checkpoint_every == 0:
            self.last_checkpoint = self.checkpoint()
        return summary

    def _recovering(self, action):
        """``action()`` at the current chunk; on a lost worker, restore the last checkpoint, replay, try again."""
        target = self.chunk
        while True:
            try:
                while self.chunk < target:  # replay after a recovery
                    self._advance_chunk()
                return action()
            except WorkerLost:
                self.recoveries += 1
                self.groups.recover()
                if self.last_checkpoint is not None:  # None: lost at the start, nothing to go back to
                    self.restore(self.last_checkpoint)

    def _gather(self, by_reference: bool = False) -> None:
        """Every output up to now here (trades possibly by reference), every group's kernel state."""
        self._collect(by_reference)
        self._group_states()

    def _collect(self, by_reference: bool = False) -> None:
        """Take the equity and trades the groups kept since they last handed them over (lean group sets).

        ``by_reference``: the group set may hand the trades over as references (e.g. Ray object
        references) that whoever reads the output resolves; the coordinator never needs them itself.
        """
        if not self.lean:
            return
        from raybt.chunk_digest import merge_collected

        clock = time.perf_counter()
        batches = self.groups.collect(by_reference=by_reference)
        self._trade_parts.extend(merge_collected(batches, self.layout, self.equity))
        self.timing["collect_s"] += time.perf_counter() - clock

    def _advance_chunk(self) -> ChunkSummary:
        from raybt.chunk_digest import digest_chunk, path_extremes, portfolio_path

        k = self.chunk
        t_start, t_end = int(self.bounds[k]), int(self.bounds[k + 1])
        per_group = [self.instructions[idx] for idx in self.layout]
        moved = self.instructions["capital_adjustment"]
        previous = self.sleeves + moved
        returns = self.returns
        clock = time.perf_counter()
        if self.lean:
            extras = [np.concatenate([[idx[0], returns.partial_block, returns.block], previous[rows],
                                      returns.partial[rows]]) for idx, rows in zip(self.layout, self._rows)]
            digests = self.groups.step_digest(t_start, t_end, per_group, extras)
            after_step = time.perf_counter()
            self._states = None  # the shards have them; asked for when a checkpoint needs them
            sleeves = np.empty(self.n_assets)
            sums = np.empty((len(digests[0].returns), self.n_assets))
            for rows, digest in zip(self._rows, digests):
                sleeves[rows] = digest.last
                self.margins[rows] = digest.margins
                sums[:, rows] = digest.returns
            first_block = digests[0].first_block
        else:
            self._group_states()
            reports = self.groups.step(t_start, t_end, per_group)
            after_step = time.perf_counter()
            equity = self.equity[:, t_start:t_end]  # a view: filled in place
            for g, (idx, rows, report) in enumerate(zip(self.layout, self._rows, reports)):
                equity[rows] = report.equity
                self.margins[rows] = report.state["margin"]
                self._states[g] = report.state.copy()
                if len(report.trades):
                    trades = report.trades if report.trades.flags.writeable else report.trades.copy()
                    trades["asset"] = idx[trades["asset"]]
                    self._trade_parts.append(trades)
            digests = [digest_chunk(equity, self.margins, 0, t_start, previous, returns.partial,
                                    returns.partial_block, returns.block)]
            sleeves, sums, first_block = equity[:, -1].copy(), digests[0].returns, digests[0].first_block
        self.timing["groups_s"] += after_step - clock

        if np.any(moved != 0):
            self.adjustments[k] = moved.copy()
        path = portfolio_path(digests, self.n_assets)
        self.portfolio[t_start:t_end] = path
        path_max, path_last = path_extremes(path)
        returns.push_chunk(sums, first_block, t_start, t_end - t_start)
        self.peak = max(self.peak, path_max)
        self.drawdown = 1.0 - path_last / self.peak if self.peak > 0 else 0.0
        self.sleeves = sleeves
        self._decide(path_max, path_last)
        self.chunk += 1
        self.timing["coordinator_s"] += time.perf_counter() - after_step
        return ChunkSummary(k, self.n_chunks, int(self.timeline_ns[t_end - 1]), float(path_last),
                            self.drawdown, bool(self.breaker.tripped),
                            self.events[-1]["event"] if self.events and self.events[-1]["chunk"] == k + 1 else "",
                            self.sleeves)

    def advance(self, n_chunks: int) -> list:
        """Advance up to ``n_chunks`` chunks; return their summaries."""
        out = []
        while not self.done and len(out) < n_chunks:
            out.append(self.advance_chunk())
        return out

    def output(self, with_equity: bool = True) -> CoordinatorOutput:
        """The run's outputs so far; ``with_equity=False`` leaves ``equity`` None (the caller maps the
        shared equity buffer itself, see ``bars_done``). ``trades`` may hold the group set's references
        (the shards' trades, passed on unread), which the receiver resolves (``fetch_output``)."""
        self._recovering(lambda: self._gather(by_reference=True))  # what the shards kept, their final states
        equity = self.equity[:, : self.bars_done] if with_equity else None
        trades = list(self._trade_parts)  # concatenated column by column by records.trades_frame
        states = self._group_states()
        return CoordinatorOutput(equity, trades, self.multiplier_table(), list(self.weight_history), self.events,
                                 states, self.bars_done, self.portfolio[: self.bars_done].copy())
