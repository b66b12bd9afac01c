"""Data edge: loading/validating bars, resampling, synthetic universes, degenerate-data warnings."""

from raybt.data.checks import degenerate_warnings, result_warnings
from raybt.data.loader import load_bars, save_bars, validate_bars, validate_frame
from raybt.data.resample import resample_bars
from raybt.data.timeframes import infer_timeframe, parse_timeframe, timeframe_label

__all__ = ["degenerate_warnings", "infer_timeframe", "load_bars", "parse_timeframe", "resample_bars",
           "result_warnings", "save_bars", "timeframe_label", "validate_bars", "validate_frame"]
