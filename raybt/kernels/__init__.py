"""Numba kernels (``*_nb``): arrays and scalars in, arrays out. No pandas, no Ray."""

from raybt.kernels.indicators import atr_nb, exact_zscore_nb, true_range_nb
from raybt.kernels.mean_reversion import (
    advance_asset_nb,
    advance_shard_nb,
    advance_shard_parallel_nb,
    compact_trades_nb,
    floor_lot_nb,
)

__all__ = [
    "advance_asset_nb",
    "advance_shard_nb",
    "advance_shard_parallel_nb",
    "compact_trades_nb",
    "atr_nb",
    "exact_zscore_nb",
    "floor_lot_nb",
    "true_range_nb",
]
