"""Interrupted runs: SIGTERM/SIGINT leave an incomplete folder; --resume finishes it bit-identically.

Also: an AssetActor process killed mid-run is restarted from the last
checkpoint and the run's results equal a run without the failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from raybt.data.synth import write_universe

RESULT_FILES = ("portfolio_equity.parquet", "trades.parquet", "multipliers.parquet", "events.csv", "weights_history.csv",
                "metrics.json")


@pytest.fixture(scope="module")
def portfolio_yaml(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    # long enough (about 1,400 chunks, a checkpoint every 3) that a signal sent
    # at the first checkpoint always lands mid-run
    paths = write_universe(root / "data", n_assets=4, n_bars=240 * 288, timeframe="5m", seed=21, calendar="24x7")
    assets = {p.stem: {"data": str(p), "strategy": {"bb_period": 20, "entry_z": 1.8},
                       "broker": {"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.0, "leverage": 10}}
              for p in paths}
    (root / "assets.json").write_text(json.dumps({"assets": assets}))
    (root / "p.yaml").write_text(
        "name: resume\nasset_config: assets.json\nrebalance: weekly\n"
        "allocation: {model: risk_parity, lookback: 5D}\n"
        "risk: {max_portfolio_drawdown: 0.05, dd_scale_start: 0.01, cluster_correlation: 0.5}\n"
        "engine: {chunk: 4h, checkpoint_every: 3}\n")
    return root / "p.yaml"


def _cli(*args):
    return [sys.executable, "-m", "raybt.cli", *map(str, args)]


def _assert_same_results(a: Path, b: Path):
    for name in RESULT_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def uninterrupted(portfolio_yaml, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run"
    done = subprocess.run(_cli("run", portfolio_yaml, "--engine", "local", "--out", out, "--no-progress",
                               "--no-report"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupted_run_resumes_bit_identically(portfolio_yaml, uninterrupted, tmp_path, sig, code):
    out = tmp_path / "run"
    partial = tmp_path / ".run.partial"
    proc = subprocess.Popen(_cli("run", portfolio_yaml, "--engine", "local", "--out", out, "--no-progress",
                                 "--no-report"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    first_state = partial / "checkpoint" / "state-a.rec"
    while not (first_state.exists() and first_state.stat().st_size):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and f"resume with raybt run --resume {out}" in err, err
    assert not out.exists()  # nothing under the final name
    assert (partial / "INCOMPLETE").is_file() and first_state.stat().st_size

    done = subprocess.run(_cli("run", "--resume", out, "--engine", "local", "--no-progress"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.is_dir() and not partial.exists()
    assert not (out / "INCOMPLETE").exists() and not (out / "checkpoint").exists()
    _assert_same_results(uninterrupted, out)
    assert not (out / "report.html").exists()  # the run as it was asked: --no-report
    info = json.loads((out / "run_info.json").read_text())
    full = json.loads((uninterrupted / "run_info.json").read_text())
    assert info["config_hash"] == full["config_hash"] and info["data_hashes"] == full["data_hashes"]


def test_resume_of_a_finished_run_is_refused(uninterrupted):
    done = subprocess.run(_cli("run", "--resume", uninterrupted), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "complete; nothing to resume" in done.stderr


def test_resume_refuses_a_changed_request(tmp_path, capsys):
    """--resume takes what to run from the interrupted run: a flag that would change it is one clear line."""
    from raybt.cli import main

    assert main(["run", "--resume", str(tmp_path / "run"), "--chunk", "1D", "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --resume continues a run as it was asked and cannot change it: remove --chunk, "
                   "--no-report (only --engine, --address and --no-progress go with --resume)"], err


def test_resume_refuses_changed_data(portfolio_yaml, tmp_path):
    from raybt.engine import PortfolioBacktester
    from raybt.errors import ConfigError
    from raybt.universe import load_portfolio_from_config

    assets, config = load_portfolio_from_config(None, portfolio_yaml)
    PortfolioBacktester(assets, config, engine="local").run(checkpoint_dir=tmp_path)  # a checkpoint every 3 chunks
    path = tmp_path / "checkpoint" / "run.json"
    run = json.loads(path.read_text())
    run["hashes"]["data"] = {n: "0" * 64 for n in run["hashes"]["data"]}
    path.write_text(json.dumps(run))
    with pytest.raises(ConfigError, match="data of asset .* changed"):
        PortfolioBacktester(assets, config, engine="local").run(checkpoint_dir=tmp_path, resume=True)


def test_killed_actor_is_restarted_and_results_are_identical(ray_session, portfolio_yaml):
    """SIGKILL one AssetActor's process mid-run: restart, restore the checkpoint, replay."""
    from ray._private import state

    from raybt.engine import PortfolioBacktester
    from raybt.universe import load_portfolio_from_config

    assets, config = load_portfolio_from_config(None, portfolio_yaml)
    config = config.with_overrides(chunk="1D")  # 240 chunks (a checkpoint every 3), not 1,440
    reference = PortfolioBacktester(assets, config, engine="local").run()
    killed = []

    def kill_one(summaries):
        if killed:
            return
        alive = [a["Pid"] for a in state.actors().values()
                 if a["ActorClassName"] == "Shard" and a["State"] == "ALIVE"]
        os.kill(alive[0], signal.SIGKILL)
        killed.append(alive[0])

    config = config.with_overrides(layout="actors", assets_per_actor=2)  # two shard actors
    bt = PortfolioBacktester(assets, config, engine="ray", progress=kill_one)
    result = bt.run()
    assert killed and bt.run_info.recoveries >= 1
    pd.testing.assert_frame_equal(reference.equity, result.equity, check_exact=True)
    pd.testing.assert_frame_equal(reference.trades, result.trades, check_exact=True)
    pd.testing.assert_frame_equal(reference.multipliers, result.multipliers, check_exact=True)
