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
    assets = np.asarray(records["asset"])
    entry_bar, exit_bar = np.asarray(records["entry_bar"]), np.asarray(records["exit_bar"])
    entry_ns = np.empty(len(assets), dtype=np.int64)
    exit_ns = np.empty(len(assets), dtype=np.int64)
    by_asset = np.argsort(assets, kind="stable")
    present = np.unique(assets)
    starts = np.searchsorted(assets[by_asset], present, side="left")
    ends = np.searchsorted(assets[by_asset], present, side="right")
    for a, lo, hi in zip(present, starts, ends):  # each asset's rows: one slice of the asset-sorted order
        rows = by_asset[lo:hi]
        stamps = asset_timestamps[a].tz_convert("UTC").as_unit("ns").asi8
        entry_ns[rows] = stamps[entry_bar[rows]]
        exit_ns[rows] = stamps[exit_bar[rows]]
    order = np.lexsort((assets, exit_ns))  # exit order; the asset order among equal exit times

    def stamps_column(ns):
        return pd.DatetimeIndex(ns[order].view("datetime64[ns]")).tz_localize("UTC")

    return pd.DataFrame(
        {
            "asset": np.asarray(asset_names, dtype=object)[assets[order]],
            "side": np.where(records["side"][order] == LONG, "long", "short"),
            "units": records["units"][order],
            "entry_time": stamps_column(entry_ns),
            "entry_price": records["entry_price"][order],
            "exit_time": stamps_column(exit_ns),
            "exit_price": records["exit_price"][order],
            "exit_reason": np.asarray(EXIT_REASON_NAMES, dtype=object)[records["exit_reason"][order]],
            "pnl": records["pnl"][order],
            "commission": records["commission"][order],
        }
    )


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Drawdown as a positive fraction below the running peak (first value is a peak)."""
    equity = np.asarray(equity, dtype=np.float64)
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, 1.0 - equity / peak, 0.0)
