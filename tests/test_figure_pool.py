"""Figures drawn by the pool of worker processes are the figures drawn in-process, byte for byte."""

from __future__ import annotations

import os

import pytest

from raybt.plots.pool import FigureJob, FigurePool


def _fails(path):
    raise ValueError(f"cannot draw {path.name}")


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    from tearsheet_run import run_engine
    from raybt.run_folder import load_run

    result, _bars = run_engine()
    folder = result.save(tmp_path_factory.mktemp("pooled") / "run", report=False)
    return load_run(folder)


def test_pool_draws_the_same_pngs_as_one_process(report_run, tmp_path):
    from raybt.plots.report import build_report
    from raybt.phases import PhaseTimer

    run = report_run
    here, pooled = tmp_path / "here", tmp_path / "pooled"
    here.mkdir(), pooled.mkdir()
    serial_timer, pooled_timer = PhaseTimer(), PhaseTimer()
    build_report(run["run_dir"], run=run, out_dir=here, timer=serial_timer)
    with FigurePool(2) as pool:
        assert pool.wait_started()  # figure.parallel then times the drawing, not the workers' start
        build_report(run["run_dir"], run=run, out_dir=pooled, timer=pooled_timer, pool=pool)
    pngs = sorted(p.name for p in here.glob("*.png"))
    assert len(pngs) == 13 and pngs == sorted(p.name for p in pooled.glob("*.png"))
    for name in pngs:
        assert (here / name).read_bytes() == (pooled / name).read_bytes(), name
    assert "figure.parallel" in pooled_timer.seconds and "figure.equity.png" in serial_timer.seconds
    drawn = pool.drawn_seconds  # each figure's own time in its worker
    assert sorted(drawn) == pngs and all(seconds > 0 for seconds in drawn.values())
    assert sum(drawn.values()) >= pooled_timer.seconds["figure.parallel"]  # two at a time: the sum is longer


def test_a_figure_that_fails_in_a_worker_fails_the_call(tmp_path):
    with FigurePool(1) as pool, pytest.raises(ValueError, match="cannot draw x.png"):
        pool.draw([FigureJob("x.png", _fails, (tmp_path / "x.png",), {})])


CTRL_C_WHILE_PRELOADING = """
import os, signal, sys, time
from multiprocessing import forkserver
from raybt.plots.pool import FigureJob, FigurePool

signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whatever ran this test
with FigurePool(2) as pool:  # its fork server now starts, then imports matplotlib and the figures
    deadline = time.time() + 60
    while forkserver._forkserver._forkserver_pid is None and time.time() < deadline:
        time.sleep(0.001)
    server = forkserver._forkserver._forkserver_pid
    time.sleep(0.2)  # its interpreter is up, its preload under way
    preloading = not pool.wait_started(timeout=0)
    os.kill(server, signal.SIGINT)  # a Ctrl-C reaches every process of the command
    out = pool.draw([FigureJob("ok.png", str, ("drawn",), {}, 1.0)])
    print(server, preloading, out["ok.png"])
"""


def test_the_pool_starts_without_waiting_and_survives_ctrl_c_while_its_fork_server_preloads():
    """The pool is made at once (its fork server imports matplotlib while the command goes on); the fork server ignores SIGINT from its start (raybt.forkserver_quiet), not only once its
    preload is imported: a Ctrl-C in the first seconds printed its KeyboardInterrupt traceback."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_PRELOADING], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr
    server, preloading, drawn = done.stdout.split()
    assert int(server) > 0 and preloading == "True" and drawn == "drawn"


def _drawn_by(data, path):
    return f"{path}-{os.getpid()}"


def test_a_figure_with_large_inputs_is_drawn_here_not_copied_to_a_worker():
    """Above MAX_INPUT_BYTES (a 100-asset equity table) pickling and piping would cost about as much as
    the drawing: such a figure is drawn in this process, the others by the workers."""
    import numpy as np

    from raybt.plots.pool import MAX_INPUT_BYTES

    big = np.zeros(MAX_INPUT_BYTES // 8 + 1)
    with FigurePool(2) as pool:
        out = pool.draw([FigureJob("big.png", _drawn_by, (big, "big"), {}, 1.0),
                         FigureJob("small.png", _drawn_by, (big[:10], "small"), {}, 1.0)])
    assert str(out["big.png"]) == f"big-{os.getpid()}"
    assert str(out["small.png"]).startswith("small-") and str(out["small.png"]) != f"small-{os.getpid()}"
    assert set(pool.drawn_seconds) == {"big.png", "small.png"}


def test_a_worker_collector_leaves_the_fork_servers_imports_alone():
    """Each worker freezes what it inherited (matplotlib, pandas, scipy: ``gc.freeze``), so its
    collections walk only the objects of its own figures."""
    import gc

    with FigurePool(1) as pool:
        frozen = pool._executor.submit(gc.get_freeze_count).result(timeout=120)
    assert frozen > 50_000, frozen  # the modules the fork server imported
