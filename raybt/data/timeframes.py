"""Timeframe strings (``1m, 5m, 15m, 30m, 1h, 4h, 1d, 1w``) <-> pandas Timedeltas."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from raybt.errors import ConfigError

_UNITS = {"m": "min", "min": "min", "h": "h", "d": "D", "w": "W"}
_PATTERN = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)


def parse_timeframe(text) -> pd.Timedelta:
    """``"5m"`` -> Timedelta(5 minutes); also ``1min, 1H, 1D, 1W``; ConfigError otherwise."""
    if isinstance(text, pd.Timedelta):
        return text
    match = _PATTERN.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(f"timeframe: not a timeframe: {text!r} (use e.g. 1m, 5m, 15m, 1h, 4h, 1d)")
    return pd.Timedelta(int(match.group(1)), unit=_UNITS[match.group(2).lower()])


def timeframe_label(td: pd.Timedelta) -> str:
    """Inverse of :func:`parse_timeframe`: Timedelta(minutes=5) -> ``"5m"``."""
    minutes = int(td / pd.Timedelta(minutes=1))
    for size, unit in ((10080, "w"), (1440, "d"), (60, "h")):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def infer_timeframe(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The most common positive spacing of ``index`` (the bar size of the data).

    Among equally common spacings, the smallest. A majority vote in one
    kernel pass (:func:`raybt.data.nb.majority_spacing_nb`) settles it when
    one spacing holds more than half of the positive ones (regular bars);
    otherwise every spacing is counted.
    """
    if len(index) < 2:
        raise ConfigError("cannot infer a timeframe from fewer than 2 bars")
    from raybt.data.nb import majority_spacing_nb  # numba, imported when first needed

    ns = np.ascontiguousarray((index if index.unit == "ns" else index.as_unit("ns")).asi8)  # as_unit copies
    candidate, held, positives = majority_spacing_nb(ns)
    if 2 * held > positives:
        return pd.Timedelta(int(candidate), unit="ns")
    diffs = np.diff(ns)
    diffs = diffs[diffs > 0]
    values, counts = np.unique(diffs, return_counts=True)
    return pd.Timedelta(int(values[np.argmax(counts)]), unit="ns")
