"""``raybt run --layout actors --assets-per-actor 1`` on the default config and bundled universe:
one shard actor per asset, and every result file byte for byte the one ``--engine local`` writes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# the files of a run that hold results (run_info.json has timings and the layout, config.yaml names the
# engine the run was given); --no-report: the figures and analysis follow from these tables (tests/test_outputs.py)
RESULT_FILES = ("portfolio_equity.parquet", "trades.parquet", "multipliers.parquet", "events.csv",
                "weights.csv", "weights_history.csv")


def _start(tmp_path, name, *args):
    out = tmp_path / name
    return out, subprocess.Popen([sys.executable, "-m", "raybt.cli", "run", "--out", str(out), "--no-progress",
                                  "--checkpoint-seconds", "0", "--no-report", *args],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


def _finish(started):
    out, proc = started
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    return out, stdout


@pytest.mark.ray
def test_one_actor_per_asset_equals_local_byte_for_byte(tmp_path):
    from raybt.config.universe import load_asset_universe
    from raybt.universe import ensure_synthetic

    # the configs and the bundled universe, written once, before the two runs read them
    subprocess.run([sys.executable, "-m", "raybt.cli", "init", str(tmp_path)], check=True, capture_output=True,
                   timeout=120)
    ensure_synthetic(load_asset_universe(tmp_path / "configs" / "assets_config_highperf.json").synthetic, None)
    # both at once (the local run is done while the actors start): the same results either way
    # four of the universe's assets: four shard actors and the coordinator start on the test's two cores
    runs = [_start(tmp_path, "local", "--engine", "local", "--max-assets", "4"),
            _start(tmp_path, "actors", "--engine", "ray", "--layout", "actors", "--assets-per-actor", "1",
                   "--max-assets", "4")]
    (local, _), (actors, printed) = [_finish(started) for started in runs]
    run = json.loads((actors / "run_info.json").read_text())["run"]
    n_assets = len(json.loads((local / "metrics.json").read_text())["assets"])
    assert run["layout"] == "actors" and run["n_shards"] == n_assets == 4, run
    assert "layout: actors" in printed
    for name in RESULT_FILES:
        assert (local / name).read_bytes() == (actors / name).read_bytes(), name
    metrics = [json.loads((folder / "metrics.json").read_text()) for folder in (local, actors)]
    assert metrics[0] == metrics[1]
