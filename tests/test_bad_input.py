"""Bad input through the real CLI: one ``error:`` line, exit 2, no traceback, no results folder.

Every case runs ``raybt.cli.main([...])`` in-process (the unreachable-cluster
case in a subprocess) with ``--out <tmp>/out`` and asserts:

* return code 2;
* stderr is exactly one line, starting with ``error:``, containing the
  expected file name / field / row / key (and the suggested name for a
  misspelt key or value);
* no ``Traceback``;
* no folder under the final ``--out`` name (at most a hidden ``.out.partial``
  with an ``INCOMPLETE`` marker).

Data rows are counted from 1 under the CSV header ("data row N").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from universes import synth_universe
from raybt.cli import main

N_ASSETS = 5
N_BARS = 3000  # 5-minute bars on the 24/7 calendar: ~10 days

GOOD = "timestamp,open,high,low,close,volume\n" + "".join(
    f"2024-01-01 {i // 12:02d}:{(i % 12) * 5:02d}:00,1.1000,1.1010,1.0990,1.1005,{10 + i}\n" for i in range(30)
)  # 30 valid 5-minute bars: data row k is CSV line k + 1


# --- fixtures and helpers ---------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("isolated_cwd")  # the CLI reads results/best_configs_*.json there


@pytest.fixture(scope="module")
def universe(tmp_path_factory):
    """Five small CSV assets (``raybt data synth --format csv``) and their names."""
    files = synth_universe(tmp_path_factory.mktemp("universe"), assets=N_ASSETS, bars=N_BARS, seed=3, fmt="csv")
    assert len(files) == N_ASSETS
    return files


def asset_config(tmp_path: Path, universe: dict, *, edit=None, text: str | None = None,
                 name="assets.json") -> Path:
    """An asset config (JSON unless ``name`` says .yaml) over the universe; ``edit(doc)`` changes it."""
    doc = {"defaults": {"timeframe": "5m", "strategy": {"bb_period": 20}, "broker": {"initial_capital": 100000}},
           "assets": {n: {"data": str(p), "class": "fx", "timeframe": "5m"} for n, p in universe.items()}}
    if edit:
        edit(doc)
    path = tmp_path / name
    path.write_text(text if text is not None else json.dumps(doc, indent=2))
    return path


def portfolio(tmp_path: Path, universe: dict, extra: str = "", *, assets_path: Path | None = None,
              text: str | None = None, name="p.yaml") -> Path:
    """A portfolio YAML over the asset config; ``extra`` is appended (YAML lines)."""
    assets_path = assets_path or asset_config(tmp_path, universe)
    path = tmp_path / name
    body = (f"name: t\nasset_config: {assets_path}\nallocation:\n  lookback: 2D\n"
            f"engine:\n  chunk: 1D\n")
    path.write_text(text if text is not None else body + extra)
    return path


def check_error(capsys, rc: int, out: Path, needles) -> str:
    """Assert the one-line error contract; return the message."""
    captured = capsys.readouterr()
    err = captured.err
    assert rc == 2, (rc, err)
    assert "Traceback" not in err and "Traceback" not in captured.out
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert_no_final_folder(out)
    return lines[0]


def assert_no_final_folder(out: Path) -> None:
    assert not out.exists(), f"{out} exists after a failed run"
    partial = out.parent / f".{out.name}.partial"
    if partial.exists():
        assert (partial / "INCOMPLETE").is_file()


def run_portfolio(config: Path, out: Path, *extra) -> int:
    return main(["run", str(config), "--engine", "local", "--no-progress", "--out", str(out), *extra])


def backtest_data(path: Path, out: Path, *extra) -> int:
    return main(["backtest", "--data", str(path), "--out", str(out), *extra])


# --- data files (raybt backtest --data FILE) ------------------------------------------------

def _swap_line(text: str, row: int, new: str) -> str:
    """Replace data row ``row`` (1-based, under the header)."""
    lines = text.splitlines()
    lines[row] = new
    return "\n".join(lines) + "\n"


DATA_CASES = [
    ("empty file", "", ["empty file"]),
    ("header only", "timestamp,open,high,low,close,volume\n", ["empty file (no rows)"]),
    ("missing column", "\n".join(",".join(c for k, c in enumerate(line.split(",")) if k != 4)
                                  for line in GOOD.splitlines()) + "\n", ["missing column 'close'"]),
    ("misspelt column", GOOD.replace("close,volume", "clsoe,volume"), ["missing column 'close'", "did you mean 'clsoe'"]),
    ("non-numeric", _swap_line(GOOD, 4, "2024-01-01 00:15:00,1.1000,1.1010,1.0990,abc,13"),
     ["column 'close'", "data row 4", "not a number: 'abc'"]),
    ("NaN", _swap_line(GOOD, 5, "2024-01-01 00:20:00,1.1000,nan,1.0990,1.1005,14"),
     ["column 'high'", "data row 5", "missing value (NaN)"]),
    ("empty cell", _swap_line(GOOD, 6, "2024-01-01 00:25:00,1.1000,1.1010,,1.1005,14"),
     ["column 'low'", "data row 6", "NaN"]),
    ("inf", _swap_line(GOOD, 7, "2024-01-01 00:30:00,inf,1.1010,1.0990,1.1005,14"),
     ["column 'open'", "data row 7", "infinite value"]),
    ("unsorted", _swap_line(GOOD, 8, "2024-01-01 00:01:00,1.1000,1.1010,1.0990,1.1005,14"),
     ["column 'timestamp'", "data row 8", "not sorted"]),
    ("duplicate timestamp", _swap_line(GOOD, 9, "2024-01-01 00:35:00,1.1000,1.1010,1.0990,1.1005,14"),
     ["column 'timestamp'", "data row 9", "duplicate timestamp"]),
    ("high < low", _swap_line(GOOD, 10, "2024-01-01 00:45:00,1.1000,1.0980,1.0990,1.1005,14"),
     ["column 'high'", "data row 10", "high 1.098 < low 1.099"]),
    ("non-positive price", _swap_line(GOOD, 11, "2024-01-01 00:50:00,1.1000,1.1010,-1.0990,1.1005,14"),
     ["column 'low'", "data row 11", "non-positive price -1.099"]),
    ("zero price", _swap_line(GOOD, 12, "2024-01-01 00:55:00,0,1.1010,1.0990,1.1005,14"),
     ["column 'open'", "data row 12", "non-positive price 0.0"]),
    ("bad tick", _swap_line(GOOD, 12, "2024-01-01 00:55:00,1.1000,1e308,1.0990,1.1005,14"),
     ["column 'high'", "data row 12", "price 1e+308 outside 1e-100..1e+100", "bad tick"]),
    ("prices in the wrong units", _swap_line(GOOD, 12, "2024-01-01 00:55:00,1.1e-300,1.1e-300,1.1e-300,1.1e-300,14"),
     ["column 'open'", "data row 12", "price 1.1e-300 outside"]),
    ("bad timestamp", _swap_line(GOOD, 13, "2024-13-45 01:00:00,1.1000,1.1010,1.0990,1.1005,14"),
     ["column 'timestamp'", "data row 13", "cannot parse timestamp '2024-13-45 01:00:00'"]),
    ("word timestamp", _swap_line(GOOD, 2, "yesterday,1.1000,1.1010,1.0990,1.1005,14"),
     ["column 'timestamp'", "data row 2", "cannot parse timestamp 'yesterday'"]),
    ("missing timestamp", _swap_line(GOOD, 3, ",1.1000,1.1010,1.0990,1.1005,14"),
     ["column 'timestamp'", "data row 3", "missing timestamp"]),
    ("timestamp out of range", _swap_line(GOOD, 14, "9999-01-01 00:00:00,1.1000,1.1010,1.0990,1.1005,14"),
     ["column 'timestamp'", "data row 14", "out of range"]),
    ("ragged row", _swap_line(GOOD, 15, "2024-01-01 01:10:00,1.1000,1.1010,1.0990,1.1005,14,99,98"),
     ["CSV line 16", "expected 6 fields", "saw 8"]),
    ("extra field on every row", GOOD.replace(",10\n", ",10,0\n").replace("\n2024", ",0\n2024"),
     ["more fields than the header"]),
    ("duplicate column", GOOD.replace("timestamp,open,high", "timestamp,close,high"),
     ["duplicate column 'close'"]),
    ("unclosed quote", _swap_line(GOOD, 16, '2024-01-01 01:15:00,"1.1000,1.1010,1.0990,1.1005,14'),
     ["CSV line 17", "unclosed quote"]),
    ("no timestamp column", GOOD.replace("timestamp,", "when,"), ["missing timestamp column"]),
    ("negative volume", _swap_line(GOOD, 17, "2024-01-01 01:20:00,1.1000,1.1010,1.0990,1.1005,-5"),
     ["column 'volume'", "data row 17", "negative volume"]),
    ("too few bars for the indicators", GOOD, ["bars.csv", "asset 'bars'", "only 30 bar(s)", "minimum 51",
                                                "bb_period=50"]),
]


@pytest.mark.parametrize("case,text,needles", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_data_file(tmp_path, capsys, case, text, needles):
    path = tmp_path / "bars.csv"
    path.write_text(text)
    out = tmp_path / "out"
    extra = ["--set", "bb_period=50"] if case.startswith("too few") else []
    message = check_error(capsys, backtest_data(path, out, *extra), out, needles)
    assert str(path) in message


def test_missing_data_file(tmp_path, capsys):
    out = tmp_path / "out"
    check_error(capsys, backtest_data(tmp_path / "nope.csv", out), out, ["nope.csv: file not found"])


def test_binary_data_file(tmp_path, capsys):
    path = tmp_path / "bars.csv"
    path.write_bytes(b"timestamp,open\n\xff\xfe\x00\x81garbage\n")
    out = tmp_path / "out"
    check_error(capsys, backtest_data(path, out), out, ["bars.csv", "not UTF-8"])


def test_bad_data_in_portfolio_names_file_and_row(tmp_path, universe, capsys):
    """A corrupt asset file in a portfolio run: the asset's file, column and row."""
    name = sorted(universe)[2]
    lines = universe[name].read_text().splitlines()
    cells = lines[100].split(",")
    cells[4] = "oops"  # close of data row 100
    lines[100] = ",".join(cells)
    bad = tmp_path / f"{name}.csv"
    bad.write_text("\n".join(lines) + "\n")
    assets = asset_config(tmp_path, universe, edit=lambda d: d["assets"][name].update(data=str(bad)))
    out = tmp_path / "out"
    check_error(capsys, run_portfolio(portfolio(tmp_path, universe, assets_path=assets), out), out,
                [str(bad), "column 'close'", "data row 100", "not a number: 'oops'"])


def test_short_asset_in_portfolio(tmp_path, universe, capsys):
    name = sorted(universe)[0]

    def edit(doc):
        doc["assets"][name]["strategy"] = {"bb_period": N_BARS + 10}

    out = tmp_path / "out"
    config = portfolio(tmp_path, universe, assets_path=asset_config(tmp_path, universe, edit=edit))
    check_error(capsys, run_portfolio(config, out), out,
                [f"asset '{name}'", f"only {N_BARS} bar(s)", f"minimum {N_BARS + 11}", f"bb_period={N_BARS + 10}"])


# --- config files ---------------------------------------------------------------------------

def _set(path, value):
    def edit(doc):
        node = doc
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return edit


ASSET_CASES = [
    ("unknown top-level key", lambda d: d.update(asests={}), ["assets.json", "unknown key 'asests'",
                                                           "did you mean 'assets'?"]),
    ("unknown strategy key", lambda d: d["assets"]["AUDUSDX_5m"].update(strategy={"bb_perod": 20}),
     ["assets.AUDUSDX_5m.strategy", "unknown key 'bb_perod'", "did you mean 'bb_period'?"]),
    ("unknown asset key", lambda d: d["assets"]["AUDUSDX_5m"].update(brokr={}),
     ["assets.AUDUSDX_5m", "unknown key 'brokr'", "did you mean 'broker'?"]),
    ("parameter in the wrong section", lambda d: d["assets"]["AUDUSDX_5m"].update(strategy={"leverage": 2}),
     ["assets.AUDUSDX_5m.strategy", "'leverage' belongs in the 'broker' section"]),
    ("negative leverage", lambda d: d["assets"]["AUDUSDX_5m"].update(broker={"leverage": -30}),
     ["assets.AUDUSDX_5m", "'leverage' must be > 0, got -30"]),
    ("bb_period < 2", lambda d: d["assets"]["AUDUSDX_5m"].update(strategy={"bb_period": 1}),
     ["assets.AUDUSDX_5m", "'bb_period' must be an integer >= 2, got 1"]),
    ("sl_atr <= 0", lambda d: d["assets"]["AUDUSDX_5m"].update(strategy={"sl_atr": 0}),
     ["assets.AUDUSDX_5m", "'sl_atr' must be > 0, got 0"]),
    ("wrong type", _set(["defaults", "broker", "initial_capital"], "abc"),
     ["defaults", "'initial_capital' must be > 0, got 'abc'"]),
    ("huge integer", _set(["defaults", "strategy", "bb_period"], 10**400),
     ["defaults", "'bb_period' must be an integer >= 2"]),
    ("bad timeframe", lambda d: d["assets"]["AUDUSDX_5m"].update(timeframe="5 minutes"),
     ["assets.AUDUSDX_5m.timeframe", "not a timeframe: '5 minutes'"]),
    ("data not a path", lambda d: d["assets"]["AUDUSDX_5m"].update(data=None),
     ["assets.AUDUSDX_5m.data", "must be a file path"]),
    ("missing data key", lambda d: d["assets"]["AUDUSDX_5m"].pop("data"),
     ["assets.AUDUSDX_5m", "missing key 'data'"]),
    ("assets not a mapping", lambda d: d.update(assets=["AUDUSDX_5m"]), ["'assets' must be a non-empty mapping"]),
]


@pytest.mark.parametrize("case,edit,needles", ASSET_CASES, ids=[c[0] for c in ASSET_CASES])
def test_bad_asset_config(tmp_path, universe, capsys, case, edit, needles):
    assets = asset_config(tmp_path, universe, edit=edit)
    out = tmp_path / "out"
    message = check_error(capsys, run_portfolio(portfolio(tmp_path, universe, assets_path=assets), out), out, needles)
    assert str(assets) in message


def test_asset_config_json_syntax_error(tmp_path, universe, capsys):
    good = asset_config(tmp_path, universe).read_text().splitlines()
    k = next(i for i, line in enumerate(good) if line.endswith(",") and i > 5)
    good[k] = good[k].rstrip(",")  # drop the comma at the end of line k + 1: the error is on line k + 2
    assets = asset_config(tmp_path, universe, text="\n".join(good) + "\n")
    out = tmp_path / "out"
    check_error(capsys, run_portfolio(portfolio(tmp_path, universe, assets_path=assets), out), out,
                [str(assets), f"JSON syntax error at line {k + 2}"])


def test_asset_config_yaml_and_backtest(tmp_path, universe, capsys):
    """The same loader for YAML asset configs, via ``raybt backtest --config``."""
    assets = asset_config(tmp_path, universe, name="assets.yaml",
                          text="assets:\n  A:\n    data: a.csv\n    strategy: {sl_atr: -1}\n")
    out = tmp_path / "out"
    check_error(capsys, main(["backtest", "--config", str(assets), "--out", str(out)]), out,
                [str(assets), "assets.A", "'sl_atr' must be > 0, got -1"])
    assets.write_text("assets:\n  AAA:\n    data: a.csv\n")
    check_error(capsys, main(["backtest", "--config", str(assets), "--asset", "AAB", "--out", str(out)]), out,
                [str(assets), "unknown asset 'AAB'", "did you mean 'AAA'?"])


def test_config_not_utf8(tmp_path, universe, capsys):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"name: t\nrisk: \xff\xfe\n")
    out = tmp_path / "out"
    check_error(capsys, run_portfolio(path, out), out, [str(path), "not UTF-8"])


def test_missing_portfolio_config(tmp_path, capsys):
    out = tmp_path / "out"
    check_error(capsys, run_portfolio(tmp_path / "nope.yaml", out), out, ["nope.yaml: config file not found"])


PORTFOLIO_CASES = [
    ("yaml syntax", "risk:\n  max_portfolio_drawdown: [0.1\n", ["YAML syntax error at line"]),
    ("yaml bad indent", "risk:\n  resume: cooldown\n bad: 1\n", ["YAML syntax error at line 9"]),
    ("unknown top-level key", "initial_captial: 1000\n", ["unknown key 'initial_captial'",
                                                          "did you mean 'initial_capital'?"]),
    ("unknown nested key", "risk:\n  max_portfolio_drawdwn: 0.1\n",
     ["risk: unknown key 'max_portfolio_drawdwn'", "did you mean 'max_portfolio_drawdown'?"]),
    ("wrong type capital", "initial_capital: abc\n", ["initial_capital: must be a number, got 'abc'"]),
    ("wrong type rebalance", "rebalance: 3\n", ["rebalance: must be one of none, daily, weekly, monthly, got 3"]),
    ("non-finite capital", "initial_capital: .inf\n", ["initial_capital: must be a finite number"]),
    ("negative capital", "initial_capital: -5\n", ["initial_capital: must be > 0, got -5"]),
    ("drawdown out of range", "risk:\n  max_portfolio_drawdown: 1.5\n",
     ["risk.max_portfolio_drawdown: must be in (0, 1), got 1.5"]),
    ("unknown allocation model", "allocation:\n  model: risk_parit\n",
     ["allocation.model", "did you mean 'risk_parity'?"]),
    ("infeasible weight cap", "allocation:\n  max_single_asset_weight: 0.05\n",
     ["allocation.max_single_asset_weight", f"0.05 x {N_ASSETS} asset(s)", "cannot sum to 1"]),
    ("unknown asset", "assets: [EURUSDX_5m, GBPUSDX_5n]\n",
     ["assets: unknown asset 'GBPUSDX_5n'", "did you mean 'GBPUSDX_5m'?"]),
    ("assets not a list", "assets: 3\n", ["assets: must be 'all' or a non-empty list"]),
    ("chunk shorter than a bar", "engine:\n  chunk: 1min\n", ["engine.chunk: 1min is shorter than one bar"]),
    ("chunk not a duration", "engine:\n  chunk: nan\n", ["engine.chunk: not a duration: 'nan'"]),
    ("document not a mapping", "- a\n- b\n", ["expected a mapping, got list"]),
    ("missing asset config", "asset_config: nowhere.json\n", ["nowhere.json: config file not found"]),
]


@pytest.mark.parametrize("case,extra,needles", PORTFOLIO_CASES, ids=[c[0] for c in PORTFOLIO_CASES])
def test_bad_portfolio_config(tmp_path, universe, capsys, case, extra, needles):
    config = portfolio(tmp_path, universe)
    body = config.read_text()
    if case.startswith("document"):
        text = extra
    elif case.startswith("chunk"):
        text = body.replace("  chunk: 1D\n", "") + extra.replace("engine:\n", "")
    elif case == "infeasible weight cap":
        text = body.replace("  lookback: 2D\n", "  lookback: 2D\n" + extra.replace("allocation:\n", ""))
    elif case == "unknown allocation model":
        text = body.replace("  lookback: 2D\n", "  lookback: 2D\n" + extra.replace("allocation:\n", ""))
    elif case == "missing asset config":  # in place of the file's asset_config (a key written twice is refused)
        text = "".join(extra if line.startswith("asset_config:") else line for line in body.splitlines(True))
    else:
        text = body + extra
    config.write_text(text)
    out = tmp_path / "out"
    message = check_error(capsys, run_portfolio(config, out), out, needles)
    if "nowhere" not in case and "missing asset" not in case:
        assert str(config) in message


@pytest.mark.parametrize("args,needles", [
    (["--allocation", "riskparity"], ["--allocation: must be one of", "did you mean 'risk_parity'?"]),
    (["--chunk", "1min"], ["--chunk: 1min is shorter than one bar"]),
    (["--chunk", "soon"], ["error: --chunk: not a duration: 'soon'"]),
    (["--max-assets", "0"], ["--max-assets must be >= 1, got 0"]),
])
def test_bad_run_options(tmp_path, universe, capsys, args, needles):
    out = tmp_path / "out"
    check_error(capsys, run_portfolio(portfolio(tmp_path, universe), out, *args), out, needles)


@pytest.mark.parametrize("args,needles", [
    (["run", "--chunk", "-1D"], ["error: raybt run: argument --chunk: expected one argument (see raybt run --help)"]),
    (["run", "--bogus"], ["error: raybt: unrecognized arguments: --bogus"]),
    (["run", "--engine", "rey"], ["raybt run: argument --engine: invalid choice: 'rey'"]),
    (["data"], ["raybt data: the following arguments are required"]),
    (["run", "--timeframe", "7x"], ["raybt run: argument --timeframe: not a timeframe: '7x'"]),
    (["backtest", "--timeframe", "0m"], ["raybt backtest: argument --timeframe:"]),
    (["run", "--address", " "], ["raybt run: argument --address: empty address"]),
    ([], ["raybt: the following arguments are required: command"]),
])
def test_command_line_syntax_errors_are_one_line(tmp_path, capsys, args, needles):
    """argparse's errors too: one line (not its usage block), status 2."""
    with pytest.raises(SystemExit) as exited:
        main(args)
    check_error(capsys, exited.value.code, tmp_path / "out", needles)


@pytest.mark.parametrize("args,needles", [
    (["--set", "levrage=2"], ["--set", "unknown parameter 'levrage'", "did you mean 'leverage'?"]),
    (["--set", "bb_perid=30"], ["unknown parameter 'bb_perid'", "did you mean 'bb_period'?"]),
    (["--set", "bb_period=1"], ["'bb_period' must be an integer >= 2, got '1'"]),
    (["--set", "sl_atr=0"], ["'sl_atr' must be > 0, got '0'"]),
    (["--set", "leverage=-1"], ["'leverage' must be > 0, got '-1'"]),
    (["--set", "weight=1.5"], ["'weight' must be in (0, 1], got '1.5'"]),
    (["--set", "bb_period=1e30"], ["'bb_period' must be an integer >= 2"]),
])
def test_bad_set_option(tmp_path, universe, capsys, args, needles):
    out = tmp_path / "out"
    data = universe[sorted(universe)[0]]
    check_error(capsys, backtest_data(data, out, *args), out, needles)


@pytest.mark.parametrize("doc,needles", [
    ("[1, 2]", ["best_configs_balanced.json", "expected an 'assets' mapping"]),
    ('{"assets": {"EURUSDX_5m": [1]}}', ["best_configs_balanced.json", "assets.EURUSDX_5m: expected a mapping"]),
    ('{"assets": {"EURUSDX_5m": {"params": {"bb_period": 0}}}}',
     ["best_configs_balanced.json: assets.EURUSDX_5m", "'bb_period' must be an integer >= 2, got 0"]),
    ('{"assets": {', ["best_configs_balanced.json", "JSON syntax error at line 1"]),
])
def test_bad_best_configs(tmp_path, universe, capsys, doc, needles):
    """An optimiser output (results/best_configs_<preference>.json) that was edited by hand."""
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "best_configs_balanced.json").write_text(doc)
    out = tmp_path / "out"
    check_error(capsys, run_portfolio(portfolio(tmp_path, universe), out), out, needles)


# --- environment ------------------------------------------------------------------------------

@pytest.mark.ray
def test_unreachable_cluster_address(tmp_path, universe):
    """``--address 127.0.0.1:1`` (loopback, nothing listens): one line within seconds, in a fresh process."""
    out = tmp_path / "out"
    config = portfolio(tmp_path, universe)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "raybt.cli", "run", str(config), "--engine", "ray",
                           "--address", "127.0.0.1:1", "--no-progress", "--out", str(out)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "RAY_ADDRESS": ""})
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "cannot connect to Ray at '127.0.0.1:1'" in lines[0] and "Traceback" not in proc.stderr
    assert elapsed < 30, elapsed  # includes interpreter start and data loading
    assert_no_final_folder(out)


def _unwritable_parent(tmp_path: Path) -> tuple[Path, str]:
    """An --out whose parent cannot be written: a 0o555 folder, or (as root) a path under a regular file."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    probe = locked / "probe"
    try:
        probe.mkdir()
    except PermissionError:
        return locked / "out", "not writable"
    probe.rmdir()  # root ignores the mode bits: use a path that can never be created
    locked.chmod(0o755)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    return blocker / "out", "is a file, not a folder"


def test_results_folder_not_writable_run(tmp_path, universe, capsys):
    out, needle = _unwritable_parent(tmp_path)
    try:
        rc = run_portfolio(portfolio(tmp_path, universe), out)
        check_error(capsys, rc, out, [str(out), needle])
    finally:
        (tmp_path / "locked").chmod(0o755)


def test_results_folder_not_writable_backtest(tmp_path, universe, capsys):
    out, needle = _unwritable_parent(tmp_path)
    try:
        rc = backtest_data(universe[sorted(universe)[0]], out)
        check_error(capsys, rc, out, [str(out), needle])
    finally:
        (tmp_path / "locked").chmod(0o755)


def test_output_path_is_a_file(tmp_path, universe, capsys):
    out = tmp_path / "out"
    out.write_text("mine")
    rc = run_portfolio(portfolio(tmp_path, universe), out)
    captured = capsys.readouterr()
    assert rc == 2 and captured.err.count("\n") == 1 and "is a file, not a folder" in captured.err
    assert out.read_text() == "mine"


def test_oserror_from_file_system_is_one_line(tmp_path, universe, capsys, monkeypatch):
    """An OSError with a file name (disk full, permission) while writing: one line, partial marked."""
    import raybt.report_files as report_files

    def boom(*_args, **_kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / ".out.partial" / "metrics.json"))

    monkeypatch.setattr(report_files, "write_json", boom)
    out = tmp_path / "out"
    rc = run_portfolio(portfolio(tmp_path, universe), out)
    message = check_error(capsys, rc, out, ["metrics.json", "disk full"])
    assert message.startswith("error: ")
    assert (tmp_path / ".out.partial" / "INCOMPLETE").is_file()


def test_oserror_without_file_name_is_not_swallowed(monkeypatch):
    """A socket-style OSError (no file name) is a bug, not a user error: it propagates."""
    import raybt.cli as cli

    def handler(_args):
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(cli, "_report", handler)
    with pytest.raises(ConnectionResetError):
        cli.main(["report", "somewhere"])


def test_good_run_still_works(tmp_path, universe, capsys):
    """The fixtures are valid: the same config without the bad bit succeeds and writes a complete folder."""
    out = tmp_path / "out"
    assert run_portfolio(portfolio(tmp_path, universe), out) == 0
    assert (out / "metrics.json").is_file() and not (tmp_path / ".out.partial").exists()
