"""The whole command a user waits for, phase by phase, next to the bare kernel.

Writes a synthetic universe (``--assets`` x ``--bars`` five-minute bars, 24/7
calendar) to Parquet first (not timed), then runs what ``raybt run`` runs,
through the Python API, with a :class:`raybt.phases.PhaseTimer`: loading the
bars, set-up (hashes, kernels, estimation, timeline, coordinator and shards),
the chunk loop, result assembly, metrics, every analysis step, every figure,
the report and every output file. Breaker and correlation scaling on, ``--chunk``
chunks (1D). ``ray.init`` is timed but not counted in the total.

Prints the phase table (seconds, share), the total, end-to-end asset-bars/s,
the run folder's size and, in the same process, the bare kernel over the same
bars and chunks (serial, no portfolio logic) with the ratio end-to-end /
kernel. Then, unless ``--no-memory``, the same command once more with the
memory sampler on (PSS of the whole process tree, Ray's daemons included):
sampling costs CPU, so memory and time come from different runs.

    python scripts/bench_end_to_end.py [--assets 100] [--bars 200000] [--engine ray|local] [--format parquet|csv]
        [--layout colocated|actors:N]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import PARAMS, PeakMemory, bare_kernel_seconds, bench_config  # noqa: E402
from bench_layouts import parse_layout  # noqa: E402

from raybt.config.params import validate_params
from raybt.config.universe import AssetConfig
from raybt.data.loader import load_bars  # noqa: E402
from raybt.data.synth import write_universe  # noqa: E402
from raybt.engine import PortfolioBacktester, release_free_memory  # noqa: E402
from raybt.phases import PhaseTimer  # noqa: E402
from raybt.plots.pool import FigurePool, figure_workers  # noqa: E402


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def whole_command(paths, args, out: Path, timer: PhaseTimer, figure_pool=None):
    """What ``raybt run`` does after ray.init: load, run, save with figures and report (drawn by
    ``figure_pool``, the workers ``raybt run`` starts before Ray)."""
    params = validate_params(PARAMS)
    configs = [AssetConfig(name=p.stem, data=p, timeframe="5m", params=params) for p in paths]
    config = bench_config(args.chunk)
    if args.engine == "ray":  # colocated or actors:N, as bench_engine.py --layouts names them
        config = config.with_overrides(**parse_layout(args.layout, len(paths))[1])
    backtester = PortfolioBacktester(configs, config, engine=args.engine, timer=timer)
    result = backtester.run()
    result.save(out, format=args.format, timer=timer, figure_pool=figure_pool)
    n_trades = len(result.trades)
    del result, backtester
    return n_trades


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=int, default=100)
    ap.add_argument("--bars", type=int, default=200_000)
    ap.add_argument("--engine", choices=["ray", "local"], default="ray")
    ap.add_argument("--chunk", default="1D")
    ap.add_argument("--layout", default="colocated", help="Ray engine: colocated (default) or actors:N")
    ap.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    ap.add_argument("--data-dir", default=None, help="where the universe is written (default: a temp dir)")
    ap.add_argument("--no-memory", action="store_true", help="skip the separate memory run")
    ap.add_argument("--no-kernel", action="store_true", help="skip the bare-kernel baseline")
    ap.add_argument("--serial-figures", action="store_true", help="draw the figures in this process, one by one")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="raybt-e2e-"))
    data = Path(args.data_dir) if args.data_dir else work / "data"
    folder = data / f"u{args.assets}x{args.bars}"
    t = time.perf_counter()
    if not (folder / "universe.json").is_file():
        write_universe(folder, n_assets=args.assets, n_bars=args.bars, timeframe="5m", seed=7, calendar="24x7")
    paths = sorted(folder.glob("*.parquet"))
    print(f"universe: {len(paths)} assets x {args.bars} bars in {folder} ({time.perf_counter() - t:.1f} s, not timed)")
    gc.collect()
    release_free_memory()

    timer = PhaseTimer()
    workers = 0 if args.serial_figures else figure_workers()
    figure_pool = FigurePool(workers) if workers else None  # started before Ray, as raybt run does
    if args.engine == "ray":
        from raybt.compile import start_driver_warm_up
        from raybt.ray.runtime import ensure_ray

        start_driver_warm_up(report=True)  # as raybt run does
        t = time.perf_counter()
        ensure_ray()
        print(f"ray.init {time.perf_counter() - t:.1f} s (not counted)")
    out = work / "run"
    t = time.perf_counter()
    n_trades = whole_command(paths, args, out, timer, figure_pool)
    drawn = {}
    if figure_pool is not None:
        drawn = figure_pool.drawn_seconds
        figure_pool.close()
    wall = time.perf_counter() - t
    seconds = timer.seconds
    seconds.pop("ray.init", None)
    counted = PhaseTimer(seconds)
    print()
    print(counted.table())
    total_bars = args.assets * args.bars
    size = folder_size(out)
    print(f"between phases (wall minus the phases): {wall - counted.total:.2f} s")
    print(f"\nend to end: {wall:.2f} s wall ({counted.total:.2f} s in phases), {total_bars / wall / 1e6:.2f} M asset-bars/s, "
          f"{n_trades:,} trades, run folder {size / 1e6:.1f} MB ({args.format})")
    print("by group: " + ", ".join(f"{g} {s:.2f} s" for g, s in counted.by_group().items()))
    if drawn:  # figure.parallel is their wall time on the pool's workers
        print(f"each figure in its worker ({figure_pool.workers} workers; {sum(drawn.values()):.2f} s in all): "
              + ", ".join(f"{name} {s:.2f}" for name, s in sorted(drawn.items(), key=lambda kv: -kv[1])))
    shutil.rmtree(out, ignore_errors=True)
    gc.collect()
    release_free_memory()

    if not args.no_kernel:
        params = validate_params(PARAMS)
        frames = [load_bars(p) for p in paths]
        kernel = bare_kernel_seconds(frames, [dict(params, initial_capital=1e6, weight=1 / len(frames))] * len(frames),
                                     args.chunk)
        del frames
        gc.collect()
        release_free_memory()
        print(f"bare kernel (serial, same bars and chunks): {kernel:.2f} s, {total_bars / kernel / 1e6:.1f} M asset-bars/s; "
              f"end to end / kernel = {wall / kernel:.1f}x")

    if not args.no_memory:
        with PeakMemory() as mem:
            pool = FigurePool(workers) if workers else None  # its workers count in the tree
            whole_command(paths, args, out, PhaseTimer(), pool)
            if pool is not None:
                pool.close()
        print(f"peak memory of the process tree (separate run, sampler on): PSS {mem.peak / 1e9:.2f} GB "
              f"(RSS sum {mem.peak_rss / 1e9:.2f} GB)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
