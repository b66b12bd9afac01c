"""Trust in files an earlier command wrote: the optimiser's grid, a resumed sweep's point folders,
best_configs naming unknown assets, and a resumed run's run_request.json.

* the grid's size comes from its value counts before anything is expanded: an
  oversized grid is one error line naming the file and the size, and
  ``max_candidates`` samples indices without building the product (the same
  candidates as before for every grid the old code could build);
* ``raybt sweep --out`` reuses a point only when its folder is complete and its
  point.json validates and matches the point's metrics.json; otherwise the
  point runs again, with one ``warning:`` line naming the file;
* a best_configs file naming an asset the asset config lacks is one warning
  (closest name), only the portfolio's assets are applied and counted; a
  ``weight`` from it is refused naming the file;
* run_request.json is validated on --resume (one ``error:`` line naming it and
  the key), and the config path is stored absolute.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import yaml

from raybt.cli import main
from raybt.config.grid import MAX_CANDIDATES, expand_grid, load_grid, parse_grid
from raybt.data.synth import write_universe
from raybt.errors import ConfigError

N_BARS = 3000


def _one_error(capsys, code=2) -> str:
    """The command's stderr: exactly one ``error:`` line, no traceback; returns that line."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


# --- the grid ----------------------------------------------------------------------------------

def _old_expand(spec) -> list[dict]:
    """The selection before the fix (the whole product in memory), as the reference."""
    names = list(spec.values)
    points = [dict(zip(names, combo)) for combo in itertools.product(*(spec.values[n] for n in names))]
    if spec.max_candidates is not None and spec.max_candidates < len(points):
        rng = np.random.default_rng(spec.seed)
        keep = np.sort(rng.choice(len(points), size=spec.max_candidates, replace=False))
        points = [points[i] for i in keep]
    return points


BIG = {"bb_period": list(range(10, 30)), "entry_z": [round(1 + i / 10, 1) for i in range(20)],
       "exit_z": [round(i / 10, 1) for i in range(10)], "sl_atr": [1 + i / 2 for i in range(10)],
       "tp_atr": [1 + i / 2 for i in range(10)], "max_hold_bars": list(range(10, 101, 10)),
       "atr_period": list(range(5, 15))}  # 40,000,000 candidates


@pytest.mark.parametrize("grid,k,seed", [
    ({"bb_period": [20, 30, 50], "entry_z": [1.5, 2.0, 2.5]}, 4, 3),
    ({"bb_period": [20, 30, 50], "entry_z": [1.5, 2.0, 2.5]}, 9, 0),  # k = size: the whole product
    ({"bb_period": [20, 30, 50], "entry_z": [1.5, 2.0, 2.5]}, None, 0),
    ({"bb_period": list(range(10, 40)), "entry_z": [1.0, 1.5, 2.0, 2.5], "exit_z": [0.0, 0.5],
      "sl_atr": [1.0, 2.0, 3.0], "tp_atr": [1.0, 2.0, 3.0, 4.0, 5.0]}, 100, 7),
    ({"bb_period": list(range(10, 60)), "entry_z": [1.0, 1.5, 2.0, 2.5], "exit_z": [0.0, 0.5, 1.0],
      "sl_atr": [1.0, 2.0, 3.0], "tp_atr": [1.0, 2.0, 3.0, 4.0, 5.0]}, 1000, 11),  # numpy's shuffle branch
    ({"bb_period": list(range(10, 60)), "entry_z": [1.0, 1.5, 2.0, 2.5], "exit_z": [0.0, 0.5, 1.0],
      "sl_atr": [1.0, 2.0, 3.0], "tp_atr": [1.0, 2.0, 3.0, 4.0, 5.0]}, 50, 2),  # Floyd's branch
])
def test_small_grid_candidates_unchanged(grid, k, seed):
    doc = {"grid": grid, "seed": seed, **({"max_candidates": k} if k else {})}
    spec = parse_grid(doc, "g")
    assert expand_grid(spec) == _old_expand(spec) == spec.candidates()


def test_huge_grid_is_refused_naming_the_file_without_expanding(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"grid": BIG}))
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as err:
            load_grid(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "40,000,000 candidates" in message
    assert "max_candidates" in message and f"{MAX_CANDIDATES:,}" in message and "\n" not in message
    assert peak < 20e6  # nothing expanded


def test_huge_grid_with_max_candidates_samples_without_the_product():
    spec = parse_grid({"grid": BIG, "max_candidates": 10, "seed": 4}, "g")
    tracemalloc.start()
    try:
        picked = spec.candidates()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5e6 and len(picked) == 10 and picked == spec.candidates()  # deterministic
    assert len({json.dumps(p, sort_keys=True) for p in picked}) == 10
    for p in picked:
        assert list(p) == list(BIG) and all(p[n] in BIG[n] for n in BIG)
    # beyond 64-bit indices too
    wide = parse_grid({"grid": {**BIG, "entry_z": [1.0, 2.0], **{
        n: list(range(2, 40)) for n in ("bb_period", "atr_period", "max_hold_bars")}},
        "max_candidates": 3}, "g")
    assert len(wide.candidates()) == 3


def test_max_candidates_above_the_limit_is_refused():
    with pytest.raises(ConfigError, match=r"^g: max_candidates: must be at most 1,000,000"):
        parse_grid({"grid": BIG, "max_candidates": MAX_CANDIDATES + 1}, "g")


def test_cli_optimize_huge_grid_one_error_line(tmp_path, monkeypatch, capsys, world):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"grid": BIG}))
    code = main(["optimize", "--grid", str(path), "--config", str(world / "assets.json"), "--engine", "local",
                 "--out", str(tmp_path / "o"), "--best-dir", str(tmp_path / "b"), "--no-progress"])
    assert code == 2
    line = _one_error(capsys)
    assert str(path) in line and "40,000,000" in line


# --- a small world for run / sweep -------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust_sweep")
    paths = write_universe(root / "data", n_assets=3, n_bars=N_BARS, seed=5, calendar="24x7")
    assets = {p.stem: {"data": str(p), "timeframe": "5m", "strategy": {"bb_period": 20, "entry_z": 1.8},
                       "broker": {"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.0, "leverage": 10}}
              for p in paths}
    (root / "assets.json").write_text(json.dumps({"assets": assets}))
    base = {"name": "tiny", "asset_config": str(root / "assets.json"), "initial_capital": 1_000_000,
            "allocation": {"model": "equal_weight", "lookback": "1D"}, "rebalance": "none",
            "risk": {"max_portfolio_drawdown": 0.05, "dd_scale_start": 0.01, "resume_drawdown": 0.02,
                     "cluster_correlation": 0.8, "correlation_window": 200, "cooldown_chunks": 2},
            "engine": {"chunk": "4h"}}
    (root / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    (root / "sweep.yaml").write_text(yaml.safe_dump(
        {"name": "t", "base": "base.yaml", "parameters": {"allocation.model": ["equal_weight", "risk_parity"]}}))
    return root


def names_of(world) -> list[str]:
    return sorted(p.stem for p in (world / "data").glob("*.parquet"))


# --- sweep: reusing point folders --------------------------------------------------------------

@pytest.fixture(scope="module")
def first_sweep(world, tmp_path_factory):
    from raybt.sweep import load_sweep_spec, run_sweep

    out = tmp_path_factory.mktemp("sweep") / "base"
    cwd = os.getcwd()
    os.chdir(world)  # as the CLI runs it: best_configs from ./results (none here)
    try:
        result = run_sweep(load_sweep_spec(world / "sweep.yaml"), out, engine="local", best_configs_dir="results")
    finally:
        os.chdir(cwd)
    assert result.n_failed == 0
    return out, result


def _edit_point(name):
    def edit(folder: Path):
        doc = json.loads((folder / "point.json").read_text())
        keys = name.split(".")
        target = doc
        for key in keys[:-1]:
            target = target[key]
        return doc, target, keys[-1]
    return edit


def _set(path, value):
    def mutate(folder: Path):
        doc, target, key = _edit_point(path)(folder)
        target[key] = value
        (folder / "point.json").write_text(json.dumps(doc))
    return mutate


def _write(data: bytes):
    return lambda folder: (folder / "point.json").write_bytes(data)


CASES = {
    "bad JSON": (_write(b"{bad"), "point.json", "JSON syntax error"),
    "a list": (_write(b"[1]"), "point.json", "expected a JSON object, got list"),
    "not UTF-8": (_write(b"\x93\xff"), "point.json", "not UTF-8"),
    "sharpe text": (_set("summary.sharpe", "x"), "point.json", "summary.sharpe: must be a finite number"),
    "n_trades text": (_set("summary.n_trades", "abc"), "point.json", "summary.n_trades: must be an integer"),
    "elapsed list": (_set("elapsed_s", [1]), "point.json", "elapsed_s: must be a finite number"),
    "sharpe 1e300": (_set("summary.sharpe", 1e300), "point.json", "does not match the point's metrics.json"),
    "wrong id": (_set("point_id", "0000000000"), "point.json", "point_id"),
    "equity deleted": (lambda f: (f / "portfolio_equity.parquet").unlink(), "portfolio_equity.parquet",
                       "missing or empty"),
    "metrics garbage": (lambda f: (f / "metrics.json").write_text("[]"), "metrics.json", "no 'portfolio'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_point_runs_again_with_one_warning(first_sweep, tmp_path, case, monkeypatch, capsys, world):
    base, first = first_sweep
    out = tmp_path / "sweep"
    shutil.copytree(base, out)
    pid = first.table["point_id"].iloc[0]  # the best point: a forged value would keep it first
    mutate, file_name, reason = CASES[case]
    mutate(out / "points" / pid)
    monkeypatch.chdir(world)
    code = main(["sweep", str(world / "sweep.yaml"), "--engine", "local", "--out", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err, captured.err
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, captured.err
    assert f"{out / 'points' / pid / file_name}: " in warnings[0] and reason in warnings[0], warnings[0]
    assert "2 points: 1 run, 1 reused, 0 failed" in captured.out
    redone = json.loads((out / "points" / pid / "point.json").read_text())
    original = json.loads((base / "points" / pid / "point.json").read_text())
    assert redone["summary"] == original["summary"]  # the point's real numbers again
    import pandas as pd

    ranked = pd.read_csv(out / "sweep_results.csv")
    assert list(ranked["point_id"]) == list(first.table["point_id"])


def test_intact_sweep_is_reused_silently(first_sweep, tmp_path, monkeypatch, capsys, world):
    base, _ = first_sweep
    out = tmp_path / "sweep"
    shutil.copytree(base, out)
    monkeypatch.chdir(world)
    assert main(["sweep", str(world / "sweep.yaml"), "--engine", "local", "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "warning:" not in captured.err and "2 points: 0 run, 2 reused, 0 failed" in captured.out


def test_points_run_by_other_kernels_run_again(first_sweep, tmp_path, monkeypatch, capsys, world):
    import raybt.numba_cache as numba_cache

    base, _ = first_sweep
    out = tmp_path / "sweep"
    shutil.copytree(base, out)
    monkeypatch.chdir(world)
    monkeypatch.setattr(numba_cache, "kernels_fingerprint", lambda: "another raybt's kernels")
    assert main(["sweep", str(world / "sweep.yaml"), "--engine", "local", "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("run by other strategy kernels") == 2, captured.err
    assert "2 points: 2 run, 0 reused, 0 failed" in captured.out


def test_points_whose_bars_changed_run_again(first_sweep, tmp_path, monkeypatch, capsys, world):
    """The same file names and asset config (so the same point ids), other prices in one file."""
    import pandas as pd

    base, _ = first_sweep
    out = tmp_path / "sweep"
    shutil.copytree(base, out)
    data = sorted((world / "data").glob("*.parquet"))[0]
    kept = tmp_path / data.name
    shutil.copy2(data, kept)
    try:
        bars = pd.read_parquet(data)
        bars[["open", "high", "low", "close"]] *= 1.001
        bars.to_parquet(data)
        monkeypatch.chdir(world)
        assert main(["sweep", str(world / "sweep.yaml"), "--engine", "local", "--out", str(out),
                     "--no-progress"]) == 0
    finally:
        shutil.copy2(kept, data)  # the module's world as it was
    captured = capsys.readouterr()
    assert captured.err.count(f"the bars of asset {data.stem} changed since the point ran") == 2, captured.err
    assert "2 points: 2 run, 0 reused, 0 failed" in captured.out


# --- best_configs naming assets the portfolio does not have ------------------------------------

def _best_configs(folder: Path, extra: dict | None = None, weight: float | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    params = {"bb_period": 30, "entry_z": 2.4}
    doc = {"preference": "balanced", "assets": {}}
    for i, name in enumerate(names_of_world):
        p = dict(params)
        if weight is not None and i == 1:
            p["weight"] = weight
        doc["assets"][name] = {"params": p}
    doc["assets"].update(extra or {})
    path = folder / "best_configs_balanced.json"
    path.write_text(json.dumps(doc))
    return path


names_of_world: list[str] = []


@pytest.fixture
def in_world(world, tmp_path, monkeypatch):
    names_of_world[:] = names_of(world)
    monkeypatch.chdir(tmp_path)
    return world


def test_unknown_asset_in_best_configs_is_one_warning_and_not_counted(in_world, tmp_path, capsys):
    typo = names_of_world[0].upper() + "_typo"
    path = _best_configs(tmp_path / "results", {typo: {"params": {"bb_period": 50}}})
    code = main(["run", str(in_world / "base.yaml"), "--engine", "local", "--out", str(tmp_path / "run"),
                 "--no-report", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err, captured.err
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, captured.err
    assert str(Path("results") / path.name) in warnings[0] and f"assets.{typo}" in warnings[0]
    assert f"did you mean '{names_of_world[0]}'" in warnings[0]
    assert "picks for 3 asset(s)" in captured.out
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["best_configs"]["assets"] == names_of_world


def test_asset_of_another_portfolio_in_best_configs_is_silent(in_world, tmp_path, capsys):
    from raybt.config.resolve import resolve_portfolio

    _best_configs(tmp_path / "results")
    lines = []
    base = yaml.safe_load((in_world / "base.yaml").read_text())
    base["assets"] = names_of_world[:2]
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(base))
    configs, _, _ = resolve_portfolio(None, tmp_path / "two.yaml", best_configs_dir="results", echo=lines.append)
    assert lines == [] and [c.params["bb_period"] for c in configs] == [30, 30]


def test_weight_from_best_configs_names_the_file(in_world, tmp_path, capsys):
    path = _best_configs(tmp_path / "results", weight=0.5)
    code = main(["run", str(in_world / "base.yaml"), "--engine", "local", "--out", str(tmp_path / "run"),
                 "--no-report", "--no-progress"])
    assert code == 2
    line = _one_error(capsys)
    assert f"{Path('results') / path.name}: assets.{names_of_world[1]}: weight 0.5" in line


def test_sweep_warns_once_for_an_unknown_best_configs_asset(in_world, tmp_path, capsys):
    _best_configs(tmp_path / "results", {"NOPE_5m": {"params": {"bb_period": 50}}})
    code = main(["sweep", str(in_world / "sweep.yaml"), "--engine", "local", "--out", str(tmp_path / "sw"),
                 "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err, captured.err
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "assets.NOPE_5m" in warnings[0], captured.err


# --- run_request.json on --resume --------------------------------------------------------------

def _request(tmp_path: Path, **changes) -> Path:
    partial = tmp_path / ".run.partial"
    partial.mkdir()
    (partial / "INCOMPLETE").write_text("x\n")
    request = {"config": None, "preference": None, "allocation": None, "max_assets": None, "timeframe": None,
               "chunk": "4h", "checkpoint_every": 1, "checkpoint_seconds": None, "format": None,
               "date_format": None, "layout": None, "assets_per_actor": None, "report": False, **changes}
    (partial / "run_request.json").write_text(json.dumps(request))
    return partial / "run_request.json"


@pytest.mark.parametrize("changes,needle", [
    ({"max_assets": "3"}, "max_assets: must be an integer"),
    ({"max_assets": 0}, "max_assets: must be >= 1"),
    ({"config": [1]}, "config: must be the path of the portfolio config file"),
    ({"checkpoint_every": "abc"}, "checkpoint_every: must be an integer"),
    ({"chunk": "bogus"}, "chunk: not a duration"),
    ({"allocation": "risk_parit"}, "allocation: must be one of"),
    ({"report": "no"}, "report: must be true or false"),
    ({"timeframe": 3.5}, "timeframe: not a timeframe"),
    ({"layout": 1}, "layout: must be one of"),
    ({"extra_key": 1}, "unknown key 'extra_key'"),
    ({"config": "configs/nowhere.yaml"}, "config: the portfolio config file 'configs/nowhere.yaml' is not in "
                                         "the current folder"),
])
def test_bad_run_request_is_one_error_naming_it(tmp_path, monkeypatch, capsys, changes, needle):
    monkeypatch.chdir(tmp_path)
    path = _request(tmp_path, **changes)
    code = main(["run", "--resume", str(tmp_path / "run"), "--engine", "local", "--no-progress"])
    assert code == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: {path}: ") and needle in line, line


@pytest.mark.parametrize("raw,needle", [(b"{bad", "JSON syntax error"), (b"[1]", "expected a JSON object"),
                                        (b"\x93", "not UTF-8")])
def test_unreadable_run_request_names_it(tmp_path, capsys, raw, needle):
    path = _request(tmp_path)
    path.write_bytes(raw)
    assert main(["run", "--resume", str(tmp_path / "run"), "--engine", "local", "--no-progress"]) == 2
    line = _one_error(capsys)
    assert str(path) in line and needle in line


def test_run_request_config_is_stored_absolute_and_old_relative_paths_use_the_cwd(in_world, tmp_path,
                                                                                 monkeypatch):
    from raybt.checkpoints import find_resumable, start_run_dir
    from raybt.results import unlock_partial

    (tmp_path / "configs").mkdir()
    shutil.copy(in_world / "base.yaml", tmp_path / "configs" / "p.yaml")
    tmp = start_run_dir(tmp_path / "run", {"config": "configs/p.yaml", "max_assets": None})
    stored = json.loads((tmp / "run_request.json").read_text())["config"]
    assert stored == str((tmp_path / "configs" / "p.yaml").resolve())
    unlock_partial(tmp)
    monkeypatch.chdir(in_world)  # another folder: the absolute path still works
    _, _, request = find_resumable(tmp_path / "run")
    assert request["config"] == stored
    unlock_partial(tmp)
    # an old request with a relative path: resolved against the current folder when it is there
    request_path = tmp / "run_request.json"
    request_path.write_text(json.dumps({"config": "configs/p.yaml"}))
    monkeypatch.chdir(tmp_path)
    _, _, request = find_resumable(tmp_path / "run")
    assert request["config"] == str((tmp_path / "configs" / "p.yaml").resolve())
    unlock_partial(tmp)
    monkeypatch.chdir(in_world)
    with pytest.raises(ConfigError, match=rf"^{request_path}: config: .*not in the current folder"):
        find_resumable(tmp_path / "run")


def test_default_config_is_stored_by_its_absolute_path(world, tmp_path, monkeypatch, capsys):
    """A run without CONFIG records the file it used (configs/portfolio_balanced.yaml), absolute."""
    from raybt.checkpoints import start_run_dir

    calls = {}
    import raybt.checkpoints as ck

    def spy(final, request, **kw):
        calls["request"] = request
        return start_run_dir(final, request, **kw)

    monkeypatch.setattr(ck, "start_run_dir", spy)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    shutil.copy(world / "base.yaml", tmp_path / "configs" / "portfolio_balanced.yaml")
    assert main(["run", "--engine", "local", "--out", str(tmp_path / "run"), "--no-report", "--no-progress"]) == 0
    capsys.readouterr()
    assert Path(calls["request"]["config"]).name == "portfolio_balanced.yaml"
