"""Cluster rehearsal at scale: the actors layout on a 4-node local Ray cluster, compared with --engine local.

Starts ``ray.cluster_utils.Cluster`` with ``--nodes`` nodes of this machine
(``--cpus`` CPUs each; ``--head-store-gb`` of object store on the head,
where the driver puts every bar, ``--store-gb`` on the others), runs ``--assets``
x ``--bars`` five-minute bars (breaker and correlation on) with
``engine.layout: actors`` and ``--assets-per-actor`` (default: one shard
actor per node's CPU), shuts the cluster down, runs the same portfolio with
``--engine local``, and checks that equity, trades, multipliers and events
are equal bit for bit. Prints wall and engine seconds, where the shards ran,
and the peak memory (PSS summed over this process and its children: the
cluster's raylets, object stores and workers) of each run.

    python scripts/bench_cluster.py [--assets 1000] [--bars 100000] [--nodes 4] [--chunk 1D]
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
from pathlib import Path

import pandas as pd

from raybt.config.params import validate_params
from raybt.config.universe import AssetConfig
from raybt.data.synth import iter_universe
from raybt.engine import PortfolioBacktester, release_free_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import PARAMS, PeakMemory, bench_config  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=int, default=1000)
    ap.add_argument("--bars", type=int, default=100_000)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--cpus", type=int, default=1, help="CPUs per node")
    ap.add_argument("--store-gb", type=float, default=1.5, help="object store per worker node (GB)")
    ap.add_argument("--head-store-gb", type=float, default=4.5, help="object store of the head node (GB): every bar")
    ap.add_argument("--assets-per-actor", type=int, default=None)
    ap.add_argument("--chunk", default="1D")
    args = ap.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    t = time.perf_counter()
    assets = {}
    for name, bars in iter_universe(n_assets=args.assets, n_bars=args.bars, timeframe="5m", seed=7,
                                    calendar="24x7"):
        assets[name] = (AssetConfig(name=name, data=None, timeframe="5m", params=validate_params(PARAMS)), bars)
    print(f"{args.assets} assets x {args.bars} bars generated in {time.perf_counter() - t:.1f} s; "
          f"load average {load()}", flush=True)
    per_actor = args.assets_per_actor or math.ceil(args.assets / (args.nodes * args.cpus))
    config = bench_config(args.chunk).with_overrides(layout="actors", assets_per_actor=per_actor)

    store = int(args.store_gb * 1e9)
    with PeakMemory() as cluster_memory:
        t = time.perf_counter()
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.cpus,
                                                                "object_store_memory": int(args.head_store_gb * 1e9)})
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=args.cpus, object_store_memory=store)
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        started = time.perf_counter() - t
        t = time.perf_counter()
        bt = PortfolioBacktester(assets, config, engine="ray")
        remote = bt.run()
        wall = time.perf_counter() - t
        info = bt.run_info
        del bt
        ray.shutdown()
        cluster.shutdown()
    nodes = pd.Series(info.nodes).value_counts()
    print(f"cluster: {args.nodes} nodes x {args.cpus} CPU started in {started:.1f} s; {info.layout_description}; "
          f"shards per node {sorted(nodes.tolist(), reverse=True)}", flush=True)
    print(f"actors: wall {wall:.2f} s, engine {remote.timings['engine_s']:.2f} s, setup {remote.timings['setup_s']:.2f} s, "
          f"{remote.timings['n_chunks']} chunks, peak {cluster_memory.peak / 1e9:.2f} GB (PSS, cluster included); "
          f"load average {load()}", flush=True)
    gc.collect()
    release_free_memory()

    with PeakMemory() as local_memory:
        t = time.perf_counter()
        local = PortfolioBacktester(assets, bench_config(args.chunk), engine="local").run()
        local_wall = time.perf_counter() - t
    print(f"local:  wall {local_wall:.2f} s, engine {local.timings['engine_s']:.2f} s, "
          f"peak {local_memory.peak / 1e9:.2f} GB (PSS); load average {load()}", flush=True)

    pd.testing.assert_frame_equal(local.equity, remote.equity, check_exact=True)
    pd.testing.assert_frame_equal(local.trades, remote.trades, check_exact=True)
    pd.testing.assert_frame_equal(local.multipliers, remote.multipliers, check_exact=True)
    pd.testing.assert_frame_equal(local.events, remote.events, check_exact=True)
    print(f"equal to --engine local bit for bit: equity {local.equity.shape}, {len(local.trades)} trades, "
          f"{len(local.multipliers)} multiplier rows, {len(local.events)} events")


if __name__ == "__main__":
    main()
