"""Command line: outputs, one-line errors with exit 2, atomic result folders, config validation."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from raybt.cli import main
from raybt.data.synth import write_universe
from raybt.config.portfolio import load_portfolio_config, portfolio_config_from_dict
from raybt.errors import ConfigError


@pytest.fixture(scope="module")
def bars_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    return write_universe(out, n_assets=1, n_bars=3000, seed=2, fmt="csv")[0]


def test_backtest_writes_outputs(tmp_path, bars_file, capsys):
    out = tmp_path / "run"
    assert main(["backtest", "--data", str(bars_file), "--set", "entry_z=1.5", "--set", "spread=0.0001",
                 "--out", str(out)]) == 0
    trades = pd.read_csv(out / "trades.csv")
    assert list(trades.columns) == ["asset", "side", "units", "entry_time", "entry_price", "exit_time",
                                    "exit_price", "exit_reason", "pnl", "commission"]
    equity = pd.read_csv(out / "equity.csv")
    assert list(equity.columns) == ["timestamp", "equity", "drawdown"] and (equity["drawdown"] >= 0).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_trades"] == len(trades) > 0
    assert json.loads((out / "params.json").read_text())["entry_z"] == 1.5
    assert "Sharpe" in capsys.readouterr().out


@pytest.mark.parametrize("args,needle", [
    (["--set", "levrage=2"], "unknown parameter 'levrage' (did you mean 'leverage'?)"),
    (["--set", "bb_period=1"], "'bb_period' must be an integer >= 2"),
    (["--set", "sl_atr=0"], "'sl_atr' must be > 0"),
    (["--set", "leverage=-3"], "'leverage' must be > 0"),
    (["--set", "sizing=martingale"], "'sizing' must be one of fixed, risk"),
    (["--set", "entry_z=abc"], "'entry_z' must be >= 0, got 'abc'"),
    (["--set", "novalue"], "expected key=value"),
])
def test_bad_parameters_one_line_exit_2(tmp_path, bars_file, capsys, args, needle):
    out = tmp_path / "never"
    assert main(["backtest", "--data", str(bars_file), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_missing_data_file(tmp_path, capsys):
    assert main(["backtest", "--data", str(tmp_path / "x.csv")]) == 2
    assert "x.csv: file not found" in capsys.readouterr().err


def test_existing_output_folder_refused(tmp_path, bars_file, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["backtest", "--data", str(bars_file), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"


def test_failed_run_leaves_no_complete_looking_folder(tmp_path, monkeypatch):
    from raybt.results import atomic_run_dir

    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        with atomic_run_dir(out) as tmp:
            (tmp / "trades.csv").write_text("half")
            raise KeyboardInterrupt
    assert not out.exists()
    partial = tmp_path / ".r.partial"
    assert (partial / "INCOMPLETE").is_file()


def test_shipped_portfolio_configs_load(repo_root):
    for name in ("conservative", "balanced", "aggressive"):
        config = load_portfolio_config(repo_root / "configs" / f"portfolio_{name}.yaml")
        assert config.name == name and config.asset_config.is_file()


@pytest.mark.parametrize("doc,needle", [
    ({"risk": {"max_portfolio_drawdwn": 0.1}}, "unknown key 'max_portfolio_drawdwn' (did you mean 'max_portfolio_drawdown'?)"),
    ({"risk": {"max_portfolio_drawdown": 1.5}}, "risk.max_portfolio_drawdown: must be in (0, 1), got 1.5"),
    ({"allocation": {"model": "risk_parit"}}, "did you mean 'risk_parity'?"),
    ({"engine": {"chunk": "soon"}}, "engine.chunk: not a duration"),
    ({"initial_capital": "lots"}, "initial_capital: must be a number"),
    ({"assets": ["A", "A"]}, "duplicate asset 'A'"),
    ({"rebalance": "hourly"}, "rebalance: must be one of none, daily, weekly, monthly"),
    ({"capital": 1}, "unknown key 'capital'"),
])
def test_portfolio_config_errors(doc, needle):
    with pytest.raises(ConfigError) as err:
        portfolio_config_from_dict(doc, "p.yaml")
    assert needle in str(err.value)


def test_yaml_syntax_error_has_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nrisk:\n  max_portfolio_drawdown: [0.1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: YAML syntax error at line \d+"):
        load_portfolio_config(path)


def test_run_unknown_asset_and_short_chunk(tmp_path, repo_root, capsys):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"asset_config: {repo_root / 'configs' / 'assets_config_highperf.json'}\nassets: [EURUSDX_5m, GOLDY_5m]\n")
    assert main(["run", str(cfg), "--engine", "local"]) == 2
    assert "unknown asset 'GOLDY_5m' (did you mean 'GOLDX_5m'?)" in capsys.readouterr().err


