"""Tests of raybt.allocation: models against closed forms, constraints, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import hadamard

from raybt.allocation import MODELS, cap_weights, compute_weights, risk_contributions
from raybt.errors import ConfigError


def orthogonal_returns(vols, means=None, rows: int = 16, names=None) -> pd.DataFrame:
    """Columns with sample std exactly ``vols`` (ddof=1), sample correlation
    exactly 0 and the given means (orthogonal zero-sum ±1 Hadamard columns)."""
    k = len(vols)
    h = hadamard(rows)[:, 1 : k + 1].astype(float)  # zero-sum, mutually orthogonal
    x = h * np.sqrt((rows - 1) / rows) * np.asarray(vols, dtype=float)
    if means is not None:
        x = x + np.asarray(means, dtype=float)
    return pd.DataFrame(x, columns=names or [f"a{i}" for i in range(k)])


def random_returns(n_assets: int, seed: int, rows: int = 250, mix: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mixing = np.eye(n_assets) + mix * rng.normal(size=(n_assets, n_assets))
    x = rng.normal(size=(rows, n_assets)) @ mixing * 0.01 + 0.0005
    return pd.DataFrame(x, columns=[f"s{i}" for i in range(n_assets)])


def with_means(returns: pd.DataFrame, mu: np.ndarray) -> pd.DataFrame:
    """Same covariance, column means set to ``mu``."""
    return returns - returns.mean() + mu


# ---------------------------------------------------------------- fixtures check


def test_orthogonal_helper_is_exact():
    r = orthogonal_returns([1.0, 2.0, 3.0], means=[0.1, 0.0, -0.2])
    np.testing.assert_allclose(r.std(ddof=1), [1.0, 2.0, 3.0], rtol=1e-14)
    np.testing.assert_allclose(r.corr().to_numpy(), np.eye(3), atol=1e-14)
    np.testing.assert_allclose(r.mean(), [0.1, 0.0, -0.2], atol=1e-14)


# ---------------------------------------------------------------- models


def test_models_constant_and_order():
    assert MODELS == ("equal_weight", "inverse_volatility", "risk_parity",
                      "performance_weighted", "min_variance", "max_sharpe")


def test_equal_weight():
    w = compute_weights("equal_weight", random_returns(4, 0))
    np.testing.assert_allclose(w, 0.25, rtol=0, atol=1e-15)
    assert list(w.index) == ["s0", "s1", "s2", "s3"]


def test_inverse_volatility_two_uncorrelated():
    w = compute_weights("inverse_volatility", orthogonal_returns([1.0, 2.0]))
    np.testing.assert_allclose(w, [2 / 3, 1 / 3], atol=1e-12)


def test_inverse_volatility_zero_vol_takes_smallest_positive_vol():
    r = orthogonal_returns([1.0, 2.0])
    r["flat"] = 0.001
    w = compute_weights("inverse_volatility", r)
    np.testing.assert_allclose(w, np.array([1.0, 0.5, 1.0]) / 2.5, atol=1e-12)
    flat = pd.DataFrame({"a": [0.0, 0.0, 0.0], "b": [0.01, 0.01, 0.01]})
    np.testing.assert_allclose(compute_weights("inverse_volatility", flat), [0.5, 0.5])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_risk_parity_equal_risk_contributions(seed):
    r = random_returns(5, seed)
    w = compute_weights("risk_parity", r)
    rc = risk_contributions(w, r.cov())
    assert abs(rc.sum() - 1.0) < 1e-12
    np.testing.assert_allclose(rc, 0.2, rtol=0, atol=1e-6)
    assert (w > 0).all() and abs(w.sum() - 1.0) < 1e-12


def test_risk_parity_uncorrelated_equals_inverse_vol():
    r = orthogonal_returns([1.0, 2.0, 3.0, 0.5])
    rp = compute_weights("risk_parity", r)
    iv = compute_weights("inverse_volatility", r)
    np.testing.assert_allclose(rp, iv, atol=1e-9)


def test_risk_parity_degenerate_covariance_still_valid():
    r = pd.DataFrame(np.random.default_rng(0).normal(size=(3, 6)) * 0.01)  # rank-deficient Σ
    w = compute_weights("risk_parity", r)
    assert (w > 0).all() and abs(w.sum() - 1.0) < 1e-12


def test_min_variance_two_uncorrelated():
    w = compute_weights("min_variance", orthogonal_returns([1.0, 2.0]))
    np.testing.assert_allclose(w, [0.8, 0.2], atol=1e-9)


def test_min_variance_matches_closed_form():
    r = random_returns(4, 3, mix=0.2)
    cov = r.cov().to_numpy()
    closed = np.linalg.solve(cov, np.ones(4))
    closed /= closed.sum()
    assert (closed > 0).all()  # precondition: long-only constraint inactive
    np.testing.assert_allclose(compute_weights("min_variance", r), closed, atol=1e-9)


def test_min_variance_respects_cap_in_optimiser():
    r = orthogonal_returns([1.0, 2.0, 4.0])
    w = compute_weights("min_variance", r, max_single_asset_weight=0.5)
    # 1/σ² ∝ 16:4:1 -> first asset capped at 0.5, the rest still ∝ 1/σ² (4:1)
    np.testing.assert_allclose(w, [0.5, 0.4, 0.1], atol=1e-9)


def test_max_sharpe_matches_closed_form():
    r = random_returns(4, 4)
    cov = r.cov().to_numpy()
    target = np.array([0.4, 0.3, 0.2, 0.1])
    r = with_means(r, cov @ target * 5.0)  # Σ⁻¹μ ∝ target, all positive
    closed = np.linalg.solve(r.cov().to_numpy(), r.mean().to_numpy())
    closed /= closed.sum()
    assert (closed > 0).all()
    np.testing.assert_allclose(closed, target, atol=1e-9)
    np.testing.assert_allclose(compute_weights("max_sharpe", r), closed, atol=1e-8)


def test_max_sharpe_is_optimal_under_cap():
    r = random_returns(5, 5)
    w = compute_weights("max_sharpe", r, max_single_asset_weight=0.3).to_numpy()
    mu, cov = r.mean().to_numpy(), r.cov().to_numpy()
    sharpe = mu @ w / np.sqrt(w @ cov @ w)
    assert w.max() <= 0.3 + 1e-12 and abs(w.sum() - 1) < 1e-12
    rng = np.random.default_rng(0)
    for _ in range(500):  # no feasible perturbation does better
        v = np.clip(w + rng.normal(0, 0.02, 5), 0, None)
        v /= v.sum()
        if v.max() <= 0.3:
            assert mu @ v / np.sqrt(v @ cov @ v) <= sharpe + 1e-10


def test_max_sharpe_all_negative_means_falls_back_to_min_variance():
    r = orthogonal_returns([1.0, 2.0], means=[-0.1, -0.2])
    np.testing.assert_allclose(compute_weights("max_sharpe", r), [0.8, 0.2], atol=1e-9)


def test_performance_weighted_proportional_to_positive_sharpe():
    r = orthogonal_returns([1.0, 1.0, 2.0], means=[0.2, 0.1, -0.1], names=["a", "b", "c"])
    w = compute_weights("performance_weighted", r)
    np.testing.assert_allclose(w, [2 / 3, 1 / 3, 0.0], atol=1e-12)


def test_performance_weighted_with_scores():
    r = orthogonal_returns([1.0, 1.0, 2.0], means=[0.2, 0.1, -0.1], names=["a", "b", "c"])
    scores = pd.Series({"c": 0.5, "b": -1.0, "a": 1.5, "extra": 9.0})
    w = compute_weights("performance_weighted", r, scores=scores)
    np.testing.assert_allclose(w, [0.75, 0.0, 0.25], atol=1e-12)
    assert list(w.index) == ["a", "b", "c"]


def test_performance_weighted_all_nonpositive_is_equal_weight():
    r = orthogonal_returns([1.0, 1.0], means=[-0.2, -0.1])
    np.testing.assert_allclose(compute_weights("performance_weighted", r), [0.5, 0.5])


def test_performance_weighted_missing_score_raises():
    r = orthogonal_returns([1.0, 1.0], names=["a", "b"])
    with pytest.raises(ConfigError, match="'b'"):
        compute_weights("performance_weighted", r, scores=pd.Series({"a": 1.0}))


@pytest.mark.parametrize("model", MODELS)
def test_every_model_valid_weights_with_cap(model):
    r = random_returns(6, 7)
    w = compute_weights(model, r, max_single_asset_weight=0.25)
    assert list(w.index) == list(r.columns)
    assert (w >= 0).all() and (w <= 0.25 + 1e-12).all()
    assert abs(w.sum() - 1.0) < 1e-12


# ---------------------------------------------------------------- risk contributions


def test_risk_contributions_sum_to_one():
    r = random_returns(3, 8)
    w = pd.Series([0.5, 0.3, 0.2], index=r.columns)
    rc = risk_contributions(w, r.cov())
    assert abs(rc.sum() - 1.0) < 1e-12
    cov = r.cov().to_numpy()
    expected = w.to_numpy() * (cov @ w.to_numpy()) / (w.to_numpy() @ cov @ w.to_numpy())
    np.testing.assert_allclose(rc, expected, rtol=1e-12)


# ---------------------------------------------------------------- cap


def test_cap_weights_water_filling():
    w = cap_weights(pd.Series([0.6, 0.3, 0.1], index=["x", "y", "z"]), 0.5)
    np.testing.assert_allclose(w, [0.5, 0.375, 0.125], atol=1e-15)
    # second round: y exceeds the cap after the first redistribution
    w = cap_weights(pd.Series([0.5, 0.4, 0.05, 0.05]), 0.3)
    np.testing.assert_allclose(w, [0.3, 0.3, 0.2, 0.2], atol=1e-15)


@settings(max_examples=300, deadline=None, database=None)
@given(
    raw=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=12).filter(
        lambda v: sum(v) > 1e-6
    ),
    frac=st.floats(min_value=0.0, max_value=1.0),
)
def test_cap_weights_property(raw, frac):
    n = len(raw)
    cap = 1.0 / n + frac * (1.0 - 1.0 / n)  # feasible: cap in [1/n, 1]
    base = pd.Series(raw) / sum(raw)
    w = cap_weights(pd.Series(raw), cap)
    assert abs(w.sum() - 1.0) < 1e-12
    assert (w >= 0).all() and (w <= cap + 1e-12).all()
    # assets below the cap keep their relative proportions (pro-rata)
    free = (w < cap - 1e-9) & (base > 1e-9)
    if free.sum() >= 2:
        ratio = w[free] / base[free]
        assert ratio.max() - ratio.min() < 1e-9 * ratio.max()
    # weights already within the cap are unchanged
    if (base <= cap).all():
        np.testing.assert_allclose(w, base, atol=1e-12)


def test_infeasible_cap_raises():
    with pytest.raises(ConfigError, match="infeasible"):
        cap_weights(pd.Series([0.5, 0.5, 0.0]), 0.3)
    with pytest.raises(ConfigError, match="infeasible"):
        compute_weights("equal_weight", random_returns(3, 0), max_single_asset_weight=0.3)


def test_infeasible_cap_after_filtering_raises():
    r = random_returns(4, 0)
    with pytest.raises(ConfigError, match="infeasible"):
        compute_weights("equal_weight", r, max_single_asset_weight=0.3, max_assets=2)


# ---------------------------------------------------------------- selection


def correlated_frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    a = rng.normal(0, 0.01, 300)
    return pd.DataFrame({
        "a": a,
        "b": a + rng.normal(0, 0.001, 300),  # corr(a, b) ~ 0.995
        "c": rng.normal(0, 0.01, 300),
    })


def test_correlation_filter_keeps_better_ranked():
    r = correlated_frame()
    assert r.corr().loc["a", "b"] > 0.9 and abs(r.corr().loc["a", "c"]) < 0.3
    w = compute_weights("equal_weight", r, max_asset_correlation=0.9,
                        ranking=pd.Series({"a": 1.0, "b": 2.0, "c": 0.0}))
    np.testing.assert_allclose(w, [0.0, 0.5, 0.5])
    w = compute_weights("equal_weight", r, max_asset_correlation=0.9,
                        ranking=pd.Series({"a": 2.0, "b": 1.0, "c": 0.0}))
    np.testing.assert_allclose(w, [0.5, 0.0, 0.5])


def test_correlation_filter_default_ranking_is_sharpe():
    r = correlated_frame()
    r["b"] = r["b"] + 0.002  # b has the higher Sharpe
    w = compute_weights("equal_weight", r, max_asset_correlation=0.9)
    np.testing.assert_allclose(w, [0.0, 0.5, 0.5])


def test_max_assets_keeps_top_by_ranking():
    r = random_returns(4, 1)
    ranking = pd.Series({"s0": 1.0, "s1": 3.0, "s2": 2.0, "s3": 0.0})
    w = compute_weights("equal_weight", r, max_assets=2, ranking=ranking)
    np.testing.assert_allclose(w, [0.0, 0.5, 0.5, 0.0])
    assert list(w.index) == list(r.columns)


def test_max_assets_default_ranking_by_sharpe():
    r = orthogonal_returns([1.0, 1.0, 1.0], means=[0.1, 0.3, 0.2])
    w = compute_weights("inverse_volatility", r, max_assets=1)
    np.testing.assert_allclose(w, [0.0, 1.0, 0.0])


# ---------------------------------------------------------------- errors


def test_unknown_model_suggests_closest():
    with pytest.raises(ConfigError, match="risk_parity") as info:
        compute_weights("risk_party", random_returns(2, 0))
    assert "risk_party" in str(info.value)


def test_nan_names_column():
    r = random_returns(3, 0)
    r.loc[5, "s2"] = np.nan
    with pytest.raises(ConfigError, match="s2"):
        compute_weights("equal_weight", r)


def test_inf_raises():
    r = random_returns(2, 0)
    r.loc[0, "s1"] = np.inf
    with pytest.raises(ConfigError, match="s1"):
        compute_weights("equal_weight", r)


@pytest.mark.parametrize("frame", [pd.DataFrame(), pd.DataFrame({"a": []}, dtype=float),
                                   pd.DataFrame({"a": [0.01], "b": [0.02]})])
def test_empty_or_too_short_raises(frame):
    with pytest.raises(ConfigError):
        compute_weights("equal_weight", frame)


def test_constant_columns_fine_for_equal_weight():
    r = pd.DataFrame({"a": [0.01, 0.01, 0.01], "b": [0.0, 0.0, 0.0]})
    np.testing.assert_allclose(compute_weights("equal_weight", r), [0.5, 0.5])


@pytest.mark.parametrize("kwargs", [{"max_assets": 0}, {"max_asset_correlation": 1.5},
                                    {"max_single_asset_weight": 0.0},
                                    {"ranking": pd.Series({"s0": 1.0})}])
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ConfigError):
        compute_weights("equal_weight", random_returns(2, 0), **kwargs)
