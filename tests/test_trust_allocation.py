"""Issue 12, class 10: allocation edge cases.

Zero-variance assets treated alike by every model, SLSQP failures checked,
huge returns refused with one line, every input of the public
``compute_weights`` validated, and the engine path (min_variance with a
sleeve that never trades in the estimation window).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import hadamard
from scipy.optimize import OptimizeResult

import raybt.allocation.models as models
from raybt.allocation import MODELS, compute_weights
from raybt.errors import ConfigError

ESTIMATED = ("inverse_volatility", "risk_parity", "performance_weighted", "min_variance", "max_sharpe")


def orthogonal(vols, means=None, rows: int = 16, names=None) -> pd.DataFrame:
    """Columns with sample std exactly ``vols`` (ddof=1), sample correlation exactly 0 and the
    given means (orthogonal zero-sum Hadamard columns)."""
    k = len(vols)
    x = hadamard(rows)[:, 1:k + 1].astype(float) * np.sqrt((rows - 1) / rows) * np.asarray(vols, float)
    if means is not None:
        x = x + np.asarray(means, float)
    return pd.DataFrame(x, columns=names or [f"a{i}" for i in range(k)])


def one_line_error(excinfo, *needles):
    text = str(excinfo.value)
    assert "\n" not in text
    for needle in needles:
        assert needle in text, (needle, text)


# --- zero-variance assets ------------------------------------------------------------------

VOLS = np.array([0.02, 0.01, 0.04])  # the smallest positive vol is 0.01
MEANS = np.array([0.004, 0.001, 0.002])
CONST = 0.0005  # the zero-variance asset's constant return


def zero_var_frame(const: float = 0.0) -> pd.DataFrame:
    r = orthogonal(VOLS, MEANS, names=["a", "b", "c"])
    r["z"] = const
    return r


def expected_with_z(model: str, const: float) -> np.ndarray:
    """Closed forms with z treated as uncorrelated with vol = min positive vol (0.01)."""
    vols = np.append(VOLS, VOLS.min())
    means = np.append(MEANS, const)
    if model == "inverse_volatility" or model == "risk_parity":  # uncorrelated: ERC = inverse vol
        w = 1 / vols
    elif model == "min_variance":
        w = 1 / vols**2
    elif model == "max_sharpe":  # uncorrelated, all means > 0: w ∝ μ/σ²
        w = means / vols**2
    elif model == "performance_weighted":
        w = np.maximum(means / vols, 0)
    else:
        w = np.ones(4)
    return w / w.sum()


@pytest.mark.parametrize("model", MODELS)
def test_zero_variance_asset_treated_alike_by_every_model(model):
    """Every model sees a zero-variance column as uncorrelated with the smallest positive vol."""
    w = compute_weights(model, zero_var_frame(CONST))
    np.testing.assert_allclose(w.to_numpy(), expected_with_z(model, CONST), atol=1e-8)
    assert list(w.index) == ["a", "b", "c", "z"]


def test_min_variance_no_longer_puts_everything_on_an_idle_column():
    """Before: min_variance gave z (never traded, returns all 0) 100%; inverse vol and risk parity did not."""
    w = compute_weights("min_variance", zero_var_frame(0.0))
    assert w["z"] < 0.9 and (w[["a", "b", "c"]] > 0).all()
    np.testing.assert_allclose(w.to_numpy(), expected_with_z("min_variance", 0.0), atol=1e-8)


def test_max_sharpe_constant_positive_column_is_not_infinitely_good():
    w = compute_weights("max_sharpe", zero_var_frame(0.01))
    assert w["z"] < 1.0 and w["a"] > 0
    np.testing.assert_allclose(w.to_numpy(), expected_with_z("max_sharpe", 0.01), atol=1e-8)


@pytest.mark.parametrize("model", ESTIMATED)
@pytest.mark.parametrize("scale", [0.0, 1e-200])
def test_all_zero_variance_is_equal_weight(model, scale):
    r = pd.DataFrame({"a": [scale, 2 * scale, scale], "b": [0.0, 0.0, 0.0], "c": [1e-300, 1e-300, 1e-300]})
    np.testing.assert_allclose(compute_weights(model, r).to_numpy(), [1 / 3] * 3, atol=1e-15)


def test_default_ranking_uses_the_same_zero_variance_rule():
    """max_assets without a ranking ranks by Sharpe; the constant column's Sharpe is const/min vol."""
    r = zero_var_frame(0.05)  # Sharpe 5 with vol 0.01: the best
    w = compute_weights("equal_weight", r, max_assets=1)
    assert w["z"] == 1.0


# --- the optimiser is checked ---------------------------------------------------------------

def _fake_minimize(x, success, status=9, message="Iteration limit reached"):
    real = models.minimize

    def fake(fun, x0, **kwargs):
        if kwargs.get("method") != "SLSQP":
            return real(fun, x0, **kwargs)
        return OptimizeResult(x=np.asarray(x(len(x0)), float), success=success, status=status, message=message,
                              fun=fun(np.asarray(x(len(x0)), float))[0])
    return fake


@pytest.mark.parametrize("model", ["min_variance", "max_sharpe"])
def test_solver_failure_is_a_one_line_error_naming_model_and_message(monkeypatch, model):
    """SLSQP fails at a vertex that is not optimal: ConfigError, not the vertex's weights."""
    monkeypatch.setattr(models, "minimize", _fake_minimize(lambda n: np.eye(n)[0] * (1.0 if model == "min_variance"
                                                                                   else 1 / 0.004), False))
    r = orthogonal(VOLS, MEANS, names=["a", "b", "c"])
    with pytest.raises(ConfigError) as err:
        compute_weights(model, r)
    one_line_error(err, f"allocation: {model}", "SLSQP", "Iteration limit reached", "status 9")


def test_solver_success_with_an_infeasible_point_is_refused(monkeypatch):
    """`success` alone is not trusted: a point off the budget constraint is an error."""
    monkeypatch.setattr(models, "minimize", _fake_minimize(lambda n: np.eye(n)[0] * 2.0, True, 0,
                                                           "Optimization terminated successfully"))
    with pytest.raises(ConfigError) as err:
        compute_weights("min_variance", orthogonal(VOLS, names=["a", "b", "c"]))
    one_line_error(err, "min_variance", "Optimization terminated successfully")


def test_solver_failure_with_a_certified_optimum_is_used(monkeypatch):
    """SLSQP stopped early at the start point, but the polished point satisfies the KKT
    conditions: it is the exact optimum (closed form 1/σ²), so it is returned."""
    monkeypatch.setattr(models, "minimize", _fake_minimize(lambda n: np.full(n, 1.0 / n), False, 8,
                                                           "Positive directional derivative for linesearch"))
    w = compute_weights("min_variance", orthogonal(VOLS, names=["a", "b", "c"]))
    closed = (1 / VOLS**2) / (1 / VOLS**2).sum()
    np.testing.assert_allclose(w.to_numpy(), closed, atol=1e-12)


def test_real_solver_on_many_problems_never_fails():
    """The check is not a false alarm: ill-conditioned and capped problems still solve."""
    rng = np.random.default_rng(7)
    for trial in range(150):
        n, rows = int(rng.integers(2, 12)), int(rng.integers(3, 120))
        x = (rng.normal(size=(rows, 2)) @ rng.normal(size=(2, n)) * 0.01
             + rng.normal(0, 0.01, (rows, n)) * rng.uniform(0, 1, n) + rng.normal(0.0005, 0.001, n))
        if trial % 5 == 0:
            x[:, 0] = 0.0
        r = pd.DataFrame(x, columns=[f"s{i}" for i in range(n)])
        cap = 1.0 if trial % 2 else min(1.0, 1.0 / n + 0.1)
        for model in ("min_variance", "max_sharpe"):
            w = compute_weights(model, r, max_single_asset_weight=cap)
            assert abs(w.sum() - 1) < 1e-9 and (w >= 0).all() and (w <= cap + 1e-9).all()


# --- huge and degenerate returns ------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("scale", [1e200, 1e104])
def test_huge_returns_are_one_line_config_errors(model, scale):
    """Before: 1e200 gave a LinAlgError traceback (max_sharpe) or NaN weights (inverse vol)."""
    r = orthogonal(VOLS, MEANS, names=["a", "b", "c"]) * scale
    with pytest.raises(ConfigError) as err:
        compute_weights(model, r)
    one_line_error(err, "column 'a'", "at row 0", "beyond ±1e+100", "fractions")


@pytest.mark.parametrize("model", ESTIMATED)
def test_large_but_representable_returns_give_the_same_weights(model):
    """Weights are scale-invariant; up to the bound the statistics stay finite."""
    r = orthogonal(VOLS, MEANS, names=["a", "b", "c"])
    np.testing.assert_allclose(compute_weights(model, r * 1e99).to_numpy(),
                               compute_weights(model, r).to_numpy(), atol=1e-9)


# --- every input of compute_weights ---------------------------------------------------------

def _r():
    return orthogonal(VOLS, MEANS, names=["a", "b", "c"])


BAD_INPUTS = [
    ("frame", lambda: _r().to_numpy(), {}, ["returns must be a pandas DataFrame"]),
    ("empty", lambda: pd.DataFrame(), {}, ["returns frame is empty"]),
    ("no rows", lambda: pd.DataFrame({"a": []}, dtype=float), {}, ["returns frame is empty"]),
    ("one row", lambda: _r().iloc[:1], {}, ["at least 2 rows"]),
    ("duplicate columns", lambda: _r().set_axis(["a", "b", "a"], axis=1), {}, ["duplicate asset columns", "'a'"]),
    ("NaN", lambda: _r().assign(b=lambda f: f["b"].where(f.index != 3)), {},
     ["NaN in returns column 'b' at row 3"]),
    ("inf", lambda: _r().assign(c=lambda f: f["c"].where(f.index != 5, -np.inf)), {},
     ["inf in returns column 'c' at row 5"]),
    ("bool column", lambda: _r().assign(d=True), {}, ["non-numeric returns", "'d'", "bool"]),
    ("text column", lambda: _r().assign(a=["x"] * 16), {}, ["non-numeric returns", "'a'"]),
    ("NA in nullable", lambda: _r().assign(a=pd.array([None] + [0.1] * 15, dtype="Float64")), {},
     ["NaN in returns column 'a' at row 0"]),
    ("cap zero", _r, {"max_single_asset_weight": 0.0}, ["max_single_asset_weight must be in (0, 1]"]),
    ("cap > 1", _r, {"max_single_asset_weight": 1.5}, ["max_single_asset_weight must be in (0, 1]"]),
    ("cap bool", _r, {"max_single_asset_weight": True}, ["max_single_asset_weight must be a number"]),
    ("cap text", _r, {"max_single_asset_weight": "0.5"}, ["max_single_asset_weight must be a number"]),
    ("cap infeasible", _r, {"max_single_asset_weight": 0.2}, ["infeasible for 3 asset(s)"]),
    ("corr text", _r, {"max_asset_correlation": "x"}, ["max_asset_correlation must be a number in [-1, 1]"]),
    ("corr bool", _r, {"max_asset_correlation": True}, ["max_asset_correlation must be a number"]),
    ("corr NaN", _r, {"max_asset_correlation": float("nan")}, ["max_asset_correlation must be in [-1, 1]"]),
    ("corr 2", _r, {"max_asset_correlation": 2}, ["max_asset_correlation must be in [-1, 1]"]),
    ("max_assets 0", _r, {"max_assets": 0}, ["max_assets must be an integer >= 1"]),
    ("max_assets float", _r, {"max_assets": 2.0}, ["max_assets must be an integer >= 1"]),
    ("max_assets bool", _r, {"max_assets": True}, ["max_assets must be an integer >= 1"]),
    ("ranking dict", _r, {"ranking": {"a": 1, "b": 2, "c": 3}}, ["ranking must be a pandas Series", "dict"]),
    ("ranking missing", _r, {"ranking": pd.Series({"a": 1.0, "b": 2.0})}, ["ranking has no value", "'c'"]),
    ("ranking NaN", _r, {"ranking": pd.Series({"a": 1.0, "b": np.nan, "c": 0.0})}, ["ranking is NaN", "'b'"]),
    ("ranking duplicate", _r, {"ranking": pd.Series([1.0, 2.0, 3.0, 4.0], index=["a", "b", "c", "a"])},
     ["ranking names asset(s) ['a'] more than once"]),
    ("ranking text", _r, {"ranking": pd.Series({"a": "x", "b": 1.0, "c": 0.0})},
     ["ranking for asset 'a' must be a number"]),
    ("scores inf", _r, {"scores": pd.Series({"a": np.inf, "b": 1.0, "c": 0.0})}, ["scores is NaN/inf", "'a'"]),
    ("periods text", _r, {"periods_per_year": "x"}, ["periods_per_year must be a number > 0"]),
    ("periods zero", _r, {"periods_per_year": 0}, ["periods_per_year must be > 0"]),
]


@pytest.mark.parametrize("model", ["equal_weight", "min_variance"])
@pytest.mark.parametrize("case,frame,kwargs,needles", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_are_one_line_config_errors(model, case, frame, kwargs, needles):
    with pytest.raises(ConfigError) as err:
        compute_weights(model, frame(), **kwargs)
    one_line_error(err, "allocation:", *needles)


def test_minus_inf_ranking_ranks_last_in_both_selection_paths():
    """-inf = "no score, rank last" (e.g. an asset whose optimisation Sharpe is undefined); the
    equal-weight path without an estimation window and compute_weights agree."""
    from raybt.allocation.estimator import WeightEstimator

    r = _r()
    ranking = (2.0, -np.inf, 1.0)
    w = compute_weights("min_variance", r, max_assets=2, ranking=pd.Series(ranking, index=list(r.columns)))
    assert w["b"] == 0.0 and w["a"] > 0 and w["c"] > 0
    est = WeightEstimator("equal_weight", max_assets=2, ranking=ranking)
    np.testing.assert_array_equal(est.initial(["a", "b", "c"], None).to_numpy(), [0.5, 0.0, 0.5])
    with pytest.raises(ConfigError, match="ranking is NaN"):
        WeightEstimator("equal_weight", max_assets=2, ranking=(1.0, np.nan, 0.0)).initial(["a", "b", "c"], None)


# --- the engine path -----------------------------------------------------------------------

def test_engine_min_variance_keeps_trading_sleeves_beside_an_idle_one():
    """A sleeve that never trades in the estimation window has zero-variance strategy returns.
    min_variance used to give it 100%, so the engine dropped every other sleeve and the
    portfolio held one idle asset. Now every sleeve keeps a positive weight."""
    from raybt.config.params import validate_params
    from raybt.config.universe import AssetConfig
    from raybt.data.synth import generate_universe
    from raybt.engine import PortfolioBacktester
    from raybt.config.portfolio import portfolio_config_from_dict

    universe = generate_universe(n_assets=3, n_bars=12 * 288, timeframe="5m", seed=3, calendar="24x7")
    base = {"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.0, "leverage": 10, "bb_period": 20}
    names = list(universe)
    assets = {}
    for i, name in enumerate(names):
        params = dict(base, entry_z=50.0 if i == 0 else 1.8)  # the first never trades
        assets[name] = (AssetConfig(name=name, data=None, timeframe="5m", params=validate_params(params)),
                        universe[name])
    doc = {"name": "mv", "initial_capital": 1_000_000, "rebalance": "none", "engine": {"chunk": "1D"},
           "allocation": {"model": "min_variance", "lookback": "4D"},
           "risk": {"max_portfolio_drawdown": 0.5, "cluster_correlation": None}}
    result = PortfolioBacktester(assets, portfolio_config_from_dict(doc, "test"), engine="local").run()
    assert list(result.weights.index) == names
    assert (result.weights > 0.05).all() and result.weights[names[0]] < 0.9
    assert len(result.trades) > 0  # the trading sleeves were simulated


def test_max_sharpe_splits_identical_assets_evenly():
    """Identical return columns tie for every split: the tangency search starts from equal weights (when
    feasible) and keeps them, instead of putting everything on one of the twins."""
    import numpy as np
    import pandas as pd

    from raybt.allocation.models import max_sharpe

    r = np.random.default_rng(1).normal(0.001, 0.01, 300)
    weights = max_sharpe(pd.DataFrame({"a": r, "b": r, "c": r}))
    np.testing.assert_allclose(weights.to_numpy(), [1 / 3] * 3, atol=1e-6)
