"""Throughput of ``raybt optimize``'s batch evaluation: candidate x bars per second.

Workload: the first ``--assets`` crypto assets of the bundled synthetic
universe (24/7, 105,120 five-minute bars each; generated on first use) x a
216-point grid (bb_period 3 x entry_z 3 x exit_z 2 x sl_atr 3 x tp_atr 2 x
max_hold_bars 2) over the assets' configured parameters, all bars per job.

Figures:

* in-process numba, one thread (``evaluate_jobs(parallel=False)``);
* Ray with 1 and with 2 workers: each in a fresh subprocess with
  ``ray.init(num_cpus=k)``, workers warmed up (started, numba cache loaded)
  before the clock starts; tasks of ``--batch`` jobs, ``num_cpus=1`` each;
* parallel efficiency = speedup(k workers vs 1 worker) / k.

Usage: python scripts/bench_optimize.py [--assets 4] [--bars N] [--batch 54]
The machine's other load shows up directly in these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
GRID = {"bb_period": [20, 30, 50], "entry_z": [1.8, 2.2, 2.6], "exit_z": [0.0, 0.5],
        "sl_atr": [1.5, 2.0, 3.0], "tp_atr": [3.0, 4.5], "max_hold_bars": [48, 96]}


def build_jobs(n_assets: int, n_bars: int | None):
    from raybt.broker import param_records
    from raybt.config.universe import load_asset_universe
    from raybt.config.grid import candidate_params, parse_grid
    from raybt.optimize.jobs import AssetJobs
    from raybt.universe import load_asset_bars

    universe = load_asset_universe(REPO / "configs" / "assets_config_highperf.json")
    names = [n for n, a in universe.assets.items() if a.asset_class == "crypto"][:n_assets]
    if len(names) < n_assets:
        names += [n for n in universe.assets if n not in names][: n_assets - len(names)]
    grid = parse_grid({"grid": GRID}, "bench-grid")
    candidates = grid.candidates()
    jobs = []
    for name in names:
        asset = universe.get(name)
        bars = load_asset_bars(asset, universe, echo=lambda m: print(m, file=sys.stderr))
        if n_bars:
            bars = bars.iloc[:n_bars]
        recs = param_records(candidate_params(candidates, asset.params))
        ohlc = np.vstack([bars[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close")])
        n = len(bars)
        jobs.append(AssetJobs(name, ohlc, recs, np.zeros(len(recs), dtype=np.int64),
                              np.full(len(recs), n, dtype=np.int64)))
    work = sum(len(j.params) * int(j.ends[0] - j.starts[0]) for j in jobs)
    return jobs, work, len(candidates)


def run_ray(workers: int, n_assets: int, n_bars: int | None, batch: int) -> dict:
    """Child process: ray.init(num_cpus=workers), warm the workers, time run_jobs."""
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    import ray

    from raybt.optimize.jobs import run_jobs, warm_up_evaluator

    jobs, work, _ = build_jobs(n_assets, n_bars)
    warm_up_evaluator(parallel=False)  # fill the numba cache before workers start
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"NUMBA_NUM_THREADS": "1"}})

    @ray.remote(num_cpus=1)
    def warm():
        from raybt.optimize.runner import warm_up_evaluator as w

        w(parallel=False)
        time.sleep(1.0)  # keep this worker busy so the next warm task starts another
        return os.getpid()

    pids = ray.get([warm.remote() for _ in range(workers)])
    t0 = time.perf_counter()
    run_jobs(jobs, engine="ray", batch=batch)
    elapsed = time.perf_counter() - t0
    ray.shutdown()
    return {"workers": workers, "seconds": elapsed, "work": work, "worker_pids": len(set(pids))}


def run_local(n_assets: int, n_bars: int | None) -> dict:
    import numba

    from raybt.optimize.evaluate import evaluate_jobs
    from raybt.optimize.runner import warm_up_evaluator

    jobs, work, _ = build_jobs(n_assets, n_bars)
    warm_up_evaluator(parallel=False)
    numba.set_num_threads(1)
    t0 = time.perf_counter()
    for j in jobs:
        evaluate_jobs(j.ohlc, j.params, j.starts, j.ends, parallel=False)
    return {"seconds": time.perf_counter() - t0, "work": work}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=4)
    parser.add_argument("--bars", type=int, default=None, help="use only the first N bars of each asset")
    parser.add_argument("--batch", type=int, default=54, help="jobs per Ray task (216 / 54 = 4 tasks per asset)")
    parser.add_argument("--child-ray", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child_ray:
        print("RESULT " + json.dumps(run_ray(args.child_ray, args.assets, args.bars, args.batch)), flush=True)
        return

    jobs, work, n_cand = build_jobs(args.assets, args.bars)
    bars = [int(j.ends[0]) for j in jobs]
    print(f"workload: {len(jobs)} assets ({', '.join(j.name for j in jobs)}) x {bars} bars x {n_cand} "
          f"candidates = {work / 1e6:.1f} M candidate-bars; cpus on this machine: {os.cpu_count()}")
    local = run_local(args.assets, args.bars)
    rate_local = local["work"] / local["seconds"]
    print(f"in-process numba, 1 thread : {local['seconds']:7.2f} s  {rate_local / 1e6:7.2f} M candidate-bars/s")
    rates = {}
    for workers in (1, 2):
        cmd = [sys.executable, __file__, "--child-ray", str(workers), "--assets", str(args.assets),
               "--batch", str(args.batch)] + (["--bars", str(args.bars)] if args.bars else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(proc.stdout[-2000:], proc.stderr[-4000:], sep="\n")
            raise SystemExit(f"ray benchmark with {workers} worker(s) failed")
        res = json.loads(line[7:])
        rates[workers] = res["work"] / res["seconds"]
        print(f"ray, {workers} worker{' ' if workers == 1 else 's'}              : {res['seconds']:7.2f} s  "
              f"{rates[workers] / 1e6:7.2f} M candidate-bars/s  ({res['worker_pids']} worker processes)")
    speedup = rates[2] / rates[1]
    print(f"ray 1-worker time / in-process 1-thread time: {rate_local / rates[1]:.3f}")
    print(f"speedup 2 vs 1 worker: {speedup:.2f}x; parallel efficiency: {speedup / 2:.1%}")


if __name__ == "__main__":
    main()
