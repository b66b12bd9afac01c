"""The Python API refuses what it cannot run faithfully, and runs DataFrames as it runs files.

Found by an audit of the API (each case ran silently wrong, or crashed with a raw Python error):
DataFrame bars skipped the asset's timeframe (a file's bars were resampled to it); a dict key and
its AssetConfig's name could differ; non-string names passed; an asset named NA, None, null or nan
made the run folder unreadable; a frame written to after the backtester checked it ran unchecked;
``resume=True`` without checkpoints ran from scratch; arguments of the wrong type gave raw errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raybt import run_backtest
from raybt.config.portfolio import portfolio_config_from_dict
from raybt.config.universe import AssetConfig
from raybt.engine import PortfolioBacktester
from raybt.errors import ConfigError
from raybt.result import PortfolioResult

P = {"bb_period": 10, "atr_period": 5, "entry_z": 1.0}
CONFIG = portfolio_config_from_dict({"name": "t"})


def _bars(n=1500, seed=1, freq="5min"):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 3e-3, n)))
    open_ = np.r_[close[:1], close[:-1]]
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * 1.001,
                         "low": np.minimum(open_, close) * 0.999, "close": close},
                        index=pd.date_range("2024-01-01", periods=n, freq=freq, tz="UTC", name="timestamp"))


def _asset(name, data=None, timeframe="5m", **kw):
    return AssetConfig(name, data, timeframe, P, **kw)


def _run(assets, **kw):
    return PortfolioBacktester(assets, CONFIG, engine="local", **kw).run()


def test_frames_run_at_the_timeframe_their_files_would(tmp_path):
    one_minute = _bars(n=6000, seed=1, freq="1min")
    other = _bars(seed=2)
    one_minute.to_parquet(tmp_path / "A.parquet")
    other.to_parquet(tmp_path / "B.parquet")
    files = _run([_asset("A", tmp_path / "A.parquet"), _asset("B", tmp_path / "B.parquet")])
    frames = _run({"A": (_asset("A"), one_minute), "B": (_asset("B"), other)})
    assert len(frames.equity) == len(files.equity) == 1500  # the 1-minute bars resampled to 5m
    pd.testing.assert_frame_equal(frames.equity, files.equity, check_exact=True)
    assert frames.trades.drop(columns="asset").equals(files.trades.drop(columns="asset"))
    hourly = _run({"A": (_asset("A"), other), "B": (_asset("B"), other)}, timeframe="1h")
    assert len(hourly.equity) == 125  # timeframe= resamples frames too
    with pytest.raises(ConfigError, match="asset A: timeframe 1h .* is finer than the 1d bars"):
        _run({"A": (_asset("A", timeframe="1h", timeframe_source="mine"), _bars(n=40, freq="1D")),
              "B": (_asset("B"), other)})


@pytest.mark.parametrize("assets,message", [
    (lambda: {"A": (_asset("B"), _bars()), "B": (_asset("A"), _bars(seed=2))}, "asset A: its AssetConfig is named 'B'"),
    (lambda: {None: (_asset("A"), _bars()), "B": (_asset("B"), _bars(seed=2))}, "the key naming it: must be a non-empty"),
    (lambda: {1: (_asset("A"), _bars())}, "asset 1: the key naming it: must be a non-empty string, got 1"),
    (lambda: {"": (_asset(""), _bars())}, "must be a non-empty string, got ''"),
    (lambda: [_asset("A", "a.csv"), _asset("A", "b.csv")], "asset A: named twice"),
    (lambda: {"A": (_asset("A", timeframe="bogus"), _bars())}, "asset A: timeframe: not a timeframe: 'bogus'"),
])
def test_names_and_timeframes_are_checked_as_a_config_files_are(assets, message):
    with pytest.raises(ConfigError, match=message):
        PortfolioBacktester(assets(), CONFIG, engine="local")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("names", [("NA", "None"), ("null", "nan"), ("1", "2")])
def test_a_run_folder_reads_back_whatever_the_asset_names(tmp_path, fmt, names):
    result = _run({n: (_asset(n), _bars(seed=k + 1)) for k, n in enumerate(names)})
    result.save(tmp_path / "run", report=False, format=fmt)
    back = PortfolioResult.load(tmp_path / "run")
    assert list(back.weights.index) == list(names)
    assert back.trades["asset"].astype(str).tolist() == result.trades["asset"].astype(str).tolist()
    assert set(back.multipliers["asset"].astype(str)) == set(names)


def test_a_frame_written_to_after_the_check_is_refused_at_run():
    a = _bars()
    backtester = PortfolioBacktester({"A": (_asset("A"), a), "B": (_asset("B"), _bars(seed=2))}, CONFIG,
                                     engine="local")
    a.iloc[200:, 3] = np.nan
    with pytest.raises(ConfigError, match="asset A: its bars DataFrame changed after PortfolioBacktester"):
        backtester.run()


def test_resume_needs_a_checkpoint_folder_of_an_unfinished_run(tmp_path):
    assets = {"A": (_asset("A"), _bars()), "B": (_asset("B"), _bars(seed=2))}
    with pytest.raises(ConfigError, match="resume: needs checkpoint_dir"):
        PortfolioBacktester(assets, CONFIG, engine="local").run(resume=True)
    _run(assets).save(tmp_path / "done", report=False)
    with pytest.raises(ConfigError, match="holds a finished run"):
        PortfolioBacktester(assets, CONFIG, engine="local").run(checkpoint_dir=tmp_path / "done", resume=True)
    assert not (tmp_path / "done" / "checkpoint").exists()


@pytest.mark.parametrize("call,message", [
    (lambda a: PortfolioBacktester(a, CONFIG, engine="local", progress=5), "progress: expected a function"),
    (lambda a: PortfolioBacktester(a, CONFIG, engine="local", timer="x"), "timer: expected a raybt.phases.PhaseTimer"),
    (lambda a: PortfolioBacktester(a, CONFIG, engine="local", ranking=[1, 2]), "ranking: expected a dict"),
    (lambda a: PortfolioBacktester(a, CONFIG, engine="local", ranking={"Z": 1.0}), "ranking: asset 'Z' is not in"),
    (lambda a: PortfolioBacktester(a, CONFIG, engine="local", ranking={"A": "high"}), "the score must be a number"),
    (lambda a: PortfolioBacktester(a, CONFIG, engine="local", timeframe="soon"), "timeframe: not a timeframe"),
    (lambda a: PortfolioBacktester(a, CONFIG, engine="local").run(resume="yes"), "resume: expected True or False"),
    (lambda a: run_backtest(_bars(), P, chunk_bars=-5), "chunk_bars: expected a whole number of bars >= 1"),
    (lambda a: run_backtest(_bars(), P, asset=None), "asset: must be a non-empty string"),
])
def test_arguments_of_the_wrong_kind_are_one_clear_error(call, message):
    assets = {"A": (_asset("A"), _bars()), "B": (_asset("B"), _bars(seed=2))}
    with pytest.raises(ConfigError, match=message):
        call(assets)


@pytest.mark.parametrize("kwargs,message", [
    ({"path": None}, "save: path: expected a folder path"),
    ({"report": "no"}, "save: report: expected True or False"),
])
def test_save_arguments_are_checked(tmp_path, kwargs, message):
    result = _run({"A": (_asset("A"), _bars()), "B": (_asset("B"), _bars(seed=2))})
    kwargs = {"path": tmp_path / "run", **kwargs}
    with pytest.raises(ConfigError, match=message):
        result.save(kwargs.pop("path"), **kwargs)


def test_an_asset_without_bars_in_the_estimation_window_is_named_in_a_warning():
    late = _bars(seed=2)
    late.index = late.index + pd.Timedelta(days=4)
    config = portfolio_config_from_dict({"name": "t", "allocation": {"model": "risk_parity", "lookback": "3D"}})
    with pytest.warns(UserWarning, match="asset B: no bars in the allocation's estimation window"):
        result = PortfolioBacktester({"A": (_asset("A"), _bars()), "B": (_asset("B"), late)}, config,
                                     engine="local").run()
    assert any(line.startswith("asset B: no bars") for line in result.provenance["warnings"])


@pytest.mark.parametrize("allocation,weights,message", [
    ({"max_assets": 1}, {"A": 0.5, "B": 0.5}, "weights: 2 assets weighted above 0, but allocation.max_assets is 1"),
    ({"max_single_asset_weight": 0.4}, {"A": 0.6, "B": 0.4}, "asset A: 0.6 is above allocation.max_single_asset_weight"),
])
def test_fixed_weights_that_break_the_configs_caps_are_refused(allocation, weights, message):
    config = portfolio_config_from_dict({"name": "t", "allocation": allocation})
    with pytest.raises(ConfigError, match=message):
        PortfolioBacktester({"A": (_asset("A"), _bars()), "B": (_asset("B"), _bars(seed=2))}, config,
                            engine="local", weights=weights)


def test_fixed_weights_say_which_allocation_settings_they_replace():
    config = portfolio_config_from_dict({"name": "t", "allocation": {"model": "risk_parity"}})
    with pytest.warns(UserWarning, match="fixed weights replace allocation.model risk_parity"):
        PortfolioBacktester({"A": (_asset("A"), _bars()), "B": (_asset("B"), _bars(seed=2))}, config,
                            engine="local", weights={"A": 0.5, "B": 0.5})


def test_an_overflowing_run_says_so_rather_than_that_its_equity_never_changed():
    huge = {**P, "size": 1e300, "leverage": 1e300}
    with np.errstate(all="ignore"):
        result = PortfolioBacktester({"A": (AssetConfig("A", None, "5m", huge), _bars()),
                                      "B": (_asset("B"), _bars(seed=2))}, CONFIG, engine="local").run()
    lines = result.provenance["warnings"]
    assert any(line.startswith("portfolio: annual volatility overflowed") for line in lines), lines
    assert not any("never changed" in line for line in lines if line.startswith(("portfolio", "A:"))), lines


def test_a_folder_whose_files_failed_to_write_is_still_resumable(tmp_path):
    """A disk-full write leaves metrics.json beside INCOMPLETE in the run's .partial folder: not a finished run."""
    from raybt.engine.inputs import check_checkpoint_dir

    partial = tmp_path / ".run.partial"
    partial.mkdir()
    (partial / "metrics.json").write_text("{}")
    (partial / "INCOMPLETE").write_text("run did not finish: OSError\n")
    assert check_checkpoint_dir(partial, True) == partial
    (partial / "INCOMPLETE").unlink()
    assert check_checkpoint_dir(partial, True) == partial  # a .partial folder is never a finished run
    finished = tmp_path / "run"
    finished.mkdir()
    (finished / "metrics.json").write_text("{}")
    with pytest.raises(ConfigError, match="holds a finished run"):
        check_checkpoint_dir(finished, False)
