"""Resampling bars to a coarser timeframe with OHLCV aggregation."""

from __future__ import annotations

import pandas as pd

from raybt.data.timeframes import infer_timeframe, parse_timeframe
from raybt.errors import ConfigError


def resample_bars(df: pd.DataFrame, timeframe) -> pd.DataFrame:
    """Aggregate to ``timeframe``: open first, high max, low min, close last, volume sum.

    Bins are labelled by their left edge and closed on the left, anchored at
    midnight UTC; bins without bars (weekends) are dropped. Resampling to a
    finer timeframe than the data's is a ConfigError.
    """
    target = parse_timeframe(timeframe)
    if len(df) > 1 and target < infer_timeframe(df.index):
        raise ConfigError(f"timeframe: cannot resample {infer_timeframe(df.index)} bars to a finer {timeframe}")
    rule = f"{int(target / pd.Timedelta(minutes=1))}min"
    out = df.resample(rule, label="left", closed="left", origin="epoch").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    out = out.dropna(subset=["open", "close"])
    out.index.name = "timestamp"
    return out.astype("float64")
