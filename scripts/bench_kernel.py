"""Kernel throughput in asset-bars/s on a synthetic 5-minute universe.

Default mode: for 15 and 100 assets x 200,000 bars (24/7 calendar so every
asset has exactly that many bars): the strategy kernel over the whole
universe in one shard (one call), after JIT warm-up, best of 3, on one thread
(serial kernel) and on all threads (prange over assets), next to a numba loop
that only reads the same four OHLC arrays (the memory-bound ceiling), with the
ratios. Each asset runs with its configured parameters.

``--identical``: the spec's default strategy (bb_period 20, entry_z 2,
exit_z 0, ATR 14, SL 1.5 ATR, TP 3 ATR, fixed 1 unit, no costs) on every
asset, run by our kernel and by a plain single-pass numba loop written in this
script (running window sums, the spec's event order and fills), on the same
bars in the same process, the whole range in one call with preallocated
outputs. Rounds are interleaved (plain loop, kernel on one thread, kernel on
all threads with the engine's scheduling, read-only ceiling); the best of
``--repeat`` rounds is reported with the spread (fastest-slowest round).
Prints both trade counts and PnL sums, whether the two produce the same
trades and equity bit for bit, and the ratios.

    python scripts/bench_kernel.py [--bars 200000] [--assets 15 100] [--repeat 3]
    python scripts/bench_kernel.py --identical [--bars 200000] [--assets 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numba
import numpy as np
from numba import njit, parallel_chunksize, prange

from raybt.asset import PARALLEL_ASSETS_PER_TASK, AssetGroup, shard_bars
from raybt.broker import initial_state, param_records
from raybt.config.params import validate_params
from raybt.config.universe import load_asset_universe
from raybt.data.synth import iter_universe
from raybt.kernels import advance_shard_nb, advance_shard_parallel_nb
from raybt.types import TRADE_DT, neutral_instructions


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


# --- the plain loop (--identical) ----------------------------------------------------
# Columns of the plain loop's trade table (float64, one row per closed trade).
P_SIDE, P_UNITS, P_ENTRY_BAR, P_ENTRY_PRICE, P_EXIT_BAR, P_EXIT_PRICE, P_REASON, P_PNL = range(8)
TOL = 1e-9


@njit(cache=True)
def plain_asset_nb(o, h, lo, c, n, entry_z, exit_z, m, sl_atr, tp_atr, cash, equity, trades):
    """The spec's default strategy on one asset, written plainly; returns #trades.

    Fixed 1 unit, contract size 1, leverage 1, no commission/spread/slippage,
    shorts allowed, no max hold, stop-out at 0.5 x margin. One pass over the
    bars: running sums of (close - close[0]) and its square over the last n
    closes for the z-score, a run length of equal closes (z undefined when the
    n closes are equal), ATR summed over its m true ranges at an entry signal.
    ``equity[i]`` (currency) at each close; ``trades[k]`` the k-th closed
    trade (columns P_*; exit reasons 0 sl, 1 tp, 2 signal, 3 end, 4 stopout).
    """
    N = c.shape[0]
    ref = c[0]
    s1 = 0.0
    s2 = 0.0
    run = 0
    side = 0  # 1 long, -1 short, 0 flat
    units = 0.0
    entry = 0.0
    entry_bar = 0
    sl = 0.0
    tp = 0.0
    margin = 0.0
    pending = 0  # 0 none, 1 exit, 2 long, 3 short
    dsl = 0.0
    dtp = 0.0
    k = 0
    inv_n = 1.0 / n
    for i in range(N):
        ci = c[i]
        d = ci - ref
        s1 += d
        s2 += d * d
        if i >= n:
            d0 = c[i - n] - ref
            s1 -= d0
            s2 -= d0 * d0
        if i > 0 and ci == c[i - 1]:
            run += 1
        else:
            run = 0
        oi = o[i]
        reason = -1
        px = 0.0
        # 1. the pending order fills at the open
        if pending == 1:
            reason = 2
            px = oi
        elif pending >= 2:
            u = math.floor(1.0 + 1e-9)
            cap = cash / oi  # margin <= equity at leverage 1
            if u > cap:
                u = math.floor(cap + 1e-9)
            if u > 0.0:
                units = u
                entry = oi
                entry_bar = i
                margin = u * oi
                if pending == 2:
                    side = 1
                    sl = oi - dsl
                    tp = oi + dtp
                else:
                    side = -1
                    sl = oi + dsl
                    tp = oi - dtp
        pending = 0
        if side != 0 and reason < 0:
            # 2. gap through a level at the open (trades opened before this bar)
            if entry_bar < i:
                if side == 1:
                    if oi <= sl:
                        reason = 0
                    elif oi >= tp:
                        reason = 1
                else:
                    if oi >= sl:
                        reason = 0
                    elif oi <= tp:
                        reason = 1
                px = oi
            # 3. intrabar at the exact level, stop-loss first
            if reason < 0:
                if side == 1:
                    if lo[i] <= sl:
                        reason = 0
                        px = sl
                    elif h[i] >= tp:
                        reason = 1
                        px = tp
                else:
                    if h[i] >= sl:
                        reason = 0
                        px = sl
                    elif lo[i] <= tp:
                        reason = 1
                        px = tp
            # 4. stop-out at the close, 5. end of data
            if reason < 0:
                upnl = (ci - entry) * units if side == 1 else (entry - ci) * units
                if cash + upnl < 0.5 * margin:
                    reason = 4
                    px = ci
                elif i == N - 1:
                    reason = 3
                    px = ci
        if reason >= 0:
            pnl = (px - entry) * units if side == 1 else (entry - px) * units
            cash += pnl
            trades[k, P_SIDE] = side
            trades[k, P_UNITS] = units
            trades[k, P_ENTRY_BAR] = entry_bar
            trades[k, P_ENTRY_PRICE] = entry
            trades[k, P_EXIT_BAR] = i
            trades[k, P_EXIT_PRICE] = px
            trades[k, P_REASON] = reason
            trades[k, P_PNL] = pnl
            k += 1
            side = 0
        # 6. decisions at the close
        if i >= n - 1 and run < n - 1:
            mean = s1 * inv_n
            var = s2 * inv_n - mean * mean
            if var > 0.0:
                z = (d - mean) / math.sqrt(var)
                if side == 1:
                    if z >= exit_z - TOL:
                        pending = 1
                elif side == -1:
                    if z <= -exit_z + TOL:
                        pending = 1
                elif i + 1 < N and i >= m - 1:
                    if z < -entry_z - TOL:
                        pending = 2
                    elif z > entry_z + TOL:
                        pending = 3
                    if pending >= 2:
                        total = 0.0
                        for q in range(i - m + 1, i + 1):
                            hl = h[q] - lo[q]
                            if q > 0:
                                hl = max(hl, max(abs(h[q] - c[q - 1]), abs(lo[q] - c[q - 1])))
                            total += hl
                        atr = total / m
                        dsl = sl_atr * atr
                        dtp = tp_atr * atr
        # 7. equity at the close
        if side == 1:
            equity[i] = cash + (ci - entry) * units
        elif side == -1:
            equity[i] = cash + (entry - ci) * units
        else:
            equity[i] = cash
    return k


@njit(cache=True)
def plain_loop_nb(opens, highs, lows, closes, n, entry_z, exit_z, m, sl_atr, tp_atr, cash, equity, trades, counts):
    """:func:`plain_asset_nb` over every asset, one after the other."""
    for a in range(len(closes)):
        counts[a] = plain_asset_nb(opens[a], highs[a], lows[a], closes[a], n, entry_z, exit_z, m, sl_atr, tp_atr,
                                   cash, equity[a], trades[a])


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


def load_bars(n_assets, n_bars):
    names, o, h, l, c, pos = [], [], [], [], [], []
    for name, bars in iter_universe(n_assets=n_assets, n_bars=n_bars, timeframe="5m", seed=1, calendar="24x7"):
        names.append(name)
        o.append(bars["open"].to_numpy()); h.append(bars["high"].to_numpy())
        l.append(bars["low"].to_numpy()); c.append(bars["close"].to_numpy())
        pos.append(np.arange(len(bars), dtype=np.int64))
    return names, shard_bars(o, h, l, c, pos)


def bench_configured(args, threads):
    header = (f"{'assets':>6} {'mode':<10} {'kernel s':>9} {'kernel Mbar/s':>14} {'read-only Mbar/s':>17} "
              f"{'kernel/ceiling':>15} {'vs 1 thread':>12} {'group step Mbar/s':>18} {'trades':>8}")
    print(header)
    for n_assets in args.assets:
        names, packed = load_bars(n_assets, args.bars)
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


def bench_identical(args, threads):
    p = validate_params({})
    print("spec defaults: bb_period {bb_period}, entry_z {entry_z}, exit_z {exit_z}, atr_period {atr_period}, "
          "sl_atr {sl_atr}, tp_atr {tp_atr}, sizing {sizing} {size} unit, no costs; whole range in one call, "
          "preallocated outputs; best of {r} interleaved rounds".format(r=args.repeat, **p))
    for n_assets in args.assets:
        _, b = load_bars(n_assets, args.bars)
        params = param_records([p] * n_assets)
        width = max(b.n_bars(a) for a in range(n_assets))
        total_bars = sum(b.n_bars(a) for a in range(n_assets))
        instructions = neutral_instructions(n_assets)
        # outputs preallocated once per kernel and reused by every round
        out = {kind: (np.empty((n_assets, width)), np.zeros((n_assets, width), dtype=TRADE_DT),
                      np.zeros(n_assets, dtype=np.int64)) for kind in ("serial", "parallel")}
        p_equity = np.empty((n_assets, width))
        p_trades = np.zeros((n_assets, width, 8))
        p_counts = np.zeros(n_assets, dtype=np.int64)

        def timed(call):
            """(wall s, CPU s of all this process's threads) of one call."""
            t0, c0 = time.perf_counter(), time.process_time()
            call()
            return time.perf_counter() - t0, time.process_time() - c0

        def run_plain():
            return timed(lambda: plain_loop_nb(
                b.opens, b.highs, b.lows, b.closes, p["bb_period"], p["entry_z"], p["exit_z"], p["atr_period"],
                p["sl_atr"], p["tp_atr"], p["initial_capital"] * p["weight"], p_equity, p_trades, p_counts))

        def kernel_run(kernel, kind, assets_per_task=0):
            equity, trades, counts = out[kind]

            def run():
                state = initial_state(params)  # fresh state, made outside the timing

                def call():
                    with parallel_chunksize(assets_per_task):
                        kernel(b.opens, b.highs, b.lows, b.closes, b.union_pos, b.union_base, params, state,
                               instructions, 0, width, equity, trades, counts)
                return timed(call)
            return run

        def run_read():
            return timed(lambda: read_only_serial(b.opens, b.highs, b.lows, b.closes))

        runs = {
            "plain loop, 1 thread": run_plain,
            "advance_shard_nb, 1 thread": kernel_run(advance_shard_nb, "serial"),
            # threads take PARALLEL_ASSETS_PER_TASK assets at a time, as AssetGroup runs it
            f"advance_shard_parallel_nb, {threads} threads": kernel_run(advance_shard_parallel_nb, "parallel",
                                                                        PARALLEL_ASSETS_PER_TASK),
            "read-only ceiling, 1 thread": run_read,
        }
        for fn in runs.values():  # warm-up: JIT compile or cache load
            fn()
        load_before = os.getloadavg()[0]
        times = {name: [] for name in runs}
        for _ in range(args.repeat):  # interleaved rounds
            for name, fn in runs.items():
                times[name].append(fn())
        load_after = os.getloadavg()[0]

        plain_trades = np.concatenate([p_trades[a, :p_counts[a]] for a in range(n_assets)])
        kernel_trades = {}
        for kind, (equity, trades, counts) in out.items():
            kernel_trades[kind] = np.concatenate([trades[a, :counts[a]] for a in range(n_assets)])
        k_trades = kernel_trades["serial"]
        same_trades = len(k_trades) == len(plain_trades) and all(
            np.array_equal(k_trades[field].astype(np.float64), plain_trades[:, col])
            for field, col in (("side", P_SIDE), ("units", P_UNITS), ("entry_bar", P_ENTRY_BAR),
                               ("entry_price", P_ENTRY_PRICE), ("exit_bar", P_EXIT_BAR),
                               ("exit_price", P_EXIT_PRICE), ("exit_reason", P_REASON), ("pnl", P_PNL)))
        same_equity = np.array_equal(out["serial"][0], p_equity)
        serial_is_parallel = (np.array_equal(out["serial"][0], out["parallel"][0])
                              and k_trades.tobytes() == kernel_trades["parallel"].tobytes())
        end_k = int(np.sum(k_trades["exit_reason"] == 3))
        end_p = int(np.sum(plain_trades[:, P_REASON] == 3))

        print(f"\n{n_assets} assets x {args.bars} bars = {total_bars / 1e6:.1f} M asset-bars; "
              f"1-minute load average {load_before:.2f} before the timed rounds, {load_after:.2f} after")
        print(f"{'kernel':<38} {'best s':>8} {'cpu s':>7} {'M asset-bars/s':>15} {'spread s (min-max)':>20} "
              f"{'trades':>10} {'of which end':>13} {'sum PnL':>16}")
        rows = {}
        for name, ts in times.items():
            wall, cpu = min(ts)  # the fastest round, and the CPU time it took
            rows[name] = total_bars / wall / 1e6
            trades_col, end_col, pnl_col = "", "", ""
            if name.startswith("plain"):
                trades_col, end_col, pnl_col = len(plain_trades), end_p, f"{plain_trades[:, P_PNL].sum():.6f}"
            elif name.startswith("advance"):
                trades_col, end_col, pnl_col = len(k_trades), end_k, f"{k_trades['pnl'].sum():.6f}"
            walls = [t[0] for t in ts]
            print(f"{name:<38} {wall:>8.4f} {cpu:>7.3f} {rows[name]:>15.1f} "
                  f"{f'{min(walls):.4f}-{max(walls):.4f}':>20} {trades_col!s:>10} {end_col!s:>13} {pnl_col:>16}")
        plain, serial, parallel, ceiling = rows.values()
        per_round = [s[0] / t[0] for s, t in zip(times[list(times)[1]], times[list(times)[2]])]
        print(f"\nsame trades as the plain loop (every field, bit for bit): {same_trades}; "
              f"same equity (every bar, bit for bit): {same_equity}; "
              f"{threads}-thread kernel output = 1-thread kernel output: {serial_is_parallel}")
        print(f"ratio kernel 1 thread / plain loop:        {serial / plain:.2f}x")
        print(f"ratio kernel {threads} threads / kernel 1 thread:  {parallel / serial:.2f}x "
              f"(best round vs best round; round by round: {', '.join(f'{r:.2f}' for r in per_round)})")
        print(f"ratio kernel 1 thread / read-only ceiling: {serial / ceiling:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--assets", type=int, nargs="+", default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--identical", action="store_true",
                        help="the spec's default strategy: our kernel next to a plain numba loop on the same bars")
    args = parser.parse_args()
    threads = numba.config.NUMBA_NUM_THREADS
    print(f"numba {numba.__version__}, {threads} threads, {os.cpu_count()} CPUs; {args.bars} bars per asset")
    if args.identical:
        args.assets = args.assets or [100]
        args.repeat = args.repeat or 5
        bench_identical(args, threads)
    else:
        args.assets = args.assets or [15, 100]
        args.repeat = args.repeat or 3
        bench_configured(args, threads)


if __name__ == "__main__":
    main()
