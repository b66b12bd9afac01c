"""Per-chunk portfolio bookkeeping for the coordinator (numba).

One pass over a chunk's sleeve equities (assets x bars) gives what the
coordinator's decisions need: the portfolio equity path's maximum and last
value (the sum over assets, in asset order), and each asset's per-bar
returns summed into correlation blocks of ``block`` union-timeline positions.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def chunk_portfolio_nb(equity, previous, t_start, block, partial, partial_block):
    """Portfolio path statistics and block-summed returns of one chunk.

    ``equity``: assets x bars of the chunk (currency); ``previous``: each
    sleeve's equity before the chunk's first bar, rebalancing transfers
    included (the base of the first return); ``partial``/``partial_block``:
    the returns summed so far for the block still open from the previous
    chunk (``partial_block`` its id, -1 if none). A return is
    ``e_t / e_{t-1} - 1`` (0 when the base is not positive or the result
    is not finite). Block ``j`` covers positions ``[j*block, (j+1)*block)``.

    Returns ``(path_max, path_last, block_sums, first_block_id)`` where
    ``block_sums[i]`` sums block ``first_block_id + i`` (the last row may be
    an unfinished block).
    """
    n_assets, width = equity.shape
    first_id = t_start // block
    last_id = (t_start + width - 1) // block
    sums = np.zeros((last_id - first_id + 1, n_assets))
    if partial_block == first_id:
        for a in range(n_assets):
            sums[0, a] = partial[a]
    path = np.zeros(width)
    first_block_end = (first_id + 1) * block - t_start  # k where the chunk's second block starts
    for a in range(n_assets):
        base = previous[a]
        row = 0
        block_end = first_block_end
        total = sums[0, a]
        for k in range(width):
            if k == block_end:  # the block id advanced: no integer division per bar
                sums[row, a] = total
                row += 1
                block_end += block
                total = sums[row, a]
            value = equity[a, k]
            path[k] += value
            r = 0.0
            if base > 0.0:
                r = value / base - 1.0
                if not math.isfinite(r):
                    r = 0.0
            total += r
            base = value
        sums[row, a] = total
    path_max = -np.inf
    for k in range(width):
        if path[k] > path_max:
            path_max = path[k]
    return path_max, path[width - 1], sums, first_id
