"""Compile (or load from numba's cache) every kernel a run uses, before the clock starts.

Numba caches compiled kernels next to their sources. Compiling once in one
process before others start means the others load the cache instead of
compiling concurrently into it (which can crash); on the Ray engine the
coordinator's actor does it first, while the driver is still loading bars.
"""

from __future__ import annotations

import threading

import numpy as np


class _Once:
    """``fn()`` run once per process, also when two threads ask at the same time (the second waits);
    after an error the next call tries again."""

    def __init__(self, fn):
        self._fn, self._lock, self._done = fn, threading.Lock(), False
        self.__doc__, self.__name__ = fn.__doc__, fn.__name__

    def __call__(self) -> None:
        with self._lock:
            if not self._done:
                self._fn()
                self._done = True


def skip_numba_blas_probe() -> None:
    """Let numba load its CPU target without importing scipy's BLAS first: 0.2-0.3 s of a shard
    actor's 1.1-1.5 s start on the 2-core machine.

    On its first compile or cache load, numba's CPU target imports ``numba.np.arraymath``, which
    probes for BLAS by importing ``scipy.linalg.cython_blas`` (``numba.np.linalg.ensure_blas``).
    The shard kernels call no BLAS; a kernel that does still gets it, since numba's helper library
    imports scipy's BLAS itself when such a call first runs. Works only before that first load
    (else it has happened); a numba without the probe is left as it is. For processes that run
    only raybt's kernels (the shard actors).
    """
    import sys

    if "numba.np.arraymath" in sys.modules:
        return
    try:
        import numba.np.linalg as numba_linalg
    except ImportError:
        return
    if callable(getattr(numba_linalg, "ensure_blas", None)):
        numba_linalg.ensure_blas = lambda: None


def warm_up_shard_kernels() -> None:
    """Numba's start-up and what a shard actor runs besides the strategy kernel (loaded at its first
    step): the typed-list and digest kernels. Imports nothing heavier than numba (no pandas, scipy)."""
    from raybt.chunk_digest import canonical_blocks, digest_chunk
    from raybt.kernels.lists import list_append_nb, list_length_nb, list_of_nb

    close = read_only_copy(np.linspace(1.0, 1.1, 16))
    items = list_of_nb(close)
    list_append_nb(items, close)
    list_length_nb(items)
    positions = list_of_nb(read_only_copy(np.arange(16, dtype=np.int64)))
    list_append_nb(positions, read_only_copy(np.arange(16, dtype=np.int64)))
    list_length_nb(positions)
    equity = np.vstack([close, close, close]) * 1e5
    digest_chunk(equity, np.zeros(3), 0, 0, equity[:, 0], np.zeros(3), -1, 4)
    assert canonical_blocks(0, 3) == [(1, 0), (0, 2)]


def read_only_copy(values) -> np.ndarray:
    out = np.array(values)
    out.flags.writeable = False
    return out


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


@_Once
def warm_up_analysis() -> None:
    """Load the analysis kernels (:mod:`raybt.analysis.nb`) from numba's cache by analysing a tiny
    synthetic run: 3 sleeves x 600 five-minute bars and a few trades, built by the same constructors
    as a real result, so every kernel meets the argument types of a real run. The Ray engine's driver
    does this while its coordinator starts (about 0.4 s it would otherwise spend after the run)."""
    import pandas as pd

    from raybt.analysis import analyse_run
    from raybt.records import trades_frame
    from raybt.result import equity_frame
    from raybt.types import LONG, TRADE_DT

    names = ["a", "b", "c"]
    index = pd.date_range("2024-01-01", periods=600, freq="5min", tz="UTC", name="timestamp")
    steps = np.random.default_rng(0).normal(0.0, 1e-3, (3, 600))
    sleeves = 1e5 * np.exp(np.cumsum(steps, axis=1))
    records = np.zeros(6, dtype=TRADE_DT)
    records["asset"] = [0, 1, 2, 0, 1, 2]
    records["side"] = LONG
    records["units"] = 1e4
    records["entry_bar"], records["exit_bar"] = [10, 20, 30, 300, 310, 320], [50, 80, 90, 400, 450, 500]
    records["entry_price"], records["exit_price"] = 1.0, 1.001
    records["exit_reason"] = [0, 1, 2, 0, 1, 2]
    records["pnl"], records["commission"] = [5.0, -3.0, 2.0, -1.0, 4.0, -2.0], 0.2
    trades = trades_frame(records, names, [index] * 3)
    params = {"contract_size": 1e5, "leverage": 30.0, "commission": 2e-5, "spread": 1e-4, "slippage": 0.0}
    analyse_run(equity_frame(sleeves.sum(axis=0), sleeves, names, index), trades,
                pd.Series(1 / 3, index=names), include_frontier=True, asset_params={n: params for n in names})
    from raybt.analysis.exposure import bar_positions

    index_ns = index.asi8
    bar_positions(index_ns, np.resize(index_ns, 1024))  # the lookup-table kernel, taken from 1,024 times on


def warm_up_driver(report: bool = False) -> None:
    """Load the driver's own kernels from numba's cache: the bar checks (:mod:`raybt.data.nb`, with
    numba itself: 0.6-0.9 s in a fresh process) and the analysis (:func:`warm_up_analysis`); with
    ``report``, import the report's modules too (matplotlib: about 1 s), which draw the figures too
    large to send to the figure workers."""
    import raybt.data.nb  # noqa: F401  (its kernels load as it is imported)

    warm_up_analysis()
    if report:
        import raybt.plots.report  # noqa: F401


def start_driver_warm_up(report: bool = False) -> threading.Thread:
    """:func:`warm_up_driver` (``report``: its modules too) in a background thread, started just before ``ray.init``.

    ``ray.init`` mostly waits on the processes it starts: measured 6.5-9 s with 30 % of the two
    cores idle, time in which the driver's kernels load, so that the bar checks and the analysis
    find them ready. An error in the thread is dropped: the same load on the main path raises it.
    """
    def quietly() -> None:
        try:
            warm_up_driver(report)
        except Exception:  # noqa: BLE001 - raised again where the kernels are used
            pass

    thread = threading.Thread(target=quietly, name="raybt-warm-up", daemon=True)
    thread.start()
    return thread
