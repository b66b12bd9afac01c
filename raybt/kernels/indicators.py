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

Most bars need neither the square root nor the division of the rolling z: its
only uses are threshold comparisons and the guard test, and
:func:`screened_zscore_nb` settles both from ``num**2`` against ``var`` times
precomputed bounds (:func:`zscore_zones_nb`), returning a stand-in z that
compares like the rolling z with every threshold. :func:`rolling_zscores_nb`
computes the z of a run of bars in passes (running sums, screen, the few bars
left to the exact z), with the rebuilds at exactly the bars where z computed
bar by bar would have them.

ATR
---
``ATR_j`` is the simple mean of the last ``m`` true ranges, summed left to right
(exactly as the plain reference loop does), computed only at entry signals.

Hot loops index arrays with unsigned integers where the index is known to be
non-negative: numba then emits no negative-index wraparound, and the screen
loop vectorises.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Rebuild the rolling sums exactly from the window every this many bars.
ROLL_REBUILD_BARS = 64
# The fast z decides a threshold comparison only when it is at least this far
# (relative to max(1, |threshold|)) from the threshold. Its worst-case error on
# a well-conditioned window is below 1e-10.
Z_GUARD = 1e-6
# A window with E[(x - ref)^2] / var above this is ill-conditioned for the
# rolling formula: use the exact z instead. For rolled sums the numerator is
# the peak (x - ref)^2 of every close the sums have held since their rebuild:
# each of the <= ROLL_REBUILD_BARS updates leaves a rounding residue of a few
# eps times that peak in s2 (and its square root in s1), so a window whose
# variance is tiny beside closes that have left it (prices that moved, then
# n nearly equal closes) is caught, not just one whose current closes sit far
# from ref. Below the ratio the rolling variance is good to ~1e-10 relative.
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


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def peak_square_nb(close, first, last, ref):
    """max of ``(close[k] - ref)**2`` over the global bars ``first .. last`` (0 when empty)."""
    peak = 0.0
    for k in range(first, last + 1):
        dev = close[k] - ref
        peak = max(peak, dev * dev)
    return peak


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


# The screen below works on q = num**2 against var times a squared bound; it
# only answers for a variance in this range (no overflow or underflow of the
# products), and otherwise leaves the bar to the exact z.
SCREEN_VAR_MIN = 1e-150
SCREEN_VAR_MAX = 1e150
# Relative margin of the screen's bounds on |z|: far above the few ulps by
# which the rolling z and the screen's products can differ from exact
# arithmetic, far below the guard band.
SCREEN_MARGIN = 1e-9


@njit(cache=True)
def zscore_zones_nb(entry_z, exit_z):
    """Constants of the z screen: (inner_sq, mid_lo_sq, mid_hi_sq, outer_sq, inner_z, mid_z, outer_z).

    The guard bands of :func:`undecidable_zscore_nb` (|z| within ``entry_band``
    of ``|entry_z|`` or within ``exit_band`` of ``|exit_z|``) cut |z| into at
    most three *zones* where a rolling z decides: inner (below both bands),
    middle (between them) and outer (above both). Every threshold comparison
    of the strategy (``z < -entry_z - 1e-9``, ``z >= exit_z - 1e-9``, ...) has
    its threshold inside a band, so within one zone and sign of z every
    comparison has the same outcome, and the rolling z is decidable there.

    With ``num`` and ``var`` the numerator and variance of the rolling z
    (``z = num / sqrt(var)``), ``num**2 < inner_sq * var`` proves |z| is in the
    inner zone, ``mid_lo_sq * var < num**2 < mid_hi_sq * var`` the middle one
    and ``num**2 > outer_sq * var`` the outer one (bounds shrunk by
    ``SCREEN_MARGIN``); a zone that does not exist gets a bound no q passes
    (-1 or +inf). ``inner_z``, ``mid_z`` and ``outer_z`` are a |z| inside each
    zone: ``+-zone_z`` (the sign of num) then stands for z in every comparison.
    """
    lo_a = abs(entry_z) - guard_band_nb(entry_z)
    hi_a = abs(entry_z) + guard_band_nb(entry_z)
    lo_b = abs(exit_z) - guard_band_nb(exit_z)
    hi_b = abs(exit_z) + guard_band_nb(exit_z)
    if lo_b < lo_a:  # band a is the lower one
        lo_a, hi_a, lo_b, hi_b = lo_b, hi_b, lo_a, hi_a
    two_bands = lo_b > hi_a
    top = hi_b if hi_b > hi_a else hi_a
    shrink = 1.0 - SCREEN_MARGIN
    grow = 1.0 + SCREEN_MARGIN
    inner_sq = -1.0
    inner_z = 0.0
    if lo_a > 1e-100:
        inner_sq = (lo_a * shrink) ** 2
        inner_z = lo_a / 2
    mid_lo_sq = math.inf
    mid_hi_sq = -1.0
    mid_z = 0.0
    if two_bands:
        mid_lo_sq = (hi_a * grow) ** 2
        mid_hi_sq = (lo_b * shrink) ** 2
        mid_z = (hi_a + lo_b) / 2
    outer_sq = (top * grow) ** 2
    outer_z = 2.0 * top + 1.0
    if not (math.isfinite(inner_sq) and math.isfinite(mid_hi_sq) and math.isfinite(outer_sq)):
        return -1.0, math.inf, -1.0, math.inf, 0.0, 0.0, 0.0  # no zone: every bar takes the exact z
    return inner_sq, mid_lo_sq, mid_hi_sq, outer_sq, inner_z, mid_z, outer_z


# Rows of the work array of rolling_zscores_nb: the z of each bar of the call
# (ZS_Z), and the running sums and peak square (see ILL_CONDITIONED_RATIO) of
# each bar of a segment.
ZS_Z, ZS_S1, ZS_S2, ZS_PEAK = 0, 1, 2, 3
ZS_ROWS = 4


@njit(cache=True)
def zscore_work_nb(bars):
    """A work array for :func:`rolling_zscores_nb` calls of up to ``bars`` bars (float64)."""
    return np.empty((ZS_ROWS, max(bars, ROLL_REBUILD_BARS)), dtype=np.float64)


@njit(cache=True, inline="always")
def screened_zscore_nb(num, var, peak_square, inner_sq, mid_lo_sq, mid_hi_sq, outer_sq, inner_z, mid_z, outer_z):
    """The stand-in ``+-zone_z`` of the rolling z ``num / sqrt(var)`` when the screen decides it, else +inf.

    ``peak_square`` is the largest ``(close - ref)**2`` the rolled sums have
    held (the ill-conditioning test, see ``ILL_CONDITIONED_RATIO``); the bounds and zone
    values come from :func:`zscore_zones_nb`. A finite result means the
    rolling z is decidable (:func:`undecidable_zscore_nb` is false) and every
    threshold comparison of the strategy gives the same answer for the
    stand-in as for the rolling z. Branch-free, so a loop of it vectorises.
    """
    q = num * num
    zone_z = inner_z if q < inner_sq * var else -1.0
    zone_z = outer_z if q > outer_sq * var else zone_z
    zone_z = mid_z if (mid_lo_sq * var < q) & (q < mid_hi_sq * var) else zone_z
    screened = ((zone_z >= 0.0) & (SCREEN_VAR_MIN < var) & (var < SCREEN_VAR_MAX)
                & (peak_square <= ILL_CONDITIONED_RATIO * var))
    return math.copysign(zone_z, num) if screened else math.inf


@njit(cache=True)
def rolling_zscores_nb(close, off, j0, j1, n, entry_z, exit_z, ref, s1, s2, age, equal_run, work):
    """z of the local bars [j0, j1), written to ``work[ZS_Z, j - j0]``; returns the new window state.

    The window state ``(ref, s1, s2, age, equal_run)`` is the kernel's
    ``roll_ref, roll_s1, roll_s2, roll_age, equal_run`` after bar ``j0 - 1``
    (see the module docstring); the returned tuple is the state after bar
    ``j1 - 1``. ``work``: :func:`zscore_work_nb` of at least ``j1 - j0`` bars.

    The bar's z is NaN before the window is full (``j < n - 1``), when the n
    closes are all equal, and when the window is ill-conditioned even after a
    rebuild. Otherwise it is the rolling z when that decides
    (:func:`undecidable_zscore_nb` false), and the z of the sums rebuilt at
    that bar when not. Where :func:`zscore_zones_nb` proves the rolling z
    decidable without computing it, the value written is its stand-in
    ``+-zone_z``, which every threshold comparison of the strategy decides
    the same way. The rebuilds happen at exactly the bars they would if z were
    computed at every bar (every ``ROLL_REBUILD_BARS`` bars and at undecidable
    bars), so the returned state does not depend on the screen.

    Between two rebuilds the window sums are rolled over a *segment* of bars
    with a fixed ``ref`` in three passes: the running sums (sequential), the
    screen (independent per bar, so the compiler vectorises it), then, only
    when the screen left a bar undecided or an equal-close run is long
    enough, a scalar pass for those bars (a rebuild there restarts the
    segment after it).
    """
    inv_n = 1.0 / n
    abs_entry_z = abs(entry_z)
    abs_exit_z = abs(exit_z)
    entry_band = guard_band_nb(entry_z)
    exit_band = guard_band_nb(exit_z)
    inner_sq, mid_lo_sq, mid_hi_sq, outer_sq, inner_z, mid_z, outer_z = zscore_zones_nb(entry_z, exit_z)
    prev = close[off + j0 - 1] if j0 > 0 else math.nan
    # the peak square of the sums carried in (rebuilt at local bar j0 - 1 - age): a function of the
    # bars, ref and age only, so a call that starts mid-segment sees the peak an unsplit run sees
    peak = 0.0
    if j0 > n - 1:
        peak = peak_square_nb(close, off + max(0, j0 - age - n), off + j0 - 1, ref)
    j = j0
    while j < j1 and j < n - 1:  # window not full yet: z undefined
        c = close[off + j]
        equal_run = equal_run + 1 if c == prev else 0
        prev = c
        work[ZS_Z, j - j0] = math.nan
        j += 1
    while j < j1:
        if (j == n - 1) | (age >= ROLL_REBUILD_BARS):
            # --- exact sums from the window at bar j ---------------------------
            c = close[off + j]
            equal_run = equal_run + 1 if c == prev else 0
            prev = c
            ref, s1, s2 = rebuild_window_sums_nb(close, off, j, n)
            peak = peak_square_nb(close, off + j - n + 1, off + j, ref)
            age = 0
            z = fast_zscore_nb(c, ref, s1, s2, inv_n)
            work[ZS_Z, j - j0] = math.nan if equal_run >= n - 1 else z
            j += 1
            continue
        # --- a segment of rolled bars [j, j + length) with this ref -------------
        # Indices below are unsigned (all are >= 0): numba then emits no
        # negative-index wraparound, and pass 2 vectorises.
        length = min(j1 - j, ROLL_REBUILD_BARS - age)
        g = off + j  # bar j + i is close[g + i]; the close leaving the window, close[g - n + i]
        zs = j - j0  # bar j + i's z goes to work[ZS_Z, zs + i]
        run_before = equal_run
        prev_before = prev
        # pass 1: the running sums (sequential: the same additions as bar by bar)
        long_runs = 0
        for i in range(length):
            c = close[np.uint64(g + i)]
            dev_new = c - ref
            dev_old = close[np.uint64(g - n + i)] - ref
            s1 = s1 + (dev_new - dev_old)
            s2 = s2 + (dev_new * dev_new - dev_old * dev_old)
            peak = max(peak, dev_new * dev_new)
            work[ZS_S1, i] = s1
            work[ZS_S2, i] = s2
            work[ZS_PEAK, i] = peak
            equal_run = equal_run + 1 if c == prev else 0
            prev = c
            long_runs += 1 if equal_run >= n - 1 else 0
        # pass 2: the screen, bar by bar independent; +inf marks an undecided bar
        undecided = 0
        for i in range(length):
            # the rolling z is num / sqrt(var), as fast_zscore_nb computes it
            mean_dev = work[ZS_S1, i] * inv_n
            var = work[ZS_S2, i] * inv_n - mean_dev * mean_dev
            num = (close[np.uint64(g + i)] - ref) - mean_dev
            z = screened_zscore_nb(num, var, work[ZS_PEAK, i], inner_sq, mid_lo_sq, mid_hi_sq, outer_sq,
                                   inner_z, mid_z, outer_z)
            work[ZS_Z, np.uint64(zs + i)] = z
            undecided += 1 if z == math.inf else 0
        age += length
        if undecided == 0 and long_runs == 0:
            j += length
            continue
        # pass 3: the bars the screen left undecided, and long equal-close runs
        run = run_before
        before = prev_before
        for i in range(length):
            c = close[g + i]
            run = run + 1 if c == before else 0
            before = c
            if work[ZS_Z, zs + i] == math.inf:
                mean_dev = work[ZS_S1, i] * inv_n
                var = work[ZS_S2, i] * inv_n - mean_dev * mean_dev
                if var <= 0.0 or work[ZS_PEAK, i] > ILL_CONDITIONED_RATIO * var:
                    rebuild = True  # the rolling z is NaN: undecidable
                else:
                    z = ((close[g + i] - ref) - mean_dev) / math.sqrt(var)
                    rebuild = undecidable_zscore_nb(z, abs_entry_z, entry_band, abs_exit_z, exit_band)
                    work[ZS_Z, zs + i] = z
                if rebuild:
                    # the sums are rebuilt at this bar; the segment restarts after it
                    k = j + i
                    ref, s1, s2 = rebuild_window_sums_nb(close, off, k, n)
                    peak = peak_square_nb(close, off + k - n + 1, off + k, ref)
                    age = 0
                    equal_run = run
                    prev = c
                    z = fast_zscore_nb(c, ref, s1, s2, inv_n)
                    work[ZS_Z, zs + i] = math.nan if run >= n - 1 else z
                    j = k + 1
                    break
            if run >= n - 1:  # all n closes equal: sd is zero, z undefined
                work[ZS_Z, zs + i] = math.nan
        else:
            j += length
    return ref, s1, s2, age, equal_run


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def atr_nb(high, low, close, off, j, m):
    """Simple mean of the last m true ranges ending at local bar j (j >= m-1).

    The true ranges of :func:`true_range_nb`, added left to right; written
    out here with unsigned indices (no negative-index wraparound code) and the
    asset's first bar, whose true range is high - low, taken out of the loop.
    """
    total = 0.0
    k = j - m + 1
    if k == 0:
        total = total + (high[off] - low[off])
        k = 1
    for g in range(off + k, off + j + 1):
        u = np.uint64(g)
        before = np.uint64(g - 1)
        hl = high[u] - low[u]
        hc = abs(high[u] - close[before])
        lc = abs(low[u] - close[before])
        total = total + max(hl, max(hc, lc))
    return total / m
