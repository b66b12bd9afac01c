"""Command-line cases an audit of bad inputs found (a traceback, a hang, exit 0 on meaningless
input, a message that did not name the flag or said the wrong thing); each now one ``error:`` line,
status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_bad_input import asset_config, check_error, portfolio, universe  # noqa: F401 - fixtures
from raybt.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cwd")


@pytest.mark.parametrize("args,needles", [
    (["--assets", "2", "--bars", "100", "--seed", "-1"], ["--seed must be a whole number >= 0, got -1"]),
    (["--assets", "2", "--bars", "100000", "--timeframe", "1000D"], ["run past the year 2261"]),
    (["--assets", "1", "--bars", "1000000000000"], ["is over 1,000,000,000 asset-bars"]),
    (["--assets", "100000000", "--bars", "100000000"], ["is over 1,000,000,000 asset-bars"]),
])
def test_data_synth_refuses_what_it_cannot_write(tmp_path, capsys, args, needles):
    out = tmp_path / "synth"
    check_error(capsys, main(["data", "synth", *args, "--out", str(out)]), out, needles)
    assert not list(tmp_path.glob(".synth*"))


def test_a_sweep_too_large_to_expand_is_refused_at_once(tmp_path, universe, capsys):  # noqa: F811
    base = portfolio(tmp_path, universe)
    values = ", ".join(str(1 + k / 10000) for k in range(200))
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"base: {base}\nname: s\nparameters:\n  initial_capital: [{values}]\n"
                     f"  risk.max_portfolio_drawdown: [{', '.join(str(0.01 + k / 1000) for k in range(100))}]\n")
    out = tmp_path / "out"
    check_error(capsys, main(["sweep", str(sweep), "--engine", "local", "--out", str(out)]), out,
                ["200 x 100 = 20,000 points, over the 10,000"])


def test_a_row_counter_is_not_taken_for_epoch_seconds(tmp_path, capsys):
    rows = "".join(f"{i},1.1,1.1005,1.0995,1.1001,10\n" for i in range(300))
    path = tmp_path / "bars.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + rows)
    out = tmp_path / "out"
    check_error(capsys, main(["backtest", "--data", str(path), "--out", str(out)]), out,
                ["column 'timestamp'", "the times 0, 1, ... count the rows"])


def test_set_given_twice_is_refused(tmp_path, universe, capsys):  # noqa: F811
    out = tmp_path / "out"
    data = universe[sorted(universe)[0]]
    check_error(capsys, main(["backtest", "--data", str(data), "--set", "bb_period=20", "--set", "bb_period=30",
                              "--out", str(out)]), out, ["--set: bb_period given twice ('20' and '30')"])


def test_resume_of_a_folder_that_is_no_run_says_so(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    check_error(capsys, main(["run", "--resume", str(tmp_path / "empty")]), tmp_path / "none",
                ["not a run folder (no run_request.json"])


def test_an_empty_portfolio_file_is_refused_as_empty(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text("# nothing yet\n")
    out = tmp_path / "out"
    check_error(capsys, main(["run", str(tmp_path / "p.yaml"), "--engine", "local", "--out", str(out)]), out,
                ["p.yaml: empty config file"])


def test_optimize_refuses_a_grid_no_candidate_of_which_fits_the_bars(tmp_path, universe, capsys):  # noqa: F811
    config = asset_config(tmp_path, universe)
    grid = tmp_path / "g.yaml"
    grid.write_text("grid:\n  bb_period: [5000]\n")
    out = tmp_path / "out"
    rc = main(["optimize", "--config", str(config), "--grid", str(grid), "--engine", "local",
               "--out", str(out), "--best-dir", str(tmp_path / "best")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("error: ") and "fewer than any grid candidate needs (5001" in err
    assert not (tmp_path / "best").exists() or not list((tmp_path / "best").iterdir())


def test_optimize_refuses_walk_forward_test_windows_shorter_than_any_indicator_window(tmp_path, universe,  # noqa: F811
                                                                                       capsys):
    config = asset_config(tmp_path, universe)
    grid = tmp_path / "g.yaml"
    grid.write_text("grid:\n  bb_period: [20, 30]\n")
    rc = main(["optimize", "--config", str(config), "--grid", str(grid), "--walk-forward", "1000", "--engine",
               "local", "--out", str(tmp_path / "out"), "--best-dir", str(tmp_path / "best")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "walk-forward test windows of 2 bars, shorter than any grid candidate's indicator window (21" in err


def test_a_sweep_on_an_unreachable_cluster_makes_no_folder(tmp_path, universe, capsys):  # noqa: F811
    base = portfolio(tmp_path, universe)
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"base: {base}\nname: s\nparameters:\n  allocation.model: [equal_weight, risk_parity]\n")
    out = tmp_path / "out"
    check_error(capsys, main(["sweep", str(sweep), "--address", "127.0.0.1:1", "--out", str(out)]), out,
                ["cannot connect to Ray at '127.0.0.1:1'"])
