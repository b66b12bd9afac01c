"""Shared fixtures. Ray is started once per session (num_cpus=2) by the
``ray_session`` fixture, only when a test asks for it.

Every test that uses Ray carries the ``ray`` marker (registered in
pyproject.toml), so ``pytest -m "not ray"`` runs everything else: tests that
ask for ``ray_session`` get it here; the few that reach Ray otherwise (a
subprocess with its own cluster or address) are marked where they are written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # reference_sim, scenarios, harness

REPO = Path(__file__).resolve().parent.parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "ray_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)


@pytest.fixture(scope="session")
def ray_session():
    import ray

    if not ray.is_initialized():
        # address="local": always a Ray of its own; without it ray.init joins the latest cluster
        # started on this machine (``ray start``, ray.cluster_utils.Cluster, another session's tests)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"NUMBA_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture
def drawn(monkeypatch):
    """Every figure a ``plot_*`` call saves, after it is drawn (every figure module
    saves through ``raybt.plots.base._save``)."""
    from raybt.plots import base

    figs = []
    save = base._save

    def keep(fig, path):
        out = save(fig, path)
        figs.append(fig)
        return out

    monkeypatch.setattr(base, "_save", keep)
    return figs


@pytest.fixture
def isolated_cwd(tmp_path, monkeypatch):
    """Run in tmp_path: the CLI reads and writes ``results/`` and ``configs/`` relative to the working folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path

