"""Kernel records -> pandas tables (the object layer's output format)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from raybt.types import EXIT_REASON_NAMES, LONG, TRADE_DT

SIDES = ["long", "short"]
TRADE_COLUMNS = [
    "asset", "side", "units", "entry_time", "entry_price", "exit_time", "exit_price",
    "exit_reason", "pnl", "commission",
]


def order_by_code(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """The stable ascending order of ``codes`` (integers in ``[0, n_codes)``), e.g. trades by asset.

    Sorted as the narrowest integer type that holds them: numpy sorts 8- and
    16-bit integers stably by radix, about 7x faster than 64-bit ones (1.2 M
    trades: 15 ms instead of 108 ms); the order is the same.
    """
    codes = np.asarray(codes)
    narrow = np.int16 if n_codes <= np.iinfo(np.int16).max else np.int32 if n_codes <= np.iinfo(np.int32).max else None
    return np.argsort(codes if narrow is None else codes.astype(narrow, copy=False), kind="stable")


def trades_frame(records, asset_names, asset_timestamps) -> pd.DataFrame:
    """``TRADE_DT`` records (one array, or a list of arrays) -> the spec's trades table, in exit order.

    ``asset``, ``side`` and ``exit_reason`` are categoricals (the asset names
    in portfolio order, ``long``/``short``, the spec's exit reasons).

    ``asset_names[a]`` and ``asset_timestamps[a]`` (a DatetimeIndex) belong to
    the record's ``asset`` index; bar indices are local to each asset. Trades
    closing at the same timestamp keep the asset order (stable sort). A list
    of record arrays (e.g. one per chunk) is read column by column, without
    first building one big record array.
    """
    parts = [p for p in records if len(p)] if isinstance(records, (list, tuple)) else [records]

    def field(name):  # one column of every part, concatenated (one field in memory at a time)
        if not parts:
            return np.zeros(0, dtype=TRADE_DT[name])
        return np.concatenate([p[name] for p in parts]) if len(parts) > 1 else np.asarray(parts[0][name])

    assets = field("asset")
    entry_bar, exit_bar = field("entry_bar"), field("exit_bar")
    entry_ns = np.empty(len(assets), dtype=np.int64)
    exit_ns = np.empty(len(assets), dtype=np.int64)
    by_asset = order_by_code(assets, len(asset_names))
    present = np.unique(assets)
    starts = np.searchsorted(assets[by_asset], present, side="left")
    ends = np.searchsorted(assets[by_asset], present, side="right")
    for a, lo, hi in zip(present, starts, ends):  # each asset's rows: one slice of the asset-sorted order
        rows = by_asset[lo:hi]
        stamps = asset_timestamps[a].tz_convert("UTC").as_unit("ns").asi8
        entry_ns[rows] = stamps[entry_bar[rows]]
        exit_ns[rows] = stamps[exit_bar[rows]]
    del by_asset, entry_bar, exit_bar
    order = np.lexsort((assets, exit_ns))  # exit order; the asset order among equal exit times

    def stamps_column(ns):
        return pd.DatetimeIndex(ns[order].view("datetime64[ns]")).tz_localize("UTC")

    columns = {
        "asset": pd.Categorical.from_codes(assets[order], categories=list(asset_names)),
        "side": pd.Categorical.from_codes((field("side")[order] != LONG).astype(np.int8), categories=SIDES),
        "units": field("units")[order],
        "entry_time": stamps_column(entry_ns),
        "entry_price": field("entry_price")[order],
        "exit_time": stamps_column(exit_ns),
        "exit_price": field("exit_price")[order],
        "exit_reason": pd.Categorical.from_codes(field("exit_reason")[order], categories=list(EXIT_REASON_NAMES)),
        "pnl": field("pnl")[order],
        "commission": field("commission")[order],
    }
    return pd.DataFrame(columns, copy=False)  # no consolidation copy of the numeric columns


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Drawdown as a positive fraction below the running peak (first value is a peak)."""
    equity = np.asarray(equity, dtype=np.float64)
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, 1.0 - equity / peak, 0.0)
