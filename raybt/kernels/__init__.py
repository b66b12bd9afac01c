"""Numba kernels (``*_nb``): arrays and scalars in, arrays out. No pandas, no Ray."""

import os

# OpenMP threads of the parallel kernel would otherwise spin for a while after
# each chunk, taking the core the coordinator's own per-chunk work runs on
# (measured: 0.6 s -> 1.5 s of kernel time over 695 chunks of 100 assets on 2
# cores). Read by libgomp when numba first loads it; a user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from raybt.kernels.graph import dense_components_nb
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
    "dense_components_nb",
    "atr_nb",
    "exact_zscore_nb",
    "floor_lot_nb",
    "true_range_nb",
]
