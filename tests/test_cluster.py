"""Cluster rehearsal: the actors layout spread over the nodes of a local multi-node Ray cluster.

Four nodes of this machine (``ray.cluster_utils.Cluster``, one CPU each);
twelve assets in four shard actors, placed across the nodes; the run folder's
tables equal ``--engine local``'s byte for byte. In a subprocess, so that the
session's Ray is not disturbed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

REHEARSAL = textwrap.dedent("""
    import sys
    from pathlib import Path
    import ray
    from ray.cluster_utils import Cluster
    sys.path.insert(0, {tests!r})
    from test_engine import _assets, _config
    from raybt.data.synth import generate_universe
    from raybt.engine import PortfolioBacktester

    root = Path(sys.argv[1])
    universe = generate_universe(n_assets=12, n_bars=3 * 288, timeframe="5m", seed=6, shocks=[(0.5, -0.2, 24)])
    config = _config()  # layout auto: on a multi-node cluster, shard actors, one per CPU
    cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1}})
    for _ in range(3):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    bt = PortfolioBacktester(_assets(universe), config, engine="ray")
    remote = bt.run()
    info = bt.run_info
    ray.shutdown()
    cluster.shutdown()
    local = PortfolioBacktester(_assets(universe), config, engine="local").run()
    remote.save(root / "remote", report=False)
    local.save(root / "local", report=False)
    print("RUN", info.layout, info.n_shards, len(set(info.nodes)), len(remote.trades),
          int((remote.events["event"] == "trip").sum()))
""")

TABLES = ("portfolio_equity.parquet", "trades.parquet", "multipliers.parquet", "events.csv")


@pytest.mark.ray
def test_actors_across_four_nodes_equal_local_byte_for_byte(tmp_path, repo_root):
    script = tmp_path / "rehearsal.py"
    script.write_text(REHEARSAL.format(tests=str(repo_root / "tests")))
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300,
                          cwd=repo_root)
    assert done.returncode == 0, done.stderr[-3000:]
    _, layout, shards, nodes, trades, trips = done.stdout.strip().splitlines()[-1].split()
    assert (layout, int(shards)) == ("actors", 4)  # chosen by auto: 4 CPUs on 4 nodes
    assert int(nodes) >= 3, "the shard actors were not spread over the nodes"
    assert int(trades) > 50 and int(trips) >= 1  # the breaker acted on the path the shards' digests made
    for name in TABLES:
        assert (tmp_path / "remote" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
