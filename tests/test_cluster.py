"""Cluster rehearsal: a local multi-node Ray cluster (``ray.cluster_utils.Cluster``, four nodes of
this machine, one CPU each), started once for two checks:

* the actors layout spread over the nodes: twelve assets in four shard actors, the run folder's
  tables equal ``--engine local``'s byte for byte;
* a sweep whose data folder (bars and asset config) is deleted once the bars are in the object
  store: the workers on other nodes never read a file, and the table equals a local sweep's.

In a subprocess, so that the session's Ray is not disturbed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, shutil, sys
    from pathlib import Path
    import pandas as pd, ray, yaml
    from ray.cluster_utils import Cluster
    sys.path.insert(0, {tests!r})
    from test_engine import _assets, _config
    from raybt.config.sweep import load_sweep_spec
    from raybt.data.synth import generate_universe, write_universe
    from raybt.engine import PortfolioBacktester
    from raybt.sweep import run_sweep
    import raybt.ray.tasks as tasks

    root = Path(sys.argv[1])
    universe = generate_universe(n_assets=12, n_bars=3 * 288, timeframe="5m", seed=6, shocks=[(0.5, -0.2, 24)])
    config = _config()  # layout auto: on a multi-node cluster, shard actors, one per CPU

    data = root / "data"  # the sweep's universe, in files
    paths = write_universe(data, n_assets=3, n_bars=3 * 288, seed=8, calendar="24x7")
    assets = {{p.stem: {{"data": str(p), "timeframe": "5m", "strategy": {{"entry_z": 1.8}}}} for p in paths}}
    (data / "assets.json").write_text(json.dumps({{"assets": assets}}))
    base = {{"name": "c", "asset_config": str(data / "assets.json"), "engine": {{"chunk": "4h"}},
            "allocation": {{"lookback": "1D"}}, "risk": {{"max_portfolio_drawdown": 0.05}}}}
    (root / "base.yaml").write_text(yaml.safe_dump(base))
    (root / "s.yaml").write_text(yaml.safe_dump({{"base": "base.yaml", "name": "c",
                                                  "parameters": {{"allocation.model": ["equal_weight",
                                                                                       "risk_parity"]}}}}))
    spec = load_sweep_spec(root / "s.yaml")
    local_sweep = run_sweep(spec, root / "sweep_local", engine="local", best_configs_dir=None)

    cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1}})
    for _ in range(3):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    nodes = {{n["NodeID"] for n in ray.nodes() if n["Alive"]}}

    bt = PortfolioBacktester(_assets(universe), config, engine="ray")
    remote = bt.run()
    info = bt.run_info

    real = tasks.map_tasks

    def without_data(*args, **kwargs):  # every bar is in the object store now: the files (and config) go
        shutil.rmtree(data)
        return real(*args, **kwargs)

    tasks.map_tasks = without_data
    remote_sweep = run_sweep(spec, root / "sweep_remote", engine="ray", best_configs_dir=None)
    assert not data.exists()
    ray.shutdown()
    cluster.shutdown()

    local = PortfolioBacktester(_assets(universe), config, engine="local").run()
    remote.save(root / "remote", report=False)
    local.save(root / "local", report=False)
    print("RUN", info.layout, info.n_shards, len(set(info.nodes)), len(remote.trades),
          int((remote.events["event"] == "trip").sum()))
    pd.testing.assert_frame_equal(local_sweep.table, remote_sweep.table, check_exact=True)
    for p in remote_sweep.points:
        a = pd.read_parquet(root / "sweep_local" / "points" / p.point_id / "portfolio_equity.parquet")
        b = pd.read_parquet(root / "sweep_remote" / "points" / p.point_id / "portfolio_equity.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    print("SWEEP", len(nodes), int((remote_sweep.table["status"] == "ok").sum()))
""")

TABLES = ("portfolio_equity.parquet", "trades.parquet", "multipliers.parquet", "events.csv")


@pytest.fixture(scope="module")
def on_cluster(tmp_path_factory, repo_root):
    """(run folder root, {first word: the rest of that printed line}) of the script above."""
    root = tmp_path_factory.mktemp("cluster")
    script = root / "rehearsal.py"
    script.write_text(SCRIPT.format(tests=str(repo_root / "tests")))
    done = subprocess.run([sys.executable, str(script), str(root)], capture_output=True, text=True, timeout=600,
                          cwd=repo_root)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = {line.split()[0]: line.split()[1:] for line in done.stdout.strip().splitlines() if line.strip()}
    return root, lines


@pytest.mark.ray
def test_actors_across_four_nodes_equal_local_byte_for_byte(on_cluster):
    root, lines = on_cluster
    layout, shards, nodes, trades, trips = lines["RUN"]
    assert (layout, int(shards)) == ("actors", 4)  # chosen by auto: 4 CPUs on 4 nodes
    assert int(nodes) >= 3, "the shard actors were not spread over the nodes"
    assert int(trades) > 50 and int(trips) >= 1  # the breaker acted on the path the shards' digests made
    for name in TABLES:
        assert (root / "remote" / name).read_bytes() == (root / "local" / name).read_bytes(), name


@pytest.mark.ray
def test_sweep_on_a_cluster_whose_workers_have_no_data_files(on_cluster):
    """Both points ran on the cluster after the data folder was deleted, and equal the local sweep's
    (table and every point's equity, compared in the script)."""
    _, lines = on_cluster
    assert lines["SWEEP"] == ["4", "2"], lines
