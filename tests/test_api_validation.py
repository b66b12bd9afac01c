"""The Python API checks what it is handed: asset parameters, fixed weights, single-asset runs, argument types.

* ``PortfolioBacktester({name: (AssetConfig, DataFrame)}, config)`` validates each asset's ``params`` as an
  asset config file's are (keys left out take the spec default) and refuses anything else with one
  ConfigError line naming the asset and the key;
* ``PortfolioBacktester(weights=...)``: one finite weight >= 0 per asset, summing to 1;
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

from raybt.config.params import validate_params
from raybt.config.portfolio import portfolio_config_from_dict
from raybt.config.universe import AssetConfig
from raybt.engine import PortfolioBacktester
from raybt.errors import ConfigError

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


# --- 4. wrong types ----------------------------------------------------------------------------

WRONG_TYPES = [
    ("(None, df)", lambda: PortfolioBacktester({"A": (None, A)}, config(), engine="local"),
     "asset A: expected an AssetConfig, got NoneType"),
    ("(cfg,)", lambda: PortfolioBacktester({"A": (asset("A"),)}, config(), engine="local"),
     "asset A: expected a pair (AssetConfig, bars DataFrame), got a tuple of 1"),
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
]


@pytest.mark.parametrize("case,call,expected", WRONG_TYPES, ids=[c[0] for c in WRONG_TYPES])
def test_wrong_types_are_one_config_error(case, call, expected):
    with pytest.raises(ConfigError) as err:
        call()
    assert one_line(err).startswith(expected)
