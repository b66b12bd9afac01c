"""Issue 12, what a run writes: names that cannot leave their folder, reserved and unused asset settings,
one writer per run folder, nothing unfinished deleted without --overwrite, whole files on rewrite, disk full,
and --resume that cannot silently change the run."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from universes import synth_universe
from raybt.cli import main

N_BARS = 4 * 288  # four days of 5-minute bars on the 24/7 calendar


pytestmark = pytest.mark.usefixtures("isolated_cwd")


@pytest.fixture(scope="module")
def universe(tmp_path_factory):
    return synth_universe(tmp_path_factory.mktemp("universe") / "u", assets=3, bars=N_BARS, seed=4)


def _assets(tmp_path: Path, universe: dict, edit=None) -> Path:
    doc = {"assets": {n: {"data": str(p), "strategy": {"entry_z": 1.5}} for n, p in universe.items()}}
    if edit:
        edit(doc)
    path = tmp_path / "assets.json"
    path.write_text(json.dumps(doc))
    return path


def _portfolio(tmp_path: Path, universe: dict, name="t", edit=None, extra="") -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(f"name: {json.dumps(name)}\nasset_config: {_assets(tmp_path, universe, edit)}\n"
                    f"engine: {{chunk: 4h}}\n{extra}")
    return path


def _one_error_line(capsys, rc, needles):
    captured = capsys.readouterr()
    assert rc == 2, captured.err
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, captured.err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def _complete_runs(root: Path) -> list[Path]:
    return [p for p in root.rglob("run_info.json")]


# --- names --------------------------------------------------------------------------------

def test_a_portfolio_name_cannot_leave_results(tmp_path, universe, capsys):
    config = _portfolio(tmp_path, universe, name="../../escaped/run")
    assert main(["run", str(config), "--engine", "local", "--no-progress"]) == 0
    runs = _complete_runs(tmp_path)
    assert len(runs) == 1
    folder = runs[0].parent
    assert folder.parent == tmp_path / "results" and ".." not in folder.name and "/" not in folder.name
    assert folder.name.endswith("escaped_run")
    assert not (tmp_path.parent / "escaped").exists()


def test_an_asset_name_cannot_leave_results(tmp_path, universe, capsys):
    def rename(doc):
        doc["assets"] = {"../../evil": next(iter(doc["assets"].values()))}
    assets = _assets(tmp_path, universe, rename)
    assert main(["backtest", "--config", str(assets), "--asset", "../../evil"]) == 0
    runs = list((tmp_path / "results").glob("*"))
    assert len(runs) == 1 and runs[0].name.endswith("-backtest-evil")
    assert not (tmp_path.parent / "evil").exists()


@pytest.mark.parametrize("name", ["equity", "drawdown", "timestamp"])
def test_an_asset_named_like_a_portfolio_column_is_refused_up_front(tmp_path, universe, capsys, name):
    def rename(doc):
        first = next(iter(doc["assets"]))
        doc["assets"][name] = doc["assets"].pop(first)
    config = _portfolio(tmp_path, universe, edit=rename)
    rc = main(["run", str(config), "--engine", "local", "--no-progress", "--out", str(tmp_path / "out")])
    _one_error_line(capsys, rc, ["assets.json", f"assets.{name}", "column of the portfolio's equity table"])
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()


def test_a_per_asset_weight_is_refused_not_ignored(tmp_path, universe, capsys):
    def weigh(doc):
        for entry in doc["assets"].values():
            entry["broker"] = {"weight": 0.9}
    config = _portfolio(tmp_path, universe, edit=weigh)
    rc = main(["run", str(config), "--engine", "local", "--no-progress", "--out", str(tmp_path / "out")])
    _one_error_line(capsys, rc, ["assets.json", "weight 0.9 would be ignored"])


def test_the_run_records_what_parameters_it_used(tmp_path, universe, capsys):
    config = _portfolio(tmp_path, universe)
    best = tmp_path / "results" / "best_configs_balanced.json"
    best.parent.mkdir()
    name = next(iter(universe))
    best.write_text(json.dumps({"assets": {name: {"params": {"entry_z": 2.5}}}}))
    assert main(["run", str(config), "--engine", "local", "--no-progress", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "best_configs_balanced.json" in printed and "1 asset(s)" in printed
    info = json.loads((tmp_path / "out" / "run_info.json").read_text())
    assert info["best_configs"]["path"].endswith("best_configs_balanced.json")
    assert len(info["best_configs"]["sha256"]) == 64 and info["best_configs"]["assets"] == [name]
    assert info["asset_params"][name]["entry_z"] == 2.5
    assert all(p["entry_z"] == 1.5 for n, p in info["asset_params"].items() if n != name)


# --- --resume -------------------------------------------------------------------------------

def test_resume_refuses_arguments_that_would_change_the_run(tmp_path, universe, capsys):
    rc = main(["run", "--resume", str(tmp_path / "x"), "--allocation", "risk_parity", "--chunk", "1h"])
    _one_error_line(capsys, rc, ["--allocation", "--chunk", "--resume"])


# --- unfinished runs, one writer --------------------------------------------------------------

def test_backtest_out_keeps_an_unfinished_run_unless_overwrite(tmp_path, universe, capsys):
    data = next(iter(universe.values()))
    partial = tmp_path / ".out.partial"
    partial.mkdir()
    (partial / "INCOMPLETE").write_text("interrupted\n")
    (partial / "checkpoint").mkdir()
    rc = main(["backtest", "--data", str(data), "--out", str(tmp_path / "out")])
    _one_error_line(capsys, rc, ["out", "an earlier unfinished write left", "--overwrite"])
    assert (partial / "checkpoint").is_dir()
    assert main(["backtest", "--data", str(data), "--out", str(tmp_path / "out"), "--overwrite"]) == 0
    assert (tmp_path / "out" / "trades.csv").is_file() and not partial.exists()


def test_a_user_error_before_the_first_checkpoint_leaves_no_unfinished_run(tmp_path, universe, capsys):
    """The error used to leave ``.out.partial``: the corrected command was then refused ("resume it"),
    and --resume repeated the error."""
    bad = _portfolio(tmp_path, universe, extra="allocation: {model: risk_parity, lookback: 30D}\n")
    out = tmp_path / "out"
    rc = main(["run", str(bad), "--engine", "local", "--no-progress", "--out", str(out)])
    _one_error_line(capsys, rc, ["allocation.lookback", "no bars left"])
    assert not out.exists() and not (tmp_path / ".out.partial").exists()
    good = _portfolio(tmp_path, universe)
    assert main(["run", str(good), "--engine", "local", "--no-progress", "--no-report", "--out", str(out)]) == 0
    assert (out / "trades.parquet").is_file()


def test_resume_checks_where_the_run_goes_before_running(tmp_path, universe, capsys):
    """With the run's final folder taken, --resume ran the whole backtest again, then failed."""
    from raybt.cli import RUN_REQUEST_KEYS

    partial = tmp_path / ".out.partial"
    partial.mkdir()
    (partial / "INCOMPLETE").write_text("interrupted\n")
    request = {key: None for key in RUN_REQUEST_KEYS}
    request["config"] = str(_portfolio(tmp_path, universe))
    (partial / "run_request.json").write_text(json.dumps(request))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("mine")
    _one_error_line(capsys, main(["run", "--resume", str(tmp_path / "out"), "--engine", "local"]),
                    ["out: output folder already exists and is not empty"])


def _cli(*args):
    return [sys.executable, "-m", "raybt.cli", *map(str, args)]


def test_a_second_writer_of_a_run_gets_a_clear_error(tmp_path, universe):
    """--resume of a run that is still going (the error's own hint) must not break the first run."""
    config = _portfolio(tmp_path, universe, extra="engine: {chunk: 5min, checkpoint_every: 20}\n")
    config.write_text(config.read_text().replace("engine: {chunk: 4h}\n", ""))
    out = tmp_path / "out"
    first = subprocess.Popen(_cli("run", config, "--engine", "local", "--no-progress", "--out", out),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    state = tmp_path / ".out.partial" / "checkpoint" / "state-a.rec"
    deadline = time.time() + 120
    while not (state.exists() and state.stat().st_size):
        assert first.poll() is None, first.communicate()
        assert time.time() < deadline
        time.sleep(0.02)
    second = subprocess.run(_cli("run", "--resume", out, "--engine", "local", "--no-progress"),
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert second.returncode == 2 and "another raybt process" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err  # the first run was not disturbed
    assert (out / "run_info.json").is_file()


def test_data_synth_never_mixes_two_universes(tmp_path, capsys):
    out = tmp_path / "u"
    assert main(["data", "synth", "--out", str(out), "--assets", "3", "--bars", "500", "--seed", "1"]) == 0
    before = sorted(p.name for p in out.iterdir())
    rc = main(["data", "synth", "--out", str(out), "--assets", "2", "--bars", "500", "--seed", "2"])
    _one_error_line(capsys, rc, [str(out), "--overwrite"])
    assert sorted(p.name for p in out.iterdir()) == before
    assert main(["data", "synth", "--out", str(out), "--assets", "2", "--bars", "500", "--seed", "2",
                 "--overwrite"]) == 0
    manifest = json.loads((out / "universe.json").read_text())
    assert manifest["n_assets"] == 2 and manifest["seed"] == 2
    assert sorted(p.name for p in out.glob("*.parquet")) == sorted(a["file"] for a in manifest["assets"])


# --- rewriting a finished run -----------------------------------------------------------------

def test_report_rewrite_interrupted_leaves_every_file_whole(tmp_path, universe, monkeypatch, capsys):
    config = _portfolio(tmp_path, universe)
    out = tmp_path / "out"
    assert main(["run", str(config), "--engine", "local", "--no-progress", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    import raybt.plots.figures as figures
    import raybt.plots.pool as pool

    def broken(*args, **kwargs):
        raise KeyboardInterrupt  # as if SIGTERM arrived while the figures were being drawn

    monkeypatch.setattr(figures, "plot_rolling_sharpe", broken)
    monkeypatch.setattr(pool, "figure_workers", lambda: 0)  # drawn here, where the patch is
    with pytest.raises(KeyboardInterrupt):
        from raybt.cli import _report

        _report(type("A", (), {"run_dir": str(out), "no_frontier": False})())
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # nothing half-written, nothing left behind


def test_report_refuses_an_unfinished_run(tmp_path, capsys):
    partial = tmp_path / ".run.partial"
    partial.mkdir()
    (partial / "INCOMPLETE").write_text("x")
    _one_error_line(capsys, main(["report", str(partial)]), ["unfinished run", "--resume"])


# --- disk full ---------------------------------------------------------------------------------

def _small_disk(path: Path) -> bool:
    """A 256 kB tmpfs at ``path`` (needs root, as on the CI and development machines)."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def test_disk_full_is_one_line_naming_the_path(tmp_path, universe):
    config = _portfolio(tmp_path, universe)
    disk = tmp_path / "disk"
    mounted = _small_disk(disk)
    limit = None
    if not mounted:  # no tmpfs: a file-size limit makes the writes fail the same way (EFBIG instead of ENOSPC)
        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    try:
        done = subprocess.run(_cli("run", config, "--engine", "local", "--no-progress", "--out", disk / "out"),
                              capture_output=True, text=True, timeout=300, cwd=tmp_path, preexec_fn=limit)
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=True)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(disk / ".out.partial") in errors[0], done.stderr
    assert ("disk full" in errors[0]) if mounted else ("too large" in errors[0])
    assert not (disk / "out").exists()


# --- degenerate data is said, not silent --------------------------------------------------------

def test_degenerate_data_gets_warning_lines_in_the_run_and_its_summary(tmp_path, universe, capsys):
    import pandas as pd

    name, path = next(iter(universe.items()))
    tiny = pd.read_parquet(path)
    for column in ("open", "high", "low", "close"):
        tiny[column] = tiny[column] * 1e-12
    scaled = dict(universe)
    scaled[name] = tmp_path / f"{name}.parquet"
    tiny.to_parquet(scaled[name])
    config = _portfolio(tmp_path, scaled)
    out = tmp_path / "out"
    assert main(["run", str(config), "--engine", "local", "--no-progress", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert any(f"asset {name}" in line for line in warned), err
    info = json.loads((out / "run_info.json").read_text())
    assert info["warnings"] and all(f"warning: {w}" in warned for w in info["warnings"])
    summary = (out / "portfolio_summary.txt").read_text()
    assert summary.startswith("Warnings\n") and name in summary.split("\n\n")[0]
