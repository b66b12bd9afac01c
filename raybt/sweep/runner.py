"""Running a sweep: resolved points -> portfolio backtests (Ray tasks or in-process) -> outputs.

Work unit
---------
One point = one full portfolio backtest with the in-process engine
(``PortfolioBacktester(..., engine="local")``). With ``engine="ray"`` every
point is one Ray task (``num_cpus=1``, numba limited to one thread, so a
sweep never nests actors); the task gets only the point's resolved config
dict and loads the bars itself through
:func:`raybt.portfolio.load_portfolio_from_config`, so the data (and the asset
config) need only a path every node can read. No bars travel through the
object store. The task returns the :class:`~raybt.engine.PortfolioResult` to
the driver, which writes the point folder, so the output folder needs to
exist only on the driver. ``ray.wait`` collects the points as they finish
under a progress bar; ``max_parallel`` caps the tasks in flight.
``engine="local"`` runs the same function for every point, one after the
other, in this process. Both give identical tables.

A point runs exactly as ``raybt run <its config>`` would: the same per-asset
parameters from ``best_configs_<preference>.json`` and the same asset
ranking for ``allocation.max_assets`` (:func:`raybt.portfolio.preference_ranking`).
Before the first point runs, and before ``out`` is created, every point is
checked against its asset config, the optimiser's results and the bars'
timestamps (:mod:`raybt.sweep.validate`): one bad point stops the sweep with
one line naming it.

Outputs (``out``)
-----------------
* ``points/<point_id>/``: the point's run folder (``PortfolioResult.save``,
  written atomically, then ``point.json`` with its parameters, summary row
  and timing; a point folder is *complete* when ``point.json`` exists). A
  complete folder is reused when the sweep runs again into the same ``out``
  (resumable); failed points have no folder and run again.
* ``sweep_results.csv``: one row per point, ranked (best first, failed last):
  point_id, status (ok | failed), error, one column per swept dotted path
  (its effective value), total_return, cagr, sharpe, max_drawdown, calmar,
  diversification_ratio, n_trades. Fractions are fractions.
* ``sweep_scatter.png``: total return vs max drawdown (percent), every point
  labelled, the best point highlighted.
* ``best_config.yaml``: the best point's full resolved portfolio config
  (``asset_config`` absolute), ready for ``raybt run``.
* ``sweep.json``: the spec, every point (id, label, params, status, error,
  reused, seconds) and timings.

``diversification_ratio``: :func:`raybt.analysis.diversification_ratio` of the
point's sleeve returns (rebalancing flows excluded) at the sleeves' average
share of portfolio equity (:func:`raybt.analysis.equity_weights`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from raybt.errors import ConfigError, RaybtError
from raybt.progress import task_progress
from raybt.config.sweep import RANK_METRICS, SweepPoint, SweepSpec, resolve_points
from raybt.results import new_run_dir
from raybt.sweep.outputs import METRIC_COLUMNS, SweepResult, _cell, rank_table, table_columns, write_outputs
from raybt.sweep.validate import validate_points

POINT_FILE = "point.json"
ERROR_CHARS = 300


# --- one point ---------------------------------------------------------------------------

def one_line(exc: BaseException) -> str:
    """An exception as one short line (user errors: their message; others: Type: message)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    line = first if isinstance(exc, RaybtError) and first else (f"{type(exc).__name__}: {first}" if first
                                                                else type(exc).__name__)
    return line if len(line) <= ERROR_CHARS else line[:ERROR_CHARS - 3] + "..."


def execute_point(config_dict: dict, best_configs_dir="results"):
    """Run one point: its resolved config -> :class:`~raybt.engine.PortfolioResult` (engine local).

    The config is written to a temporary YAML file and loaded with
    :func:`raybt.portfolio.load_portfolio_from_config` exactly as ``raybt run
    <file>`` would: per-asset parameters from ``best_configs_dir``'s
    ``best_configs_<preference>.json`` and, for ``allocation.max_assets`` /
    ``max_asset_correlation``, the same asset ranking
    (:func:`raybt.portfolio.preference_ranking`). ``best_configs_dir=None``:
    no optimiser results (configured parameters, window-Sharpe ranking).
    """
    import yaml

    from raybt.engine import PortfolioBacktester
    from raybt.portfolio import load_portfolio_from_config, preference_ranking

    with tempfile.TemporaryDirectory(prefix="raybt-sweep-") as tmp:
        path = Path(tmp) / "point.yaml"
        path.write_text(yaml.safe_dump(config_dict, sort_keys=False))
        best_dir = Path(tmp) / "no-results" if best_configs_dir is None else best_configs_dir
        assets, pconf = load_portfolio_from_config(None, path, best_configs_dir=best_dir)
    ranking = preference_ranking(pconf.preference, best_configs_dir, allocation=pconf.allocation,
                                 assets=list(assets))
    return PortfolioBacktester(assets, pconf, engine="local", ranking=ranking).run()


def diversification_of(result) -> float:
    """DR of the point's sleeve returns at their average equity weights (NaN when undefined)."""
    from raybt.analysis import (
        asset_columns,
        capital_flows,
        diversification_ratio,
        equity_weights,
        sleeve_returns,
    )

    try:
        equity = result.equity
        names = asset_columns(equity)
        flows = None
        m = result.multipliers
        if m is not None and len(m) and "capital_adjustment" in m.columns:
            flows = capital_flows(m, equity.index, names)
        value = diversification_ratio(sleeve_returns(equity, names, flows), equity_weights(equity, names))
        return float(value)
    except (ValueError, KeyError, ZeroDivisionError, FloatingPointError):
        return math.nan


def point_summary(result) -> dict:
    """The metric columns of a point's row."""
    p = result.metrics["portfolio"]

    def num(key):
        value = p.get(key)
        return float(value) if value is not None else math.nan

    return {"total_return": num("total_return"), "cagr": num("cagr"), "sharpe": num("sharpe"),
            "max_drawdown": num("max_drawdown"), "calmar": num("calmar"),
            "diversification_ratio": diversification_of(result),
            "n_trades": int(p.get("n_trades") or len(result.trades))}


def _run_point(config_dict: dict, best_configs_dir) -> dict:
    """Run + summarise one point; never raises (an error is returned as one line)."""
    t0 = time.perf_counter()
    try:
        result = execute_point(config_dict, best_configs_dir)
        summary = point_summary(result)
    except Exception as exc:  # noqa: BLE001 - a failed point is recorded, the sweep goes on
        return {"ok": False, "error": one_line(exc), "elapsed_s": time.perf_counter() - t0}
    return {"ok": True, "result": result, "summary": summary, "elapsed_s": time.perf_counter() - t0}


def _ray_point_task(config_dict: dict, best_configs_dir) -> dict:
    """Ray task body: one point with the in-process engine on the task's one CPU."""
    with contextlib.suppress(Exception):
        import numba

        numba.set_num_threads(1)
    return _run_point(config_dict, best_configs_dir)


# --- point folders -----------------------------------------------------------------------

def point_complete(points_dir: Path, point_id: str) -> bool:
    return (Path(points_dir) / point_id / POINT_FILE).is_file()


def _save_result(result, folder: Path) -> None:
    """``result.save`` without the HTML report, in the point config's table format."""
    result.save(folder, report=False, format=(result.config.get("output") or {}).get("format", "parquet"))


def save_point(result, summary: dict, point: SweepPoint, points_dir: Path, elapsed_s: float) -> Path:
    """Write ``points/<id>/`` atomically: the run folder, then ``point.json``, then rename."""
    from raybt.metrics import json_safe
    from raybt.results import write_json

    points_dir = Path(points_dir)
    final = points_dir / point.point_id
    staging = points_dir / f".{point.point_id}.staging"
    if staging.exists():
        shutil.rmtree(staging)
    _save_result(result, staging)  # itself atomic (a .partial folder renamed when complete)
    write_json(staging / POINT_FILE, {
        "point_id": point.point_id, "params": point.params, "summary": json_safe(summary),
        "elapsed_s": elapsed_s, "config": point.config_dict})
    if final.exists():  # an incomplete leftover (no point.json)
        shutil.rmtree(final)
    os.replace(staging, final)
    return final


def load_point_summary(points_dir: Path, point_id: str) -> tuple[dict, float]:
    doc = json.loads((Path(points_dir) / point_id / POINT_FILE).read_text())
    raw = doc.get("summary") or {}
    summary = {k: (math.nan if raw.get(k) is None else raw[k]) for k in METRIC_COLUMNS}
    summary["n_trades"] = int(raw.get("n_trades") or 0)
    return summary, float(doc.get("elapsed_s") or 0.0)


# --- the table ---------------------------------------------------------------------------


# --- figures and files -------------------------------------------------------------------


# --- the sweep -----------------------------------------------------------------------------


def _ensure_data(points: list[SweepPoint], echo) -> None:
    """Generate the bundled synthetic universe once, in the driver, before tasks read it."""
    from raybt.config.universe import load_asset_universe
    from raybt.universe import ensure_synthetic

    for path in sorted({p.config_dict["asset_config"] for p in points}):
        try:
            universe = load_asset_universe(path)
            if universe.synthetic is not None and any(
                    not a.data.is_file() and Path(universe.synthetic.dir) in a.data.parents
                    for a in universe.assets.values()):
                ensure_synthetic(universe.synthetic, echo)
        except RaybtError:
            continue  # the points report it


def run_sweep(spec: SweepSpec, out=None, *, engine: str = "ray", address: str | None = None,
              rank_by: str | None = None, progress: bool = False, max_parallel: int | None = None,
              best_configs_dir="results", echo=None) -> SweepResult:
    """Resolve, check, run (skipping complete point folders in ``out``) and write every output.

    Every point is checked before the first one runs and before ``out`` is
    created (:func:`raybt.sweep.validate.validate_points`): a bad point raises
    one RaybtError naming the sweep file and the point, and leaves nothing.
    ``engine``: ``"ray"`` (one task per point) or ``"local"`` (in-process,
    sequential). A point that still raises while it runs is recorded as
    ``failed`` with its error and the others go on; check ``SweepResult.n_failed``.
    """
    if engine not in ("ray", "local"):
        raise ConfigError(f"--engine must be ray or local, got {engine!r}")
    rank_by = rank_by or spec.rank_by
    if rank_by not in RANK_METRICS:
        raise ConfigError(f"--rank-by must be one of {', '.join(RANK_METRICS)}, got {rank_by!r}")
    if max_parallel is not None and max_parallel < 1:
        raise ConfigError(f"--max-parallel must be >= 1, got {max_parallel}")
    say = echo or (lambda message: None)
    t0 = time.perf_counter()
    best_dir = Path(best_configs_dir).resolve() if best_configs_dir is not None else None
    points = resolve_points(spec, best_dir)  # every point's config valid before any runs
    validate_points(points, best_dir)  # ... and its assets, optimiser results, chunk and bars
    t_resolved = time.perf_counter()
    out = Path(out) if out is not None else new_run_dir("results", f"sweep-{spec.name}")
    points_dir = out / "points"
    try:
        points_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out}: output folder not writable ({exc.strerror})") from None

    swept = spec.swept
    labels = {p.point_id: p.label for p in points}
    state: dict[str, dict] = {}
    todo = []
    for p in points:
        if point_complete(points_dir, p.point_id):
            summary, elapsed = load_point_summary(points_dir, p.point_id)
            state[p.point_id] = {"status": "ok", "error": "", "summary": summary, "elapsed_s": elapsed,
                                 "reused": True}
        else:
            todo.append(p)
    n_reused = len(points) - len(todo)
    say(f"sweep {spec.name}: {len(points)} points ({n_reused} already done in {points_dir}), "
        f"{len(todo)} to run, engine {engine}")

    def finish(point: SweepPoint, payload: dict, advance) -> None:
        entry = {"status": "failed", "error": payload.get("error", ""), "summary": {},
                 "elapsed_s": float(payload.get("elapsed_s", 0.0)), "reused": False}
        if payload.get("ok"):
            try:
                save_point(payload["result"], payload["summary"], point, points_dir, entry["elapsed_s"])
                entry.update(status="ok", error="", summary=payload["summary"])
            except Exception as exc:  # noqa: BLE001 - e.g. disk full: this point failed
                entry["error"] = f"saving the point failed: {one_line(exc)}"
        state[point.point_id] = entry
        if entry["status"] == "ok":
            s = entry["summary"]
            advance(f"{point.label}: Sharpe {s['sharpe']:.2f}, return {s['total_return']:.1%}")
        else:
            advance(f"{point.label}: FAILED")

    t_run = time.perf_counter()
    if todo:
        _ensure_data(todo, echo)
        with task_progress(len(todo), f"sweep {spec.name} ({engine})", progress) as advance:
            if engine == "local":
                for p in todo:
                    finish(p, _run_point(p.config_dict, best_dir), advance)
            else:
                _run_on_ray(todo, best_dir, address, max_parallel, lambda p, payload: finish(p, payload, advance))
    t_done = time.perf_counter()

    rows = []
    for p in points:
        entry = state[p.point_id]
        row = {"point_id": p.point_id, "status": entry["status"], "error": entry["error"]}
        for path in swept:
            row[path] = _cell(p.value(path))
        for col in METRIC_COLUMNS:
            row[col] = entry["summary"].get(col, math.nan if col != "n_trades" else None)
        rows.append(row)
    table = rank_table(rows, rank_by)
    table = table.reindex(columns=table_columns(swept))
    by_id = {p.point_id: p for p in points}
    best = None
    top = table[(table["status"] == "ok")]
    if len(top):
        value = pd.to_numeric(top[rank_by], errors="coerce")
        if value.notna().any():
            best = by_id[top.loc[value.notna()].iloc[0]["point_id"]]
    n_failed = int((table["status"] == "failed").sum())
    timings = {"total_s": time.perf_counter() - t0, "resolve_s": t_resolved - t0, "run_s": t_done - t_run,
               "points": len(points), "points_run": len(todo), "points_reused": n_reused,
               "points_failed": n_failed}
    result = SweepResult(out=out, table=table, points=points, best=best, rank_by=rank_by, swept=swept,
                         n_failed=n_failed, n_reused=n_reused, timings=timings, labels=labels)
    write_outputs(result, spec, state, engine)
    result.timings["total_s"] = time.perf_counter() - t0
    return result


def _run_on_ray(todo: list[SweepPoint], best_dir, address, max_parallel, finish) -> None:
    """One Ray task per point, at most ``max_parallel`` at once; a task that fails is a failed point."""
    from raybt.ray.runtime import ensure_ray
    from raybt.ray.tasks import map_tasks

    ensure_ray(address)
    map_tasks(_ray_point_task, [(p, (p.config_dict, best_dir)) for p in todo], finish, max_parallel=max_parallel,
              on_error=lambda p, exc: finish(p, {"ok": False, "error": one_line(exc)}))


__all__ = ["METRIC_COLUMNS", "SweepResult", "diversification_of", "execute_point", "load_point_summary", "one_line",
           "point_complete", "point_summary", "rank_table", "run_sweep", "save_point", "write_outputs"]
