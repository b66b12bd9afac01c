"""The layouts compared in one run: engine and setup seconds, and the overhead per chunk against its floor.

Used by ``scripts/bench_engine.py --layouts local colocated actors:2 actors:4
[--chunk 1D 7D]``. For each chunk length, every layout runs ``--repeat``
times back to back in this process on the same in-memory universe (breaker
and correlation on, as in the issue's measurement); then, in the same run,
the bare Ray fan-out round trip (:func:`raybt.ray.probe.fanout_round_trip`:
a no-op actor method on the same number of actors, called from an actor as
the coordinator calls its shards) is measured. The overhead per chunk of a
layout is ``(its best engine seconds - local's best) / chunks``; for
``actors:N`` the ratio to the N-actor round trip is printed.

Beside it, the *loaded* floor: the same fan-out when each of the N actors
spends on the CPU what a shard's kernel does per chunk (local's kernel
seconds per chunk x CPUs / N), minus local's kernel seconds per chunk. On a
machine without a core to spare the round trip grows while the actors work
(Ray's threads wait for a core), which the idle floor does not show; the
loaded floor is what a perfect actors layout would still pay there.

``engine s``: the clock loop plus collecting the outputs (``engine_s``);
``setup s``: plan + building the shards and the coordinator (``setup_s``),
``ready s``: waiting for the coordinator's process to have its kernels
(``setup.compile``); both after the bars are stored.
"""

from __future__ import annotations

import gc
import math
import os
import time


from raybt.config.params import validate_params
from raybt.config.universe import AssetConfig
from raybt.data.synth import iter_universe
from raybt.engine import PortfolioBacktester, release_free_memory
from raybt.phases import PhaseTimer


def parse_layout(spec: str, n_assets: int) -> tuple[str, dict]:
    """``local`` | ``colocated`` | ``actors:N`` -> (engine, config overrides)."""
    if spec == "local":
        return "local", {}
    if spec == "colocated":
        return "ray", {"layout": "colocated"}
    kind, _, count = spec.partition(":")
    if kind != "actors" or not count.isdigit() or int(count) < 1:
        raise SystemExit(f"--layouts: expected local, colocated or actors:N, got {spec!r}")
    return "ray", {"layout": "actors", "assets_per_actor": math.ceil(n_assets / int(count))}


def run_layouts(args, params: dict, bench_config) -> None:
    import ray

    from raybt.ray.probe import fanout_round_trip
    from raybt.ray.runtime import ensure_ray

    t = time.perf_counter()
    ensure_ray()
    print(f"ray.init {time.perf_counter() - t:.1f} s, {ray.available_resources().get('CPU')} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    n_assets, n_bars = args.assets[0], args.bars
    assets = {}
    for name, bars in iter_universe(n_assets=n_assets, n_bars=n_bars, timeframe="5m", seed=7, calendar="24x7"):
        assets[name] = (AssetConfig(name=name, data=None, timeframe="5m", params=validate_params(params)), bars)
    print(f"{n_assets} assets x {n_bars} bars, breaker and correlation on, best of {args.repeat}", flush=True)
    header = (f"{'chunk':>5} {'layout':<10} {'chunks':>6} {'engine s':>9} {'(runs)':<22} {'setup s':>8} "
              f"{'ready s':>8} {'loop s':>7} {'overhead ms/chunk':>18} {'fan-out ms':>11} {'ratio':>6} "
              f"{'loaded ms':>10} {'ratio':>6}")
    summary = []
    for chunk in args.chunk:
        best = {}
        for spec in args.layouts:
            engine, overrides = parse_layout(spec, n_assets)
            config = bench_config(chunk)
            if overrides:
                config = config.with_overrides(**overrides)
            runs = []
            for _ in range(args.repeat):
                timer = PhaseTimer()
                bt = PortfolioBacktester(assets, config, engine=engine, timer=timer)
                result = bt.run()
                t = result.timings
                runs.append((t["engine_s"], t["setup_s"], timer.seconds.get("setup.compile", 0.0), t["loop_s"],
                             t["n_chunks"], t.get("groups_s", math.nan)))
                del result, bt
                gc.collect()
                release_free_memory()
            best[spec] = (min(r[0] for r in runs), min(r[1] for r in runs), min(r[2] for r in runs),
                          min(r[3] for r in runs), runs[0][4], [r[0] for r in runs], min(r[5] for r in runs))
        counts = sorted({int(s.split(":")[1]) for s in args.layouts if s.startswith("actors:")})
        floors = {n: fanout_round_trip(n) for n in counts}
        loaded = {}  # n -> loaded floor (s): a fan-out with the shards' kernel work, minus local's kernel time
        if "local" in best and math.isfinite(best["local"][6]):
            kernel = best["local"][6] / best["local"][4]  # local's kernel seconds per chunk (all CPUs)
            cpus = float(ray.cluster_resources().get("CPU", 1))
            for n in counts:
                loaded[n] = fanout_round_trip(n, work_seconds=kernel * cpus / n)["median"] - kernel
        base = best.get("local", best.get("colocated"))[0] if ("local" in best or "colocated" in best) else None
        print(header)
        for spec in args.layouts:
            engine_s, setup_s, ready_s, loop_s, n_chunks, all_runs, _ = best[spec]
            over = (engine_s - base) / n_chunks * 1e3 if base is not None else float("nan")
            floor = ratio = loaded_text = loaded_ratio = ""
            if spec.startswith("actors:"):
                n = int(spec.split(":")[1])
                f = floors[n]["median"] * 1e3
                floor, ratio = f"{f:.2f}", f"{over / f:.2f}"
                lf = loaded.get(n, math.nan) * 1e3
                if math.isfinite(lf):
                    loaded_text, loaded_ratio = f"{lf:.2f}", f"{over / lf:.2f}"
                summary.append((chunk, spec, over, f, over / f, setup_s, lf))
            runs_text = " ".join(f"{x:.2f}" for x in all_runs)
            print(f"{chunk:>5} {spec:<10} {n_chunks:>6} {engine_s:>9.2f} {runs_text:<22} {setup_s:>8.2f} "
                  f"{ready_s:>8.2f} {loop_s:>7.2f} {over:>18.2f} {floor:>11} {ratio:>6} {loaded_text:>10} "
                  f"{loaded_ratio:>6}", flush=True)
        print("fan-out round trip (median, best) ms: " + ", ".join(
            f"{n} actors {v['median'] * 1e3:.2f}, {v['best'] * 1e3:.2f}" for n, v in floors.items()), flush=True)
        if loaded:
            print("loaded floor (fan-out with the shards' kernel work, minus local's kernel time) ms: " + ", ".join(
                f"{n} actors {v * 1e3:.2f}" for n, v in loaded.items()), flush=True)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for chunk, spec, over, floor, ratio, setup_s, loaded_floor in summary:
        verdict = "holds" if ratio <= 2 else "FAILS"
        against_loaded = (f"; {over / loaded_floor:.2f} x the loaded floor {loaded_floor:.2f} ms"
                          if math.isfinite(loaded_floor) else "")
        print(f"acceptance {chunk} {spec}: overhead {over:.2f} ms/chunk = {ratio:.2f} x fan-out {floor:.2f} ms "
              f"(<= 2x: {verdict}){against_loaded}; setup {setup_s:.2f} s")
