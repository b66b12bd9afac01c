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
import datetime as _dt
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raybt.errors import ConfigError, RaybtError
from raybt.progress import task_progress
from raybt.sweep.spec import (
    RANK_METRICS,
    SweepPoint,
    SweepSpec,
    format_value,
    label_legend,
    resolve_points,
)
from raybt.sweep.validate import validate_points

METRIC_COLUMNS = ("total_return", "cagr", "sharpe", "max_drawdown", "calmar", "diversification_ratio", "n_trades")
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

def _cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, tuple, dict)):
        return format_value(value)
    return value


def rank_table(rows: list[dict], rank_by: str = "sharpe") -> pd.DataFrame:
    """Rows ranked best first: ok points by ``rank_by`` (NaN last, ties in point order), failed last."""
    if rank_by not in RANK_METRICS:
        raise ConfigError(f"--rank-by must be one of {', '.join(RANK_METRICS)}, got {rank_by!r}")
    higher = RANK_METRICS[rank_by]

    def key(item):
        pos, row = item
        if row["status"] != "ok":
            return (2, 0.0, pos)
        value = row.get(rank_by)
        if value is None or not math.isfinite(float(value)):
            return (1, 0.0, pos)
        return (0, -float(value) if higher else float(value), pos)

    ordered = [row for _, row in sorted(enumerate(rows), key=key)]
    return pd.DataFrame(ordered)


def table_columns(swept: list[str]) -> list[str]:
    return ["point_id", "status", "error", *swept, *METRIC_COLUMNS]


# --- figures and files -------------------------------------------------------------------

def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.parent / f".{path.name}.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)


def write_scatter(table: pd.DataFrame, labels: dict, path: Path, *, best_id: str | None, title: str,
                  legend: str, rank_by: str) -> Path | None:
    """Total return vs max drawdown (percent), every point labelled, the best one highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[table["status"] == "ok"]
    x = pd.to_numeric(ok["max_drawdown"], errors="coerce").to_numpy(dtype=float) * 100.0
    y = pd.to_numeric(ok["total_return"], errors="coerce").to_numpy(dtype=float) * 100.0
    ids = list(ok["point_id"])
    finite = np.isfinite(x) & np.isfinite(y)
    fig, ax = plt.subplots(figsize=(10, 7), dpi=120)
    try:
        ax.axhline(0.0, color="0.6", lw=0.8, zorder=1)
        ax.scatter(x[finite], y[finite], s=42, color="#1f77b4", alpha=0.85, zorder=3, label="point")
        # points at the same place share one label
        groups: dict[tuple, list[str]] = {}
        for xi, yi, pid, f in zip(x, y, ids, finite):
            if f:
                groups.setdefault((round(xi, 6), round(yi, 6)), []).append(pid)
        if best_id is not None and best_id in ids:
            b = ids.index(best_id)
            if finite[b]:
                ax.scatter([x[b]], [y[b]], s=260, marker="*", color="#d62728", edgecolor="black", lw=0.8,
                           zorder=4, label=f"best by {rank_by}")
        if finite.any():
            xs, ys = x[finite], y[finite]
            dx = (xs.max() - xs.min()) or max(abs(xs.max()), 1.0)
            dy = (ys.max() - ys.min()) or max(abs(ys.max()), 1.0)
            ax.set_xlim(xs.min() - 0.12 * dx, xs.max() + 0.25 * dx)
            ax.set_ylim(ys.min() - 0.15 * dy, ys.max() + 0.15 * dy)
        ax.set_xlabel("max drawdown (%)")
        ax.set_ylabel("total return (%)")
        ax.set_title(title, fontsize=11)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.text(0.01, 0.01, f"labels: {legend}", fontsize=8, color="0.3")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        _place_labels(fig, ax, groups, labels, best_id)
        tmp = path.parent / f".{path.stem}.tmp.png"
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
    return path


def _place_labels(fig, ax, groups: dict, labels: dict, best_id: str | None) -> None:
    """Annotate each point group, choosing for each label the first candidate
    offset whose box overlaps no label placed so far nor any point marker."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    offsets = [(8, 6), (8, -8), (-8, 6), (-8, -8), (14, 16), (14, -18), (-14, 16), (-14, -18),
               (22, 0), (-22, 0), (0, 20), (0, -22), (26, 28), (26, -30), (-26, 28), (-26, -30),
               (40, 8), (-40, 8), (40, -12), (-40, -12)]
    point_px = [ax.transData.transform(k) for k in groups]
    placed = []
    inside = ax.get_window_extent(renderer)
    # best point first, so it gets the nearest spot
    order = sorted(groups.items(), key=lambda kv: 0 if best_id in kv[1] else 1)
    for (px, py), pids in order:
        names = [labels.get(p, p) for p in pids]
        text = names[0] if len(names) == 1 else "\n".join(names) if len(names) <= 3 else \
            "\n".join(names[:3]) + f"\n+{len(names) - 3} more"
        best = best_id in pids
        chosen = None
        for ox, oy in offsets:
            ha = "left" if ox >= 0 else "right"
            va = "bottom" if oy >= 0 else "top"
            ann = ax.annotate(text, (px, py), xytext=(ox, oy), textcoords="offset points", fontsize=8,
                              ha=ha, va=va, fontweight="bold" if best else "normal",
                              color="#b00000" if best else "0.1", zorder=5,
                              bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7),
                              arrowprops=dict(arrowstyle="-", color="0.45", lw=0.6, shrinkA=0, shrinkB=3))
            box = ann.get_window_extent(renderer).expanded(1.02, 1.05)
            clash = any(box.overlaps(b) for b in placed) or any(
                box.contains(qx, qy) for qx, qy in point_px) or not (
                inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1))
            if not clash:
                chosen = ann
                break
            ann.remove()
        if chosen is None:  # crowded: nearest spot with a leader line
            chosen = ax.annotate(text, (px, py), xytext=(12, 12), textcoords="offset points", fontsize=8,
                                 fontweight="bold" if best else "normal",
                                 color="#b00000" if best else "0.1", zorder=5,
                                 arrowprops=dict(arrowstyle="-", color="0.5", lw=0.6))
        placed.append(chosen.get_window_extent(renderer))


def best_config_text(point: SweepPoint, sweep_name: str, rank_by: str, value: float) -> str:
    import yaml

    head = (f"# best point of sweep '{sweep_name}' by {rank_by} ({value:.6g}): point {point.point_id}\n"
            f"# swept values: {', '.join(f'{k}={format_value(v)}' for k, v in point.params.items()) or '-'}\n"
            f"# run it with: raybt run <this file>\n")
    return head + yaml.safe_dump(point.config_dict, sort_keys=False)


# --- the sweep -----------------------------------------------------------------------------

@dataclass
class SweepResult:
    """A finished sweep: the ranked table, the points, the best one and the output folder."""

    out: Path
    table: pd.DataFrame
    points: list
    best: SweepPoint | None
    rank_by: str
    swept: list
    n_failed: int = 0
    n_reused: int = 0
    timings: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)


def default_sweep_dir(name: str, root="results") -> Path:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "sweep"
    candidate = Path(root) / f"sweep-{safe}-{stamp}"
    k = 1
    while candidate.exists():
        k += 1
        candidate = Path(root) / f"sweep-{safe}-{stamp}-{k}"
    return candidate


def _ensure_data(points: list[SweepPoint], echo) -> None:
    """Generate the bundled synthetic universe once, in the driver, before tasks read it."""
    from raybt.config import load_asset_universe
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
    out = Path(out) if out is not None else default_sweep_dir(spec.name)
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


def write_outputs(result: SweepResult, spec: SweepSpec, state: dict, engine: str) -> None:
    """sweep_results.csv, sweep_scatter.png, best_config.yaml and sweep.json in ``result.out``."""
    import raybt
    from raybt.results import write_json

    out = result.out
    table = result.table
    tmp_csv = out / ".sweep_results.csv.tmp"
    table.to_csv(tmp_csv, index=False)
    os.replace(tmp_csv, out / "sweep_results.csv")
    best = result.best
    best_value = None
    if best is not None:
        best_value = float(table.loc[table["point_id"] == best.point_id, result.rank_by].iloc[0])
        _atomic_write_text(out / "best_config.yaml", best_config_text(best, spec.name, result.rank_by, best_value))
    elif (out / "best_config.yaml").exists():
        (out / "best_config.yaml").unlink()  # stale from an earlier run
    legend = label_legend([p.params for p in result.points])
    n_ok = int((table["status"] == "ok").sum())
    title = f"sweep {spec.name}: {n_ok} of {len(table)} points, best by {result.rank_by}"
    if best is not None:
        title += f": {best.label} ({best_value:.3g})"
    write_scatter(table, result.labels, out / "sweep_scatter.png", best_id=best.point_id if best else None,
                  title=title, legend=legend, rank_by=result.rank_by)
    doc = {
        "name": spec.name, "description": spec.description, "spec_file": str(spec.path),
        "base": str(spec.base), "mode": spec.mode, "spec": spec.document, "swept": result.swept,
        "rank_by": result.rank_by, "engine": engine, "raybt_version": raybt.__version__,
        "label_legend": legend,
        "best": None if best is None else {"point_id": best.point_id, "label": best.label, "params": best.params,
                                           result.rank_by: best_value},
        "points": [{"index": p.index, "point_id": p.point_id, "label": p.label, "params": p.params,
                    "status": state[p.point_id]["status"], "error": state[p.point_id]["error"],
                    "reused": state[p.point_id]["reused"], "elapsed_s": state[p.point_id]["elapsed_s"],
                    "folder": f"points/{p.point_id}" if state[p.point_id]["status"] == "ok" else None}
                   for p in result.points],
        "timings": result.timings,
    }
    tmp = out / ".sweep.json.tmp"
    write_json(tmp, doc)
    os.replace(tmp, out / "sweep.json")


__all__ = ["METRIC_COLUMNS", "SweepResult", "default_sweep_dir", "diversification_of", "execute_point",
           "load_point_summary", "one_line", "point_complete", "point_summary", "rank_table", "run_sweep",
           "save_point", "write_outputs", "write_scatter"]
