"""Kernel records -> pandas tables (the object layer's output format)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from raybt.types import EXIT_REASON_NAMES, LONG, TRADE_DT

TRADE_COLUMNS = [
    "asset", "side", "units", "entry_time", "entry_price", "exit_time", "exit_price",
    "exit_reason", "pnl", "commission",
]


def trades_frame(records, asset_names, asset_timestamps) -> pd.DataFrame:
    """``TRADE_DT`` records (one array, or a list of arrays) -> the spec's trades table, in exit order.

    ``asset_names[a]`` and ``asset_timestamps[a]`` (a DatetimeIndex) belong to
    the record's ``asset`` index; bar indices are local to each asset. Trades
    closing at the same timestamp keep the asset order (stable sort). A list
    of record arrays (e.g. one per chunk) is read column by column, without
    first building one big record array.
    """
    if isinstance(records, (list, tuple)):
        parts = [p for p in records if len(p)]
        records = {f: np.concatenate([p[f] for p in parts]) for f in TRADE_DT.names} if parts \
            else np.zeros(0, dtype=TRADE_DT)
    if len(records["asset"]) == 0:
        frame = pd.DataFrame({c: [] for c in TRADE_COLUMNS})
        for c in ("entry_time", "exit_time"):
            frame[c] = pd.to_datetime(frame[c], utc=True)
        for c in ("units", "entry_price", "exit_price", "pnl", "commission"):
            frame[c] = frame[c].astype(np.float64)
        return frame
    assets = records["asset"]
    entry_time = np.empty(len(assets), dtype="datetime64[ns]")
    exit_time = np.empty(len(assets), dtype="datetime64[ns]")
    for a in np.unique(assets):
        rows = assets == a
        stamps = asset_timestamps[a].tz_convert("UTC").tz_localize(None).as_unit("ns").values
        entry_time[rows] = stamps[records["entry_bar"][rows]]
        exit_time[rows] = stamps[records["exit_bar"][rows]]
    frame = pd.DataFrame(
        {
            "asset": np.asarray(asset_names, dtype=object)[assets],
            "side": np.where(records["side"] == LONG, "long", "short"),
            "units": records["units"],
            "entry_time": pd.DatetimeIndex(entry_time).tz_localize("UTC"),
            "entry_price": records["entry_price"],
            "exit_time": pd.DatetimeIndex(exit_time).tz_localize("UTC"),
            "exit_price": records["exit_price"],
            "exit_reason": np.asarray(EXIT_REASON_NAMES, dtype=object)[records["exit_reason"]],
            "pnl": records["pnl"],
            "commission": records["commission"],
        }
    )
    order = np.lexsort((assets, frame["exit_time"].to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Drawdown as a positive fraction below the running peak (first value is a peak)."""
    equity = np.asarray(equity, dtype=np.float64)
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, 1.0 - equity / peak, 0.0)
