"""Compile (or load from numba's cache) every kernel a run uses, before the clock starts.

Numba caches compiled kernels next to their sources. Compiling once in one
process before others start means the others load the cache instead of
compiling concurrently into it (which can crash); on the Ray engine the
coordinator's actor does it first, while the driver is still loading bars.
"""

from __future__ import annotations

import numpy as np


def warm_up_kernels() -> None:
    """Compile (or load from cache) the serial shard kernel and the coordinator's kernels in this process."""
    from raybt.asset import AssetGroup, shard_bars
    from raybt.broker import param_records
    from raybt.config.params import validate_params
    from raybt.types import neutral_instructions

    close = np.linspace(1.0, 1.1, 64)
    gapped = np.arange(0, 128, 2, dtype=np.int64)  # stored union positions (an asset with gaps)
    group = AssetGroup(shard_bars([close] * 2, [close * 1.001] * 2, [close * 0.999] * 2, [close] * 2,
                                  [np.arange(64, dtype=np.int64), gapped]),  # two assets: the lists' appends too
                       param_records([validate_params({})] * 2))
    group.step(0, 128, neutral_instructions(2))
    from raybt.risk import RollingBlockMoments

    moments = RollingBlockMoments(36, 2, block=4)
    equity = np.ascontiguousarray(np.vstack([close, close[::-1]]) * 1e5)
    moments.append_chunk(equity, equity[:, 0], 0)
    wide = np.ascontiguousarray(np.hstack([equity, equity]))
    moments.append_chunk(wide[:, 8:40], wide[:, 7], 8)  # a view of the coordinator's equity matrix, as it steps
    moments.factors(0.5)
