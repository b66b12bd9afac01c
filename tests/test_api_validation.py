"""The Python API checks what it is handed: asset parameters, fixed weights, single-asset runs, argument types.

* ``PortfolioBacktester({name: (AssetConfig, DataFrame)}, config)`` validates each asset's ``params`` as an
  asset config file's are (keys left out take the spec default) and refuses anything else with one
  ConfigError line naming the asset and the key;
* ``PortfolioBacktester(weights=...)``: one finite weight >= 0 per asset, summing to 1;
* ``raybt.run_backtest`` applies the loader's bar rules and the parameter validation;
* wrong types (an asset that is not an AssetConfig, a config that is not a PortfolioConfig, ...) are one
  ConfigError line saying what was expected;
* valid inputs give the results they gave before (equal to the config-file path, bit for bit).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

import raybt
from raybt.backtest import simulate_bars
from raybt.config.params import default_params, validate_params
from raybt.config.portfolio import portfolio_config_from_dict
from raybt.config.universe import AssetConfig
from raybt.engine import PortfolioBacktester
from raybt.engine.inputs import check_assets
from raybt.errors import ConfigError, DataError

RAW = {"bb_period": 5, "atr_period": 3, "entry_z": 1.0}  # a partial dict: the rest are spec defaults


def bars_frame(n=400, seed=1, freq="5min") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 3e-3, n)))
    open_ = np.r_[close[:1], close[:-1]]
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * 1.001,
                         "low": np.minimum(open_, close) * 0.999, "close": close, "volume": 1.0},
                        index=pd.date_range("2024-01-01", periods=n, freq=freq, tz="UTC", name="timestamp"))


A, B = bars_frame(seed=3), bars_frame(seed=4, n=350, freq="7min")


def config(**allocation):
    return portfolio_config_from_dict({"name": "t", "engine": {"chunk": "1D"}, "allocation": allocation}, "t")


def asset(name, params=None, data=None):
    return AssetConfig(name=name, data=data, timeframe="5m", params=dict(RAW) if params is None else params)


def assets(params_a=None):
    return {"A": (asset("A", params_a), A), "B": (asset("B"), B)}


def run(assets_, **kwargs):
    return PortfolioBacktester(assets_, config(), engine="local", **kwargs).run()


def assert_same_result(a, b) -> None:
    assert np.array_equal(a.equity.to_numpy(), b.equity.to_numpy())
    assert a.equity.index.equals(b.equity.index) and list(a.equity.columns) == list(b.equity.columns)
    pd.testing.assert_frame_equal(a.trades.reset_index(drop=True), b.trades.reset_index(drop=True), check_exact=True)


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    return message


# --- 1. the parameters of hand-built assets -----------------------------------------------------

BAD_PARAMS = [
    ({"allow_short": "maybe"}, "'allow_short' must be true or false"),
    ({"allow_short": 2}, "'allow_short' must be true or false"),
    ({"commission": -0.1}, "'commission' must be in [0, 1), got -0.1"),
    ({"spread": -1.0}, "'spread' must be >= 0"),
    ({"sl_atr": -1.0}, "'sl_atr' must be > 0"),
    ({"leverage": 0}, "'leverage' must be > 0"),
    ({"entry_z": float("nan")}, "'entry_z' must be >= 0, got nan"),
    ({"lot_size": float("nan")}, "'lot_size' must be >= 0"),
    ({"bb_period": 30.9}, "'bb_period' must be an integer >= 2, got 30.9"),
    ({"bb_period": 0}, "'bb_period' must be an integer >= 2, got 0"),
    ({"initial_capital": -1.0}, "'initial_capital' must be > 0"),
    ({"sizing": "kelly"}, "'sizing' must be one of fixed, risk, got 'kelly'"),
    ({"bb_perod": 5}, "unknown parameter 'bb_perod' (did you mean 'bb_period'?)"),
    ({"weight": 0.5}, "weight 0.5 would be ignored"),
]


@pytest.mark.parametrize("change,expected", BAD_PARAMS, ids=[str(c) for c, _ in BAD_PARAMS])
def test_bad_asset_param_is_one_config_error(change, expected):
    with pytest.raises(ConfigError) as err:
        PortfolioBacktester(assets({**RAW, **change}), config(), engine="local")
    message = one_line(err)
    assert message.startswith("asset A: ") and expected in message, message


def test_params_not_a_mapping():
    with pytest.raises(ConfigError) as err:
        PortfolioBacktester(assets(None) | {"A": (AssetConfig("A", None, "5m", None), A)}, config(), engine="local")
    assert one_line(err) == "asset A: parameters must be a mapping of name -> value, got NoneType"


def test_asset_config_list_is_validated_before_reading_files(tmp_path):
    missing = tmp_path / "absent.parquet"  # never read: the parameters fail first
    with pytest.raises(ConfigError) as err:
        PortfolioBacktester([asset("A", {**RAW, "commission": -0.1}, missing)], config(), engine="local")
    assert one_line(err).startswith("asset A: 'commission' must be in [0, 1)")


def test_params_are_checked_before_ray_starts(monkeypatch):
    import raybt.ray.execute

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started for invalid input")

    monkeypatch.setattr(raybt.ray.execute, "RayExecution", refuse)
    with pytest.raises(ConfigError, match="asset A: 'bb_period'"):
        PortfolioBacktester(assets({**RAW, "bb_period": 0}), config(), engine="ray")


def test_bool_strings_mean_what_the_config_files_mean():
    """``allow_short="false"`` was truthy (shorts traded); now it is False, as ``--set allow_short=false``."""
    as_text = run(assets({**RAW, "allow_short": "false"}))
    as_bool = run(assets({**RAW, "allow_short": False}))
    assert_same_result(as_text, as_bool)
    assert not (as_text.trades.loc[as_text.trades["asset"] == "A", "side"] == "short").any()


def test_partial_params_take_the_spec_defaults():
    """A key left out was a KeyError; now it is the spec default, as in an asset config file."""
    partial = run(assets())
    full = run({"A": (asset("A", validate_params(RAW)), A), "B": (asset("B", validate_params(RAW)), B)})
    assert_same_result(partial, full)
    assert len(partial.trades) > 5
    assert partial.provenance["asset_params"]["A"] == validate_params(RAW)


def test_hand_built_assets_equal_the_config_file_path(tmp_path):
    from raybt.universe import load_portfolio_from_config

    A.to_parquet(tmp_path / "A.parquet")
    B.to_parquet(tmp_path / "B.parquet")
    (tmp_path / "assets.json").write_text(json.dumps({"assets": {
        "A": {"data": "A.parquet", "strategy": {"bb_period": 5, "atr_period": 3, "entry_z": 1.0}},
        "B": {"data": "B.parquet", "strategy": {"bb_period": 5, "atr_period": 3, "entry_z": 1.0}}}}))
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"name": "t", "asset_config": "assets.json",
                                                     "engine": {"chunk": "1D"}}))
    loaded, pconf = load_portfolio_from_config(None, tmp_path / "p.yaml", best_configs_dir=tmp_path)
    from_files = PortfolioBacktester(loaded, pconf, engine="local").run()
    assert len(from_files.trades) > 5
    assert_same_result(from_files, run(assets()))


# --- 2. fixed weights -------------------------------------------------------------------------

BAD_WEIGHTS = [
    ("negative", pd.Series({"A": -0.5, "B": 1.5}), "weights: asset 'A': must be >= 0 (long-only sleeves), got -0.5"),
    ("NaN", pd.Series({"A": np.nan, "B": 1.0}), "weights is NaN/inf for asset(s) ['A']"),
    ("inf", pd.Series({"A": np.inf, "B": 0.5}), "weights is NaN/inf for asset(s) ['A']"),
    ("sum 3", pd.Series({"A": 1.5, "B": 1.5}), "weights: must sum to 1 (fractions of the portfolio's capital), got 3"),
    ("sum 0", pd.Series({"A": 0.0, "B": 0.0}), "weights: must sum to 1 (fractions of the portfolio's capital), got 0"),
    ("missing asset", pd.Series({"A": 1.0}), "weights has no value for asset(s) ['B']"),
    ("unknown asset", pd.Series({"A": 0.5, "B": 0.25, "C": 0.25}), "weights: asset 'C' is not in the portfolio (A, B)"),
    ("twice", pd.Series([0.5, 0.25, 0.25], index=["A", "B", "B"]), "weights names asset(s) ['B'] more than once"),
    ("text", {"A": "half", "B": 0.5}, "weights for asset 'A' must be a number, got 'half'"),
    ("bool", {"A": True, "B": 0.0}, "weights for asset 'A' must be a number, got True"),
    ("list", [0.5, 0.5], "weights: expected a pandas Series or a dict {asset: weight}, got list"),
]


@pytest.mark.parametrize("case,weights,expected", BAD_WEIGHTS, ids=[c[0] for c in BAD_WEIGHTS])
def test_bad_weights_are_one_config_error(case, weights, expected):
    with pytest.raises(ConfigError) as err:
        PortfolioBacktester(assets(), config(), engine="local", weights=weights)
    assert expected in one_line(err)


def test_valid_weights_run_as_before():
    equal = run(assets())  # equal_weight, no estimation window
    series = run(assets(), weights=pd.Series({"B": 0.5, "A": 0.5}))  # any order; portfolio order inside
    as_dict = run(assets(), weights={"A": 0.5, "B": 0.5})
    assert_same_result(equal, series)
    assert_same_result(equal, as_dict)
    assert list(series.weights.index) == ["A", "B"]
    thirds = run(assets(), weights=pd.Series({"A": 1 / 3, "B": 2 / 3}))
    assert thirds.equity.iloc[0]["A"] == pytest.approx(1_000_000 / 3)


def test_an_asset_weighted_zero_is_not_simulated():
    """As the allocation's unselected assets: the run equals the portfolio without that asset."""
    result = run(assets(), weights={"A": 0.0, "B": 1.0})
    assert "A" not in result.equity.columns and not (result.trades["asset"] == "A").any()
    assert list(result.weights.index) == ["B"]
    assert_same_result(result, run({"B": (asset("B"), B)}))


# --- 3. raybt.run_backtest ----------------------------------------------------------------------

def _edit(row, col, value):
    frame = A.copy()
    frame.iloc[row, col] = value
    return frame


T = A.index
BAD_BARS = [
    ("NaN close", _edit(100, 3, np.nan), f"asset X: column 'close', data row 101 ({T[100]}): missing value (NaN)"),
    ("inf high", _edit(100, 1, np.inf), f"asset X: column 'high', data row 101 ({T[100]}): infinite value"),
    ("negative open", _edit(100, 0, -5.0), f"asset X: column 'open', data row 101 ({T[100]}): non-positive price -5.0"),
    ("reversed index", A.iloc[::-1], f"asset X: index, data row 2 ({T[-2]}): timestamps not sorted"),
    ("empty frame", A.iloc[:0], "asset X: no bars (an empty frame)"),
    ("too few bars", A.iloc[:4], "asset X: only 4 bar(s), fewer than the minimum 6"),
    ("not a frame", A["close"], "asset X: bars must be a pandas DataFrame"),
]


@pytest.mark.parametrize("case,frame,expected", BAD_BARS, ids=[c[0] for c in BAD_BARS])
def test_run_backtest_bad_bars_are_one_data_error(case, frame, expected):
    with pytest.raises(DataError) as err:
        raybt.run_backtest(frame, RAW, asset="X")
    assert one_line(err).startswith(expected)


@pytest.mark.parametrize("change,expected", [({"commission": -0.1}, "'commission' must be in [0, 1)"),
                                             ({"bb_period": 0}, "'bb_period' must be an integer >= 2, got 0"),
                                             ({"sizing": "kelly"}, "'sizing' must be one of fixed, risk")])
def test_run_backtest_bad_params_are_one_config_error(change, expected):
    with pytest.raises(ConfigError) as err:
        raybt.run_backtest(A, {**RAW, **change}, asset="X")
    message = one_line(err)
    assert message.startswith("asset X: ") and expected in message


def test_run_backtest_params_not_a_mapping():
    with pytest.raises(ConfigError, match=r"^asset X: parameters must be a mapping of name -> value, got list$"):
        raybt.run_backtest(A, [("bb_period", 5)], asset="X")


def test_run_backtest_valid_input_unchanged():
    params = validate_params(RAW)
    result = raybt.run_backtest(A, params, asset="X")
    records, equity = simulate_bars(A, params)  # what run_backtest computed before it validated
    assert len(records) == len(result.trades) > 5
    assert np.array_equal(result.equity["equity"].to_numpy(), equity)
    assert result.params == params
    # a partial dict: spec defaults; column names and a tz-naive index as the loader reads them
    assert raybt.run_backtest(A, RAW, asset="X").params == {**default_params(), **params}
    for variant in (A.rename(columns=str.upper), A.tz_localize(None)):
        other = raybt.run_backtest(variant, RAW, asset="X")
        assert np.array_equal(other.equity["equity"].to_numpy(), equity)
        assert other.equity.index.equals(result.equity.index)
        pd.testing.assert_frame_equal(other.trades, result.trades, check_exact=True)


# --- 4. wrong types ----------------------------------------------------------------------------

WRONG_TYPES = [
    ("(None, df)", lambda: PortfolioBacktester({"A": (None, A)}, config(), engine="local"),
     "asset A: expected an AssetConfig, got NoneType"),
    ("(cfg,)", lambda: PortfolioBacktester({"A": (asset("A"),)}, config(), engine="local"),
     "asset A: expected a pair (AssetConfig, bars DataFrame), got 1 items"),
    ("cfg alone", lambda: PortfolioBacktester({"A": asset("A")}, config(), engine="local"),
     "asset A: expected a pair (AssetConfig, bars DataFrame), got AssetConfig"),
    ("list of tuples", lambda: PortfolioBacktester([(asset("A"), A)], config(), engine="local"),
     "asset #1: expected an AssetConfig, got tuple (for (AssetConfig, DataFrame) pairs pass a dict"),
    ("assets=5", lambda: PortfolioBacktester(5, config(), engine="local"),
     "assets: expected {name: (AssetConfig, bars DataFrame)} or a list of AssetConfig, got int"),
    ("config=None", lambda: PortfolioBacktester(assets(), None, engine="local"),
     "portfolio_config: expected a PortfolioConfig (raybt.config.load_portfolio_config(path) or "
     "portfolio_config_from_dict(doc)), got NoneType"),
    ("config=dict", lambda: PortfolioBacktester(assets(), config().to_dict(), engine="local"),
     "portfolio_config: expected a PortfolioConfig"),
    ("load(config=5)", lambda: raybt.load_portfolio_from_config(None, 5),
     "config: expected the path of a portfolio config file (str or pathlib.Path) or None, got int"),
    ("load(best_configs_dir=5)", lambda: raybt.load_portfolio_from_config(None, "x.yaml", best_configs_dir=5),
     "best_configs_dir: expected a folder path (str or pathlib.Path), got int"),
    ("load(max_assets='2')", lambda: raybt.load_portfolio_from_config(None, "x.yaml", max_assets="2"),
     "max_assets: must be an integer, got '2'"),
    ("load(max_assets=0)", lambda: raybt.load_portfolio_from_config(None, "x.yaml", max_assets=0),
     "max_assets: must be >= 1, got 0"),
]


@pytest.mark.parametrize("case,call,expected", WRONG_TYPES, ids=[c[0] for c in WRONG_TYPES])
def test_wrong_types_are_one_config_error(case, call, expected):
    with pytest.raises(ConfigError) as err:
        call()
    assert one_line(err).startswith(expected)


def test_other_forms_of_a_list_and_a_pair_still_run():
    """``universe.assets.values()`` (dict_values) and ``[cfg, bars]`` pairs ran before the checks came;
    they run the same now."""
    reference = PortfolioBacktester({"A": (asset("A"), A)}, config(), engine="local").run()
    as_list = PortfolioBacktester({"A": [asset("A"), A]}, config(), engine="local").run()
    pd.testing.assert_frame_equal(reference.equity, as_list.equity, check_exact=True)
    checked = check_assets({"A": asset("A")}.values())
    assert [a.name for a in checked] == ["A"]
