"""Portfolio engine throughput and memory, local vs Ray, next to the bare kernel.

For each universe size (default 15, 100 and 1,000 assets x 200,000 five-minute
bars on the 24/7 calendar; use --bars to shrink the 1,000-asset case), with
the breaker and correlation scaling on and ``--chunk 1D``: engine wall time
(excluding ray.init and data generation), asset-bars/s, peak memory of the
whole process tree (driver + Ray daemons and workers, PSS sampled every 50 ms
from before the bars are loaded to the finished result), for ``--engine
local`` and ``--engine ray``, and the bare kernel time for the same bars (the
serial kernel over the same 1D chunks, no portfolio logic).

Data source (``--source``): ``files`` (default) writes the synthetic universe
to Parquet first (data generation, not timed) and gives the engine asset
configs pointing at the files, the way ``raybt run`` does, so loading the bars
counts in the peak memory; ``memory`` passes DataFrames the script holds for
the whole run (a notebook's way: the caller's copy counts too).

Each engine runs ``--repeat`` times (default 2) in this process, every run
printed (the first run of a process pays one-off costs: fresh memory pages,
numba thread start-up), then once more (run ``mem``) with the memory sampler
on: reading the PSS of the ~20 processes of the tree costs about 65 ms of CPU
per sample on this VM, which would slow the timed runs, so time and memory
come from different runs.

    python scripts/bench_engine.py [--assets 15 100 1000] [--bars 200000] [--bars-1000 100000]

With ``--layouts local colocated actors:2 actors:4 [--chunk 1D 7D]`` it
compares the layouts instead (one universe, ``--assets 100``): engine and
setup seconds per layout and the overhead per chunk against the bare Ray
fan-out round trip measured in the same run (:mod:`bench_layouts`).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from raybt.broker import initial_state, param_records
from raybt.config.params import validate_params
from raybt.kernels import advance_shard_nb
from raybt.types import TRADE_DT
from raybt.config.universe import AssetConfig
from raybt.data.synth import iter_universe, write_universe
from raybt.engine import PortfolioBacktester, pack_assets, release_free_memory
from raybt.timeline import chunk_bounds, union_timeline
from raybt.types import neutral_instructions
from raybt.compile import warm_up_kernels

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import PARAMS, PeakMemory, bench_config  # noqa: E402


def config():
    return bench_config("1D")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=int, nargs="+", default=[15, 100, 1000])
    ap.add_argument("--bars", type=int, default=200_000)
    ap.add_argument("--bars-1000", type=int, default=100_000, help="bars per asset for universes >= 1000")
    ap.add_argument("--engines", nargs="+", default=["local", "ray"])
    ap.add_argument("--source", choices=["files", "memory"], default="files")
    ap.add_argument("--repeat", type=int, default=2, help="runs per engine")
    ap.add_argument("--data-dir", default=None, help="where --source files writes the universe (default: a temp dir)")
    ap.add_argument("--layouts", nargs="+", default=None,
                    help="compare layouts instead: local colocated actors:N ... (see bench_layouts.py)")
    ap.add_argument("--chunk", nargs="+", default=["1D"], help="chunk lengths for --layouts")
    args = ap.parse_args()
    if args.layouts:
        from bench_layouts import run_layouts

        run_layouts(args, PARAMS, bench_config)
        return

    import ray

    from raybt.ray.runtime import ensure_ray

    t = time.perf_counter()
    ensure_ray()
    print(f"ray.init {time.perf_counter() - t:.1f} s, {ray.available_resources().get('CPU')} CPUs")
    print(f"{'assets':>6} {'bars':>8} {'engine':<6} {'run':>3} {'wall s':>8} {'Mbar/s':>8} {'peak GB':>8} {'RSS GB':>7} "
          f"{'kernel s':>9} {'kernel Mbar/s':>14} {'engine/kernel':>14} {'groups s':>9} {'coord s':>8} {'loop s':>7} {'setup s':>8} {'trades':>8}")
    for n_assets in args.assets:
        n_bars = args.bars if n_assets < 1000 else args.bars_1000
        assets = {}
        for name, bars in iter_universe(n_assets=n_assets, n_bars=n_bars, timeframe="5m", seed=7, calendar="24x7"):
            assets[name] = (AssetConfig(name=name, data=None, timeframe="5m", params=validate_params(PARAMS)), bars)
        total = n_assets * n_bars
        timeline = union_timeline([b.index for _, b in assets.values()])
        packed = pack_assets([b for _, b in assets.values()], timeline, np.arange(n_assets))
        params = param_records([dict(a.params, initial_capital=1e6, weight=1 / n_assets) for a, _ in assets.values()])
        warm_up_kernels()
        bounds = chunk_bounds(timeline, "1D")
        widest = int(np.diff(bounds).max())
        equity_out = np.empty((n_assets, widest))
        trades_out = np.zeros((n_assets, widest), dtype=TRADE_DT)
        counts = np.zeros(n_assets, dtype=np.int64)
        p = packed
        kernel_s = float("inf")
        neutral = neutral_instructions(n_assets)
        for _ in range(2):  # serial kernel over the same 1D chunks, outputs preallocated and reused
            state = initial_state(params)
            t = time.perf_counter()
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                advance_shard_nb(p.opens, p.highs, p.lows, p.closes, p.union_pos, p.union_base, params, state, neutral,
                                 int(lo), int(hi), equity_out, trades_out, counts)
            kernel_s = min(kernel_s, time.perf_counter() - t)
        del packed, p, equity_out, trades_out
        gc.collect()
        release_free_memory()  # freed heap back to the OS, so the next peak counts live memory only
        if args.source == "files":
            folder = Path(args.data_dir or tempfile.mkdtemp(prefix="raybt-bench-")) / f"u{n_assets}x{n_bars}"
            paths = write_universe(folder, n_assets=n_assets, n_bars=n_bars, timeframe="5m", seed=7,
                                   calendar="24x7")
            del assets
            gc.collect()
            release_free_memory()  # freed heap back to the OS, so the next peak counts live memory only

            def inputs():
                return [AssetConfig(name=p.stem, data=p, timeframe="5m", params=validate_params(PARAMS))
                        for p in paths]
        else:
            def inputs():
                return assets
        for engine in args.engines:
            # timed runs unobserved, then one run watched for memory: reading PSS of the ~20 processes
            # costs ~65 ms of CPU per sample here, which would slow the timed runs on 2 cores
            for run in [*range(1, args.repeat + 1), "mem"]:
                mem = PeakMemory() if run == "mem" else contextlib.nullcontext()
                with mem:
                    bt = PortfolioBacktester(inputs(), config(), engine=engine)
                    result = bt.run()
                t = result.timings
                wall = t["engine_s"]
                peak, peak_rss = (f"{mem.peak / 1e9:>8.2f}", f"{mem.peak_rss / 1e9:>7.2f}") if run == "mem" \
                    else (f"{'-':>8}", f"{'-':>7}")
                print(f"{n_assets:>6} {n_bars:>8} {engine:<6} {run:>3} {wall:>8.2f} {total / wall / 1e6:>8.1f} "
                      f"{peak} {peak_rss} {kernel_s:>9.2f} "
                      f"{total / kernel_s / 1e6:>14.1f} {wall / kernel_s:>14.2f} {t['groups_s']:>9.2f} "
                      f"{t['coordinator_s']:>8.2f} {t['loop_s']:>7.2f} {t['setup_s']:>8.2f} {len(result.trades):>8}",
                      flush=True)
                del result, bt
                gc.collect()
                release_free_memory()  # freed heap back to the OS, so the next peak counts live memory only
        if args.source == "files":
            shutil.rmtree(folder, ignore_errors=True)
        else:
            del assets
        gc.collect()
        release_free_memory()  # freed heap back to the OS, so the next peak counts live memory only

if __name__ == "__main__":
    main()
