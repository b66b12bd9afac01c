"""Kernel throughput in asset-bars/s on a synthetic 5-minute universe.

For 15 and 100 assets x 200,000 bars (24/7 calendar so every asset has
exactly that many bars): the strategy kernel over the whole universe in one
shard (one call), after JIT warm-up, best of 3, on one thread (serial kernel)
and on all threads (prange over assets), next to a numba loop that only reads
the same four OHLC arrays (the memory-bound ceiling), with the ratios.

    python scripts/bench_kernel.py [--bars 200000] [--assets 15 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np
from numba import njit, prange

from raybt.asset import AssetGroup, shard_bars
from raybt.broker import initial_state, param_records
from raybt.config.params import validate_params
from raybt.kernels import advance_shard_nb, advance_shard_parallel_nb
from raybt.types import TRADE_DT
from raybt.config.universe import load_asset_universe
from raybt.data.synth import iter_universe
from raybt.types import neutral_instructions


@njit(cache=True, parallel=True)
def read_only_parallel(opens, highs, lows, closes):
    total = 0.0
    for k in prange(len(closes)):
        a = np.int64(k)
        o, h, lo, c = opens[a], highs[a], lows[a], closes[a]
        acc = 0.0
        for g in range(c.shape[0]):
            acc += o[g] + h[g] + lo[g] + c[g]
        total += acc
    return total


@njit(cache=True)
def read_only_serial(opens, highs, lows, closes):
    total = 0.0
    for a in range(len(closes)):
        o, h, lo, c = opens[a], highs[a], lows[a], closes[a]
        for g in range(c.shape[0]):
            total += o[g] + h[g] + lo[g] + c[g]
    return total


def best_of(repeat, fn):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def universe_params(names):
    """Each asset's configured parameters where the bundled config has them (by class otherwise)."""
    universe = load_asset_universe("configs/assets_config_highperf.json")
    configured = list(universe.assets.values())
    out = []
    for i, name in enumerate(names):
        asset = universe.assets.get(name) or configured[i % len(configured)]
        out.append(validate_params({}, base=asset.params))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--assets", type=int, nargs="+", default=[15, 100])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    threads = numba.config.NUMBA_NUM_THREADS
    print(f"numba {numba.__version__}, {threads} threads, {os.cpu_count()} CPUs; {args.bars} bars per asset")
    header = (f"{'assets':>6} {'mode':<10} {'kernel s':>9} {'kernel Mbar/s':>14} {'read-only Mbar/s':>17} "
              f"{'kernel/ceiling':>15} {'vs 1 thread':>12} {'group step Mbar/s':>18} {'trades':>8}")
    print(header)
    for n_assets in args.assets:
        names, o, h, l, c, pos = [], [], [], [], [], []
        for name, bars in iter_universe(n_assets=n_assets, n_bars=args.bars, timeframe="5m", seed=1, calendar="24x7"):
            names.append(name)
            o.append(bars["open"].to_numpy()); h.append(bars["high"].to_numpy())
            l.append(bars["low"].to_numpy()); c.append(bars["close"].to_numpy())
            pos.append(np.arange(len(bars), dtype=np.int64))
        packed = shard_bars(o, h, l, c, pos)
        del o, h, l, c, pos
        params = param_records(universe_params(names))
        total_bars = sum(packed.n_bars(a) for a in range(n_assets))
        width = max(packed.n_bars(a) for a in range(n_assets))
        instructions = neutral_instructions(n_assets)
        # outputs preallocated once, as the engine does across chunks
        equity = np.empty((n_assets, width))
        trades = np.zeros((n_assets, width), dtype=TRADE_DT)
        counts = np.zeros(n_assets, dtype=np.int64)
        b = packed
        single = None
        for mode, kernel, reader, parallel in (
            ("1 thread", advance_shard_nb, read_only_serial, False),
            (f"{threads} threads", advance_shard_parallel_nb, read_only_parallel, True),
        ):
            def run_kernel():
                kernel(b.opens, b.highs, b.lows, b.closes, b.union_pos, b.union_base, params, initial_state(params),
                       instructions, 0, width, equity, trades, counts)

            def run_group():
                AssetGroup(packed, params, parallel=parallel).step(0, width, instructions)

            run_kernel()  # warm-up: JIT compile or cache load
            run_group()
            reader(b.opens, b.highs, b.lows, b.closes)
            t_kernel = best_of(args.repeat, run_kernel)
            n_trades = int(counts.sum())
            t_group = best_of(args.repeat, run_group)
            t_read = best_of(args.repeat, lambda: reader(b.opens, b.highs, b.lows, b.closes))
            k_rate, r_rate = total_bars / t_kernel / 1e6, total_bars / t_read / 1e6
            single = single or k_rate
            print(f"{n_assets:>6} {mode:<10} {t_kernel:>9.4f} {k_rate:>14.1f} {r_rate:>17.1f} {k_rate / r_rate:>15.3f} "
                  f"{k_rate / single:>12.2f} {total_bars / t_group / 1e6:>18.1f} {n_trades:>8}")


if __name__ == "__main__":
    main()
