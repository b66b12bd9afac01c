"""raybt optimize: batch evaluation = run_backtest, Ray = local, selection, grid validation, outputs."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pandas as pd
import pytest

from raybt.backtest import run_backtest
from raybt.config.params import validate_params
from raybt.data.synth import generate_universe
from raybt.errors import ConfigError
from raybt.optimize.evaluate import evaluate_params
from raybt.config.grid import SelectionRules, candidate_params, load_grid, parse_grid
from raybt.optimize.outputs import write_outputs
from raybt.optimize.runner import run_optimization, walk_forward_windows
from raybt.optimize.select import select_candidate
from raybt.config.resolve import load_best_configs

N_BARS = 4000

GRID_DOC = {
    "grid": {"bb_period": [20, 40], "entry_z": [1.6, 2.2], "sl_atr": [1.5, 3.0], "max_hold_bars": [0, 48]},
    "selection": {"max_drawdown": 0.3, "min_trades": 5},
}


@pytest.fixture(scope="module")
def universe():
    return generate_universe(n_assets=2, n_bars=N_BARS, seed=11, calendar="24x7")


@pytest.fixture(scope="module")
def base_params():
    return validate_params({"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.01, "leverage": 20,
                            "commission": 2e-5, "spread": 1e-5, "contract_size": 1000})


@pytest.fixture(scope="module")
def assets(universe, base_params):
    return {name: (base_params, bars) for name, bars in universe.items()}


@pytest.fixture(scope="module")
def grid():
    return parse_grid(GRID_DOC, "test-grid")


def _close(a, b, rel=1e-9):
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    if isinstance(b, float) and math.isinf(b):
        return a == b
    return a == b or abs(a - b) <= rel * abs(b)


# --- evaluate == run_backtest + compute_metrics ---------------------------------------

@pytest.mark.parametrize("span", ["full", "train", "test"])
def test_evaluate_matches_run_backtest(universe, base_params, grid, span):
    name, bars = next(iter(universe.items()))
    split = int(0.7 * len(bars))
    start, end = {"full": (0, len(bars)), "train": (0, split), "test": (split, len(bars))}[span]
    points = grid.candidates()
    params = candidate_params([points[0], points[5], points[10], points[15]], base_params)
    got = evaluate_params(bars, params, start, end)
    for p, m in zip(params, got):
        ref = run_backtest(bars.iloc[start:end], p).metrics
        assert m["n_trades"] == ref["n_trades"]
        assert m["pnl"] == ref["pnl"]  # exact
        assert m["final_equity"] == ref["final_equity"]
        assert m["n_bars"] == ref["n_bars"]
        for key in ("total_return", "sharpe", "max_drawdown", "win_rate", "profit_factor", "avg_trade_pnl",
                    "total_commission"):
            assert _close(m[key], ref[key]), (key, m[key], ref[key])
    assert any(m["n_trades"] > 0 for m in got)


def test_evaluate_parallel_equals_serial(universe, base_params, grid):
    name, bars = next(iter(universe.items()))
    params = candidate_params(grid.candidates(), base_params)
    serial = pd.DataFrame(evaluate_params(bars, params, 100, 3000, parallel=False))
    parallel = pd.DataFrame(evaluate_params(bars, params, 100, 3000, parallel=True))
    pd.testing.assert_frame_equal(serial, parallel)


# --- engines ------------------------------------------------------------------------------

def test_ray_and_local_tables_identical(ray_session, assets, grid):
    local = run_optimization(assets, grid, train=0.7, engine="local", batch=5)
    ray_ = run_optimization(assets, grid, train=0.7, engine="ray", batch=7)
    pd.testing.assert_frame_equal(local.candidates, ray_.candidates)
    assert len(local.candidates) == len(assets) * grid.size
    assert {c for c in local.candidates.columns if c.startswith("is_")}
    assert {c for c in local.candidates.columns if c.startswith("oos_")}
    for pref in local.choices:
        for name in assets:
            assert local.choices[pref][name] == ray_.choices[pref][name]


# --- selection -------------------------------------------------------------------------------

def _table():
    return pd.DataFrame({
        "candidate": [0, 1, 2, 3, 4, 5],
        "sharpe": [1.0, 2.5, 3.0, 2.5, np.nan, 0.5],
        "pnl": [100.0, 500.0, 900.0, 600.0, 50.0, 900.0],
        "max_drawdown": [0.10, 0.20, 0.40, 0.20, 0.01, 0.05],
        "n_trades": [50, 50, 50, 50, 50, 10],
    }, index=[10, 11, 12, 13, 14, 15])


def test_selection_rules():
    rules = SelectionRules(max_drawdown=0.25, min_trades=30)
    t = _table()
    # balanced: candidate 2 has the best Sharpe but DD 0.40 > 0.25; 1 and 3 tie on
    # Sharpe -> higher PnL (3); 4 has NaN Sharpe; 5 too few trades
    assert select_candidate(t, "balanced", rules) == 13
    # pnl: 2 and 5 tie at 900 -> higher Sharpe (2); thresholds don't apply
    assert select_candidate(t, "pnl", rules) == 12
    # drawdown: lowest DD with pnl > 0 and enough trades: 4 (0.01)
    assert select_candidate(t, "drawdown", rules) == 14
    # nothing qualifies -> None
    strict = SelectionRules(max_drawdown=0.001, min_trades=1000)
    assert select_candidate(t, "balanced", strict) is None
    assert select_candidate(t, "drawdown", strict) is None
    # full tie -> lowest candidate id, regardless of row order
    tie = pd.DataFrame({"candidate": [7, 3], "sharpe": [1.0, 1.0], "pnl": [5.0, 5.0],
                        "max_drawdown": [0.1, 0.1], "n_trades": [40, 40]})
    for pref in ("balanced", "pnl", "drawdown"):
        assert tie.loc[select_candidate(tie, pref, rules), "candidate"] == 3
    # prefixed columns (in-sample selection)
    pref = t.rename(columns={c: f"is_{c}" for c in t.columns if c != "candidate"})
    assert select_candidate(pref, "balanced", rules, "is_") == 13


def test_fallback_to_configured_params(assets, grid, base_params):
    strict = parse_grid({**GRID_DOC, "selection": {"max_drawdown": 0.0001, "min_trades": 100000}}, "strict")
    result = run_optimization(assets, strict, engine="local")
    for name in assets:
        choice = result.choices["balanced"][name]
        assert choice.qualified is False and choice.candidate is None
        assert choice.params == base_params
        assert choice.metrics["n_trades"] == run_backtest(assets[name][1], base_params).metrics["n_trades"]


# --- grid validation ----------------------------------------------------------------------------

def test_grid_unknown_parameter_suggests(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("grid:\n  bb_perod: [20, 30]\n")
    with pytest.raises(ConfigError, match=r"grid.yaml.*unknown parameter 'bb_perod'.*did you mean 'bb_period'"):
        load_grid(path)


def test_grid_invalid_value(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("grid:\n  bb_period: [20, 1]\n")
    with pytest.raises(ConfigError, match=r"grid.yaml: grid.bb_period.*'bb_period' must be an integer >= 2"):
        load_grid(path)
    path.write_text("grid:\n  entry_z: [2.0, abc]\n")
    with pytest.raises(ConfigError, match=r"grid.entry_z"):
        load_grid(path)


def test_grid_unknown_top_level_and_selection_keys(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("grid:\n  bb_period: [20]\ngrdi: 1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'grdi'.*did you mean 'grid'"):
        load_grid(path)
    path.write_text("grid:\n  bb_period: [20]\nselection:\n  min_trade: 3\n")
    with pytest.raises(ConfigError, match=r"selection.*unknown key 'min_trade'.*min_trades"):
        load_grid(path)


def test_grid_product_and_subsample(repo_root):
    spec = load_grid(repo_root / "configs" / "grid.yaml")
    assert len(spec.candidates()) == spec.size == 3 * 3 * 2 * 3 * 3 * 2
    sub = parse_grid({"grid": {"bb_period": [20, 30, 50], "entry_z": [1.5, 2.0, 2.5]}, "max_candidates": 4,
                      "seed": 3}, "g")
    picked = sub.candidates()
    assert len(picked) == 4 and picked == sub.candidates()  # deterministic
    full = parse_grid({"grid": {"bb_period": [20, 30, 50], "entry_z": [1.5, 2.0, 2.5]}}, "g").candidates()
    assert all(p in full for p in picked)


# --- outputs ------------------------------------------------------------------------------------

def test_best_configs_round_trip(tmp_path, assets, grid):
    result = run_optimization(assets, grid, train=0.7, engine="local")
    out = write_outputs(result, tmp_path / "run", tmp_path / "best")
    for name in ("candidates.parquet", "candidates.csv", "portfolio_summary.txt",
                 "best_configs_balanced.json", "best_configs_pnl.json", "best_configs_drawdown.json"):
        assert (out / name).is_file()
    table = pd.read_parquet(out / "candidates.parquet")
    assert len(table) == len(result.candidates)
    for pref in ("balanced", "pnl", "drawdown"):
        for folder in (out, tmp_path / "best"):
            path = folder / f"best_configs_{pref}.json"
            doc = json.loads(path.read_text())
            assert doc["preference"] == pref and doc["source"] == str(out)
            loaded = load_best_configs(path)
            assert set(loaded) == set(assets)
            for name, (base, _) in assets.items():
                params = validate_params(loaded[name], str(path), base=base)
                assert params == result.choices[pref][name].params
                assert loaded[name] == params  # the file holds the full validated dict
    assert "in-sample" in (out / "portfolio_summary.txt").read_text()


def test_optimize_command_end_to_end(tmp_path, universe, base_params):
    from raybt.optimize.command import add_optimize_arguments, optimize_command

    data = tmp_path / "data"
    data.mkdir()
    assets = {}
    for name, bars in universe.items():
        bars.to_parquet(data / f"{name}.parquet")
        assets[name] = {"data": f"data/{name}.parquet", "timeframe": "5m"}
    config = tmp_path / "assets.json"
    config.write_text(json.dumps({"defaults": {"broker": {"sizing": "risk", "leverage": 20}}, "assets": assets}))
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  bb_period: [20, 30]\n  entry_z: [1.8, 2.4]\nselection:\n  min_trades: 5\n")
    parser = add_optimize_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--config", str(config), "--grid", str(grid), "--engine", "local",
                              "--walk-forward", "2", "--out", str(tmp_path / "out"),
                              "--best-dir", str(tmp_path / "best"), "--no-progress"])
    assert optimize_command(args) == 0
    assert (tmp_path / "out" / "walk_forward.csv").is_file()
    assert set(load_best_configs(tmp_path / "best" / "best_configs_pnl.json")) == set(universe)
    bad = parser.parse_args(["--config", str(config), "--grid", str(grid), "--assets", "EURUSDX",
                             "--engine", "local"])
    with pytest.raises(ConfigError, match="unknown asset 'EURUSDX'.*EURUSDX_5m"):
        optimize_command(bad)


# --- walk-forward ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n_bars,n_windows,train", [(4000, 3, 0.7), (1001, 4, 0.5), (5000, 1, 0.8)])
def test_walk_forward_windows_tile(n_bars, n_windows, train):
    windows = walk_forward_windows(n_bars, n_windows, train)
    assert len(windows) == n_windows
    for w in windows:
        assert 0 <= w.train_start < w.train_end == w.test_start < w.test_end <= n_bars
    for a, b in zip(windows, windows[1:]):
        assert a.test_end == b.test_start  # consecutive, no overlap
        assert b.train_end - b.train_start == a.train_end - a.train_start  # rolling: same length
    assert windows[-1].test_end == n_bars
    with pytest.raises(ConfigError):
        walk_forward_windows(10, 8, 0.7)


def test_walk_forward_stitched_compounds_the_windows(assets, grid):
    """The stitched row chains the test spans: return compounded, PnL of that compounded equity
    (not the sum of the windows' PnL next to a compounded return), trades summed."""
    result = run_optimization(assets, grid, walk_forward=3, train=0.6, engine="local")
    wf = result.walk_forward
    for name, (base, bars) in assets.items():
        windows = result.windows[name]
        spans = [(w.test_start, w.test_end) for w in windows]
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
        for pref in ("balanced", "pnl", "drawdown"):
            rows = wf[(wf["asset"] == name) & (wf["preference"] == pref)]
            per_window = rows[rows["window"] != "stitched"]
            stitched = rows[rows["window"] == "stitched"].iloc[0]
            assert len(per_window) == len(windows)
            assert stitched["oos_n_trades"] == per_window["oos_n_trades"].sum()
            growth = np.prod(1.0 + per_window["oos_total_return"].to_numpy())
            assert stitched["oos_total_return"] == pytest.approx(growth - 1.0, rel=1e-12)
            assert stitched["oos_pnl"] == pytest.approx(stitched["oos_initial_equity"] * (growth - 1.0), rel=1e-12)
            # each window's test metrics are a fresh backtest of the chosen params on the test slice
            for w, (_, row) in zip(windows, per_window.iterrows()):
                params = validate_params({k: row[k].item() if hasattr(row[k], "item") else row[k]
                                          for k in grid.values}, "wf", base=base)
                ref = run_backtest(bars.iloc[w.test_start:w.test_end], params).metrics
                assert row["oos_pnl"] == ref["pnl"] and row["oos_n_trades"] == ref["n_trades"]
            # best_configs carry the last window's choice
            last = per_window.iloc[-1]
            assert all(result.choices[pref][name].params[k] == last[k] for k in grid.values)
