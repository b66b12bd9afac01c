"""Issue 12, class 12: optimisation results used elsewhere.

* ``raybt run --max-assets`` ranking works after every optimize mode (full,
  ``--train``, ``--walk-forward``) or says in one line why it cannot;
* ``best_configs`` records the mode, the split or windows and the bars each
  pick was trained on;
* the walk-forward summary is computed on the stitched out-of-sample equity,
  which is written out;
* a sweep point equals ``raybt run`` of the same config (same ranking);
* a sweep is checked whole before its first point runs.

Everything goes through the real CLI (``raybt.cli.main``) in a temporary
working folder, so ``results/best_configs_<preference>.json`` is the one
``raybt run`` and ``raybt sweep`` read.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from raybt.cli import main
from raybt.data.synth import write_universe

N_ASSETS = 4
N_BARS = 3000  # 5-minute bars, 24/7: ~10 days
GRID = {"grid": {"bb_period": [20, 30], "entry_z": [1.8, 2.4]}, "selection": {"max_drawdown": 0.5, "min_trades": 3}}
RANK_KEY = {"full": "sharpe", "train": "oos_sharpe", "walk_forward": "oos_sharpe"}
MODE_ARGS = {"full": [], "train": ["--train", "0.7"], "walk_forward": ["--walk-forward", "3"]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 4-asset synthetic universe (Parquet), its asset config and a small grid."""
    root = tmp_path_factory.mktemp("world")
    paths = write_universe(root / "data", n_assets=N_ASSETS, n_bars=N_BARS, seed=21, calendar="24x7")
    assets = {p.stem: {"data": str(p), "timeframe": "5m"} for p in paths}
    doc = {"defaults": {"strategy": {"bb_period": 20, "entry_z": 1.8},
                        "broker": {"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.0, "leverage": 10,
                                   "initial_capital": 100000}},
           "assets": assets}
    (root / "assets.json").write_text(json.dumps(doc, indent=2))
    (root / "grid.yaml").write_text(yaml.safe_dump(GRID))
    return root


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """``results/`` (the best_configs folder of run and sweep) is the test's own."""
    monkeypatch.chdir(tmp_path)


def names_of(world) -> list[str]:
    return sorted(p.stem for p in (world / "data").glob("*.parquet"))


def bars_of(world, name) -> pd.DataFrame:
    return pd.read_parquet(world / "data" / f"{name}.parquet")


def optimize(world, out, *args) -> int:
    return main(["optimize", "--config", str(world / "assets.json"), "--grid", str(world / "grid.yaml"),
                 "--engine", "local", "--no-progress", "--out", str(out), *args])


def write_portfolio(path, world, assets, **allocation) -> None:
    doc = {"name": "trust", "asset_config": str(world / "assets.json"), "assets": list(assets),
           "initial_capital": 1_000_000, "rebalance": "none",
           "allocation": {"model": "equal_weight", "lookback": "2D", **allocation},
           "risk": {"max_portfolio_drawdown": 0.5, "cluster_correlation": None}, "engine": {"chunk": "1D"}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def run(config, out, *extra) -> int:
    return main(["run", str(config), "--engine", "local", "--no-progress", "--out", str(out), *extra])


def check_error(capsys, rc, out, needles) -> str:
    """Exit 2, exactly one ``error:`` line naming what it must, no traceback, no results folder."""
    captured = capsys.readouterr()
    assert rc == 2, (rc, captured.err)
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert not out.exists(), f"{out} left behind"
    partial = out.parent / f".{out.name}.partial"
    assert not partial.exists() or (partial / "INCOMPLETE").is_file()
    return lines[0]


def span(index, start, end) -> dict:
    return {"start": index[start].isoformat(), "end": index[end - 1].isoformat(), "bars": end - start}


# --- ranking after every mode; what best_configs records ----------------------------------------

@pytest.mark.parametrize("mode", ["full", "train", "walk_forward"])
def test_max_assets_ranking_after_every_optimize_mode(world, tmp_path, capsys, mode):
    from raybt.optimize.runner import train_split, walk_forward_windows
    from raybt.config.resolve import preference_ranking
    from raybt.result import PortfolioResult

    assert optimize(world, tmp_path / "opt", *MODE_ARGS[mode]) == 0
    printed = capsys.readouterr().out.splitlines()
    # the last line: the seconds of each phase the user waited for
    assert printed[-1].startswith("time: load ") and " run " in printed[-1] and " file " in printed[-1], printed[-1]
    for preference in ("balanced", "drawdown"):
        doc = json.loads((tmp_path / "results" / f"best_configs_{preference}.json").read_text())
        # the document says how it was made
        assert doc["mode"] == mode
        assert doc["train"] == {"full": None, "train": 0.7, "walk_forward": 0.7}[mode]
        assert doc["walk_forward"] == (3 if mode == "walk_forward" else None)
        key = RANK_KEY[mode] if preference == "balanced" else RANK_KEY[mode].replace("sharpe", "max_drawdown")
        assert doc["ranking"] == {"metric": key, "higher_is_better": preference == "balanced"}
        for name, entry in doc["assets"].items():
            index = bars_of(world, name).index
            n = len(index)
            if mode == "full":
                assert entry["trained_on"] == span(index, 0, n)
            elif mode == "train":
                split = train_split(n, 0.7)
                assert entry["trained_on"] == span(index, 0, split)
                assert entry["split"] == {"train": 0.7, "in_sample": span(index, 0, split),
                                          "out_of_sample": span(index, split, n)}
            else:
                windows = walk_forward_windows(n, 3, 0.7)
                assert [w["window"] for w in entry["windows"]] == [0, 1, 2]
                for w, rec in zip(windows, entry["windows"]):
                    assert rec["train"] == span(index, w.train_start, w.train_end)
                    assert rec["test"] == span(index, w.test_start, w.test_end)
                    assert set(rec["params"]) == set(GRID["grid"])
                last = entry["windows"][-1]
                assert entry["trained_on"] == last["train"]  # the pick's own training bars
                assert entry["candidate"] == last["candidate"]
                assert {k: entry["params"][k] for k in GRID["grid"]} == last["params"]
            assert isinstance(entry["metrics"][key], float)

        # the ranking reads that metric: finite scores, not -inf for everyone
        scores = preference_ranking(preference, tmp_path / "results")
        sign = 1.0 if preference == "balanced" else -1.0
        assert scores == {name: sign * e["metrics"][key] for name, e in doc["assets"].items()}
        assert all(math.isfinite(v) for v in scores.values()) and len(set(scores.values())) == N_ASSETS

        # raybt run --max-assets 2 keeps the two best-ranked: list the portfolio worst first so the
        # config order (what an all--inf ranking silently kept) is the wrong answer
        worst_first = sorted(scores, key=scores.get)
        config = tmp_path / f"p_{preference}.yaml"
        write_portfolio(config, world, worst_first)
        out = tmp_path / f"run_{preference}"
        assert run(config, out, "--max-assets", "2", "--preference", preference) == 0
        capsys.readouterr()
        kept = PortfolioResult.load(out).weights
        assert set(kept.index) == set(worst_first[-2:])


def _old_walk_forward_doc(world, names) -> dict:
    """A best_configs file as the optimiser wrote it before: walk-forward metrics without Sharpe or DD."""
    return {"preference": "balanced", "mode": "walk_forward",
            "assets": {n: {"params": {"bb_period": 20}, "candidate": 0, "qualified": True,
                           "metrics": {"oos_pnl": 100.0 * i, "oos_total_return": 0.01 * i, "oos_n_trades": 5,
                                       "oos_max_window_drawdown": 0.02, "windows": 3}}
                       for i, n in enumerate(names)}}


@pytest.mark.parametrize("case", ["old walk-forward file", "asset not optimised", "metric not a number",
                                  "bad ranking block", "unknown mode"])
def test_ranking_that_cannot_work_is_one_clear_line(world, tmp_path, capsys, case):
    names = names_of(world)
    doc = _old_walk_forward_doc(world, names)
    first = names[0]
    if case == "old walk-forward file":
        needles = [f"best_configs_balanced.json: assets.{first}.metrics.oos_sharpe: missing (mode walk_forward)",
                   "re-run raybt optimize"]
    elif case == "asset not optimised":
        doc = {"mode": "full", "assets": {n: {"params": {}, "metrics": {"sharpe": 1.0}} for n in names[1:]}}
        needles = ["best_configs_balanced.json: assets: no entry for portfolio asset", f"'{first}'",
                   "allocation.max_assets"]
    elif case == "metric not a number":
        doc = {"mode": "full", "assets": {n: {"params": {}, "metrics": {"sharpe": 1.0}} for n in names}}
        doc["assets"][first]["metrics"]["sharpe"] = "high"
        needles = [f"assets.{first}.metrics.sharpe: must be a number or null, got 'high'"]
    elif case == "bad ranking block":
        doc["ranking"] = {"metric": "oos_sharpe"}
        needles = ["best_configs_balanced.json: ranking: expected {metric: <name>, higher_is_better"]
    else:
        doc["mode"] = "walkforward"
        needles = ["best_configs_balanced.json: mode: unknown optimize mode 'walkforward'"]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "best_configs_balanced.json").write_text(json.dumps(doc))
    config = tmp_path / "p.yaml"
    write_portfolio(config, world, names)
    out = tmp_path / "out"
    check_error(capsys, run(config, out, "--max-assets", "2"), out, needles)
    # without a selection the ranking is not used, so the same file does not stop the run
    assert run(config, tmp_path / "plain") == 0


def test_null_metric_ranks_last(world, tmp_path, capsys):
    """A metric the optimiser could not compute (no trades: Sharpe null) ranks that asset last."""
    from raybt.result import PortfolioResult

    names = names_of(world)
    doc = {"mode": "full", "assets": {n: {"params": {}, "metrics": {"sharpe": float(i)}} for i, n in enumerate(names)}}
    doc["assets"][names[-1]]["metrics"]["sharpe"] = None  # would rank first at 3.0
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "best_configs_balanced.json").write_text(json.dumps(doc))
    config = tmp_path / "p.yaml"
    write_portfolio(config, world, names)
    assert run(config, tmp_path / "out", "--max-assets", "2") == 0
    assert set(PortfolioResult.load(tmp_path / "out").weights.index) == {names[1], names[2]}


# --- walk-forward: the stitched out-of-sample equity ----------------------------------------------

def test_walk_forward_summary_is_the_stitched_equity(world, tmp_path, capsys):
    from raybt.backtest import run_backtest
    from raybt.config.params import validate_params
    from raybt.config.universe import load_asset_universe
    from raybt.metrics import compute_metrics

    out = tmp_path / "opt"
    assert optimize(world, out, "--walk-forward", "3") == 0
    path = out / "walk_forward_equity.parquet"
    assert path.is_file()
    equity = pd.read_parquet(path)
    assert list(equity.columns) == ["asset", "preference", "window", "timestamp", "equity"]
    wf = pd.read_csv(out / "walk_forward.csv")
    universe = load_asset_universe(world / "assets.json")
    checked = 0
    for preference in ("balanced", "pnl", "drawdown"):
        doc = json.loads((out / f"best_configs_{preference}.json").read_text())
        for name, entry in doc["assets"].items():
            part = equity[(equity["asset"] == name) & (equity["preference"] == preference)]
            series = pd.Series(part["equity"].to_numpy(), index=pd.DatetimeIndex(part["timestamp"]))
            assert series.index.is_monotonic_increasing and series.index.is_unique
            m = compute_metrics(series)
            rows = wf[(wf["asset"] == name) & (wf["preference"] == preference)]
            stitched = rows[rows["window"] == "stitched"].iloc[0]
            per_window = rows[rows["window"] != "stitched"]
            for key in ("pnl", "total_return", "sharpe", "max_drawdown", "final_equity", "n_bars"):
                assert entry["metrics"][f"oos_{key}"] == pytest.approx(m[key], rel=1e-12, abs=1e-12), key
                assert stitched[f"oos_{key}"] == pytest.approx(m[key], rel=1e-12, abs=1e-12), key
            assert entry["metrics"]["oos_n_trades"] == stitched["oos_n_trades"] == per_window["oos_n_trades"].sum()
            # it is the chained test spans: each window's own backtest, scaled to start where the last ended
            bars = bars_of(world, name)
            level = None
            for rec in entry["windows"]:
                seg = part[part["window"] == rec["window"]]["equity"].to_numpy()
                lo = bars.index.get_loc(pd.Timestamp(rec["test"]["start"]))
                params = validate_params(rec["params"], "test", base=universe.get(name).params)
                ref = run_backtest(bars.iloc[lo:lo + rec["test"]["bars"]], params).equity["equity"].to_numpy()
                np.testing.assert_allclose(seg / seg[0], ref / ref[0], rtol=1e-12)
                if level is not None:
                    assert seg[0] == pytest.approx(level, rel=1e-12)
                level = seg[-1]
            growth = np.prod(1 + per_window["oos_total_return"].to_numpy())
            assert m["total_return"] == pytest.approx(growth - 1, rel=1e-10)
            checked += 1
    assert checked == 3 * N_ASSETS
    assert "stitched out-of-sample equity" in (out / "portfolio_summary.txt").read_text()


# --- a sweep point is raybt run of its config ------------------------------------------------------

def test_sweep_point_with_max_assets_equals_raybt_run(world, tmp_path, capsys):
    """With results/best_configs_balanced.json present, the sweep ranks assets for max_assets exactly as
    raybt run does (before: the sweep ranked by the estimation window's Sharpe, run by the file)."""
    from raybt.engine import PortfolioBacktester
    from raybt.universe import load_portfolio_from_config
    from raybt.result import PortfolioResult

    names = names_of(world)
    assert optimize(world, tmp_path / "opt") == 0
    base = tmp_path / "base.yaml"
    write_portfolio(base, world, names, model="risk_parity")
    # what the estimation window's Sharpe alone would keep with max_assets 2 ...
    cfg2 = tmp_path / "two.yaml"
    write_portfolio(cfg2, world, names, model="risk_parity", max_assets=2)
    assets, pconf = load_portfolio_from_config(None, cfg2, best_configs_dir=tmp_path / "results")
    window_pick = set(PortfolioBacktester(assets, pconf, engine="local").run().weights.index)
    # ... and a ranking in the optimiser's file that keeps the other two
    best = tmp_path / "results" / "best_configs_balanced.json"
    doc = json.loads(best.read_text())
    others = [n for n in names if n not in window_pick]
    for i, name in enumerate(names):
        doc["assets"][name]["metrics"]["sharpe"] = (10.0 + i) if name in others else float(i)
    best.write_text(json.dumps(doc))

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"base": str(base), "name": "ma", "mode": "list",
                                     "points": [{"max_assets": 2}, {"max_assets": 3}]}))
    sw = tmp_path / "sw"
    assert main(["sweep", str(sweep), "--engine", "local", "--no-progress", "--out", str(sw)]) == 0
    capsys.readouterr()
    table = pd.read_csv(sw / "sweep_results.csv")
    assert (table["status"] == "ok").all()
    for point_id in table["point_id"]:
        point = json.loads((sw / "points" / point_id / "point.json").read_text())
        config = tmp_path / f"{point_id}.yaml"
        config.write_text(yaml.safe_dump(point["config"], sort_keys=False))
        out = tmp_path / f"run-{point_id}"
        assert run(config, out) == 0
        capsys.readouterr()
        direct = PortfolioResult.load(out)
        swept = PortfolioResult.load(sw / "points" / point_id)
        pd.testing.assert_series_equal(swept.weights, direct.weights, check_exact=True)
        pd.testing.assert_frame_equal(swept.trades, direct.trades, check_exact=True)
        pd.testing.assert_frame_equal(swept.equity, direct.equity, check_exact=True)
        assert len(direct.trades) > 0
        if point["config"]["allocation"]["max_assets"] == 2:
            assert set(direct.weights.index) == set(others)  # the file's ranking, in both
    # the sweep's own best_config.yaml runs to the best point's numbers
    best_id = json.loads((sw / "sweep.json").read_text())["best"]["point_id"]
    assert run(sw / "best_config.yaml", tmp_path / "best-run") == 0
    pd.testing.assert_frame_equal(PortfolioResult.load(tmp_path / "best-run").equity,
                                  PortfolioResult.load(sw / "points" / best_id).equity, check_exact=True)


# --- a sweep is checked whole before it runs --------------------------------------------------------

def _bad_best(tmp_path, names, preference, entry):
    (tmp_path / "results").mkdir(exist_ok=True)
    doc = {"mode": "full", "assets": {n: entry for n in names}}
    (tmp_path / "results" / f"best_configs_{preference}.json").write_text(json.dumps(doc))


SWEEP_CASES = [
    ("unknown asset", lambda n: [{"assets": n[:2]}, {"assets": [n[0], "NOPE_5m"]}],
     ["point 2 (assets=", "assets: unknown asset 'NOPE_5m'", "assets.json"]),
    ("misspelt asset", lambda n: [{"assets": [n[0], n[1][:-1]]}],
     ["point 1 (assets=", "unknown asset", "did you mean"]),
    ("chunk shorter than a bar", lambda n: [{"chunk": "1D"}, {"chunk": "1min"}],
     ["point 2 (engine.chunk=1min)", "engine.chunk: 1min is shorter than one bar"]),
    ("timeframe finer than the data's bars", lambda n: [{"asset_config": "assets_1m.json", "chunk": "2min"}],
     ["point 1 (asset_config=assets_1m.json, engine.chunk=2min)",
      "assets_1m.json: assets.", "timeframe) is finer than the 5m bars of asset"]),
    ("lookback covers the data", lambda n: [{"allocation.model": "risk_parity", "allocation.lookback": "400D"}],
     ["point 1", "allocation.lookback 400D covers the whole data span"]),
    ("infeasible weight cap", lambda n: [{"allocation.max_single_asset_weight": 0.1}],
     ["point 1 (allocation.max_single_asset_weight=0.1)", "0.1 x 4 asset(s) = 0.4 < 1"]),
    ("bad optimiser parameters", lambda n: [{"preference": "balanced"}, {"preference": "pnl"}],
     ["point 2 (preference=pnl)", "best_configs_pnl.json:", "'bb_period' must be an integer >= 2, got 0"]),
    ("unrankable optimiser results", lambda n: [{"max_assets": 2}],
     ["point 1 (allocation.max_assets=2)", "best_configs_drawdown.json: assets.", "metrics.max_drawdown: missing"]),
    ("missing data file", lambda n: [{"asset_config": "assets_gone.json"}],
     ["point 1 (asset_config=assets_gone.json)", "gone.parquet"]),
    ("bad value", lambda n: [{"risk.max_portfolio_drawdown": 1.5}],
     ["point 1 (risk.max_portfolio_drawdown=1.5)", "must be in (0, 1), got 1.5"]),
]


@pytest.mark.parametrize("case,points,needles", SWEEP_CASES, ids=[c[0] for c in SWEEP_CASES])
def test_sweep_is_refused_whole_before_any_point_runs(world, tmp_path, capsys, case, points, needles):
    names = names_of(world)
    base = tmp_path / "base.yaml"
    write_portfolio(base, world, names)
    doc = yaml.safe_load(base.read_text())
    doc["preference"] = "drawdown" if case == "unrankable optimiser results" else "balanced"
    base.write_text(yaml.safe_dump(doc, sort_keys=False))
    if case == "bad optimiser parameters":
        _bad_best(tmp_path, names, "pnl", {"params": {"bb_period": 0}})
    if case == "unrankable optimiser results":
        _bad_best(tmp_path, names, "drawdown", {"params": {}, "metrics": {"sharpe": 1.0}})
    assets = json.loads((world / "assets.json").read_text())
    one_minute = json.loads(json.dumps(assets))
    for entry in one_minute["assets"].values():
        entry["timeframe"] = "1min"  # declared 1min; the files hold 5-minute bars
    (tmp_path / "assets_1m.json").write_text(json.dumps(one_minute))
    gone = json.loads(json.dumps(assets))
    gone["assets"][names[-1]]["data"] = str(tmp_path / "gone.parquet")
    (tmp_path / "assets_gone.json").write_text(json.dumps(gone))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"base": str(base), "name": "bad", "mode": "list", "points": points(names)}))
    out = tmp_path / "sw"
    line = check_error(capsys, main(["sweep", str(sweep), "--engine", "local", "--no-progress", "--out", str(out)]),
                       out, [str(sweep), *needles])
    assert line.startswith(f"error: {sweep}: point ")


def test_stitched_equity_stays_flat_after_ruin():
    """A window that ends at or below zero equity leaves nothing to trade with: the later windows are
    flat at that level (not a later window's curve scaled by a negative factor)."""
    from raybt.optimize.runner import PreparedAsset, Window, stitch_test_spans
    from raybt.records import trades_frame
    from raybt.types import TRADE_DT

    index = pd.date_range("2024-01-01", periods=10, freq="5min", tz="UTC")
    none = trades_frame(np.zeros(0, dtype=TRADE_DT), ["a"], [index])
    windows = [(Window(0, 0, 2, 2, 5), 0), (Window(1, 3, 5, 5, 10), 0)]
    p = PreparedAsset(base={}, params=[], records=None, ohlc=None, ns=None, index=index, spans={}, windows=[])
    runs = {(0, 0): (np.array([100.0, 50.0, -10.0]), none),
            (1, 0): (np.array([100.0, 110.0, 120.0, 130.0, 140.0]), none)}
    equity, metrics = stitch_test_spans("a", p, windows, runs)
    np.testing.assert_array_equal(equity["equity"].to_numpy(), [100, 50, -10, -10, -10, -10, -10, -10])
    assert list(equity["window"]) == [0, 0, 0, 1, 1, 1, 1, 1]
    assert metrics["total_return"] == pytest.approx(-1.1) and metrics["n_trades"] == 0
    # without the ruin the second window continues from the first one's last value, compounded
    runs[(0, 0)] = (np.array([100.0, 50.0, 80.0]), none)
    equity, metrics = stitch_test_spans("a", p, windows, runs)
    np.testing.assert_allclose(equity["equity"].to_numpy(), [100, 50, 80, 80, 88, 96, 104, 112])
    assert metrics["total_return"] == pytest.approx(0.8 * 1.4 - 1)


@pytest.mark.parametrize("args,needle", [
    (["--out", "/proc/raybt-out"], "/proc/raybt-out: output folder not usable"),
    (["--best-dir", "/proc/raybt-best"], "/proc/raybt-best: --best-dir folder not writable"),
    (["--batch", "0"], "--batch must be >= 1, got 0"),
], ids=["out unwritable", "best-dir unwritable", "batch 0"])
def test_optimize_refuses_what_it_could_not_finish_before_running(world, tmp_path, capsys, args, needle):
    """An output it could not write is found before the grid runs (the error came after it, below the
    banner), and --batch 0 is an error (it silently became 128)."""
    out = tmp_path / "opt"
    rc = main(["optimize", "--config", str(world / "assets.json"), "--grid", str(world / "grid.yaml"),
               "--engine", "local", "--no-progress", *(["--out", str(out)] if "--out" not in args else []), *args])
    captured = capsys.readouterr()
    assert rc == 2 and "Traceback" not in captured.err
    assert captured.err.splitlines() == [captured.err.splitlines()[0]] and needle in captured.err, captured.err
    assert captured.err.startswith("error: ") and not out.exists()
