"""Running a sweep: resolved points -> portfolio backtests (Ray tasks or in-process) -> outputs.

Work unit
---------
One point = one full portfolio backtest with the in-process engine
(``PortfolioBacktester(..., engine="local")``). The driver checks every
point (:mod:`raybt.sweep.validate`, which loads each distinct asset's bars
once), then resolves each into a :class:`PointJob` (the validated configs,
the optimiser's parameters and ranking). With ``engine="ray"`` every point is
one Ray task (one CPU, numba limited to one thread, so a sweep never nests
actors); each asset's bars go into the object store once and reach the tasks
as arguments, so workers on any node read no file (neither data nor config).
The task returns the :class:`~raybt.result.PortfolioResult` to the driver,
which writes the point folder, so the output folder needs to exist only on
the driver; points are collected as they finish under a progress bar
(:func:`raybt.ray.tasks.map_tasks`; ``max_parallel`` caps the tasks in
flight). ``engine="local"`` runs the same jobs one after the other in this
process. Both give identical tables.

A point runs exactly as ``raybt run <its config>`` would: the same per-asset
parameters from ``best_configs_<preference>.json`` and the same asset
ranking for ``allocation.max_assets`` (:func:`raybt.config.resolve.preference_ranking`).
Before the first point runs, and before ``out`` is created, every point is
checked against its asset config, the optimiser's results and the bars'
timestamps (:mod:`raybt.sweep.validate`): one bad point stops the sweep with
one line naming it.

Outputs (``out``)
-----------------
* ``points/<point_id>/``: the point's run folder (``PortfolioResult.save``,
  written atomically, then ``point.json`` with its parameters, summary row
  and timing). A folder is reused when the sweep runs again into the same
  ``out`` (resumable) only if it is complete and its ``point.json`` validates
  and matches the point's own files (:mod:`raybt.sweep.reuse`); otherwise the
  point runs again, with one ``warning:`` line naming the file. Failed points
  have no folder and run again.
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
import math
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from raybt.config.sweep import RANK_METRICS, SweepPoint, SweepSpec, resolve_points
from raybt.errors import ConfigError, RaybtError, RaybtWarning
from raybt.progress import task_progress
from raybt.results import new_run_dir
from raybt.sweep.outputs import METRIC_COLUMNS, SweepResult, _cell, rank_table, table_columns, write_outputs
from raybt.sweep.reuse import POINT_FILE, reuse_problem
from raybt.sweep.validate import validate_points

ERROR_CHARS = 300


# --- one point ---------------------------------------------------------------------------

def one_line(exc: BaseException) -> str:
    """An exception as one short line (user errors: their message; others: Type: message)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    line = first if isinstance(exc, RaybtError) and first else (f"{type(exc).__name__}: {first}" if first
                                                                else type(exc).__name__)
    return line if len(line) <= ERROR_CHARS else line[:ERROR_CHARS - 3] + "..."


@dataclass(frozen=True)
class PointJob:
    """One point, resolved in the driver exactly as ``raybt run`` of its config would resolve it.

    ``config``: the validated portfolio config; ``assets``: the asset configs
    with the optimiser's parameters applied; ``ranking``: the ``max_assets`` /
    ``max_asset_correlation`` ranking from ``best_configs_<preference>.json``
    (:func:`raybt.config.resolve.preference_ranking`); ``bars``: each asset's key
    into the bars the driver loaded once (:func:`raybt.sweep.validate.bars_key`).
    A job reads no file: its bars come with it (through the object store on Ray).
    """

    config: object
    assets: tuple
    ranking: dict | None
    bars: tuple


def resolve_job(config_dict: dict, best_configs_dir="results") -> PointJob:
    """A point's :class:`PointJob` (its config written to a temporary YAML file and resolved as
    ``raybt run <file>`` would). ``best_configs_dir=None``: no optimiser results."""
    import yaml

    from raybt.config.resolve import preference_ranking, resolve_portfolio
    from raybt.sweep.validate import bars_key

    with tempfile.TemporaryDirectory(prefix="raybt-sweep-") as tmp:
        path = Path(tmp) / "point.yaml"
        path.write_text(yaml.safe_dump(config_dict, sort_keys=False))
        best_dir = Path(tmp) / "no-results" if best_configs_dir is None else best_configs_dir
        with warnings.catch_warnings():  # said once per sweep by validate_points
            warnings.simplefilter("ignore", RaybtWarning)
            configs, pconf, _ = resolve_portfolio(None, path, best_configs_dir=best_dir)
    ranking = preference_ranking(pconf.preference, best_configs_dir, allocation=pconf.allocation,
                                 assets=[a.name for a in configs])
    return PointJob(pconf, tuple(configs), ranking, tuple(bars_key(a) for a in configs))


class _StaleCheck:
    """Whether a finished point's folder still answers for its point: run on today's bars by today's
    kernels (its run_info.json records both); the hashes of the bars are taken once per asset."""

    def __init__(self, bars: dict, best_configs_dir):
        self.bars, self.best_configs_dir, self.hashes = bars, best_configs_dir, {}

    def problem(self, folder: Path, point) -> str | None:
        """The warning line when the point must run again, else None."""
        import json

        from raybt.checkpoints import bars_hash
        from raybt.numba_cache import kernels_fingerprint

        info_path = folder / "run_info.json"
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return f"{info_path}: cannot be read ({type(exc).__name__}); the point runs again"
        saved = info.get("data_hashes") if isinstance(info, dict) else None
        if not isinstance(saved, dict):
            return f"{info_path}: no data hashes to check the bars against; the point runs again"
        if info.get("kernels") != kernels_fingerprint():
            return f"{info_path}: run by other strategy kernels (raybt upgraded or edited since); the point runs again"
        job = resolve_job(point.config_dict, self.best_configs_dir)
        for asset, key in zip(job.assets, job.bars):
            if key not in self.hashes:
                self.hashes[key] = bars_hash(self.bars[key])
            if saved.get(asset.name) != self.hashes[key]:
                return f"{info_path}: the bars of asset {asset.name} changed since the point ran; the point runs again"
        return None


def execute_job(job: PointJob, frames):
    """Run one point on its bars (one frame per asset, in order) with the in-process engine: its
    :class:`~raybt.result.PortfolioResult`."""
    from raybt.engine import PortfolioBacktester
    from raybt.config.resolve import check_chunk

    assets = {a.name: (a, frame) for a, frame in zip(job.assets, frames)}
    check_chunk(job.config, [frame.index for frame in frames], f"{job.config.source}: engine.chunk")
    return PortfolioBacktester(assets, job.config, engine="local", ranking=job.ranking).run()


def execute_point(config_dict: dict, best_configs_dir="results"):
    """Run one point from its config (resolved and loaded here): the result ``raybt run`` would give."""
    from raybt.universe import load_asset_bars

    job = resolve_job(config_dict, best_configs_dir)
    return execute_job(job, [load_asset_bars(a) for a in job.assets])


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


def _run_point(job: PointJob, frames) -> dict:
    """Run + summarise one point; never raises (an error is returned as one line)."""
    t0 = time.perf_counter()
    try:
        result = execute_job(job, frames)
        summary = point_summary(result)
    except Exception as exc:  # noqa: BLE001 - a failed point is recorded, the sweep goes on
        return {"ok": False, "error": one_line(exc), "elapsed_s": time.perf_counter() - t0}
    return {"ok": True, "result": result, "summary": summary, "elapsed_s": time.perf_counter() - t0}


def stored_bars(frame) -> tuple:
    """What the object store keeps of an asset's bars: UTC ns timestamps and the OHLC columns."""
    return (frame.index.as_unit("ns").asi8, *(frame[c].to_numpy() for c in ("open", "high", "low", "close")))


def frame_of(stored) -> pd.DataFrame:
    """The bars frame viewing a :func:`stored_bars` tuple (no copy)."""
    ns, *ohlc = stored
    index = pd.DatetimeIndex(ns.view("datetime64[ns]"), name="timestamp").tz_localize("UTC")
    return pd.DataFrame(dict(zip(("open", "high", "low", "close"), ohlc)), index=index, copy=False)


def _ray_point_task(job: PointJob, *bars) -> dict:
    """Ray task body: one point with the in-process engine on the task's one CPU; its bars arrive as
    task arguments (Ray maps them from the object store), so the worker needs no data file."""
    with contextlib.suppress(Exception):
        import numba

        numba.set_num_threads(1)
    return _run_point(job, [frame_of(stored) for stored in bars])


# --- point folders -----------------------------------------------------------------------

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
    if final.is_symlink() or final.is_file():  # not a folder: replaced
        final.unlink()
    elif final.exists():  # an incomplete or damaged leftover (see raybt.sweep.reuse)
        shutil.rmtree(final)
    os.replace(staging, final)
    return final


# --- the table ---------------------------------------------------------------------------


# --- figures and files -------------------------------------------------------------------


# --- the sweep -----------------------------------------------------------------------------


def check_sweep_folder(out: Path) -> None:
    """``out`` is new, empty or an earlier sweep's folder (whose finished points are reused); a folder
    holding anything else (a run, an optimisation, your files) is refused rather than mixed into."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"{out}: output path exists and is not a folder")
    entries = sorted(p.name for p in out.iterdir())
    if entries and not ((out / "points").is_dir() or (out / "sweep.json").is_file()):
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise ConfigError(f"{out}: output folder already holds files that are not a sweep's ({shown}); "
                          f"choose another --out")


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
        raise ConfigError(f"engine: must be ray or local, got {engine!r}")
    rank_by = rank_by or spec.rank_by
    if rank_by not in RANK_METRICS:
        raise ConfigError(f"rank_by: must be one of {', '.join(RANK_METRICS)}, got {rank_by!r}")
    if max_parallel is not None and max_parallel < 1:
        raise ConfigError(f"max_parallel: must be >= 1, got {max_parallel}")
    say = echo or (lambda message: None)
    t0 = time.perf_counter()
    best_dir = Path(best_configs_dir).resolve() if best_configs_dir is not None else None
    points = resolve_points(spec, best_dir)  # every point's config valid before any runs
    bars = validate_points(points, best_dir, echo)  # ... its assets, optimiser results, chunk, bars (loaded once)
    t_resolved = time.perf_counter()
    out = Path(out) if out is not None else new_run_dir("results", f"sweep-{spec.name}")
    points_dir = out / "points"
    check_sweep_folder(out)
    if engine == "ray" and address:
        from raybt.ray.runtime import check_reachable

        check_reachable(address)  # an unreachable cluster: the error before any folder is made
    try:
        points_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out}: output folder not writable ({exc.strerror})") from None

    swept = spec.swept
    labels = {p.point_id: p.label for p in points}
    state: dict[str, dict] = {}
    todo = []
    stale = _StaleCheck(bars, best_dir)
    for p in points:
        problem, reused = reuse_problem(points_dir, p)  # a damaged earlier point is run again, with a warning
        if reused is not None:
            problem = stale.problem(points_dir / p.point_id, p)
            reused = None if problem else reused
        if problem and echo is not None:
            echo(f"warning: {problem}")
        elif problem:
            warnings.warn(problem, RaybtWarning, stacklevel=2)
        if reused is not None:
            summary, elapsed = reused
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
        with task_progress(len(todo), f"sweep {spec.name} ({engine})", progress) as advance:
            jobs = {}
            for p in todo:  # every point resolved here, in the driver, as raybt run would
                try:
                    jobs[p.point_id] = resolve_job(p.config_dict, best_dir)
                except Exception as exc:  # noqa: BLE001 - a failed point is recorded, the sweep goes on
                    finish(p, {"ok": False, "error": one_line(exc)}, advance)
            runnable = [p for p in todo if p.point_id in jobs]
            if engine == "local":
                for p in runnable:
                    job = jobs[p.point_id]
                    finish(p, _run_point(job, [bars[key] for key in job.bars]), advance)
            elif runnable:
                _run_on_ray(runnable, jobs, bars, address, max_parallel,
                            lambda p, payload: finish(p, payload, advance))
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


def _run_on_ray(todo: list[SweepPoint], jobs: dict, bars: dict, address, max_parallel, finish) -> None:
    """One Ray task per point, at most ``max_parallel`` at once; a task that fails is a failed point.

    Each distinct asset's bars go into the object store once and reach the
    tasks as arguments: the workers (on any node) read no data file.
    """
    from raybt.ray.runtime import ensure_ray
    from raybt.ray.tasks import map_tasks, put

    ensure_ray(address)
    needed = {key for p in todo for key in jobs[p.point_id].bars}
    refs = {key: put(stored_bars(bars[key])) for key in sorted(needed)}
    calls = [(p, (jobs[p.point_id], *(refs[key] for key in jobs[p.point_id].bars))) for p in todo]
    map_tasks(_ray_point_task, calls, finish, max_parallel=max_parallel,
              on_error=lambda p, exc: finish(p, {"ok": False, "error": one_line(exc)}))


__all__ = ["METRIC_COLUMNS", "SweepResult", "diversification_of", "execute_point", "one_line", "point_summary",
           "rank_table", "run_sweep", "save_point", "write_outputs"]
