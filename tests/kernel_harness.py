"""Run the numba kernel with the reference simulator's calling convention.

``kernel_run(open, high, low, close, params, chunks)`` mirrors
``reference_sim.reference_run`` so the two can be compared record by record:
chunks are ``{"start", "size_multiplier", "halted", "flatten",
"capital_adjustment", "max_margin"}`` dicts on the asset's own bars.
"""

from __future__ import annotations

import numpy as np

from raybt.asset import AssetGroup, shard_bars
from raybt.broker import param_records
from raybt.config.params import validate_params
from raybt.types import EXIT_REASON_NAMES, LONG, TRADE_DT, neutral_instructions


def _boundaries(n, chunks, split_points=()):
    """Chunk starts with their instruction dicts, plus extra neutral split points."""
    chunks = chunks or [{"start": 0}]
    starts = {int(c["start"]): c for c in chunks}
    for s in split_points:
        if 0 < s < n and s not in starts:
            starts[int(s)] = None  # split inside a chunk: no new instructions
    return sorted(starts.items())


def kernel_run(open_, high, low, close, params=None, chunks=None, split_points=(), parallel=False):
    """Return (trades as dicts, equity list, final state) from the kernel."""
    n = len(close)
    p = validate_params(params or {})
    group = AssetGroup(
        shard_bars([open_], [high], [low], [close], [np.arange(n, dtype=np.int64)]),
        param_records([p]),
        parallel=parallel,
    )
    bounds = _boundaries(n, chunks, split_points)
    equity, records = [], []
    for k, (start, chunk) in enumerate(bounds):
        stop = bounds[k + 1][0] if k + 1 < len(bounds) else n
        instr = neutral_instructions(1)
        if chunk is not None:
            current = chunk
            instr["size_multiplier"] = float(chunk.get("size_multiplier", 1.0))
            instr["halted"] = int(bool(chunk.get("halted", False)))
            instr["flatten"] = int(bool(chunk.get("flatten", False)))
            instr["capital_adjustment"] = float(chunk.get("capital_adjustment", 0.0))
            instr["max_margin"] = float(chunk.get("max_margin", np.inf))
        else:  # neutral split inside a chunk: keep its multiplier, halt flag and exposure cap only
            instr["size_multiplier"] = float(current.get("size_multiplier", 1.0))
            instr["halted"] = int(bool(current.get("halted", False)))
            instr["max_margin"] = float(current.get("max_margin", np.inf))
        report = group.step(start, stop, instr)
        equity.extend(report.equity[0].tolist())
        records.append(report.trades)
    recs = np.concatenate(records) if records else np.zeros(0, TRADE_DT)
    trades = [
        {
            "side": "long" if r["side"] == LONG else "short",
            "units": float(r["units"]),
            "entry_bar": int(r["entry_bar"]),
            "entry_price": float(r["entry_price"]),
            "exit_bar": int(r["exit_bar"]),
            "exit_price": float(r["exit_price"]),
            "exit_reason": EXIT_REASON_NAMES[r["exit_reason"]],
            "pnl": float(r["pnl"]),
            "commission": float(r["commission"]),
        }
        for r in recs
    ]
    return trades, equity, group.get_state()
