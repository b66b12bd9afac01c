"""Start-up of the actors layout: kernels loaded from numba's cache, shard actors started early.

A new process (a shard actor's) loads every kernel a shard uses from the
cache the first process wrote, and builds its typed lists of bars without
compiling numba's list methods (which cost about 1.8 s per process). The
shard actors are started with the coordinator, while the bars load, and the
run uses those actors.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

import pytest

from test_engine import _assets, _config

NEW_PROCESS = textwrap.dedent("""
    import numba.typed.typedlist as typedlist
    from raybt.compile import warm_up_kernels
    from raybt.kernels.lists import list_append_nb, list_of_nb
    from raybt.kernels.portfolio import block_returns_nb, pairwise_rows_nb
    from raybt.kernels import advance_shard_nb

    warm_up_kernels()
    kernels = {"list_of_nb": list_of_nb, "list_append_nb": list_append_nb, "block_returns_nb": block_returns_nb,
               "pairwise_rows_nb": pairwise_rows_nb, "advance_shard_nb": advance_shard_nb}
    for name, kernel in kernels.items():
        print(name, sum(kernel.stats.cache_misses.values()), sum(kernel.stats.cache_hits.values()))
    compiled = [n for n, f in vars(typedlist).items() if getattr(f, "overloads", None)]
    print("typedlist", len(compiled), 0)
""")


def test_a_new_process_loads_the_kernels_from_the_cache(tmp_path, repo_root):
    script = tmp_path / "new_process.py"
    script.write_text(NEW_PROCESS)
    runs = [subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=repo_root)
            for _ in range(2)]  # the first may write the cache; the second must only read it
    assert runs[1].returncode == 0, runs[1].stderr[-3000:]
    counts = {line.split()[0]: tuple(map(int, line.split()[1:])) for line in runs[1].stdout.splitlines()}
    assert counts["typedlist"] == (0, 0), "numba's typed-list methods were compiled in the process"
    for name in ("list_of_nb", "list_append_nb", "block_returns_nb", "pairwise_rows_nb", "advance_shard_nb"):
        misses, hits = counts[name]
        assert misses == 0 and hits >= 1, (name, misses, hits)


SHARD_PROCESS = textwrap.dedent("""
    import sys
    import numpy as np
    from numba import njit
    from raybt.ray.shard import Shard

    shard = Shard()  # what a shard actor's process does first
    print("scipy.linalg", "scipy.linalg" in sys.modules)

    @njit
    def product(a, b):
        return np.dot(a, b)

    x = np.arange(12.0).reshape(3, 4)
    print("dot", bool(np.array_equal(product(x, x.T), x @ x.T)))
""")


def test_a_shard_process_starts_without_scipy_blas_and_numba_still_finds_it(tmp_path, repo_root):
    """The shard's kernels load without numba's BLAS probe (scipy.linalg not imported), and a
    kernel calling BLAS in that process still works."""
    script = tmp_path / "shard_process.py"
    script.write_text(SHARD_PROCESS)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=repo_root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["scipy.linalg", "False", "dot", "True"], done.stdout


@pytest.mark.ray
def test_shard_actors_start_with_the_coordinator_and_run_the_chunks(ray_session):
    from ray._private import state

    from raybt.data.synth import generate_universe
    from raybt.engine import PortfolioBacktester

    universe = generate_universe(n_assets=6, n_bars=2 * 288, timeframe="5m", seed=4)
    config = _config().with_overrides(layout="actors", assets_per_actor=3)
    bt = PortfolioBacktester(_assets(universe), config, engine="ray")
    labels, actors = bt.execution.early_shards  # started before the run, named after their assets
    assert len(actors) == 2 and labels[0].startswith("shard ") and " of " in labels[0]
    early = {a._actor_id.hex() for a in actors}
    seen = []

    def alive_shards(summaries):
        seen.append({aid for aid, a in state.actors().items()
                     if a["ActorClassName"] == "Shard" and a["State"] == "ALIVE"})

    bt.progress = alive_shards
    result = bt.run()
    assert seen and all(ids == early for ids in seen)
    assert bt.run_info.n_shards == 2 and len(result.equity) == 2 * 288
    local = PortfolioBacktester(_assets(universe), _config(), engine="local").run()
    import pandas as pd

    pd.testing.assert_frame_equal(local.equity, result.equity, check_exact=True)
    pd.testing.assert_frame_equal(local.trades, result.trades, check_exact=True)


@pytest.mark.ray
def test_selection_restarts_the_early_shards_under_the_right_names(ray_session):
    """Fewer assets simulated than given: the early actors (named after the given assets) are replaced."""
    selected = 4
    from raybt.data.synth import generate_universe
    from raybt.engine import PortfolioBacktester

    from raybt.config.portfolio import portfolio_config_from_dict

    universe = generate_universe(n_assets=6, n_bars=3 * 288, timeframe="5m", seed=4)
    doc = portfolio_config_from_dict({
        "name": "selection", "initial_capital": 1_000_000, "engine": {"chunk": "4h", "layout": "actors",
                                                                        "assets_per_actor": 3},
        "allocation": {"model": "equal_weight", "max_assets": selected, "lookback": "1D"}}, "selection")
    bt = PortfolioBacktester(_assets(universe), doc, engine="ray")
    assert bt.execution.early_shards is not None
    result = bt.run()
    assert bt.execution.early_shards is None
    assert bt.run_info.n_shards == 2 and result.equity.shape[1] == 2 + selected


def _imported(code: str, modules, repo_root) -> list:
    """Which of ``modules`` a new process has imported after running ``code``."""
    probe = f"{code}; import sys; print(sorted(m for m in {tuple(modules)!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=repo_root)
    assert done.returncode == 0, done.stderr[-3000:]
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def test_a_shard_actor_process_imports_no_pandas(repo_root):
    """The shard actor's module and warm-up stay clear of the coordinator's imports (pandas: ~0.6 s)."""
    code = "import raybt.ray.shard; from raybt.compile import warm_up_shard_kernels; warm_up_shard_kernels()"
    assert _imported(code, ("pandas", "raybt.coordinator", "raybt.risk"), repo_root) == []


def test_the_coordinator_process_imports_no_pandas(repo_root):
    """The coordinator actor's module and warm-up import no pandas (~0.3-0.6 s of its start-up): the
    rules work on nanoseconds and arrays, the config's durations are parsed in the driver."""
    code = "import raybt.ray.actors; from raybt.compile import warm_up_kernels; warm_up_kernels()"
    assert _imported(code, ("pandas",), repo_root) == []


def test_the_command_line_and_the_figure_pool_import_nothing_heavy(repo_root):
    """Parsing a command and starting the figure workers import no pandas, matplotlib, numba or scipy
    (about 1.3 s before: the sweep and plots packages imported their runners and figures): a command
    imports what it runs, and matplotlib loads in the workers' server and in a warm-up thread."""
    code = ("from raybt.cli import build_parser; build_parser(); import raybt.plots.pool; "
            "import raybt.engine.read_ahead, raybt.ray.runtime, raybt.compile")
    assert _imported(code, ("pandas", "matplotlib", "numba", "scipy", "pyarrow"), repo_root) == []


WARM_THEN_ANALYSE = textwrap.dedent("""
    import json
    import raybt.analysis.nb as nb
    from raybt.analysis import analyse_run
    from raybt.compile import warm_up_analysis
    from raybt.data.synth import generate_universe
    from raybt.engine import PortfolioBacktester
    from raybt.run_folder import run_from_result
    from test_engine import _assets, _config

    warm_up_analysis()
    kernels = {name: getattr(nb, name) for name in dir(nb) if name.endswith("_nb")}
    before = {name: [str(s) for s in kernel.signatures] for name, kernel in kernels.items()}
    universe = generate_universe(n_assets=4, n_bars=3000, timeframe="5m", seed=3, shocks=[(0.5, -0.2, 24)])
    result = PortfolioBacktester(_assets(universe), _config(), engine="local").run()
    run = run_from_result(result, "unused")
    analyse_run(run["equity"], run["trades"], run["weights"], run["metrics"], multipliers=run["multipliers"],
                events=run["events"], asset_params=run.get("asset_params"),
                weights_history=run.get("weights_history"))
    after = {name: [str(s) for s in kernel.signatures] for name, kernel in kernels.items()}
    print(json.dumps({"before": before, "after": after, "trades": len(result.trades)}))
""")


def test_the_drivers_analysis_warm_up_meets_a_real_runs_argument_types(tmp_path, repo_root):
    """After :func:`warm_up_analysis` in a new process, analysing a real run adds no signature to any
    analysis kernel: the warm-up loaded the very specialisations a run uses (from numba's cache)."""
    import json

    script = tmp_path / "warm_then_analyse.py"
    script.write_text(WARM_THEN_ANALYSE)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          cwd=repo_root, env={**__import__("os").environ, "PYTHONPATH": str(repo_root / "tests")})
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["trades"] > 10
    assert seen["after"] == seen["before"]
    assert sum(1 for sigs in seen["before"].values() if sigs) >= 7  # every kernel but the off-grid search ran


@pytest.mark.ray
def test_shard_processes_start_while_the_coordinator_loads_and_their_kernels_wait_for_it(ray_session):
    """The shard actors' processes start (and import numba) at once; only their kernel load waits for
    the coordinator's ``ready()`` (one writer of a cold numba cache)."""
    import asyncio
    import time

    import ray
    from ray._private import state

    from raybt.ray.shard import start_shards

    @ray.remote(num_cpus=0)
    class Gate:  # stands for the coordinator, still loading its kernels
        def __init__(self):
            self.event = asyncio.Event()

        async def wait(self):
            await self.event.wait()
            return True

        async def release(self):
            self.event.set()

    gate = Gate.remote()
    actors = start_shards(["shard a of gate test", "shard b of gate test"], {"num_cpus": 0.5},
                          after=gate.wait.remote())
    ids = {a._actor_id.hex() for a in actors}

    def started():  # leased a worker process (which now waits in the constructor)
        return {k: v for k, v in state.actors().items() if k in ids and v.get("Pid")}

    deadline = time.monotonic() + 60
    while len(started()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    waiting = started()
    assert len(waiting) == 2 and all(v["State"] == "PENDING_CREATION" for v in waiting.values())
    assert ray.wait([a.pid.remote() for a in actors], timeout=0.5)[0] == []  # not constructed yet
    ray.get(gate.release.remote())
    assert sorted(ray.get([a.pid.remote() for a in actors], timeout=120)) == sorted(v["Pid"] for v in waiting.values())
    for actor in [*actors, gate]:
        ray.kill(actor)
