"""Run-folder outputs: Parquet and CSV tables hold the same values, every reader takes either,
and the phases of a run are recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from raybt.config.params import validate_params
from raybt.config.universe import AssetConfig
from raybt.data.synth import generate_universe
from raybt.engine import PortfolioBacktester
from raybt.phases import PhaseTimer
from raybt.plots.report import build_report, load_run
from raybt.config.portfolio import portfolio_config_from_dict
from raybt.result import PortfolioResult
from raybt.tables import find_table, read_table

TABLES = {"portfolio_equity": {"index_col": "timestamp"},
          "trades": {"times": ("entry_time", "exit_time")},
          "multipliers": {"text": ("reason",), "times": ("decided_at", "chunk_start")}}


@pytest.fixture(scope="module")
def result():
    universe = generate_universe(n_assets=4, n_bars=6 * 288, timeframe="5m", seed=5, shocks=[(0.5, -0.2, 24)])
    params = validate_params({"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.0, "leverage": 10,
                              "bb_period": 20, "entry_z": 1.8, "commission": 2e-5, "spread": 1e-5})
    assets = {n: (AssetConfig(name=n, data=None, timeframe="5m", params=params), b) for n, b in universe.items()}
    config = portfolio_config_from_dict({
        "name": "outputs", "rebalance": "daily", "engine": {"chunk": "4h"},
        "risk": {"max_portfolio_drawdown": 0.02, "dd_scale_start": 0.005, "cluster_correlation": 0.3,
                 "correlation_window": 200}}, "test")
    return PortfolioBacktester(assets, config, engine="local").run()


@pytest.fixture(scope="module")
def folders(result, tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    return {fmt: result.save(root / fmt, format=fmt) for fmt in ("parquet", "csv")}


def _bits_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same columns, same index, every float64 the same bits (NaN == NaN), labels equal as text."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    if isinstance(a.index, pd.DatetimeIndex) or isinstance(b.index, pd.DatetimeIndex):
        assert np.array_equal(a.index.as_unit("ns").asi8, b.index.as_unit("ns").asi8)
    for column in a.columns:
        x, y = a[column], b[column]
        if x.dtype.kind == "f":
            assert y.dtype.kind == "f", column
            assert np.array_equal(x.to_numpy().view(np.int64), y.to_numpy().view(np.int64)), column
        elif isinstance(x.dtype, pd.DatetimeTZDtype):
            assert np.array_equal(x.dt.as_unit("ns").array.asi8, y.dt.as_unit("ns").array.asi8), column
        else:
            assert x.astype(str).tolist() == y.astype(str).tolist(), column


def test_each_format_writes_its_tables(folders):
    for fmt, folder in folders.items():
        for stem in TABLES:
            assert (folder / f"{stem}.{fmt}").is_file()
            other = "csv" if fmt == "parquet" else "parquet"
            assert not (folder / f"{stem}.{other}").exists()


def test_parquet_and_csv_hold_identical_values(result, folders):
    memory = {"portfolio_equity": result.equity, "trades": result.trades, "multipliers": result.multipliers}
    for stem, options in TABLES.items():
        parquet = read_table(find_table(folders["parquet"], stem), **options)
        csv = read_table(find_table(folders["csv"], stem), **options)
        _bits_equal(parquet, csv)
        _bits_equal(parquet, memory[stem])
    assert len(result.trades) > 20 and (result.multipliers["capital_adjustment"] != 0).any()


def test_results_load_back_from_either_format(result, folders):
    for folder in folders.values():
        loaded = PortfolioResult.load(folder)
        _bits_equal(loaded.equity, result.equity)
        _bits_equal(loaded.trades, result.trades)
        _bits_equal(loaded.multipliers, result.multipliers)
        assert loaded.metrics["portfolio"]["n_trades"] == result.metrics["portfolio"]["n_trades"]
        assert loaded.weights.to_dict() == result.weights.to_dict()
        assert loaded.provenance["config_hash"] == result.provenance.get("config_hash")


def _copy(folder, tmp_path):
    """A copy of a shared run folder for a test that rewrites files in it."""
    return shutil.copytree(folder, tmp_path / folder.name)


def test_report_rebuilds_from_either_format(folders, tmp_path):
    texts = {}
    for fmt, shared in folders.items():
        folder = _copy(shared, tmp_path)
        (folder / "report.html").unlink()
        timer = PhaseTimer()
        build_report(folder, timer=timer)
        assert (folder / "report.html").stat().st_size > 10_000
        assert "report.load" in timer.seconds
        texts[fmt] = (folder / "portfolio_summary.txt").read_text()
    assert texts["parquet"] == texts["csv"]  # the same numbers whichever format was read


def test_report_written_from_memory_equals_report_rebuilt_from_disk(folders, tmp_path):
    folder = _copy(folders["parquet"], tmp_path)
    written = (folder / "analysis.json").read_text()
    build_report(folder)
    assert (folder / "analysis.json").read_text() == written
    run = load_run(folder)
    assert run["equity"].shape[1] == 2 + 4


def test_run_info_records_every_phase(result, tmp_path):
    timer = PhaseTimer()
    timer.add("load.bars", 0.5)
    out = result.save(tmp_path / "run", timer=timer)
    info = json.loads((out / "run_info.json").read_text())
    phases = info["timings"]["phases"]
    for name in ("load.bars", "file.tables", "file.small", "report.html"):
        assert name in phases and phases[name] >= 0
    assert any(name.startswith("figure") for name in phases) and any(n.startswith("analysis") for n in phases)
    assert "figure_draw_s" not in info["timings"]  # drawn here, one by one: each figure is a phase


def test_format_must_be_known(result, tmp_path):
    from raybt.errors import ConfigError

    with pytest.raises(ConfigError, match="format"):
        result.save(tmp_path / "x", format="xlsx")
    assert not (tmp_path / "x").exists()


def test_cli_run_format_csv_and_phase_line(tmp_path, repo_root):
    """``raybt run --format csv`` writes CSV tables, records its phases and prints the one-line breakdown."""
    paths = {}
    universe = generate_universe(n_assets=2, n_bars=3 * 288, timeframe="5m", seed=9)
    for name, bars in universe.items():
        paths[name] = tmp_path / f"{name}.parquet"
        bars.to_parquet(paths[name])
    (tmp_path / "assets.json").write_text(json.dumps({"assets": {n: {"data": str(p)} for n, p in paths.items()}}))
    (tmp_path / "p.yaml").write_text("name: fmt\nasset_config: assets.json\nengine: {chunk: 4h}\n")
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "raybt.cli", "run", str(tmp_path / "p.yaml"), "--engine", "local",
                           "--out", str(out), "--format", "csv", "--no-progress"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (out / "trades.csv").is_file() and (out / "portfolio_equity.csv").is_file()
    assert not (out / "trades.parquet").exists()
    line = [row for row in done.stdout.splitlines() if row.startswith("time: ")]
    assert len(line) == 1 and all(f"{group} " in line[0] for group in ("load", "run", "metrics", "file"))
    timings = json.loads((out / "run_info.json").read_text())["timings"]
    phases = timings["phases"]
    assert {"load.bars", "run.loop", "metrics.assets", "file.tables"} <= set(phases)
    from raybt.plots.pool import figure_workers

    if figure_workers():  # drawn by the command's worker processes: each one's own seconds beside their wall time
        assert "figure.parallel" in phases and set(timings["figure_draw_s"]) == {p.name for p in out.glob("*.png")}
    # output.format in the config: the same, without the flag; output.report false: no report, which
    # `raybt report` then writes from the folder's files as a run with its report would have had it
    (tmp_path / "q.yaml").write_text("name: fmt\nasset_config: assets.json\nengine: {chunk: 4h}\n"
                                     "output: {format: csv, report: false}\n")
    out2 = tmp_path / "run2"
    done = subprocess.run([sys.executable, "-m", "raybt.cli", "run", str(tmp_path / "q.yaml"), "--engine", "local",
                           "--out", str(out2), "--no-progress"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (out2 / "multipliers.csv").is_file()
    pd.testing.assert_frame_equal(pd.read_csv(out / "portfolio_equity.csv"), pd.read_csv(out2 / "portfolio_equity.csv"))
    written = {p.name for p in out2.iterdir()}
    assert {"metrics.json", "run_info.json", "trades.csv"} <= written
    assert not written & {"report.html", "analysis.json", "portfolio_summary.txt"}
    assert not [name for name in written if name.endswith(".png")] and not (out2 / "INCOMPLETE").exists()
    assert f"raybt report {out2}" in done.stdout
    from raybt.cli import main

    assert main(["report", str(out2)]) == 0
    assert json.loads((out2 / "analysis.json").read_text()) == json.loads((out / "analysis.json").read_text())
    assert {p.name for p in out.iterdir() if p.suffix == ".png"} == {p.name for p in out2.iterdir() if p.suffix == ".png"}
    assert (out2 / "report.html").is_file() and (out2 / "portfolio_summary.txt").is_file()


def test_events_say_which_drawdown(result):
    """``drawdown`` is from the all-time peak on every row; ``breaker_drawdown`` what the breaker measured."""
    events = result.events
    assert list(events.columns) == ["chunk", "decided_at", "event", "drawdown", "breaker_drawdown", "equity"]
    trips = events[events["event"] == "trip"]
    assert len(trips) >= 1 and (trips["breaker_drawdown"] >= 0.02).all()  # the config's breaker level
    curve = result.equity["drawdown"]
    for _, row in events.iterrows():
        assert row["drawdown"] == curve.loc[:row["decided_at"]].iloc[-1]  # the all-time drawdown at the decision
    assert events.loc[events["event"] == "rebalance", "breaker_drawdown"].isna().all()


def test_per_asset_metrics_add_up(result):
    """``final/initial - 1 == total_return`` (time-weighted); ``pnl`` money-weighted, net of transfers."""
    assert (result.multipliers["capital_adjustment"] != 0).any()
    for name, m in result.metrics["assets"].items():
        assert m["final_equity"] / m["initial_equity"] - 1 == pytest.approx(m["total_return"], rel=1e-12, abs=1e-15)
        assert m["sleeve_final_equity"] - m["sleeve_initial_equity"] == pytest.approx(
            m["pnl"] + m["net_transfers"], abs=1e-6)
    total = sum(m["pnl"] for m in result.metrics["assets"].values())
    assert total == pytest.approx(result.metrics["portfolio"]["pnl"], abs=1e-6)


@pytest.mark.parametrize("n_codes", [1, 3, 100, 40_000])
def test_order_by_code_is_the_stable_order(n_codes):
    """The narrow-integer radix sort gives the same order as a stable sort of the int64 codes."""
    from raybt.records import order_by_code

    rng = np.random.default_rng(n_codes)
    codes = rng.integers(0, n_codes, size=50_000).astype(np.int64)
    assert np.array_equal(order_by_code(codes, n_codes), np.argsort(codes, kind="stable"))
