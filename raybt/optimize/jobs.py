"""Evaluation jobs of an optimisation, in this process or as Ray tasks.

A *job* is (parameter set, bar span) on one asset (see
:mod:`raybt.optimize.evaluate`). Jobs are cut into tasks of ``batch`` jobs of
one asset; with ``engine="ray"`` each asset's bars go into the object store
once and every task (one CPU, serial numba kernel) gets the reference, its
parameter records and spans (:func:`raybt.ray.tasks.map_tasks`).
``engine="local"`` runs the same batches in this process with the prange
kernel. Every job is independent and starts from a fresh state, so both
engines (and any batch size) give identical tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raybt.broker import param_records
from raybt.config.params import validate_params
from raybt.errors import ConfigError
from raybt.optimize.evaluate import evaluate_jobs
from raybt.progress import task_progress


DEFAULT_BATCH = 128


@dataclass
class AssetJobs:
    """Jobs of one asset: ``params[k]`` (PARAM_DT) over bars ``[starts[k], ends[k])``."""

    name: str
    ohlc: np.ndarray  # (4, n_bars) float64: open, high, low, close
    params: np.ndarray
    starts: np.ndarray
    ends: np.ndarray


def _evaluate_task(ohlc, params, starts, ends):
    """Ray task body: one batch, serial kernel (the task holds one CPU)."""
    return evaluate_jobs(ohlc, params, starts, ends, parallel=False)


def warm_up_evaluator(parallel: bool) -> None:
    """Compile (or load from the numba cache) the batch kernel in this process."""
    close = np.linspace(1.0, 1.1, 64)
    ohlc = np.vstack([close, close * 1.001, close * 0.999, close])
    evaluate_jobs(ohlc, param_records([validate_params({})]), [0], [64], parallel=parallel)


def _batches(jobs: AssetJobs, batch: int):
    n = len(jobs.params)
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        yield lo, hi


def run_jobs(asset_jobs: list[AssetJobs], *, engine: str = "ray", batch: int = DEFAULT_BATCH,
             address: str | None = None, progress: bool = False, label: str = "optimize",
             max_in_flight: int | None = None) -> dict[str, np.ndarray]:
    """Raw metrics per asset (rows in job order) on ``engine`` ("ray" or "local").

    ``max_in_flight`` caps the Ray tasks submitted at once (default: all).
    """
    if engine not in ("ray", "local"):
        raise ConfigError(f"engine: must be ray or local, got {engine!r}")
    if batch < 1:
        raise ConfigError(f"batch: must be >= 1, got {batch}")
    results = {j.name: np.empty((len(j.params), 0)) for j in asset_jobs}
    parts: dict[str, dict[int, np.ndarray]] = {j.name: {} for j in asset_jobs}
    tasks = [(j, lo, hi) for j in asset_jobs for lo, hi in _batches(j, batch)]
    if engine == "local":
        warm_up_evaluator(parallel=True)
        with task_progress(len(tasks), label, progress) as advance:
            for j, lo, hi in tasks:
                parts[j.name][lo] = evaluate_jobs(j.ohlc, j.params[lo:hi], j.starts[lo:hi], j.ends[lo:hi],
                                                  parallel=True)
                advance()
    else:
        from raybt.ray.runtime import ensure_ray
        from raybt.ray.tasks import map_tasks, put

        ensure_ray(address)
        warm_up_evaluator(parallel=False)  # workers on this node then load the numba cache
        refs = {j.name: put(np.ascontiguousarray(j.ohlc, dtype=np.float64)) for j in asset_jobs}
        calls = [((j.name, lo), (refs[j.name], j.params[lo:hi], j.starts[lo:hi], j.ends[lo:hi]))
                 for j, lo, hi in tasks]
        with task_progress(len(tasks), label, progress) as advance:
            def done(key, value):
                parts[key[0]][key[1]] = value
                advance()
            map_tasks(_evaluate_task, calls, done, max_parallel=max_in_flight)
    for j in asset_jobs:
        chunks = [parts[j.name][lo] for lo in sorted(parts[j.name])]
        results[j.name] = np.vstack(chunks) if chunks else np.zeros((0, 13))
    return results
