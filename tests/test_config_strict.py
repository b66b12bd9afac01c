"""Strict configuration: one error line naming the file (or the flag) and the key, exit 2, for
sections that are not mappings, unbounded sizes, bad overrides, bare-number durations, loosely typed
asset parameters, duplicate keys, unusable names and non-text descriptions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from universes import synth_universe
from raybt.cli import main
from raybt.config import load_asset_universe, load_document, load_portfolio_config, portfolio_config_from_dict
from raybt.config.grid import load_grid
from raybt.config.sweep import load_sweep_spec, resolve_points
from raybt.errors import ConfigError
from raybt.risk import CORRELATION_BLOCK_BARS, RollingBlockMoments

N_BARS = 2 * 288  # two days of 5-minute bars on the 24/7 calendar
SECTIONS = ("allocation", "risk", "engine", "output")


pytestmark = pytest.mark.usefixtures("isolated_cwd")


@pytest.fixture(scope="module")
def universe(tmp_path_factory):
    return synth_universe(tmp_path_factory.mktemp("universe") / "u", assets=2, bars=N_BARS, seed=3)


def _assets(folder: Path, universe: dict, edit=None, text: str | None = None) -> Path:
    path = folder / "assets.json"
    if text is None:
        doc = {"assets": {n: {"data": str(p), "strategy": {"entry_z": 1.5}} for n, p in universe.items()}}
        if edit:
            edit(doc)
        text = json.dumps(doc)
    path.write_text(text)
    return path


def _portfolio(folder: Path, asset_config: Path, body: str = "engine: {chunk: 4h}\n") -> Path:
    path = folder / "p.yaml"
    path.write_text(f"name: t\nasset_config: {asset_config}\n{body}")
    return path


def _run(*args) -> int:
    return main(["run", *map(str, args), "--engine", "local", "--no-progress"])


def _one_error_line(capsys, rc, *needles, absent=()) -> str:
    captured = capsys.readouterr()
    assert rc == 2, captured.err
    assert "Traceback" not in captured.err + captured.out
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and len(captured.err.strip().splitlines()) == 1, captured.err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    for needle in absent:
        assert needle not in errors[0], (needle, errors[0])
    return errors[0]


def _error(call) -> str:
    with pytest.raises(ConfigError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    return message


# --- 1. a section is a mapping --------------------------------------------------------------

@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("value", [False, True, "", 0, [], "off"])
def test_a_section_that_is_not_a_mapping_is_refused(section, value):
    message = _error(lambda: portfolio_config_from_dict({section: value}, "p.yaml"))
    assert message.startswith(f"p.yaml: {section}: expected a mapping, got "), message


def test_risk_false_says_how_to_switch_risk_off():
    message = _error(lambda: portfolio_config_from_dict({"risk": False}, "p.yaml"))
    assert message.startswith("p.yaml: risk: expected a mapping, got false (to switch it off: risk: {enabled: false}")


@pytest.mark.parametrize("text", ["risk:\n", "risk: null\n", "risk: ~\n", ""])
def test_an_empty_section_takes_its_defaults(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text("name: t\n" + text)
    assert load_portfolio_config(path).risk == portfolio_config_from_dict({}, "x").risk


def test_risk_enabled_false_switches_it_off():
    assert portfolio_config_from_dict({"risk": {"enabled": False}}, "p.yaml").risk.enabled is False


@pytest.mark.parametrize("value", ["false", "''", "0"])
def test_run_with_risk_false_exits_2_naming_file_and_key(tmp_path, universe, capsys, value):
    config = _portfolio(tmp_path, _assets(tmp_path, universe), f"risk: {value}\n")
    _one_error_line(capsys, _run(config, "--out", tmp_path / "out"), f"{config}: risk: expected a mapping")
    assert not (tmp_path / "out").exists()


# --- 2. sizes have bounds -------------------------------------------------------------------

@pytest.mark.parametrize("doc, needle", [
    ({"risk": {"correlation_window": 10**12}}, "risk.correlation_window: must be in [10, 10000000], got 10"),
    ({"risk": {"correlation_window": 10**400}}, "risk.correlation_window: must be in [10, 10000000]"),
    ({"risk": {"cooldown_chunks": 10**12}}, "risk.cooldown_chunks: must be in [1, 2147483647]"),
    ({"allocation": {"max_assets": 10**12}}, "allocation.max_assets: must be in [1, 2147483647]"),
    ({"engine": {"assets_per_actor": 10**12}}, "engine.assets_per_actor: must be in [1, 2147483647]"),
    ({"engine": {"checkpoint_every": 10**12}}, "engine.checkpoint_every: must be in [0, 2147483647]"),
    ({"initial_capital": 10**400}, "initial_capital: must be a finite number"),
])
def test_a_size_beyond_its_bound_is_one_line(doc, needle):
    assert needle in _error(lambda: portfolio_config_from_dict(doc, "p.yaml"))


def test_run_with_a_huge_correlation_window_exits_2(tmp_path, universe, capsys):
    config = _portfolio(tmp_path, _assets(tmp_path, universe), "risk: {correlation_window: 1000000000000}\n")
    _one_error_line(capsys, _run(config, "--out", tmp_path / "out"), f"{config}: risk.correlation_window: must be")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()


@pytest.mark.parametrize("key, value", [("n_bars", 10**12), ("n_assets", 10**6), ("n_bars", 0)])
def test_synthetic_sizes_are_bounded(tmp_path, key, value):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"synthetic": {"dir": "d", key: value}, "assets": {"A": {"data": "a.csv"}}}))
    assert f"{path}: synthetic.{key}: must be an integer in [1, " in _error(lambda: load_asset_universe(path))


def test_the_correlation_window_is_capped_at_the_timeline_without_changing_estimates():
    from test_coordinator import build, settings  # noqa: PLC0415 (the coordinator tests' scripted groups)

    n = 480
    paths = 100.0 + np.cumsum(np.random.default_rng(5).normal(size=(3, n)), axis=1)
    coordinator, _ = build(paths, settings(cluster_correlation=0.8, correlation_window=10_000_000), width=24)
    assert coordinator.returns.capacity <= n // CORRELATION_BLOCK_BARS + 1
    coordinator.advance(100)
    assert coordinator.done
    # a ring that never wraps gives the same sums, bit for bit, whatever its length
    rng = np.random.default_rng(6)
    capped = RollingBlockMoments(n + CORRELATION_BLOCK_BARS, 3)
    long = RollingBlockMoments(100 * n, 3)
    for _ in range(n // CORRELATION_BLOCK_BARS // 4):
        blocks = rng.normal(size=(4, 3))
        capped._push(blocks)
        long._push(blocks)
        assert np.array_equal(capped.s, long.s) and np.array_equal(capped.S, long.S)
    assert np.array_equal(capped.correlation()[0], long.correlation()[0])


# --- 3. an override is named by its flag; durations carry a unit ----------------------------

@pytest.mark.parametrize("flag, value, needle", [
    ("--chunk", "bogus", "error: --chunk: not a duration: 'bogus' (e.g. 1D, 4h, 30min)"),
    ("--chunk", "30", "error: --chunk: a duration needs a unit, got the bare number '30' (write e.g. '30D'"),
    ("--checkpoint-seconds", "nan", "error: --checkpoint-seconds: must be a finite number, got nan"),
    ("--assets-per-actor", "0", "error: --assets-per-actor: must be >= 1, got 0"),
    ("--allocation", "equal", "error: --allocation: must be one of equal_weight,"),
    ("--checkpoint-every", "-1", "error: --checkpoint-every: must be >= 0, got -1"),
])
def test_a_bad_override_names_the_flag_not_the_file(tmp_path, universe, capsys, flag, value, needle):
    config = _portfolio(tmp_path, _assets(tmp_path, universe))
    rc = _run(config, "--out", tmp_path / "out", flag, value)
    _one_error_line(capsys, rc, needle, absent=(str(config), "p.yaml"))


def test_with_overrides_names_the_override_and_keeps_the_file_for_file_errors():
    base = portfolio_config_from_dict({"engine": {"chunk": "1D"}}, "p.yaml")
    assert _error(lambda: base.with_overrides(chunk="bogus")).startswith("--chunk: not a duration: 'bogus'")
    assert _error(lambda: base.with_overrides(preference="best")).startswith("--preference: must be one of")
    assert _error(lambda: base.with_overrides(rebalance="hourly")).startswith("rebalance=: must be one of")
    assert base.with_overrides(chunk="4h").engine.chunk == "4h"


def test_load_portfolio_from_config_names_its_preference_argument(tmp_path, universe):
    from raybt.universe import load_portfolio_from_config

    config = _portfolio(tmp_path, _assets(tmp_path, universe))
    message = _error(lambda: load_portfolio_from_config(preference="best", config=config))
    assert message.startswith("--preference: must be one of balanced, pnl, drawdown, got 'best'")


@pytest.mark.parametrize("text, key, shown", [
    ("allocation: {lookback: 30}\n", "allocation.lookback", "30"),
    ("engine: {chunk: 24:00}\n", "engine.chunk", "1440"),  # YAML 1.1 sexagesimal
    ("engine: {chunk: 1.5}\n", "engine.chunk", "1.5"),
    ("engine: {chunk: '30'}\n", "engine.chunk", "'30'"),
    ("allocation: {lookback: 1:30}\n", "allocation.lookback", "90"),
])
def test_a_bare_number_is_not_a_duration(tmp_path, text, key, shown):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    message = _error(lambda: load_portfolio_config(path))
    assert message.startswith(f"{path}: {key}: a duration needs a unit, got the bare number {shown} (write e.g. '")


def test_durations_with_units_still_load():
    config = portfolio_config_from_dict({"allocation": {"lookback": "30D"}, "engine": {"chunk": "4h"}}, "p.yaml")
    assert (config.allocation.lookback, config.engine.chunk) == ("30D", "4h")


# --- 4. the asset config is as strict as the portfolio config --------------------------------

@pytest.mark.parametrize("group, key, value", [
    ("strategy", "bb_period", "20"), ("strategy", "allow_short", "false"), ("strategy", "allow_short", 0),
    ("strategy", "allow_short", None), ("strategy", "entry_z", "2.0"), ("broker", "leverage", "30"),
    ("broker", "sizing", 1), ("strategy", "bb_period", True), ("strategy", "bb_period", 20.5),
])
def test_asset_parameters_must_have_their_type(tmp_path, universe, group, key, value):
    def edit(doc):
        doc["assets"]["A"] = {"data": "a.csv", group: {key: value}}
    path = _assets(tmp_path, universe, edit)
    message = _error(lambda: load_asset_universe(path))
    assert message.startswith(f"{path}: assets.A: '{key}' must be "), message


def test_asset_defaults_must_have_their_type_too(tmp_path, universe):
    path = _assets(tmp_path, universe, lambda doc: doc.update(defaults={"strategy": {"bb_period": "20"}}))
    assert _error(lambda: load_asset_universe(path)).startswith(f"{path}: defaults: 'bb_period' must be an integer")


def test_typed_asset_parameters_still_load(tmp_path, universe):
    def edit(doc):
        doc["assets"]["A"] = {"data": "a.csv", "strategy": {"bb_period": 20.0, "allow_short": False},
                              "broker": {"leverage": 30, "sizing": "risk"}}
    params = load_asset_universe(_assets(tmp_path, universe, edit)).get("A").params
    assert (params["bb_period"], params["allow_short"], params["leverage"]) == (20, False, 30.0)


def test_set_on_the_command_line_still_converts_strings():
    from raybt.config import validate_params

    assert validate_params({"bb_period": "30", "allow_short": "false"}, "--set")["bb_period"] == 30


def test_run_with_a_string_parameter_exits_2(tmp_path, universe, capsys):
    name = next(iter(universe))
    assets = _assets(tmp_path, universe, lambda doc: doc["assets"][name]["strategy"].update(bb_period="20"))
    rc = _run(_portfolio(tmp_path, assets), "--out", tmp_path / "out")
    _one_error_line(capsys, rc, f"{assets}: assets.{name}: 'bb_period' must be an integer >= 2, got '20'")


@pytest.mark.parametrize("suffix, text, key", [
    (".json", '{"assets": {"A": {"data": "a.csv", "strategy": {"bb_period": 30, "bb_period": 2}}}}', "bb_period"),
    (".json", '{"assets": {"A": {"data": "a.csv"}, "A": {"data": "b.csv"}}}', "A"),
    (".yaml", "assets:\n  A: {data: a.csv}\n  B:\n    data: b.csv\n    data: c.csv\n", "data"),
])
def test_a_duplicate_key_in_the_asset_config_is_refused(tmp_path, suffix, text, key):
    path = tmp_path / f"assets{suffix}"
    path.write_text(text)
    message = _error(lambda: load_asset_universe(path))
    assert message.startswith(f"{path}: duplicate key '{key}'"), message


def test_a_duplicate_key_in_the_portfolio_config_exits_2(tmp_path, universe, capsys):
    config = _portfolio(tmp_path, _assets(tmp_path, universe), "initial_capital: 1000\ninitial_capital: 2000\n")
    _one_error_line(capsys, _run(config, "--out", tmp_path / "out"),
                    f"{config}: duplicate key 'initial_capital' at line 4")


def test_sweep_and_grid_files_refuse_duplicate_keys_too(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("base: p.yaml\nparameters:\n  rebalance: [none]\n  rebalance: [weekly]\n")
    assert _error(lambda: load_sweep_spec(sweep)).startswith(f"{sweep}: duplicate key 'rebalance' at line 4")
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  bb_period: [20]\n  bb_period: [30]\n")
    assert _error(lambda: load_grid(grid)).startswith(f"{grid}: duplicate key 'bb_period' at line 3")


def test_a_yaml_merge_key_may_still_be_overridden(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 5\n")
    assert load_document(path)["other"] == {"x": 5, "y": 2}


@pytest.mark.parametrize("name, needle", [
    ("", "must be a non-empty string"), ("  ", "must be a non-empty string"),
    ("a\nb", "must not contain control characters"), ("a\tb", "must not contain control characters"),
])
def test_an_unusable_asset_name_is_refused(tmp_path, universe, name, needle):
    path = _assets(tmp_path, universe, lambda doc: doc["assets"].update({name: {"data": "a.csv"}}))
    assert _error(lambda: load_asset_universe(path)).startswith(f"{path}: assets: asset name: {needle}")


def test_an_integer_asset_name_in_yaml_is_refused(tmp_path):
    path = tmp_path / "assets.yaml"
    path.write_text("assets:\n  2024: {data: a.csv}\n")
    assert _error(lambda: load_asset_universe(path)).startswith(f"{path}: assets: asset name: must be a non-empty "
                                                                "string, got 2024")


def test_run_with_an_empty_asset_name_exits_2(tmp_path, universe, capsys):
    def rename(doc):
        first = next(iter(doc["assets"]))
        doc["assets"][""] = doc["assets"].pop(first)
    assets = _assets(tmp_path, universe, rename)
    _one_error_line(capsys, _run(_portfolio(tmp_path, assets), "--out", tmp_path / "out"),
                    f"{assets}: assets: asset name: must be a non-empty string, got ''")


def test_a_portfolio_name_with_a_newline_is_refused():
    assert "name: must not contain control characters" in _error(
        lambda: portfolio_config_from_dict({"name": "a\nb"}, "p.yaml"))


@pytest.mark.parametrize("value", [["a", "b"], {"a": 1}, 3])
def test_a_description_must_be_text(tmp_path, universe, value):
    assert _error(lambda: portfolio_config_from_dict({"description": value}, "p.yaml")).startswith(
        "p.yaml: description: must be a string")
    path = _assets(tmp_path, universe, lambda doc: doc.update(description=value))
    assert _error(lambda: load_asset_universe(path)).startswith(f"{path}: description: must be a string")
    klass = _assets(tmp_path, universe, lambda doc: doc["assets"].update(A={"data": "a.csv", "class": value}))
    assert _error(lambda: load_asset_universe(klass)).startswith(f"{klass}: assets.A.class: must be a string")


def test_an_empty_description_is_empty_text():
    assert portfolio_config_from_dict({"description": None}, "p.yaml").description == ""


def test_sweep_description_must_be_text(tmp_path, repo_root):
    sweep = tmp_path / "sweep.yaml"
    base = repo_root / "configs" / "portfolio_balanced.yaml"
    sweep.write_text(f"base: {base}\ndescription: [a, b]\nparameters:\n  rebalance: [none, weekly]\n")
    assert _error(lambda: load_sweep_spec(sweep)).startswith(f"{sweep}: description: must be a string")


def test_a_sweep_point_setting_a_section_to_false_is_refused(tmp_path, repo_root):
    sweep = tmp_path / "sweep.yaml"
    base = repo_root / "configs" / "portfolio_balanced.yaml"
    sweep.write_text(f"base: {base}\nparameters:\n  risk: [false]\n")
    message = _error(lambda: resolve_points(load_sweep_spec(sweep)))
    assert message.startswith(f"{sweep}: point 1 (risk=false): risk: expected a mapping, got false")


def test_grid_values_must_have_their_type(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  bb_period: ['20', 30]\n")
    assert _error(lambda: load_grid(grid)).startswith(f"{grid}: grid.bb_period: 'bb_period' must be an integer")


# --- the shipped configs ----------------------------------------------------------------------

def test_every_shipped_config_still_loads(repo_root):
    configs = repo_root / "configs"
    for path in sorted(configs.glob("portfolio_*.yaml")):
        load_asset_universe(load_portfolio_config(path).asset_config)
    for path in sorted(configs.glob("assets_*.json")):
        load_asset_universe(path)
    load_grid(configs / "grid.yaml")
    assert resolve_points(load_sweep_spec(configs / "sweep.yaml"), best_configs_dir=None)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


@pytest.mark.parametrize("value, hint", [("1e6", "(YAML reads 1e6 as text: write 1.0e6)"),
                                         ("'1000000'", "(a quoted string: write the value without quotes)")])
def test_a_number_yaml_reads_as_text_gets_a_hint(tmp_path, value, hint):
    path = tmp_path / "p.yaml"
    path.write_text(f"name: t\ninitial_capital: {value}\n")
    with pytest.raises(ConfigError) as err:
        load_portfolio_config(path)
    assert str(err.value).startswith(f"{path}: initial_capital: must be a number, got ") and str(err.value).endswith(hint)
