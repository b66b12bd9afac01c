"""Data edge: loading/validating bars, resampling, synthetic universes."""

from raybt.data.loader import load_bars, save_bars, validate_bars
from raybt.data.resample import resample_bars
from raybt.data.timeframes import infer_timeframe, parse_timeframe, timeframe_label

__all__ = ["infer_timeframe", "load_bars", "parse_timeframe", "resample_bars", "save_bars",
           "timeframe_label", "validate_bars"]
