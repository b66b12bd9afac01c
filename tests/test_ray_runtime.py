"""Starting Ray for a run: the embedded Ray (no --address, no RAY_ADDRESS) is the run's own.

``ray.init()`` without an address joins the latest cluster started on the
machine (``ray start``, ``ray.cluster_utils.Cluster``, another user's job), and
with the embedded Ray's ``_system_config`` that join fails ("When connecting
to an existing cluster, _system_config must not be provided"), so a run that
asked for no cluster at all stopped with "cannot connect to Ray at 'local'"
whenever one was running. Checked without starting Ray: ``ray.init`` is
replaced by a recorder.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ray


@pytest.fixture
def recorded_init(monkeypatch):
    import ray

    calls = []
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_worker_niceness", "0")  # ensure_ray sets it for the embedded Ray: restored after
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: calls.append(kwargs))
    return calls


def test_embedded_ray_starts_its_own_instance(recorded_init):
    from raybt.ray.runtime import ensure_ray

    ensure_ray()
    assert len(recorded_init) == 1
    assert recorded_init[0].get("address") == "local", recorded_init[0]


def test_an_address_is_joined_as_given(recorded_init, monkeypatch):
    import raybt.ray.runtime as runtime

    monkeypatch.setattr(runtime, "check_reachable", lambda target: None)
    runtime.ensure_ray("10.1.2.3:6379")
    assert recorded_init[0]["address"] == "10.1.2.3:6379" and "_system_config" not in recorded_init[0]
