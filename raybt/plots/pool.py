"""Figures drawn in worker processes, several at a time.

Matplotlib draws under the GIL, so the report's figures take the sum of their
times in one process (about 4-8 s for the default run's 13 PNGs here).  A
:class:`FigurePool` draws them in ``workers`` processes instead.  Its workers
come from a *forkserver* (a fresh process, started by a thread of the pool
as it is made, so the command does not wait for it) with
:mod:`raybt.plots.figures` (matplotlib, pandas) imported once in the server:
a command makes the pool at its start and the workers are ready, imports
done, by the time the figures are due.

Each figure is a :data:`FigureJob`: a module-level ``plot_*`` function and
its arguments, pickled to a worker.  Inputs larger than
:data:`MAX_INPUT_BYTES` (a 100-asset equity table) are drawn in this
process instead, one after another, rather than copied.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, NamedTuple

from raybt.phases import PhaseTimer, phase

#: figure inputs above this are drawn in this process rather than copied to a worker: pickling,
#: piping and unpickling cost about 3.5 ms a MB (1.1 s for the 326 MB of the 100 x 200,000 equity
#: figure's frames), as much as drawing a figure, while this process waits for the workers anyway
MAX_INPUT_BYTES = 32 * 1024 * 1024


class FigureJob(NamedTuple):
    """One PNG: ``function(*args, **kwargs)`` writes it and returns its path; ``cost`` its relative
    drawing time (the pool starts the costly ones first, so the last to finish is a short one)."""

    name: str
    function: Callable
    args: tuple
    kwargs: dict
    cost: float = 1.0


def _input_bytes(value: Any) -> int:
    """The bytes of the arrays, frames and series in ``value`` (nested in dicts, lists, tuples)."""
    import numpy as np  # here: a command makes its pool before it needs numpy or pandas
    import pandas as pd

    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return int(value.memory_usage(deep=False).sum()) if isinstance(value, pd.DataFrame) \
            else int(value.memory_usage(deep=False))
    if isinstance(value, dict):
        return sum(_input_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_input_bytes(v) for v in value)
    return 0


def _draw(job: FigureJob) -> tuple[Path, float]:
    start = time.perf_counter()
    path = job.function(*job.args, **job.kwargs)
    return path, time.perf_counter() - start


def _ready() -> int:
    """Draw a small figure once: the worker's fonts, text layout and Agg renderer are loaded before
    the first real figure is due (about 0.3 s each, paid while the command runs)."""
    import io

    from raybt.plots.base import _figure

    fig = _figure(2, 1.5)  # the figures' own layout engine
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], label="warm-up")
    ax.set_title("warm-up")
    ax.legend()
    fig.savefig(io.BytesIO(), format="png")
    return os.getpid()


def _start_worker() -> None:
    """A worker leaves Ctrl-C to the command (which stops it), so it prints no worker tracebacks; and
    its garbage collector leaves alone what the fork server imported (``gc.freeze``: about 200,000
    objects of matplotlib, pandas and scipy that every collection of the oldest generation would
    walk, and copy page by page from the server; measured: 0.27-0.34 s of collections in 13
    figures, 0.09 s frozen)."""
    import gc

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.freeze()


def figure_workers() -> int:
    """Workers a command draws its figures with: 2 where there are 2 CPUs or more, else 0 (in-process)."""
    return 2 if (os.cpu_count() or 1) >= 2 else 0


class FigurePool:
    """``workers`` processes drawing figures; use as a context manager (workers stop at exit)."""

    def __init__(self, workers: int = 2):
        context = multiprocessing.get_context("forkserver")
        # imported once in the fork server (while the command starts Ray), inherited by every worker:
        # the figures and what they import lazily (the correlation heatmap's clustering, ~0.5-0.9 s);
        # first, forkserver_quiet: the fork server ignores Ctrl-C while it imports the rest
        context.set_forkserver_preload(["raybt.forkserver_quiet", "raybt.plots.figures",
                                        "scipy.cluster.hierarchy", "scipy.spatial.distance"])
        self.workers = workers
        self.drawn_seconds: dict[str, float] = {}  # what each figure of the last draw() took in its worker
        self._executor = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                             initializer=_start_worker)
        # the workers start now, from a thread: the first start waits until the fork server has imported
        # its preload (1.5-2.5 s), time in which the command goes on to start Ray and load the bars
        self._starting = threading.Thread(target=self._start_workers, name="raybt-figure-pool", daemon=True)
        self._starting.start()

    def _start_workers(self) -> None:
        try:
            for _ in range(self.workers):
                self._executor.submit(_ready)
        except Exception:  # noqa: BLE001 - the pool was closed meanwhile (the command failed): nothing to start
            pass

    def wait_started(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None: as long as it takes) until every worker has been
        started, the fork server's imports done; whether they have. :meth:`draw` does not need
        it (it waits for the workers as it would for busy ones), a caller timing the draw alone does."""
        self._starting.join(timeout)
        return not self._starting.is_alive()

    def __enter__(self) -> "FigurePool":
        return self

    def __exit__(self, kind, *exc) -> None:
        self.close(wait=kind is None)  # after an error the command exits now, not once the workers are up

    def close(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)

    def draw(self, jobs: list[FigureJob], timer: PhaseTimer | None = None) -> dict[str, Path]:
        """Every job's PNG, ``{name: path}`` in ``jobs`` order.

        ``timer`` gets ``figure.parallel``: the wall time of them all;
        :attr:`drawn_seconds` then holds each figure's own seconds (in its
        worker, or here for a large one).
        """
        large = [_input_bytes((job.args, job.kwargs)) > MAX_INPUT_BYTES for job in jobs]
        out: dict[str, Path] = {}
        seconds: dict[str, float] = {}
        with phase(timer, "figure.parallel"):
            order = sorted((job for job, big in zip(jobs, large) if not big), key=lambda job: -job.cost)
            futures = {job.name: self._executor.submit(_draw, job) for job in order}
            for job, big in zip(jobs, large):  # meanwhile, the large ones here
                if big:
                    path, seconds[job.name] = _draw(job)
                    out[job.name] = Path(path)
            for name, future in futures.items():
                path, seconds[name] = future.result()
                out[name] = Path(path)
        self.drawn_seconds = {job.name: seconds[job.name] for job in jobs}
        return {job.name: out[job.name] for job in jobs}


def draw_figures(jobs: list[FigureJob], timer: PhaseTimer | None = None,
                 pool: FigurePool | None = None) -> dict[str, Path]:
    """The jobs drawn by ``pool``, or here one after another (``figure.<name>`` each) without one."""
    if pool is not None:
        return pool.draw(jobs, timer)
    out = {}
    for job in jobs:
        with phase(timer, f"figure.{job.name}"):
            out[job.name] = Path(job.function(*job.args, **job.kwargs))
    return out
