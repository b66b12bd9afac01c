"""Figures drawn by the pool of worker processes are the figures drawn in-process, byte for byte."""

from __future__ import annotations

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
