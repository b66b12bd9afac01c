"""A coordinator's checkpoint on disk as plain arrays: the state at a chunk boundary and the outputs since
the previous checkpoint (:class:`~raybt.coordinator.CheckpointDelta`), and restoring from them.

Appending every delta's outputs in order rebuilds the whole run so far, so a
checkpoint costs the work done since the last one, not the run's whole
history. The arrays hold numbers and fixed-width text only (no objects), so
:mod:`raybt.checkpoints` can store them as ``.npz`` read without pickle.
"""

from __future__ import annotations

import numpy as np

from raybt import risk
from raybt.chunk_digest import portfolio_equity
from raybt.coordinator import FACTORS, CheckpointDelta, Coordinator, Decision, _Marker
from raybt.types import INSTR_DT, STATE_DT, TRADE_DT


def _joined(parts: list, dtype) -> np.ndarray:
    """The C-contiguous arrays ``parts`` of ``dtype`` joined as one flat array, as one copy of their
    bytes (``np.stack``/``np.concatenate`` promote record types field by field: milliseconds a checkpoint)."""
    return np.frombuffer(bytearray(b"".join(np.ascontiguousarray(part) for part in parts)), dtype=dtype)


def _rows(rows: list, shape: tuple, dtype=np.float64) -> np.ndarray:
    """``rows`` (arrays of ``shape``) stacked along a new first axis."""
    return _joined(rows, dtype).reshape(len(rows), *shape)


def _bounds_digest(self: Coordinator) -> np.ndarray:
    """SHA-256 of the run's chunk bounds (32 bytes): a checkpoint names the chunking it was taken under
    without storing it every time (70 KB at one-hour chunks over a year)."""
    import hashlib

    if self._bounds_sha256 is None:
        digest = hashlib.sha256(np.ascontiguousarray(self.bounds, dtype=np.int64).tobytes()).digest()
        self._bounds_sha256 = np.frombuffer(digest, dtype=np.uint8).copy()
    return self._bounds_sha256


def checkpoint_delta(self: Coordinator) -> CheckpointDelta:
    """The state at this chunk boundary and the outputs since the previous call, as plain arrays.

    Appending every delta's outputs in order rebuilds the whole run so
    far (:meth:`restore_checkpoint`), so a checkpoint costs the work done
    since the last one, not the run's whole history.
    """
    marker, done = self._disk_marker, int(self.bounds[self.chunk])
    breaker = self.breaker
    state = {
        "chunk": np.int64(self.chunk),
        "sleeves": self.sleeves, "initial_sleeves": self.initial_sleeves, "margins": self.margins,
        "target_weights": self.target_weights, "instructions": self.instructions,
        "scalars": np.array([self.peak, self.drawdown, breaker.peak], dtype=np.float64),
        "breaker": np.array([int(breaker.tripped), breaker.chunks_since_trip], dtype=np.int64),
        "bounds_sha256": _bounds_digest(self),
        **{f"returns.{k}": v for k, v in self.returns.to_arrays().items()},
        **{f"group_state.{g}": st for g, st in enumerate(self._group_states())},
    }
    decisions = self.decisions[marker.decisions:]
    events = self.events[marker.events:]
    weights = self.weight_history[marker.weights:]
    moved = sorted(c for c in self.adjustments if c >= marker.chunk)
    trades = self._trade_parts[marker.trade_parts:]
    outputs = {
        "equity": self.equity[:, marker.bars:done].copy(),
        "trades": _joined(trades, TRADE_DT),
        "decision.chunk": np.array([d.chunk for d in decisions], dtype=np.int64),
        "decision.decided_at": np.array([d.decided_at for d in decisions], dtype=np.int64),
        "decision.chunk_start": np.array([d.chunk_start for d in decisions], dtype=np.int64),
        "decision.instructions": _rows([d.instructions for d in decisions], (self.n_assets,), INSTR_DT),
        "decision.factors": _rows([d.factors for d in decisions], (len(FACTORS), self.n_assets)),
        "decision.reason": np.array([d.reason for d in decisions], dtype="U16"),
        "event.chunk": np.array([e["chunk"] for e in events], dtype=np.int64),
        "event.decided_at": np.array([e["decided_at"] for e in events], dtype=np.int64),
        "event.kind": np.array([e["event"] for e in events], dtype="U16"),
        "event.drawdown": np.array([e["drawdown"] for e in events], dtype=np.float64),
        "event.breaker_drawdown": np.array([e["breaker_drawdown"] for e in events], dtype=np.float64),
        "event.equity": np.array([e["equity"] for e in events], dtype=np.float64),
        "weights.chunk": np.array([w[0] for w in weights], dtype=np.int64),
        "weights.decided_at": np.array([w[1] for w in weights], dtype=np.int64),
        "weights.values": _rows([w[2] for w in weights], (self.n_assets,)),
        "adjust.chunk": np.array(moved, dtype=np.int64),
        "adjust.amount": _rows([self.adjustments[c] for c in moved], (self.n_assets,)),
    }
    self._disk_marker = _Marker(done, self.chunk, len(self._trade_parts), len(self.decisions), len(self.events),
                                len(self.weight_history))
    return CheckpointDelta(self.chunk, marker.bars, {k: np.array(v) for k, v in state.items()}, outputs)

def restore_checkpoint(self: Coordinator, state: dict, outputs: dict) -> None:
    """Continue from the last :meth:`checkpoint_delta` of a coordinator of the same run.

    ``outputs``: every delta's outputs appended in order (equity along
    the bar axis, the rest along the first axis); ``state``: the last
    delta's state. The results then equal an uninterrupted run's, bit for bit.
    """
    chunk = int(state["chunk"])
    if len(state["sleeves"]) != self.n_assets or not np.array_equal(state["bounds_sha256"], _bounds_digest(self)):
        raise ValueError("the checkpoint belongs to a run with other assets or chunks")
    done = int(self.bounds[chunk])
    if outputs["equity"].shape != (self.n_assets, done):
        raise ValueError("the checkpoint's equity does not cover the run up to its chunk")
    self.equity[:, :done] = outputs["equity"]
    self.portfolio[:done] = portfolio_equity(self.equity[:, :done])  # summed on the coordinator's tree
    self._trade_parts = [np.ascontiguousarray(outputs["trades"], dtype=TRADE_DT)] if len(outputs["trades"]) else []
    self.decisions = [
        Decision(int(c), int(t), int(t0), np.ascontiguousarray(instr, dtype=INSTR_DT),
                 np.array(factors, dtype=np.float64), str(reason))
        for c, t, t0, instr, factors, reason in zip(
            outputs["decision.chunk"], outputs["decision.decided_at"], outputs["decision.chunk_start"],
            outputs["decision.instructions"], outputs["decision.factors"], outputs["decision.reason"])]
    self.events = [{"chunk": int(c), "decided_at": int(t), "event": str(kind), "drawdown": float(dd),
                    "breaker_drawdown": float(bdd),
                    "equity": float(eq)}
                   for c, t, kind, dd, bdd, eq in zip(outputs["event.chunk"], outputs["event.decided_at"],
                                                      outputs["event.kind"], outputs["event.drawdown"],
                                                      outputs["event.breaker_drawdown"], outputs["event.equity"])]
    self.weight_history = [(int(c), int(t), np.array(w, dtype=np.float64)) for c, t, w in
                           zip(outputs["weights.chunk"], outputs["weights.decided_at"], outputs["weights.values"])]
    self.adjustments = {int(c): np.array(a, dtype=np.float64)
                        for c, a in zip(outputs["adjust.chunk"], outputs["adjust.amount"])}
    self.initial_sleeves = np.array(state["initial_sleeves"], dtype=np.float64)
    peak, drawdown, breaker_peak = (float(v) for v in state["scalars"])
    tripped, since_trip = (int(v) for v in state["breaker"])
    n_groups = len(self.layout)
    group_states = [np.ascontiguousarray(state[f"group_state.{g}"], dtype=STATE_DT) for g in range(n_groups)]
    if any(len(st) != len(idx) for st, idx in zip(group_states, self.layout)):
        raise ValueError("the checkpoint's kernel states do not match the layout")
    self.restore({
        "chunk": chunk, "sleeves": np.array(state["sleeves"], dtype=np.float64), "peak": peak,
        "drawdown": drawdown, "breaker": risk.BreakerState(bool(tripped), since_trip, breaker_peak),
        "returns": risk.RollingBlockMoments.from_arrays(
            {k.removeprefix("returns."): v for k, v in state.items() if k.startswith("returns.")}),
        "margins": np.array(state["margins"], dtype=np.float64),
        "instructions": np.ascontiguousarray(state["instructions"], dtype=INSTR_DT),
        "target_weights": np.array(state["target_weights"], dtype=np.float64),
        "n_weight_history": len(self.weight_history), "n_trade_parts": len(self._trade_parts),
        "n_decisions": len(self.decisions), "n_events": len(self.events), "group_states": group_states,
    })
    self._disk_marker = _Marker(done, chunk, len(self._trade_parts), len(self.decisions), len(self.events),
                                len(self.weight_history))
    self.last_checkpoint = self.checkpoint()
