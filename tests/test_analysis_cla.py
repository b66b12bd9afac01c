"""The critical line algorithm, the shared moments and the scaled analysis passes."""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pandas as pd
import pytest

import raybt.analysis as A
from raybt.analysis import attribution as attribution_module
from raybt.analysis import moments as moments_module
from raybt.analysis.cla import critical_line, interpolate_frontier
from raybt.analysis.moments import return_moments
from raybt.phases import PhaseTimer


def random_problem(seed: int, n: int, T: int = 400):
    """Scaled (μ, Σ) of n correlated return series (Σ positive definite)."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(T, 2)) @ rng.normal(size=(2, n))
    r = f + rng.normal(size=(T, n)) * rng.uniform(0.5, 2.0, n) + rng.normal(0, 0.05, n)
    mom = return_moments(r)
    scale = np.diag(mom.cov).mean()
    return mom.mean / np.abs(mom.mean).max(), mom.cov / scale


def kkt_gap(w, mu, cov, lam, cap, tol=1e-9):
    """Largest violation of the KKT conditions of min ½wᵀΣw - λμᵀw on the capped simplex."""
    g = cov @ w - lam * mu
    free = (w > tol) & (w < cap - tol)
    gamma = g[free].mean() if free.any() else 0.5 * (g[w <= tol].min(initial=np.inf)
                                                       + g[w >= cap - tol].max(initial=-np.inf))
    gap = [np.abs(g[free] - gamma).max(initial=0.0),
           np.maximum(gamma - g[w <= tol], 0).max(initial=0.0),   # at 0: g >= γ
           np.maximum(g[w >= cap - tol] - gamma, 0).max(initial=0.0)]  # at the cap: g <= γ
    return max(gap)


@pytest.mark.parametrize("seed,n,cap", [(s, n, c) for s in range(3) for n in (2, 5, 17, 40)
                                        for c in (1.0, 0.35, 0.1) if n * c >= 1])
def test_turning_points_are_optimal(seed, n, cap):
    mu, cov = random_problem(seed, n)
    line = critical_line(mu, cov, cap)
    W, lams = line.weights, line.lambdas
    assert math.isinf(lams[0]) and lams[-1] == 0.0
    assert (np.diff(lams[1:]) <= 0).all()
    assert (W >= -1e-12).all() and (W <= cap + 1e-12).all()
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-12)
    for w, lam in zip(W[1:], lams[1:]):
        assert kkt_gap(w, mu, cov, lam, cap) < 1e-9
    # the first point has the highest mean a capped portfolio can have
    best = np.sort(mu)[::-1]
    k = int(1 // cap)
    top = best[:k].sum() * cap + (1 - k * cap) * (best[k] if k < n else 0.0)
    assert W[0] @ mu == pytest.approx(top, rel=1e-12)
    assert (np.diff(W @ mu) <= 1e-12).all()  # means fall along the line


def brute_force_frontier(mu, cov, cap, target):
    """Minimum variance at mean ``target`` by trying every (lower, free, cap) split."""
    n = len(mu)
    best = (math.inf, None)
    for status in itertools.product((0, 1, 2), repeat=n):
        status = np.array(status)
        free = np.flatnonzero(status == 1)
        fixed = np.where(status == 2, cap, 0.0)
        k = len(free)
        # [Σ_FF 1 μ_F; 1ᵀ 0 0; μ_Fᵀ 0 0] [w; -γ; -δ] = [-Σ_F,fixed w_fixed; 1 - Σ fixed; t - μᵀfixed]
        K = np.zeros((k + 2, k + 2))
        K[:k, :k] = cov[np.ix_(free, free)]
        K[:k, k] = K[k, :k] = 1.0
        K[:k, k + 1] = K[k + 1, :k] = mu[free]
        rhs = np.concatenate([-cov[free] @ fixed, [1 - fixed.sum(), target - mu @ fixed]])
        try:
            sol = np.linalg.solve(K, rhs)
        except np.linalg.LinAlgError:
            continue
        w = fixed.copy()
        w[free] = sol[:k]
        if (w < -1e-12).any() or (w > cap + 1e-12).any() or abs(w.sum() - 1) > 1e-9 \
                or abs(mu @ w - target) > 1e-9:
            continue
        var = w @ cov @ w
        if var < best[0]:
            best = (var, w)
    return best


@pytest.mark.parametrize("seed,n,cap", [(0, 3, 1.0), (1, 4, 0.4), (2, 5, 1.0), (3, 5, 0.3), (4, 6, 0.25)])
def test_interpolated_points_are_the_exact_optimum(seed, n, cap):
    mu, cov = random_problem(seed, n)
    line = critical_line(mu, cov, cap)
    m = line.weights @ mu
    targets = np.linspace(m[-1], m[0], 9)
    W = interpolate_frontier(line, mu, targets)
    for t, w in zip(targets, W):
        var, w_bf = brute_force_frontier(mu, cov, cap, t)
        assert w @ mu == pytest.approx(t, rel=1e-12, abs=1e-14)
        assert w @ cov @ w == pytest.approx(var, rel=1e-10)
        np.testing.assert_allclose(w, w_bf, atol=1e-9)


def returns_frame(seed=0, n=5, T=600, **kinds):
    rng = np.random.default_rng(seed)
    r = rng.normal(rng.normal(1e-4, 1e-4, n), rng.uniform(1e-3, 3e-3, n), (T, n))
    return pd.DataFrame(r, columns=[f"S{i}" for i in range(n)])


def test_single_asset_and_fully_capped_frontiers():
    r = returns_frame(n=1)
    f = A.efficient_frontier(r, n_points=5)
    assert (f["S0"] == 1.0).all() and len(f) == 5
    assert f["volatility"].iloc[0] == pytest.approx(r["S0"].std(ddof=1), rel=1e-12)
    r4 = returns_frame(n=4)
    f = A.efficient_frontier(r4, n_points=4, max_weight=0.25)  # only equal weights are feasible
    np.testing.assert_allclose(f[list(r4.columns)].to_numpy(), 0.25, atol=1e-15)
    with pytest.raises(ValueError):
        A.efficient_frontier(r4, max_weight=0.2)
    with pytest.raises(ValueError):
        A.efficient_frontier(r4.iloc[:1])


def test_duplicates_are_split_equally_and_change_nothing_else():
    r = returns_frame(seed=3, n=4)
    f = A.efficient_frontier(r, n_points=10)
    r2 = r.assign(S4=r["S2"], S5=r["S2"])  # S2 three times
    f2 = A.efficient_frontier(r2, n_points=10)
    np.testing.assert_allclose(f2["volatility"], f["volatility"], rtol=1e-9)
    np.testing.assert_allclose(f2["return"], f["return"], rtol=1e-9)
    np.testing.assert_allclose(f2["S2"], f["S2"] / 3, atol=1e-12)
    np.testing.assert_allclose(f2["S4"], f2["S2"], atol=0)
    # with a cap the three copies may hold three caps between them
    fc = A.efficient_frontier(r2, n_points=10, max_weight=0.3)
    assert fc[["S2", "S4", "S5"]].max().max() <= 0.3 + 1e-15
    assert fc.attrs["ridge"] == 0.0


def test_a_riskless_sleeve_takes_the_minimum_variance_portfolio():
    r = returns_frame(seed=4, n=4)
    r["S1"] = 0.0  # never traded
    mv = A.min_variance_weights(r)
    assert mv["S1"] == 1.0
    f = A.efficient_frontier(r, n_points=6)
    assert f["volatility"].iloc[0] == 0.0 and f["return"].iloc[0] == 0.0
    capped = A.min_variance_weights(r, max_weight=0.5)
    assert capped["S1"] == pytest.approx(0.5)
    assert capped.sum() == pytest.approx(1.0, abs=1e-15)


def test_equal_means_give_one_point():
    r = returns_frame(seed=5, n=3)
    r = r - r.mean() + 2e-4  # every mean 2e-4 (to rounding)
    f = A.efficient_frontier(r, n_points=5)
    mv = A.min_variance_weights(r)
    for i in range(5):
        np.testing.assert_allclose(f[list(r.columns)].iloc[i].to_numpy(), mv.to_numpy(), atol=1e-12)


def test_fewer_rows_than_assets_still_gives_a_feasible_frontier():
    r = returns_frame(seed=6, n=12, T=5)
    for cap in (1.0, 0.2):
        f = A.efficient_frontier(r, n_points=8, max_weight=cap)
        W = f.iloc[:, 2:].to_numpy()
        assert (W >= 0).all() and (W <= cap).all()
        np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-12)
        assert (np.diff(f["return"]) >= 0).all()


def test_large_frontier_points_are_optimal():
    mu, cov = random_problem(7, 150, T=2000)
    line = critical_line(mu, cov, 0.05)
    assert 100 <= line.steps < 600
    for w, lam in zip(line.weights[1::25], line.lambdas[1::25]):
        assert kkt_gap(w, mu, cov, lam, 0.05) < 1e-8


# ------------------------------------------------------------------ moments

def test_moments_skip_non_finite_rows_across_blocks(monkeypatch):
    monkeypatch.setattr(moments_module, "_BLOCK_VALUES", 1)  # 1024-row blocks
    rng = np.random.default_rng(1)
    R = rng.normal(0, 1e-3, (5000, 4))
    R[[3, 1500, 4999], 1] = np.nan
    R[2048, 2] = np.inf
    R[:, 3] = 0.0
    mom = return_moments(pd.DataFrame(R, columns=list("abcd")))
    clean = R[np.isfinite(R).all(axis=1)]
    assert mom.n_obs == len(clean) == 4996 and not mom.all_clean
    np.testing.assert_allclose(mom.mean, clean.mean(axis=0), rtol=1e-13, atol=1e-19)
    np.testing.assert_allclose(mom.cov, np.cov(clean, rowvar=False), rtol=1e-12, atol=1e-22)
    assert mom.constant.tolist() == [False, False, False, True]
    assert (mom.cov[3] == 0).all() and (mom.cov[:, 3] == 0).all()
    corr = A.correlation_matrix(pd.DataFrame(R, columns=list("abcd")))
    ref = pd.DataFrame(R, columns=list("abcd")).replace([np.inf, -np.inf], np.nan).dropna().corr()
    pd.testing.assert_frame_equal(corr, ref, check_exact=False, rtol=1e-12, atol=1e-15)


def test_moments_of_too_few_rows_are_nan():
    mom = return_moments(np.array([[0.01, np.nan], [0.02, 0.01]]))
    assert mom.n_obs == 1 and np.isnan(mom.cov).all()
    assert np.isnan(A.correlation_matrix(pd.DataFrame([[0.01, 0.02]], columns=["a", "b"]))).all().all()


# ------------------------------------------------- the run analysis at any chunking

def small_run(seed=0, n=6, T=900):
    rng = np.random.default_rng(seed)
    names = [f"X{i}" for i in range(n)]
    idx = pd.date_range("2024-03-01", periods=T, freq="5min", tz="UTC", name="timestamp")
    r = np.where(rng.random((T - 1, n)) < 0.5, rng.normal(1e-4, 2e-3, (T - 1, n)), 0.0)
    flow = np.zeros((T, n))
    rows = []
    for k in (200, 500, 800):
        a = rng.normal(0, 30, n)
        a -= a.mean()
        flow[k] = a
        rows += [{"chunk_start": str(idx[k]), "asset": x, "capital_adjustment": v}
                 for x, v in zip(names, a)]
    vals = np.empty((T, n))
    vals[0] = 1000.0
    for t in range(1, T):
        vals[t] = (vals[t - 1] + flow[t]) * (1 + r[t - 1])
    eq = pd.DataFrame(vals, index=idx, columns=names)
    eq.insert(0, "equity", eq.sum(axis=1))
    m = 400
    trades = pd.DataFrame({"asset": rng.choice(names + ["ZZ"], m), "pnl": rng.normal(0, 1, m),
                           "commission": 0.1, "exit_reason": rng.choice(["signal", "stop"], m),
                           "entry_time": idx[rng.integers(0, T - 5, m)]})
    trades["exit_time"] = trades["entry_time"] + pd.Timedelta(minutes=10)
    return eq, trades, pd.DataFrame(rows)


def _drop_frames(res):
    return {k: v for k, v in res.items() if k != "frames"}


def test_column_chunks_and_block_layout_do_not_change_the_result(monkeypatch):
    eq, trades, mult = small_run()
    base = A.analyse_run(eq, trades, multipliers=mult, n_frontier=7)
    split = pd.read_csv(io.StringIO(eq.to_csv()), index_col="timestamp", parse_dates=True)
    pd.testing.assert_frame_equal(split, eq, check_exact=True, check_freq=False)
    assert len(split._mgr.blocks) > 1
    monkeypatch.setattr(attribution_module, "_CHUNK_VALUES", 1)  # one column per chunk
    chunked = A.analyse_run(split, trades, multipliers=mult, n_frontier=7)
    a, b = _drop_frames(chunked), _drop_frames(base)
    assert a.keys() == b.keys()
    for key in ("pnl_attribution", "average_weights", "risk_attribution"):
        assert a[key] == pytest.approx(b[key], rel=1e-13)
    for name, point in b["points"].items():
        assert a["points"][name] == pytest.approx(point, rel=1e-13)
    for asset, row in b["per_asset"].items():
        assert a["per_asset"][asset] == pytest.approx(row, rel=1e-13, nan_ok=True)
    pd.testing.assert_frame_equal(chunked["frames"]["returns"], base["frames"]["returns"],
                                  check_exact=True, check_freq=False)
    pd.testing.assert_frame_equal(chunked["frames"]["asset_table"], base["frames"]["asset_table"],
                                  check_exact=False, rtol=1e-13)


def test_trade_counts_from_a_categorical_column():
    eq, trades, mult = small_run(seed=2)
    cat = trades.assign(asset=trades["asset"].astype("category"))
    t1 = A.asset_table(eq, trades)
    t2 = A.asset_table(eq, cat)
    pd.testing.assert_frame_equal(t1, t2)
    for a in ("X0", "X3"):
        sub = trades[trades["asset"] == a]
        assert t1.loc[a, "n_trades"] == len(sub)
        assert t1.loc[a, "win_rate"] == (sub["pnl"] > 0).mean()


def test_analysis_steps_are_timed(tmp_path):
    eq, trades, mult = small_run(seed=3)
    timer = PhaseTimer()
    res = A.analyse_run(eq, trades, multipliers=mult, timer=timer)
    steps = ["returns", "covariance", "attribution", "risk_attribution", "asset_stats", "trades",
             "asset_table", "correlation", "diversification", "portfolio", "frontier",
             # the tear sheet (issue 15)
             "monthly_returns", "drawdowns", "breaker", "trade_columns", "trade_analysis", "costs",
             "exposure", "turnover"]
    assert list(timer.seconds) == [f"analysis.{s}" for s in steps]
    assert all(v >= 0 for v in timer.seconds.values())
    t2 = PhaseTimer()
    A.write_portfolio_summary(tmp_path / "s.txt", eq, trades, multipliers=mult, analysis=res, timer=t2)
    assert list(t2.seconds) == ["analysis.summary"]  # nothing recomputed
    t3 = PhaseTimer()
    text = A.portfolio_summary_text(eq, trades, multipliers=mult, timer=t3)
    assert "analysis.frontier" not in t3.seconds and "analysis.covariance" in t3.seconds
    assert "analysis.monthly_returns" not in t3.seconds  # the summary needs no tear sheet
    assert text == (tmp_path / "s.txt").read_text(encoding="utf-8")


def test_json_of_a_matrix_with_nan_rows():
    eq, trades, mult = small_run(seed=4)
    eq["X2"] = 1000.0  # never traded: NaN correlations
    out = A.analysis_to_json(A.analyse_run(eq, trades, n_frontier=3))
    k = out["assets"].index("X2")
    assert out["correlation"]["matrix"][k] == [None] * len(out["assets"])
    assert out["correlation"]["matrix"][0][k] is None
    assert out["correlation"]["matrix"][0][0] == 1.0
    assert out["asset_points"]["X2"] == [0.0, 0.0]


def test_two_bars_and_a_single_sleeve():
    eq, trades, mult = small_run(seed=5, n=3, T=900)
    res = A.analyse_run(eq.iloc[:2], None, n_frontier=4)  # one return per sleeve
    assert res["frames"]["frontier"] is None and res["frontier"] == {"volatility": [], "return": []}
    assert np.isnan(res["frames"]["correlation"].to_numpy()).all()
    assert res["pnl_attribution"]["X0"] == pytest.approx(eq["X0"].iloc[1] - eq["X0"].iloc[0])
    one = A.analyse_run(eq[["equity", "X1"]], trades, n_frontier=4)
    assert one["frames"]["frontier"]["X1"].tolist() == [1.0] * 4
    assert one["diversification"]["diversification_ratio"] == 1.0
    assert one["per_asset"]["X1"]["n_trades"] == int((trades["asset"] == "X1").sum())
