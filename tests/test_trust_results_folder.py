"""Reading a results folder back (`raybt report DIR`, `PortfolioResult.load(DIR)`): every damaged file,
impossible equity table, unfinished run or symbolic link is refused with one line naming the file, the
column or key and the row (exit 2, no traceback, nothing written)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from raybt.cli import main
from raybt.errors import ConfigError
from raybt.result import PortfolioResult
from raybt.tables import read_table, write_table

N_BARS = 3 * 288  # three days of 5-minute bars on the 24/7 calendar


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """One small finished run (CSV tables, no report), copied and damaged by each test."""
    root = tmp_path_factory.mktemp("results_folder")
    assert main(["data", "synth", "--out", str(root / "u"), "--assets", "3", "--bars", str(N_BARS),
                 "--calendar", "24x7", "--seed", "4"]) == 0
    assets = {"assets": {p.stem: {"data": str(p), "strategy": {"entry_z": 1.5}}
                         for p in sorted((root / "u").glob("*.parquet"))}}
    (root / "assets.json").write_text(json.dumps(assets))
    config = root / "p.yaml"
    config.write_text(f"name: t\nasset_config: {root / 'assets.json'}\nengine: {{chunk: 4h}}\nrebalance: daily\n")
    out = root / "run"
    assert main(["run", str(config), "--engine", "local", "--no-report", "--no-progress", "--format", "csv",
                 "--out", str(out)]) == 0
    return out


# --- damaging one file ---------------------------------------------------------------------------------

def _write(name, data):
    def edit(folder):
        (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return edit


def _lines(name, fn):
    def edit(folder):
        path = folder / name
        path.write_text("".join(fn(path.read_text().splitlines(True))))
    return edit


def _cell(name, column, row, value):
    """Set one cell of a CSV table (data row ``row``, counted from 1) as text."""
    def edit(folder):
        path = folder / name
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame.loc[row - 1, column] = value
        frame.to_csv(path, index=False)
    return edit


def _json(name, fn):
    def edit(folder):
        path = folder / name
        doc = json.loads(path.read_text())
        path.write_text(json.dumps(fn(doc)))
    return edit


def _set(keys, value):
    def fn(doc):
        cur = doc
        for key in keys[:-1]:
            cur = cur[key]
        cur[keys[-1]] = value
        return doc
    return fn


def _equity_parquet(fn):
    """Rewrite portfolio_equity as Parquet (as `--format parquet` writes it) after ``fn(frame)``."""
    def edit(folder):
        frame = read_table(folder / "portfolio_equity.csv").reset_index(drop=True)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        fn(frame)
        (folder / "portfolio_equity.csv").unlink()
        write_table(frame, folder, "portfolio_equity", "parquet")
    return edit


BINARY = b"\x93\xff\xfe\x00garbage"

CASES = {
    # file problems: not UTF-8, not the expected JSON shape, non-numbers, bad times, missing columns
    "weights_weight_text": (_cell("weights.csv", "weight", 1, "abc"), ["weights.csv", "'weight'", "data row 1"]),
    "weights_not_utf8": (_write("weights.csv", BINARY), ["weights.csv", "UTF-8"]),
    "weights_unknown_asset": (_cell("weights.csv", "asset", 2, "ZZZ"), ["weights.csv", "'asset'", "data row 2"]),
    "events_time_garbage": (_cell("events.csv", "decided_at", 1, "garbage"),
                            ["events.csv", "'decided_at'", "data row 1", "garbage"]),
    "events_not_utf8": (_write("events.csv", BINARY), ["events.csv", "UTF-8"]),
    "history_time_garbage": (_cell("weights_history.csv", "decided_at", 1, "garbage"),
                             ["weights_history.csv", "'decided_at'", "data row 1"]),
    "history_not_utf8": (_write("weights_history.csv", BINARY), ["weights_history.csv", "UTF-8"]),
    "metrics_list": (_write("metrics.json", "[1, 2]"), ["metrics.json", "JSON object", "a list"]),
    "metrics_portfolio_string": (_json("metrics.json", _set(["portfolio"], "x")), ["metrics.json", "'portfolio'"]),
    "metrics_sharpe_string": (_json("metrics.json", _set(["portfolio", "sharpe"], "x")),
                              ["metrics.json", "'portfolio.sharpe'"]),
    "metrics_asset_huge": (_json("metrics.json", lambda d: (d["assets"][next(iter(d["assets"]))].update(pnl=10 ** 400),
                                                            d)[1]), ["metrics.json", ".pnl'", "finite"]),
    "metrics_not_utf8": (_write("metrics.json", BINARY), ["metrics.json", "UTF-8"]),
    "metrics_deep": (_write("metrics.json", "[" * 100_000 + "]" * 100_000), ["metrics.json", "nested"]),
    "metrics_5000_digits": (_write("metrics.json", '{"portfolio": {"n_trades": ' + "9" * 5000 + "}}"),
                            ["metrics.json", "invalid JSON"]),
    "run_info_list": (_write("run_info.json", "[1]"), ["run_info.json", "JSON object"]),
    "run_info_not_utf8": (_write("run_info.json", BINARY), ["run_info.json", "UTF-8"]),
    "run_info_params_string": (_json("run_info.json", _set(["asset_params"], {"A": "x"})),
                               ["run_info.json", "'asset_params.A'"]),
    "run_info_timings_int": (_json("run_info.json", _set(["timings"], 5)), ["run_info.json", "'timings'"]),
    "run_info_warnings_dict": (_json("run_info.json", _set(["warnings"], {"a": 1})), ["run_info.json", "'warnings'"]),
    "trades_pnl_text": (_cell("trades.csv", "pnl", 3, "x"), ["trades.csv", "'pnl'", "data row 3"]),
    "trades_time_garbage": (_cell("trades.csv", "exit_time", 2, "soon"), ["trades.csv", "'exit_time'", "data row 2"]),
    "trades_unknown_asset": (_cell("trades.csv", "asset", 1, "ZZZ"), ["trades.csv", "'asset'", "data row 1", "ZZZ"]),
    "trades_bad_side": (_cell("trades.csv", "side", 2, "up"), ["trades.csv", "'side'", "data row 2"]),
    "trades_missing_column": (_lines("trades.csv", lambda ls: [",".join(x.rstrip("\n").split(",")[:-1]) + "\n"
                                                             for x in ls]), ["trades.csv", "'commission'"]),
    "multipliers_text": (_cell("multipliers.csv", "multiplier", 1, "x"),
                         ["multipliers.csv", "'multiplier'", "data row 1"]),
    "multipliers_flag": (_cell("multipliers.csv", "halted", 2, "maybe"), ["multipliers.csv", "'halted'", "data row 2"]),
    "multipliers_two_columns": (_lines("multipliers.csv", lambda ls: [",".join(x.split(",")[:1] + x.split(",")[3:4])
                                                                      + "\n" for x in ls]),
                                ["multipliers.csv", "missing column"]),
    "multipliers_nan_factor": (_cell("multipliers.csv", "correlation", 3, ""),
                               ["multipliers.csv", "'correlation'", "data row 3"]),
    # impossible equity tables
    "equity_reversed": (_lines("portfolio_equity.csv", lambda ls: [ls[0], *reversed(ls[1:])]),
                        ["portfolio_equity.csv", "'timestamp'", "data row 2", "sorted"]),
    "equity_one_row": (_lines("portfolio_equity.csv", lambda ls: ls[:2]), ["portfolio_equity.csv", "1 data row"]),
    "equity_nan": (_cell("portfolio_equity.csv", "equity", 100, "nan"),
                   ["portfolio_equity.csv", "'equity'", "data row 100"]),
    "equity_inf": (_cell("portfolio_equity.csv", "equity", 100, "inf"),
                   ["portfolio_equity.csv", "'equity'", "data row 100"]),
    "equity_text": (_cell("portfolio_equity.csv", "equity", 7, "lots"),
                    ["portfolio_equity.csv", "'equity'", "data row 7"]),
    "equity_negative": (_equity_parquet(lambda f: f.__setitem__("equity", -f["equity"])),
                        ["portfolio_equity.parquet", "'equity'", "data row 1", "positive"]),
    "equity_zero": (_equity_parquet(lambda f: f.__setitem__("equity", 0.0)),
                    ["portfolio_equity.parquet", "'equity'", "data row 1"]),
    "equity_sleeve_nan": (_equity_parquet(lambda f: f.__setitem__(f.columns[-1], float("nan"))),
                          ["portfolio_equity.parquet", "data row 1"]),
    "drawdown_negative": (_cell("portfolio_equity.csv", "drawdown", 5, "-0.5"),
                          ["portfolio_equity.csv", "'drawdown'", "data row 5"]),
    "equity_duplicate_time": (_equity_parquet(lambda f: f.__setitem__(
        "timestamp", f["timestamp"].where(f.index != 51, f["timestamp"][50]))),
        ["portfolio_equity.parquet", "'timestamp'", "data row 52", "repeats"]),
    "equity_integer_times": (_equity_parquet(lambda f: f.__setitem__("timestamp", range(len(f)))),
                             ["portfolio_equity.parquet", "'timestamp'", "not a date/time"]),
    "equity_time_missing": (_cell("portfolio_equity.csv", "timestamp", 4, ""),
                            ["portfolio_equity.csv", "'timestamp'", "data row 4"]),
    "equity_missing_column": (_lines("portfolio_equity.csv", lambda ls: [x.replace(",equity,", ",total,", 1)
                                                                         for x in ls]),
                              ["portfolio_equity.csv", "'equity'"]),
}


def _one_error_line(capsys, rc, needles) -> str:
    captured = capsys.readouterr()
    assert rc == 2, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert "Warning" not in captured.err, captured.err  # no raw numpy/pandas warnings either
    errors = [line for line in captured.err.strip().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and len(captured.err.strip().splitlines()) == 1, captured.err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def _files(folder: Path) -> dict:
    return {p.name: p.read_bytes() if p.is_file() else None for p in folder.iterdir()}


def _refused_both_ways(folder: Path, capsys, needles) -> None:
    before = _files(folder)
    line = _one_error_line(capsys, main(["report", str(folder), "--no-frontier"]), needles)
    assert _files(folder) == before  # nothing written, nothing half-written
    with pytest.raises(ConfigError) as caught:
        PortfolioResult.load(folder)
    assert f"error: {caught.value}" == line  # one reading path: the same message


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_file_is_one_error_line(run_folder, tmp_path, capsys, case):
    edit, needles = CASES[case]
    folder = shutil.copytree(run_folder, tmp_path / "run")
    edit(folder)
    _refused_both_ways(folder, capsys, needles)


def test_the_undamaged_folder_loads(run_folder):
    result = PortfolioResult.load(run_folder)
    assert len(result.equity) == N_BARS and len(result.weights) == 3
    assert result.events["decided_at"].dt.tz is not None


# --- unfinished runs and symbolic links --------------------------------------------------------------

def test_load_refuses_an_unfinished_run_like_report(run_folder, tmp_path, capsys):
    partial = shutil.copytree(run_folder, tmp_path / ".run.partial")
    (partial / "INCOMPLETE").write_text("run in progress\n")
    _refused_both_ways(partial, capsys, [".run.partial", "unfinished run", "--resume"])
    marked = shutil.copytree(run_folder, tmp_path / "marked")
    (marked / "INCOMPLETE").write_text("x")
    _refused_both_ways(marked, capsys, ["marked", "unfinished run"])


@pytest.mark.parametrize("name", ["trades.csv", "portfolio_equity.csv", "metrics.json", "run_info.json",
                                  "weights.csv", "events.csv", "weights_history.csv", "multipliers.csv",
                                  "config.yaml"])
def test_a_symlinked_file_is_refused_without_reading_it(run_folder, tmp_path, capsys, name):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    folder = shutil.copytree(run_folder, tmp_path / "run")
    (folder / name).unlink()
    os.symlink(secret, folder / name)
    line = _one_error_line(capsys, main(["report", str(folder), "--no-frontier"]), [name, "symbolic link"])
    assert "root" not in line.replace(str(tmp_path), "")
    with pytest.raises(ConfigError, match="symbolic link"):
        PortfolioResult.load(folder)


def test_a_symlink_to_a_valid_table_is_refused_too(run_folder, tmp_path, capsys):
    folder = shutil.copytree(run_folder, tmp_path / "run")
    (folder / "trades.csv").rename(tmp_path / "elsewhere.csv")
    os.symlink(tmp_path / "elsewhere.csv", folder / "trades.csv")
    _refused_both_ways(folder, capsys, ["trades.csv", "symbolic link"])


def test_a_directory_in_place_of_a_file_is_refused(run_folder, tmp_path, capsys):
    folder = shutil.copytree(run_folder, tmp_path / "run")
    (folder / "metrics.json").unlink()
    (folder / "metrics.json").mkdir()
    _refused_both_ways(folder, capsys, ["metrics.json", "not a regular file"])


def test_header_only_tables_still_load(run_folder, tmp_path):
    """A run without trades or events writes header-only tables: valid, not damaged."""
    folder = shutil.copytree(run_folder, tmp_path / "run")
    for name in ("trades.csv", "events.csv", "multipliers.csv"):
        path = folder / name
        path.write_text(path.read_text().splitlines(True)[0])
    result = PortfolioResult.load(folder)
    assert len(result.trades) == 0 and len(result.events) == 0 and len(result.multipliers) == 0


def test_true_false_written_as_text_are_booleans(tmp_path):
    """``check_bools`` refused a text column even when every value was True or False."""
    from raybt.run_files import check_bools

    frame = pd.DataFrame({"halted": pd.Series(["True", "False", True], dtype=object)})
    check_bools(tmp_path / "m.csv", frame, "halted")
    assert frame["halted"].tolist() == [True, False, True]
    frame = pd.DataFrame({"halted": pd.Series(["True", "maybe"], dtype=object)})
    with pytest.raises(ConfigError, match=r"m.csv: column 'halted', data row 2: not True/False: 'maybe'"):
        check_bools(tmp_path / "m.csv", frame, "halted")
