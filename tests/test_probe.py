"""The bench's floor: the bare Ray fan-out round trip, and how the bench names layouts."""

from __future__ import annotations

import sys

import pytest


@pytest.mark.ray
def test_fanout_round_trip_measures_and_releases_its_actors(ray_session):
    from ray._private import state

    from raybt.ray.probe import fanout_round_trip

    before = {aid for aid, a in state.actors().items() if a["State"] == "ALIVE"}
    times = fanout_round_trip(2, n_calls=30)
    assert 0 < times["best"] <= times["median"] and times["best"] <= times["mean"] < 1.0
    alive = {aid for aid, a in state.actors().items() if a["State"] == "ALIVE" and a["ActorClassName"] in
             ("_Idle", "_Caller")}
    assert not (alive - before), "the probe's actors outlived it"


@pytest.mark.ray
def test_loaded_fanout_includes_the_actors_cpu_work(ray_session):
    """With ``work_seconds`` every actor spends that much CPU per call, so a round trip takes at least
    that long (the idle round trip is measured by the test above)."""
    import time

    from raybt.ray.probe import _Idle, fanout_round_trip

    start = time.thread_time()
    _Idle().busy(0.02)
    assert time.thread_time() - start >= 0.02
    loaded = fanout_round_trip(2, n_calls=10, work_seconds=0.005)
    assert 0.005 <= loaded["best"] <= loaded["median"]


def test_bench_layout_names(repo_root):
    sys.path.insert(0, str(repo_root / "scripts"))
    from bench_layouts import parse_layout

    assert parse_layout("local", 100) == ("local", {})
    assert parse_layout("colocated", 100) == ("ray", {"layout": "colocated"})
    assert parse_layout("actors:4", 100) == ("ray", {"layout": "actors", "assets_per_actor": 25})
    assert parse_layout("actors:3", 100) == ("ray", {"layout": "actors", "assets_per_actor": 34})
    with pytest.raises(SystemExit):
        parse_layout("actors:x", 100)
