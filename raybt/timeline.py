"""The portfolio's common clock: union timeline and time-based chunks.

The union timeline is the sorted union of every asset's bar timestamps (UTC).
Each asset's bars map to positions on it. Chunks are time buckets of a fixed
duration (``1D``, ``4h`` ...) anchored at the Unix epoch (midnight UTC for
``1D``); a chunk holds the union positions whose timestamps fall in one
bucket, so chunk boundaries do not depend on which assets are in the run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raybt.errors import ConfigError


def union_timeline(indexes) -> pd.DatetimeIndex:
    """Sorted union of the assets' DatetimeIndexes (UTC).

    Assets sharing a calendar have equal indexes: each distinct index is
    merged once (equal ones are found by length, ends and a comparison), so
    a universe on one calendar costs one pass instead of a sort of every bar.
    """
    distinct: dict = {}
    for idx in indexes:
        stamps = idx.tz_convert("UTC").as_unit("ns").asi8
        key = (len(stamps), int(stamps[0]), int(stamps[-1])) if len(stamps) else (0, 0, 0)
        same = distinct.setdefault(key, [])
        if not any(np.array_equal(stamps, seen) for seen in same):
            same.append(stamps)
    parts = [a for group in distinct.values() for a in group]
    if len(parts) == 1:
        values = parts[0]
    else:
        values = np.sort(np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64), kind="stable")
        values = values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True, unit="ns"), name="timestamp").as_unit("ns")


def union_positions(index: pd.DatetimeIndex, timeline: pd.DatetimeIndex) -> np.ndarray:
    """Position of each of ``index``'s timestamps on ``timeline`` (int64)."""
    pos = np.searchsorted(timeline.as_unit("ns").asi8, index.tz_convert("UTC").as_unit("ns").asi8)
    return pos.astype(np.int64)


def asset_positions(index: pd.DatetimeIndex, timeline: pd.DatetimeIndex) -> tuple[np.ndarray, int]:
    """An asset's union positions as ``(stored, base)``: bar j sits at ``stored[j]``, or at
    ``base + j`` when ``stored`` is empty.

    Positions are stored only when they are not consecutive: an asset with a
    bar at every union timestamp of its span (assets sharing a calendar) is
    recognised from its first and last timestamps alone and costs nothing.
    """
    if len(index) == 0:
        return np.zeros(0, dtype=np.int64), 0
    ends = index[[0, -1]].tz_convert("UTC").as_unit("ns").asi8
    first, last = np.searchsorted(timeline.as_unit("ns").asi8, ends)
    if int(last) - int(first) == len(index) - 1:
        return np.zeros(0, dtype=np.int64), int(first)
    return union_positions(index, timeline), 0


def chunk_bounds(timeline: pd.DatetimeIndex, chunk) -> np.ndarray:
    """Union positions where chunks start, plus len(timeline) at the end (int64).

    ``chunk`` is a duration (``"1D"``, ``"4h"``, a Timedelta). A chunk shorter
    than the timeline's bar spacing is a ConfigError.
    """
    try:
        width = pd.Timedelta(chunk)
    except (TypeError, ValueError):
        raise ConfigError(f"chunk: not a duration: {chunk!r} (e.g. 1D, 4h, 30min)") from None
    if width <= pd.Timedelta(0):
        raise ConfigError(f"chunk: must be positive, got {chunk!r}")
    stamps = timeline.as_unit("ns").asi8
    if len(stamps) > 1:
        bar = int(np.min(np.diff(stamps)))
        if width.value < bar:
            raise ConfigError(
                f"chunk: {chunk} is shorter than one bar ({pd.Timedelta(bar)}); use at least the bar spacing"
            )
    bucket = stamps // width.value
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]]) if len(stamps) else np.zeros(0, np.int64)
    return np.r_[starts, len(stamps)].astype(np.int64)
