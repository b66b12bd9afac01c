"""Cost of checkpoints on disk: the default portfolio at 1-hour chunks with and without them.

Runs ``raybt run`` (local engine, bundled universe, ``--chunk 1h``: about
8,700 chunks) alternately with a checkpoint every ``--every`` chunks (30, the
cadence shipped before checkpoints became time-based, so the cost of each one
shows) and with checkpoints off, ``--repeat`` times each, and prints the chunk
loop's seconds (``run.loop`` in run_info.json) and the whole command's, with
the ratios of the best and of the median runs (on a shared 2-core machine the
same run varies by a third from one try to the next: repeat enough). Each
run also records, in ``run_info.json``, how many checkpoints it took and the
seconds its loop spent in them (``checkpoints``, ``checkpoint_s``): the
checkpoints' own cost, which that noise does not blur.

    python scripts/bench_checkpoints.py [--repeat 3] [--every 30] [--engine local]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def one_run(cwd: Path, every: int, engine: str) -> dict:
    out = cwd / "results" / f"bench-{every}-{len(list((cwd / 'results').glob('bench-*')))}"
    done = subprocess.run([sys.executable, "-m", "raybt.cli", "run", "--engine", engine, "--chunk", "1h",
                           "--checkpoint-every", str(every), "--checkpoint-seconds", "0", "--no-progress",
                           "--out", str(out)], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr)
    timings = json.loads((out / "run_info.json").read_text())["timings"]
    phases = timings["phases"]
    phases.pop("ray.init", None)
    return {"loop": phases["run.loop"], "total": sum(phases.values()), "checkpoints": timings.get("checkpoints", 0),
            "checkpoint_s": timings.get("checkpoint_s", 0.0)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--every", type=int, default=30)
    ap.add_argument("--engine", choices=["local", "ray"], default="local")
    args = ap.parse_args()
    repo = Path(__file__).resolve().parent.parent
    cwd = Path(tempfile.mkdtemp(prefix="raybt-ckpt-"))
    (cwd / "configs").symlink_to(repo / "configs")
    (cwd / "results").mkdir()
    one_run(cwd, 0, args.engine)  # generates the bundled data and fills numba's cache: not timed
    runs = {args.every: [], 0: []}
    print(f"{'checkpoints':<22} {'loop s':>8} {'command s':>10} {'taken':>6} {'in them s':>10} {'share of loop':>14}")
    for _ in range(args.repeat):
        for every in (args.every, 0):
            r = one_run(cwd, every, args.engine)
            runs[every].append(r)
            label = f"every {every} chunks" if every else "off"
            print(f"{label:<22} {r['loop']:>8.2f} {r['total']:>10.2f} {r['checkpoints']:>6} {r['checkpoint_s']:>10.3f} "
                  f"{r['checkpoint_s'] / r['loop']:>13.1%}", flush=True)
    for name, pick in (("best", min), ("median", statistics.median)):
        loop = {k: pick([r["loop"] for r in v]) for k, v in runs.items()}
        total = {k: pick([r["total"] for r in v]) for k, v in runs.items()}
        print(f"{name} loop: with {loop[args.every]:.2f} s, off {loop[0]:.2f} s, ratio {loop[args.every] / loop[0]:.3f}; "
              f"{name} command: {total[args.every]:.2f} s vs {total[0]:.2f} s, ratio {total[args.every] / total[0]:.3f}")


if __name__ == "__main__":
    main()
