"""Portfolio sweeps: spec validation, expansion, point == direct run, Ray == local,
resumability, failed points, best_config.yaml."""

from __future__ import annotations

import argparse
import json
import shutil

import pandas as pd
import pytest
import yaml

from raybt.data.synth import write_universe
from raybt.engine import PortfolioBacktester
from raybt.errors import ConfigError
from raybt.metrics import json_safe
from raybt.universe import load_portfolio_from_config
from raybt.config.portfolio import load_portfolio_config
from raybt.sweep import load_sweep_spec, resolve_points, run_sweep
from raybt.sweep.command import add_sweep_arguments, sweep_command
from raybt.sweep.runner import METRIC_COLUMNS
from raybt.tables import read_table

N_BARS = 3000  # ~10 days of 5-minute bars, 24/7
PRODUCT = {"allocation.model": ["equal_weight", "risk_parity"], "rebalance": ["none", "weekly"]}


@pytest.fixture(scope="module")
def universe_dir(tmp_path_factory):
    """A 3-asset synthetic universe + asset config + base portfolio config."""
    root = tmp_path_factory.mktemp("universe")
    paths = write_universe(root / "data", n_assets=3, n_bars=N_BARS, seed=5, calendar="24x7")
    assets = {p.stem: {"data": f"data/{p.name}", "timeframe": "5m",
                       "strategy": {"bb_period": 20, "entry_z": 1.8},
                       "broker": {"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.0, "leverage": 10}}
              for p in paths}
    (root / "assets.json").write_text(json.dumps({"defaults": {"timeframe": "5m"}, "assets": assets}))
    base = {"name": "tiny", "asset_config": "assets.json", "initial_capital": 1_000_000,
            "allocation": {"model": "equal_weight", "lookback": "1D"}, "rebalance": "none",
            "risk": {"max_portfolio_drawdown": 0.05, "dd_scale_start": 0.01, "resume_drawdown": 0.02,
                     "cluster_correlation": 0.8, "correlation_window": 200, "cooldown_chunks": 2},
            "engine": {"chunk": "4h"}}
    (root / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    return root


def _write_sweep(folder, filename="sweep.yaml", **doc):
    doc = {"base": "base.yaml", **doc}
    path = folder / filename
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def local_sweep(universe_dir, tmp_path_factory):
    spec = load_sweep_spec(_write_sweep(universe_dir, "product.yaml", name="tiny", parameters=PRODUCT))
    out = tmp_path_factory.mktemp("sweeps") / "local"
    result = run_sweep(spec, out, engine="local", best_configs_dir=universe_dir)
    return spec, result


# --- validation ----------------------------------------------------------------------------

@pytest.mark.parametrize("doc,needle", [
    ({"paramters": {"rebalance": ["none"]}}, "unknown key 'paramters' (did you mean 'parameters'?)"),
    ({"mode": "grid", "parameters": {"rebalance": ["none"]}}, "mode: must be one of product, list"),
    ({"parameters": {"risk.max_portfolio_drawdwn": [0.1]}},
     "unknown config path 'risk.max_portfolio_drawdwn' (did you mean 'risk.max_portfolio_drawdown'?)"),
    ({"parameters": {"alocation.model": ["risk_parity"]}},
     "unknown config path 'alocation.model' (did you mean 'allocation.model'?)"),
    ({"parameters": {"rebalance": "weekly"}}, "parameters.rebalance: must be a non-empty list of values"),
    ({"mode": "list", "points": [{"rebalance": "none"}, {"risk.max_portfolio_drawdon": 0.1}]},
     "point 2: unknown config path 'risk.max_portfolio_drawdon' (did you mean 'risk.max_portfolio_drawdown'?)"),
    ({"mode": "list", "parameters": {"rebalance": ["none"]}}, "parameters: only with mode: product"),
])
def test_spec_errors(universe_dir, doc, needle):
    path = _write_sweep(universe_dir, "bad.yaml", **doc)
    with pytest.raises(ConfigError) as err:
        load_sweep_spec(path)
    assert needle in str(err.value) and "bad.yaml" in str(err.value) and "\n" not in str(err.value)


def test_invalid_value_names_the_point_before_anything_runs(universe_dir, tmp_path):
    path = _write_sweep(universe_dir, "badvalue.yaml",
                        parameters={"rebalance": ["none"], "risk.max_portfolio_drawdown": [0.1, 1.5]})
    spec = load_sweep_spec(path)
    out = tmp_path / "never"
    with pytest.raises(ConfigError) as err:
        run_sweep(spec, out, engine="local", best_configs_dir=tmp_path)
    msg = str(err.value)
    assert "badvalue.yaml: point 2 (rebalance=none, risk.max_portfolio_drawdown=1.5)" in msg
    assert "risk.max_portfolio_drawdown: must be in (0, 1), got 1.5" in msg
    assert not out.exists()  # nothing ran, nothing written

    bad_model = _write_sweep(universe_dir, "badmodel.yaml", mode="list",
                             points=[{"allocation.model": "equal_weight"}, {"allocation.model": "risk_parrity"}])
    with pytest.raises(ConfigError, match=r"badmodel.yaml: point 2 .*did you mean 'risk_parity'"):
        resolve_points(load_sweep_spec(bad_model))


# --- expansion -----------------------------------------------------------------------------

def test_product_and_list_expansion(universe_dir):
    spec = load_sweep_spec(_write_sweep(universe_dir, "p.yaml", parameters={
        "allocation.model": ["equal_weight", "risk_parity"], "max_assets": [1, 2, 3]}))
    assert spec.mode == "product" and spec.swept == ["allocation.model", "allocation.max_assets"]
    points = resolve_points(spec)
    assert [(p.params["allocation.model"], p.params["allocation.max_assets"]) for p in points] == [
        ("equal_weight", 1), ("equal_weight", 2), ("equal_weight", 3),
        ("risk_parity", 1), ("risk_parity", 2), ("risk_parity", 3)]
    assert [p.config.allocation.max_assets for p in points] == [1, 2, 3, 1, 2, 3]
    assert len({p.point_id for p in points}) == 6 and points[4].label == "RP/2"
    assert points[0].config.rebalance == "none"  # the base's value where not swept

    lst = load_sweep_spec(_write_sweep(universe_dir, "l.yaml", mode="list", points=[
        {"allocation.model": "risk_parity", "max_assets": 2}, {"rebalance": "weekly"}]))
    lp = resolve_points(lst)
    assert lst.swept == ["allocation.model", "allocation.max_assets", "rebalance"]
    assert [p.config.allocation.model for p in lp] == ["risk_parity", "equal_weight"]
    assert [p.config.rebalance for p in lp] == ["none", "weekly"]
    assert [p.value("allocation.max_assets") for p in lp] == [2, None]
    # the id depends on the resolved config only, not on the sweep it came from
    assert lp[0].point_id == points[4].point_id

    dup = load_sweep_spec(_write_sweep(universe_dir, "d.yaml", mode="list", points=[
        {"max_assets": 2}, {"allocation.max_assets": 2}]))
    with pytest.raises(ConfigError, match="point 2 .*same resolved config as point 1"):
        resolve_points(dup)


# --- running -------------------------------------------------------------------------------

def test_point_equals_direct_run(local_sweep, universe_dir):
    spec, result = local_sweep
    table = result.table
    assert list(table.columns) == ["point_id", "status", "error", *PRODUCT, *METRIC_COLUMNS]
    assert (table["status"] == "ok").all() and len(table) == 4
    point = next(p for p in result.points if p.params == {"allocation.model": "risk_parity", "rebalance": "weekly"})
    cfg = universe_dir / "direct.yaml"
    cfg.write_text(yaml.safe_dump(point.config_dict))
    assets, pconf = load_portfolio_from_config(None, cfg, best_configs_dir=universe_dir)
    direct = PortfolioBacktester(assets, pconf, engine="local").run()
    folder = result.out / "points" / point.point_id
    equity = read_table(folder / "portfolio_equity.parquet", index_col="timestamp")
    assert equity.index.equals(direct.equity.index)
    pd.testing.assert_frame_equal(equity, direct.equity, check_exact=True, check_index_type=False,
                                  check_freq=False)
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["portfolio"] == json.loads(json.dumps(json_safe(direct.metrics["portfolio"]), default=str))
    row = table[table["point_id"] == point.point_id].iloc[0]
    for key in ("total_return", "cagr", "sharpe", "max_drawdown", "calmar"):
        assert row[key] == direct.metrics["portfolio"][key]
    assert row["n_trades"] == len(direct.trades) > 0
    assert 1.0 <= row["diversification_ratio"] < 3 ** 0.5 + 1e-9
    # ranked by Sharpe, best first
    assert list(table["sharpe"]) == sorted(table["sharpe"], reverse=True)
    assert (result.out / "sweep_scatter.png").stat().st_size > 10_000


def test_best_config_loads_and_equals_best_point(local_sweep):
    spec, result = local_sweep
    best = result.best
    assert best.point_id == result.table.iloc[0]["point_id"]
    loaded = load_portfolio_config(result.out / "best_config.yaml")
    assert loaded.to_dict() == best.config.to_dict() == best.config_dict
    doc = json.loads((result.out / "sweep.json").read_text())
    assert doc["best"]["point_id"] == best.point_id and len(doc["points"]) == 4
    assert {p["status"] for p in doc["points"]} == {"ok"} and "total_s" in doc["timings"]


def test_resume_skips_complete_points(local_sweep, universe_dir, tmp_path):
    spec, first = local_sweep
    # resume a copy (file times kept): the shared sweep folder stays as the other tests expect it
    out = tmp_path / "resumed"
    shutil.copytree(first.out, out)
    marks = {p.point_id: (out / "points" / p.point_id / "point.json").stat().st_mtime_ns for p in first.points}
    before = pd.read_csv(out / "sweep_results.csv")
    again = run_sweep(spec, out, engine="local", best_configs_dir=universe_dir)
    assert again.timings["points_run"] == 0 and again.n_reused == 4
    assert {p.point_id: (out / "points" / p.point_id / "point.json").stat().st_mtime_ns
            for p in again.points} == marks
    pd.testing.assert_frame_equal(pd.read_csv(out / "sweep_results.csv"), before, check_exact=True)
    # a wider sweep into the same folder runs only its new points
    wider = load_sweep_spec(_write_sweep(universe_dir, "wider.yaml", name="tiny", parameters={
        **PRODUCT, "rebalance": ["none", "weekly", "daily"]}))
    third = run_sweep(wider, out, engine="local", best_configs_dir=universe_dir)
    assert third.timings["points_run"] == 2 and third.n_reused == 4 and len(third.table) == 6
    assert all((out / "points" / pid / "point.json").stat().st_mtime_ns == m for pid, m in marks.items())


def test_failed_point_recorded_and_exit_nonzero(universe_dir, tmp_path, capsys, monkeypatch):
    """A point that fails while it runs (after the up-front checks passed) is recorded, the others go on.

    (A point naming an unknown asset no longer runs at all: see tests/test_trust_optimize.py.)"""
    import raybt.sweep.runner as runner

    names = sorted(p.stem for p in (universe_dir / "data").glob("*.parquet"))
    path = _write_sweep(universe_dir, "failing.yaml", mode="list", points=[
        {"assets": names[:2]}, {"assets": [names[0], names[2]]}, {"assets": "all"}])
    real = runner.execute_job

    def flaky(job, frames):
        if [a.name for a in job.assets] == [names[0], names[2]]:
            raise MemoryError("worker ran out of memory\nsecond line")
        return real(job, frames)

    monkeypatch.setattr(runner, "execute_job", flaky)
    parser = add_sweep_arguments(argparse.ArgumentParser())
    out = tmp_path / "failing"
    args = parser.parse_args([str(path), "--engine", "local", "--out", str(out), "--no-progress"])
    assert sweep_command(args) == 1
    captured = capsys.readouterr()
    assert "1 of 3 sweep points failed" in captured.err
    table = pd.read_csv(out / "sweep_results.csv", keep_default_na=False)
    assert list(table["status"]) == ["ok", "ok", "failed"]  # failed ranked last
    failed = table.iloc[-1]
    assert failed["error"] == "MemoryError: worker ran out of memory"
    assert (out / "best_config.yaml").is_file() and (out / "sweep_scatter.png").is_file()
    ok_ids = table.loc[table["status"] == "ok", "point_id"]
    assert all((out / "points" / pid / "point.json").is_file() for pid in ok_ids)
    assert not (out / "points" / failed["point_id"]).exists()


def test_ray_and_local_sweeps_identical(ray_session, local_sweep, tmp_path, universe_dir):
    spec, local = local_sweep
    ray_result = run_sweep(spec, tmp_path / "ray", engine="ray", max_parallel=2, best_configs_dir=universe_dir)
    pd.testing.assert_frame_equal(ray_result.table, local.table, check_exact=True)
    ray_csv = pd.read_csv(tmp_path / "ray" / "sweep_results.csv")
    local_csv = pd.read_csv(local.out / "sweep_results.csv")
    pd.testing.assert_frame_equal(ray_csv, local_csv, check_exact=True)
    for p in ray_result.points:
        a = read_table(tmp_path / "ray" / "points" / p.point_id / "portfolio_equity.parquet")
        b = read_table(local.out / "points" / p.point_id / "portfolio_equity.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_sweep_out_into_a_folder_that_is_not_a_sweeps_is_refused(universe_dir, tmp_path, capsys):
    """A finished run folder (or any folder of other files) as --out: refused before anything runs,
    not mixed with points/, sweep.json and the scatter. An earlier sweep's folder is reused."""
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    for name in ("metrics.json", "portfolio_equity.parquet", "report.html"):
        (run_folder / name).write_text("{}")
    path = _write_sweep(universe_dir, "refused.yaml", name="refused", parameters=PRODUCT)
    parser = add_sweep_arguments(argparse.ArgumentParser())
    args = parser.parse_args([str(path), "--engine", "local", "--out", str(run_folder), "--no-progress"])
    with pytest.raises(ConfigError, match=r"run: output folder already holds files that are not a sweep's "
                                          r"\(metrics.json, portfolio_equity.parquet, report.html\)"):
        sweep_command(args)
    assert sorted(p.name for p in run_folder.iterdir()) == ["metrics.json", "portfolio_equity.parquet",
                                                             "report.html"]
