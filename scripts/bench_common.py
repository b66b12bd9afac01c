"""Shared pieces of the benchmark scripts: the bench portfolio, peak memory, the bare kernel baseline."""

from __future__ import annotations

import threading
import time

import numpy as np
import psutil

from raybt.broker import initial_state, param_records
from raybt.engine import pack_assets
from raybt.kernels import advance_shard_nb
from raybt.config.portfolio import portfolio_config_from_dict
from raybt.compile import warm_up_kernels
from raybt.timeline import chunk_bounds, union_timeline
from raybt.types import TRADE_DT, neutral_instructions

#: the bench strategy: risk sizing on a 10x leveraged account, max hold of 8 hours of 5-minute bars
PARAMS = {"sizing": "risk", "risk_per_trade": 0.005, "lot_size": 0.0, "leverage": 10,
          "bb_period": 20, "entry_z": 2.0, "max_hold_bars": 96}


def bench_config(chunk: str = "1D", **engine):
    """The bench portfolio: breaker at 15 %, correlation scaling above 0.7, ``chunk`` chunks."""
    return portfolio_config_from_dict({
        "name": "bench", "initial_capital": 1_000_000, "engine": {"chunk": chunk, **engine},
        "risk": {"max_portfolio_drawdown": 0.15, "cluster_correlation": 0.7, "correlation_window": 2000},
    }, "bench")


class PeakMemory:
    """Peak memory (bytes) of this process and all its descendants, sampled in a thread.

    ``peak``: sum of PSS (proportional set size: a shared page, e.g. the Ray
    object store mapped by the driver and every actor, counts once in total,
    split between the processes mapping it); ``peak_rss``: sum of RSS (counts
    shared pages once per process: an over-estimate, shown for comparison).
    Reading the PSS of the ~20 processes of a Ray tree costs about 65 ms of
    CPU per sample on the 2-core development VM, so time runs unobserved and
    measure memory in a separate run.
    """

    def __init__(self, interval=0.05):
        self.interval, self.peak, self.peak_rss, self._stop = interval, 0, 0, threading.Event()

    def _sample(self):
        me = psutil.Process()
        while not self._stop.is_set():
            pss = rss = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    info = p.memory_full_info()
                    pss += info.pss
                    rss += info.rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, pss)
            self.peak_rss = max(self.peak_rss, rss)
            time.sleep(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def bare_kernel_seconds(frames: list, params_list: list[dict], chunk: str = "1D", repeat: int = 2) -> float:
    """Best time of the serial shard kernel alone over ``frames``, chunk by chunk, no portfolio logic.

    Outputs are preallocated once and reused, so this is the kernel's own cost
    over the same bars and chunks an engine run steps through.
    """
    timeline = union_timeline([b.index for b in frames])
    packed = pack_assets(frames, timeline, np.arange(len(frames)))
    params = param_records(params_list)
    warm_up_kernels()
    bounds = chunk_bounds(timeline, chunk)
    widest = int(np.diff(bounds).max())
    n = len(frames)
    equity_out = np.empty((n, widest))
    trades_out = np.zeros((n, widest), dtype=TRADE_DT)
    counts = np.zeros(n, dtype=np.int64)
    neutral = neutral_instructions(n)
    best = float("inf")
    p = packed
    for _ in range(repeat):
        state = initial_state(params)
        t = time.perf_counter()
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            advance_shard_nb(p.opens, p.highs, p.lows, p.closes, p.union_pos, p.union_base, params, state, neutral,
                             int(lo), int(hi), equity_out, trades_out, counts)
        best = min(best, time.perf_counter() - t)
    return best
