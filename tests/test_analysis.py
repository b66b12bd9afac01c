"""Tests of raybt.analysis on small synthetic equity frames."""

from __future__ import annotations

import json
import math

import empyrical
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raybt import metrics as M
from raybt.analysis import (
    analyse_run,
    analysis_to_json,
    asset_table,
    capital_flows,
    correlation_matrix,
    diversification_benefits,
    diversification_ratio,
    efficient_frontier,
    equity_weights,
    frontier_volatility_at,
    min_variance_weights,
    pnl_attribution,
    portfolio_point,
    portfolio_summary_text,
    return_contribution,
    risk_attribution,
    sleeve_returns,
    write_portfolio_summary,
)

REL = 1e-9


def make_equity(returns: np.ndarray, start: list[float] | float = 1000.0,
                names: list[str] | None = None, freq: str = "5min") -> pd.DataFrame:
    """A portfolio_equity frame from per-bar sleeve returns (T-1 x n)."""
    returns = np.atleast_2d(np.asarray(returns, dtype=float))
    n = returns.shape[1]
    names = names or [f"A{i}" for i in range(n)]
    start = np.broadcast_to(np.asarray(start, dtype=float), (n,))
    values = start * np.vstack([np.ones(n), np.cumprod(1.0 + returns, axis=0)])
    idx = pd.date_range("2024-01-01", periods=len(values), freq=freq, tz="UTC", name="timestamp")
    sleeves = pd.DataFrame(values, index=idx, columns=names)
    eq = sleeves.sum(axis=1)
    out = pd.DataFrame({"equity": eq, "drawdown": M.drawdown_series(eq)}, index=idx)
    return pd.concat([out, sleeves], axis=1)


def random_equity(seed=0, n_bars=500, n_assets=3, freq="5min"):
    rng = np.random.default_rng(seed)
    vols = np.linspace(0.002, 0.004, n_assets)
    means = np.linspace(-0.0001, 0.0003, n_assets)
    r = rng.normal(means, vols, size=(n_bars - 1, n_assets))
    return make_equity(r, start=[1000.0 * (i + 1) for i in range(n_assets)], freq=freq)


def make_trades(assets, n_per=4, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    for a in assets:
        for k in range(n_per):
            rows.append({"asset": a, "side": "long", "units": 1.0,
                         "entry_time": t0 + pd.Timedelta(minutes=5 * k),
                         "entry_price": 1.0, "exit_time": t0 + pd.Timedelta(minutes=5 * k + 5),
                         "exit_price": 1.0, "exit_reason": "signal",
                         "pnl": float(rng.normal()), "commission": 0.1})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ attribution

def test_sleeve_returns_shape_and_values():
    eq = random_equity()
    r = sleeve_returns(eq, ["A0", "A1", "A2"])
    assert r.shape == (len(eq) - 1, 3)
    assert r.index[0] == eq.index[1]
    np.testing.assert_allclose(r["A1"].to_numpy(), M.returns_from_equity(eq["A1"]), rtol=REL)


def test_pnl_attribution_sums_to_portfolio_pnl():
    eq = random_equity(seed=3, n_assets=4)
    assets = ["A0", "A1", "A2", "A3"]
    pnl = pnl_attribution(eq, assets)
    port_pnl = eq["equity"].iloc[-1] - eq["equity"].iloc[0]
    assert pnl.sum() == pytest.approx(port_pnl, rel=1e-6)
    np.testing.assert_allclose(pnl.to_numpy(), (eq[assets].iloc[-1] - eq[assets].iloc[0]).to_numpy())
    contrib = return_contribution(eq, assets)
    assert contrib.sum() == pytest.approx(eq["equity"].iloc[-1] / eq["equity"].iloc[0] - 1, rel=1e-6)


def test_capital_flows_excluded_from_pnl_and_returns():
    # two sleeves with known per-bar returns; at bar k 100 moves from A to B
    rng = np.random.default_rng(5)
    r = rng.normal(0, 0.01, size=(20, 2))
    k, amount = 8, 100.0
    vals = np.empty((21, 2))
    vals[0] = [1000.0, 1000.0]
    flow = np.zeros((21, 2))
    flow[k] = [-amount, amount]
    for t in range(1, 21):
        vals[t] = (vals[t - 1] + flow[t]) * (1 + r[t - 1])  # flow at the start of the bar
    idx = pd.date_range("2024-01-01", periods=21, freq="5min", tz="UTC", name="timestamp")
    eq = pd.DataFrame(vals, index=idx, columns=["A", "B"])
    eq.insert(0, "equity", eq.sum(axis=1))
    mult = pd.DataFrame({"chunk_start": [str(idx[k])] * 2 + [str(idx[0])] * 2,
                         "asset": ["A", "B", "A", "B"],
                         "capital_adjustment": [-amount, amount, 0.0, 0.0]})
    flows = capital_flows(mult, eq.index, ["A", "B"])
    assert flows.loc[idx[k], "A"] == -amount and flows.to_numpy().sum() == 0
    np.testing.assert_allclose(sleeve_returns(eq, ["A", "B"], flows).to_numpy(), r, rtol=1e-9)
    pnl = pnl_attribution(eq, ["A", "B"], flows)
    assert pnl.sum() == pytest.approx(eq["equity"].iloc[-1] - eq["equity"].iloc[0], rel=1e-9)
    naive = pnl_attribution(eq, ["A", "B"])
    np.testing.assert_allclose((naive - pnl).to_numpy(), [-amount, amount])
    res = analyse_run(eq, multipliers=mult, n_frontier=5)
    assert res["flows_adjusted"]
    assert res["pnl_attribution"]["A"] == pytest.approx(pnl["A"])
    assert res["per_asset"]["A"]["return"] == pytest.approx(np.prod(1 + r[:, 0]) - 1, rel=1e-9)


def test_equity_weights_sum_to_one():
    eq = random_equity()
    w = equity_weights(eq, ["A0", "A1", "A2"])
    assert w.sum() == pytest.approx(1.0)
    assert list(w.index) == ["A0", "A1", "A2"]
    assert w["A2"] > w["A1"] > w["A0"]  # starts 3000 > 2000 > 1000


def test_risk_attribution_closed_form_two_assets():
    eq = random_equity(seed=7, n_assets=2)
    r = sleeve_returns(eq, ["A0", "A1"])
    w = pd.Series({"A0": 0.3, "A1": 0.7})
    share = risk_attribution(r, w)
    c = r.cov(ddof=1).to_numpy()
    v1, v2, c12 = c[0, 0], c[1, 1], c[0, 1]
    var_p = 0.09 * v1 + 0.49 * v2 + 2 * 0.21 * c12
    assert share["A0"] == pytest.approx((0.09 * v1 + 0.21 * c12) / var_p, rel=REL)
    assert share["A1"] == pytest.approx((0.49 * v2 + 0.21 * c12) / var_p, rel=REL)
    assert share.sum() == pytest.approx(1.0, rel=1e-12)
    # scale invariance of the weights; default weights = average equity share
    assert np.allclose(risk_attribution(r, w * 5), share)
    np.testing.assert_allclose(risk_attribution(r, equity=eq).to_numpy(),
                               risk_attribution(r, equity_weights(eq, ["A0", "A1"])).to_numpy())


def test_risk_attribution_hedge_has_negative_share():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.01, 400)
    hedge = -0.3 * x + rng.normal(0, 0.001, 400)
    r = pd.DataFrame({"core": x, "hedge": hedge})
    share = risk_attribution(r, pd.Series({"core": 0.5, "hedge": 0.5}))
    assert share["hedge"] < 0 < 1 < share["core"]
    assert share.sum() == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3), st.integers(0, 10_000))
def test_risk_attribution_sums_to_one_property(weights, seed):
    rng = np.random.default_rng(seed)
    r = pd.DataFrame(rng.normal(0, 0.01, size=(60, 3)), columns=list("xyz"))
    share = risk_attribution(r, np.array(weights))
    assert share.sum() == pytest.approx(1.0, rel=1e-9)


# --------------------------------------------------------------- diversification

def test_diversification_ratio_single_asset_is_one():
    eq = random_equity(n_assets=1)
    r = sleeve_returns(eq, ["A0"])
    assert diversification_ratio(r) == 1.0
    assert diversification_ratio(r, pd.Series({"A0": 3.0})) == 1.0
    # perfectly correlated assets too
    r2 = pd.DataFrame({"a": r["A0"], "b": 2 * r["A0"]})
    assert diversification_ratio(r2, [0.5, 0.5]) == pytest.approx(1.0, rel=1e-12)


def test_diversification_ratio_uncorrelated_equal_vol_is_sqrt2():
    # orthogonal, zero-mean, equal-variance patterns: sample correlation exactly 0
    x = np.tile([1.0, -1.0, 1.0, -1.0], 50) * 0.01
    y = np.tile([1.0, 1.0, -1.0, -1.0], 50) * 0.01
    r = pd.DataFrame({"x": x, "y": y})
    assert correlation_matrix(r).loc["x", "y"] == pytest.approx(0.0, abs=1e-15)
    assert diversification_ratio(r, [0.5, 0.5]) == pytest.approx(math.sqrt(2), rel=1e-12)
    assert diversification_ratio(r) == pytest.approx(math.sqrt(2), rel=1e-12)


def test_correlation_matrix_symmetric_unit_diagonal_and_constant_nan():
    eq = random_equity(seed=11, n_assets=4)
    r = sleeve_returns(eq, ["A0", "A1", "A2", "A3"])
    c = correlation_matrix(r)
    np.testing.assert_allclose(c.to_numpy(), c.to_numpy().T, atol=1e-15)
    np.testing.assert_allclose(np.diag(c), 1.0, rtol=1e-12)
    assert ((c.to_numpy() >= -1 - 1e-12) & (c.to_numpy() <= 1 + 1e-12)).all()
    r["flat"] = 0.0
    c2 = correlation_matrix(r)
    assert c2["flat"].isna().all() and c2.loc["flat"].isna().all()
    assert np.isfinite(c2.loc["A0", "A1"])


def test_diversification_benefits_keys_and_values():
    eq = random_equity(seed=4, n_assets=3)
    assets = ["A0", "A1", "A2"]
    b = diversification_benefits(eq, assets)
    ppy = M.periods_per_year(eq["equity"])
    vols = [M.annual_volatility(eq[a]) for a in assets]
    sharpes = [M.sharpe_ratio(eq[a]) for a in assets]
    assert b["avg_asset_volatility"] == pytest.approx(np.mean(vols), rel=REL)
    assert b["avg_asset_sharpe"] == pytest.approx(np.mean(sharpes), rel=REL)
    assert b["portfolio_volatility"] == pytest.approx(M.annual_volatility(eq["equity"]), rel=REL)
    assert b["volatility_reduction"] == pytest.approx(1 - b["portfolio_volatility"] / np.mean(vols))
    assert b["sharpe_improvement"] == pytest.approx(b["portfolio_sharpe"] - np.mean(sharpes))
    assert b["portfolio_volatility"] < b["avg_asset_volatility"]  # independent sleeves
    assert b["diversification_ratio"] > 1
    assert b["periods_per_year"] == pytest.approx(ppy)


# ---------------------------------------------------------------------- frontier

def _frontier_returns(seed=21, n=4, T=800):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    cov = (a @ a.T + n * np.eye(n)) * 1e-6
    mu = np.linspace(-1e-4, 4e-4, n)
    r = rng.multivariate_normal(mu, cov, size=T)
    return pd.DataFrame(r, columns=[f"S{i}" for i in range(n)])


def test_frontier_monotone_and_feasible():
    r = _frontier_returns()
    f = efficient_frontier(r, n_points=25)
    assert list(f.columns) == ["volatility", "return", "S0", "S1", "S2", "S3"]
    assert len(f) == 25 and all(f.attrs["converged"])
    W = f[["S0", "S1", "S2", "S3"]].to_numpy()
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-12)
    assert (W >= 0).all() and (W <= 1).all()
    assert (np.diff(f["return"]) > 0).all()
    assert (np.diff(f["volatility"]) >= -1e-9 * f["volatility"].max()).all()
    # ends: min-variance portfolio and the best single asset
    mv = min_variance_weights(r)
    np.testing.assert_allclose(W[0], mv.to_numpy(), atol=1e-6)
    best = r.mean().idxmax()
    assert f[best].iloc[-1] == pytest.approx(1.0)
    assert f["return"].iloc[-1] == pytest.approx(r[best].mean(), rel=1e-9)
    assert f["volatility"].iloc[-1] == pytest.approx(r[best].std(ddof=1), rel=1e-9)
    # the frontier's columns agree with portfolio_point of its own weights
    for i in (0, 12, 24):
        v, m = portfolio_point(r, W[i])
        assert v == pytest.approx(f["volatility"].iloc[i], rel=1e-9)
        assert m == pytest.approx(f["return"].iloc[i], rel=1e-9)


def test_frontier_min_variance_matches_closed_form_two_assets():
    rng = np.random.default_rng(8)
    x = rng.normal(1e-4, 0.01, 2000)
    y = 0.2 * x + rng.normal(2e-4, 0.015, 2000)
    r = pd.DataFrame({"x": x, "y": y})
    c = r.cov(ddof=1).to_numpy()
    w1 = (c[1, 1] - c[0, 1]) / (c[0, 0] + c[1, 1] - 2 * c[0, 1])
    assert 0 < w1 < 1  # unconstrained optimum is feasible
    f = efficient_frontier(r, n_points=10)
    assert f["x"].iloc[0] == pytest.approx(w1, abs=1e-6)
    var_mv = w1**2 * c[0, 0] + (1 - w1) ** 2 * c[1, 1] + 2 * w1 * (1 - w1) * c[0, 1]
    assert f["volatility"].iloc[0] == pytest.approx(math.sqrt(var_mv), rel=1e-8)
    # two assets: each target return fixes the weights exactly
    mu = r.mean().to_numpy()
    for _, row in f.iterrows():
        wx = (row["return"] - mu[1]) / (mu[0] - mu[1])
        assert row["x"] == pytest.approx(wx, abs=1e-7)


def test_no_portfolio_beats_the_frontier_and_annualisation():
    r = _frontier_returns(seed=33, n=5)
    ppy = 105192.0
    f = efficient_frontier(r, n_points=40, periods_per_year=ppy)
    fb = efficient_frontier(r, n_points=40)
    np.testing.assert_allclose(f["return"], fb["return"] * ppy, rtol=1e-9)
    np.testing.assert_allclose(f["volatility"], fb["volatility"] * math.sqrt(ppy), rtol=1e-9)
    rng = np.random.default_rng(0)
    candidates = [np.full(5, 0.2)] + list(rng.dirichlet(np.ones(5), size=30))
    for w in candidates:
        vol, ret = portfolio_point(r, w, ppy)
        frontier_vol = frontier_volatility_at(f, ret)
        if math.isnan(frontier_vol):  # above the best mean: impossible long-only
            pytest.fail("a long-only portfolio returned more than the frontier's top")
        assert vol >= frontier_vol - 1e-6 * frontier_vol


def test_frontier_max_weight_cap():
    r = _frontier_returns(seed=5, n=4)
    f = efficient_frontier(r, n_points=15, max_weight=0.4)
    W = f[list(r.columns)].to_numpy()
    assert W.max() <= 0.4 + 1e-9
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-12)
    assert (np.diff(f["volatility"]) >= -1e-9 * f["volatility"].max()).all()
    with pytest.raises(ValueError):
        efficient_frontier(r, max_weight=0.2)


# ------------------------------------------------------- metrics vs empyrical

def test_portfolio_metrics_agree_with_empyrical():
    eq = random_equity(seed=9, n_bars=2000, n_assets=3, freq="1h")
    trades = make_trades(["A0", "A1", "A2"])
    port = eq["equity"]
    ppy = M.periods_per_year(port)
    rets = pd.Series(M.returns_from_equity(port), index=port.index[1:])
    res = analyse_run(eq, trades, None, None, n_frontier=8)
    p = res["portfolio"]
    assert p["sharpe"] == pytest.approx(empyrical.sharpe_ratio(rets, annualization=ppy), rel=REL)
    assert p["annual_volatility"] == pytest.approx(
        empyrical.annual_volatility(rets, annualization=ppy), rel=REL)
    assert p["max_drawdown"] == pytest.approx(-empyrical.max_drawdown(rets), rel=REL)
    assert res["diversification"]["portfolio_volatility"] == pytest.approx(
        empyrical.annual_volatility(rets, annualization=ppy), rel=REL)
    # per-asset Sharpe / drawdown in the table match empyrical on each sleeve
    table = asset_table(eq, trades)
    for a in ["A0", "A1", "A2"]:
        ra = pd.Series(M.returns_from_equity(eq[a]))
        assert table.loc[a, "sharpe"] == pytest.approx(
            empyrical.sharpe_ratio(ra, annualization=ppy), rel=REL)
        assert table.loc[a, "max_drawdown"] == pytest.approx(-empyrical.max_drawdown(ra), rel=REL)
        assert table.loc[a, "n_trades"] == 4
    assert p["n_trades"] == 12


def test_analyse_run_is_jsonable_and_consistent():
    eq = random_equity(seed=12, n_assets=3)
    trades = make_trades(["A0", "A1", "A2"])
    weights = pd.DataFrame({"asset": ["A0", "A1", "A2"], "weight": [0.2, 0.3, 0.5]})
    metrics = {"portfolio": M.json_safe(M.compute_metrics(eq["equity"], trades)),
               "assets": {a: M.json_safe(M.compute_metrics(eq[a])) for a in ["A0", "A1", "A2"]}}
    res = analyse_run(eq, trades, weights, metrics, n_frontier=10)
    base = {"returns", "correlation", "frontier", "asset_table"}
    assert base <= set(res["frames"]) and "monthly_table" in res["frames"]  # and the tear sheet's
    assert set(analyse_run(eq, trades, weights, metrics, n_frontier=10, tearsheet=False)["frames"]) == base
    assert sum(res["pnl_attribution"].values()) == pytest.approx(res["portfolio"]["pnl"], rel=1e-6)
    assert sum(res["risk_attribution"].values()) == pytest.approx(1.0)
    assert res["weights"] == {"A0": 0.2, "A1": 0.3, "A2": 0.5}
    assert len(res["frontier"]["volatility"]) == 10
    text = json.dumps(analysis_to_json(res), allow_nan=False)
    assert "frames" not in json.loads(text)
    # the equal-weight point is not left of the frontier
    vol, ret = res["points"]["equal_weight"]
    fv = frontier_volatility_at(res["frames"]["frontier"], ret)
    assert vol >= fv * (1 - 1e-6)


# ------------------------------------------------------------------------ summary

def test_summary_text_contains_assets_and_totals(tmp_path):
    names = ["EURUSDX_5m", "BTCUSDX_5m", "GOLD"]
    rng = np.random.default_rng(4)
    eq = make_equity(rng.normal(0, 0.002, size=(300, 3)), start=[500.0, 300.0, 200.0], names=names)
    trades = make_trades(names)
    weights = pd.Series({"EURUSDX_5m": 0.5, "BTCUSDX_5m": 0.3, "GOLD": 0.2})
    metrics = {"portfolio": M.json_safe(M.compute_metrics(eq["equity"], trades))}
    text = portfolio_summary_text(eq, trades, metrics, weights)
    lines = text.splitlines()
    for name in names:
        assert any(line.startswith(name) for line in lines), name
    total = [line for line in lines if line.startswith("TOTAL")]
    assert len(total) == 1
    assert "12" in total[0].split()  # total trades
    for key in ("PnL", "Total return", "CAGR", "Sharpe", "Max drawdown", "Trades",
                "Win rate", "Diversification ratio"):
        assert any(line.strip().startswith(key) for line in lines), key
    # fixed-width table: header, rules, asset rows and TOTAL share one width
    start = next(i for i, line in enumerate(lines) if line.startswith("Asset "))
    table = lines[start:start + 2 + len(names) + 2]
    assert len({len(line) for line in table}) == 1
    pnl = eq["equity"].iloc[-1] - eq["equity"].iloc[0]
    assert f"{pnl:,.2f}" in total[0]
    out = write_portfolio_summary(tmp_path / "sub" / "summary.txt", eq, trades, metrics, weights)
    assert out.read_text(encoding="utf-8") == text


def test_summary_handles_no_trades_and_flat_asset():
    rng = np.random.default_rng(6)
    r = np.column_stack([rng.normal(0, 0.002, 100), np.zeros(100)])
    eq = make_equity(r, names=["LIVE", "FLAT"])
    text = portfolio_summary_text(eq)
    assert "FLAT" in text and "n/a" in text and "TOTAL" in text


def test_sleeve_pass_reads_the_engine_matrix_in_place_with_the_same_sums(monkeypatch):
    """The sleeve columns of :func:`raybt.result.equity_frame` are rows of the engine's matrix: the pass
    reads them there (pandas interleaved two copies of them before) and gives the same bits, chunk by chunk."""
    from raybt.analysis import attribution as A
    from raybt.result import equity_frame

    rng = np.random.default_rng(5)
    sleeves = 1000 + np.cumsum(rng.normal(size=(7, 500)), axis=1)
    names = [f"A{i}" for i in range(7)]
    frame = equity_frame(sleeves.sum(axis=0), sleeves, names, pd.date_range("2024", periods=500, freq="5min"))
    view = A._rows_view(frame, names)
    assert view is not None and np.shares_memory(view, sleeves) and np.array_equal(view, sleeves.T)
    assert A._rows_view(frame, names[::-1]) is None  # not consecutive rows: copies, as before
    monkeypatch.setattr(A, "_CHUNK_VALUES", 1500)  # three columns a chunk
    flows = A._as_flows(None, frame.index, names)
    new = A.sleeve_pass(frame, names, flows)
    monkeypatch.setattr(A, "_rows_view", lambda equity, names: None)
    old = A.sleeve_pass(frame, names, flows)
    for field in ("returns", "first", "last", "share", "max_drawdown", "total_return"):
        assert np.array_equal(getattr(new, field), getattr(old, field), equal_nan=True), field
