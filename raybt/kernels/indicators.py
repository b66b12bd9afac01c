"""Indicator kernels: Bollinger z-score and ATR at one bar.

All functions take one asset's bar arrays (``close`` etc., float64), an offset
``off`` of the asset's first bar in those arrays, and a *local* bar index ``j``.

z-score
-------
The spec defines ``z_j = (close_j - sma_j) / sd_j`` over the last ``n`` closes
(population sd). Recomputing the window every bar costs ``2n`` dependent adds;
instead the kernel keeps rolling sums of ``(close - ref)`` and
``(close - ref)**2`` (``ref`` a recent close, so no catastrophic cancellation),
rebuilt exactly from the window every ``ROLL_REBUILD_BARS`` bars. A rolling z
decides a threshold comparison only when it is far from every threshold
(``Z_GUARD``, 1e-6) and the window is well conditioned; otherwise the sums are
rebuilt from the window at that very bar with ``ref = close_j``, which gives z
with a relative error of about ``eps * (1 + z**2)`` (~1e-15), far inside the
spec's 1e-9 tolerance. Decisions therefore equal those of the exact two-pass
formula (:func:`exact_zscore_nb`, used by the tests), and the rolling sums are
part of the explicit kernel state, so a run split into chunks reproduces an
unsplit run bit for bit.

ATR
---
``ATR_j`` is the simple mean of the last ``m`` true ranges, summed left to right
(exactly as the plain reference loop does), computed only at entry signals.
"""

from __future__ import annotations

import math

from numba import njit

# Rebuild the rolling sums exactly from the window every this many bars.
ROLL_REBUILD_BARS = 64
# The fast z decides a threshold comparison only when it is at least this far
# (relative to max(1, |threshold|)) from the threshold. Its worst-case error on
# a well-conditioned window is below 1e-10.
Z_GUARD = 1e-6
# A window with E[(x - ref)^2] / var above this is ill-conditioned for the
# rolling formula: use the exact z instead.
ILL_CONDITIONED_RATIO = 1e3


@njit(cache=True)
def exact_zscore_nb(close, off, j, n):
    """Exact z of the window ``close[off+j-n+1 .. off+j]`` (caller ensures sd > 0)."""
    start = off + j - n + 1
    total = 0.0
    for k in range(start, off + j + 1):
        total = total + close[k]
    mean = total / n
    squares = 0.0
    for k in range(start, off + j + 1):
        dev = close[k] - mean
        squares = squares + dev * dev
    sd = math.sqrt(squares / n)
    return (close[off + j] - mean) / sd


@njit(cache=True)
def rebuild_window_sums_nb(close, off, j, n):
    """Exact shifted sums of the window ending at local bar j: (ref, s1, s2)."""
    ref = close[off + j]
    s1 = 0.0
    s2 = 0.0
    for k in range(off + j - n + 1, off + j + 1):
        dev = close[k] - ref
        s1 = s1 + dev
        s2 = s2 + dev * dev
    return ref, s1, s2


@njit(cache=True)
def fast_zscore_nb(close_j, ref, s1, s2, inv_n):
    """z from the shifted window sums; NaN when the window is ill-conditioned.

    ``s1 = sum(x - ref)``, ``s2 = sum((x - ref)**2)`` over the window's n
    closes, ``inv_n = 1 / n``.
    """
    mean_dev = s1 * inv_n
    mean_square = s2 * inv_n
    var = mean_square - mean_dev * mean_dev
    if var <= 0.0 or mean_square > ILL_CONDITIONED_RATIO * var:
        return math.nan
    return (close_j - ref - mean_dev) / math.sqrt(var)


@njit(cache=True)
def guard_band_nb(threshold):
    """Half-width of the band around ``threshold`` where a rolling z cannot decide."""
    return Z_GUARD * max(1.0, abs(threshold))


@njit(cache=True)
def undecidable_zscore_nb(z, abs_entry_z, entry_band, abs_exit_z, exit_band):
    """True when a rolling z is NaN or inside the guard band of +-entry_z or +-exit_z.

    The thresholds come in +- pairs, so the test is on |z|; written so that a
    NaN z (every comparison false) counts as undecidable.
    """
    abs_z = abs(z)
    return not (abs(abs_z - abs_entry_z) >= entry_band and abs(abs_z - abs_exit_z) >= exit_band)


@njit(cache=True)
def true_range_nb(high, low, close, off, j):
    """TR at local bar j: high-low at the asset's first bar, else Wilder's TR."""
    g = off + j
    hl = high[g] - low[g]
    if j == 0:
        return hl
    prev_close = close[g - 1]
    hc = abs(high[g] - prev_close)
    lc = abs(low[g] - prev_close)
    return max(hl, max(hc, lc))


@njit(cache=True)
def atr_nb(high, low, close, off, j, m):
    """Simple mean of the last m true ranges ending at local bar j (j >= m-1)."""
    total = 0.0
    for k in range(j - m + 1, j + 1):
        total = total + true_range_nb(high, low, close, off, k)
    return total / m
