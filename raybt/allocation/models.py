"""Allocation models: returns (one column per asset) -> long-only weights.

Conventions: returns are simple per-bar fractions; volatilities and the
covariance matrix use ``ddof=1``; weights are non-negative fractions summing
to 1, indexed like ``returns.columns``. Covariances are rescaled to unit mean
variance before optimising (weights are invariant to that scaling).

Zero-variance columns: every model treats them alike (see
:func:`raybt.allocation.constraints.effective_vols`): uncorrelated with the
others, with the smallest positive variance among them; all zero -> equal
weight.

Optimiser failures: ``min_variance`` and ``max_sharpe`` solve a convex QP
with SLSQP and then polish it on the active set. The answer is used only when
it is *certified* (the polished point satisfies the KKT conditions with
non-negative multipliers, so it is the exact optimum) or SLSQP reports
success and its point is feasible. Otherwise :class:`ConfigError` names the
model and SLSQP's message: no silent fallback to another model's weights,
because such weights would be reported as ``min_variance`` / ``max_sharpe``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from raybt.allocation.constraints import aligned_scores, effective_vols, sharpe_ratios
from raybt.errors import ConfigError

MODELS: tuple[str, ...] = (
    "equal_weight",
    "inverse_volatility",
    "risk_parity",
    "performance_weighted",
    "min_variance",
    "max_sharpe",
)



def _series(w: np.ndarray, returns: pd.DataFrame, model: str = "allocation") -> pd.Series:
    w = np.clip(np.asarray(w, dtype=np.float64), 0.0, None)
    total = w.sum()
    if not (np.isfinite(total) and total > 0):
        raise ConfigError(f"allocation: {model}: the model produced no usable weights "
                          f"(sum {total!r}); the returns are degenerate")
    return pd.Series(w / total, index=returns.columns, dtype=np.float64)


def _equal(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def _scaled_cov(returns: pd.DataFrame) -> np.ndarray | None:
    """Sample covariance (ddof=1) with the zero-variance convention applied (a
    zero-variance asset: uncorrelated, smallest positive variance), divided by
    its mean variance. None when every variance is zero."""
    vols = effective_vols(returns)
    if vols is None:
        return None
    vol, zero = vols
    cov = np.atleast_2d(np.cov(returns.to_numpy(dtype=np.float64), rowvar=False, ddof=1))
    cov[zero, :] = 0.0
    cov[:, zero] = 0.0
    cov[zero, zero] = vol[zero] ** 2
    return cov / (np.trace(cov) / cov.shape[0])


def risk_contributions(weights: pd.Series, cov: pd.DataFrame) -> pd.Series:
    """Fractional risk contributions ``w_i (Σw)_i / (wᵀΣw)`` (sum to 1).

    ``cov`` must contain every asset of ``weights.index`` (rows and columns);
    ConfigError when the portfolio variance is zero.
    """
    names = list(weights.index)
    try:
        sigma = cov.loc[names, names].to_numpy(dtype=np.float64)
    except KeyError:
        raise ConfigError("allocation: cov does not cover every asset of weights") from None
    w = weights.to_numpy(dtype=np.float64)
    marginal = sigma @ w
    total = float(w @ marginal)
    if not total > 0:
        raise ConfigError("allocation: portfolio variance is zero; risk contributions are undefined")
    return pd.Series(w * marginal / total, index=weights.index, dtype=np.float64)


def equal_weight(returns: pd.DataFrame) -> pd.Series:
    """``1/n`` for each of the n columns."""
    return _series(_equal(returns.shape[1]), returns)


def inverse_volatility(returns: pd.DataFrame) -> pd.Series:
    """``w_i ∝ 1/σ_i`` (sample std, ddof=1).

    A zero-volatility column is treated as having the smallest positive
    volatility among the others; all zero -> equal weight.
    """
    vols = effective_vols(returns)
    if vols is None:
        return equal_weight(returns)
    return _series(1.0 / vols[0], returns, "inverse_volatility")


def _erc_weights(cov: np.ndarray, y0: np.ndarray) -> tuple[np.ndarray, float]:
    """Equal risk contribution via Spinu's convex problem
    ``min ½yᵀΣy − Σ b_i log y_i`` (b_i = 1/n, y > 0), then ``w = y / Σy``.

    L-BFGS-B (analytic gradient) from ``y0``, then damped Newton polishing.
    Returns the weights and ``max |RC_i - 1/n|``."""
    n = cov.shape[0]
    b = np.full(n, 1.0 / n)

    def fun(y: np.ndarray) -> tuple[float, np.ndarray]:
        sy = cov @ y
        return 0.5 * y @ sy - b @ np.log(y), sy - b / y

    y = y0 * np.sqrt(1.0 / (y0 @ cov @ y0))  # optimum has yᵀΣy = Σb = 1
    res = minimize(fun, y, jac=True, method="L-BFGS-B", bounds=[(1e-12, None)] * n,
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000})
    y = np.maximum(res.x, 1e-12)
    for _ in range(100):  # Newton: Hessian Σ + diag(b/y²) is positive definite
        f, g = fun(y)
        if np.max(np.abs(g * y)) < 1e-14:
            break
        try:
            step = np.linalg.solve(cov + np.diag(b / y**2), -g)
        except np.linalg.LinAlgError:
            break
        t = 1.0
        while t > 1e-12:  # damped: stay in y > 0, decrease f (or |g| near rounding level)
            y_new = y + t * step
            if np.all(y_new > 0):
                f_new, g_new = fun(y_new)
                if f_new <= f + 1e-4 * t * (g @ step) or np.linalg.norm(g_new) < np.linalg.norm(g):
                    break
            t *= 0.5
        if t <= 1e-12:
            break
        y = y_new
    w = y / y.sum()
    rc = w * (cov @ w) / (w @ cov @ w)
    return w, float(np.max(np.abs(rc - b)))


def risk_parity(returns: pd.DataFrame) -> pd.Series:
    """Equal risk contribution: ``w_i (Σw)_i / (wᵀΣw) = 1/n`` for every asset,
    Σ the sample covariance (ddof=1). Started from inverse volatility.

    Zero-volatility assets are treated as uncorrelated with the smallest
    positive variance among the others; all zero -> equal weight. When no
    exact solution exists (some long-only mix of the assets has zero
    variance, e.g. fewer rows than assets) a ridge of 1e-6 x the mean
    variance is added to the diagonal. ConfigError if even that fails.
    """
    cov = _scaled_cov(returns)
    n = returns.shape[1]
    if cov is None or n == 1:
        return equal_weight(returns)
    y0 = 1.0 / np.sqrt(np.diag(cov))
    for ridge, tol in ((0.0, 1e-9), (1e-6, 1e-7)):
        w, err = _erc_weights(cov + ridge * np.eye(n), y0)
        if err <= tol:
            return _series(w, returns, "risk_parity")
    raise ConfigError("allocation: risk_parity found no equal-risk-contribution weights "
                      "(covariance matrix is degenerate; need more rows than assets)")


def performance_weighted(returns: pd.DataFrame, scores: pd.Series | None = None) -> pd.Series:
    """``w_i ∝ max(s_i, 0)`` where ``s_i`` is the per-column Sharpe
    ``mean/std`` (ddof=1; a zero-vol column's std is the smallest positive
    one, all zero -> every Sharpe 0) or, when given, ``scores``
    (indexed by asset name, e.g. optimisation Sharpe ratios). When no score is
    positive, falls back to equal weight."""
    if scores is None:
        s = sharpe_ratios(returns).to_numpy()
    else:
        s = aligned_scores(scores, list(returns.columns), "scores").to_numpy()
    s = np.maximum(s, 0.0)
    if not s.sum() > 0:
        return equal_weight(returns)
    return _series(s, returns, "performance_weighted")


def _solve_qp(q: np.ndarray, e: np.ndarray, upper: float | None,
              g: np.ndarray | None, x0: np.ndarray, model: str) -> np.ndarray:
    """Convex QP ``min xᵀQx`` s.t. ``e·x = 1``, ``0 <= x <= upper`` (bounds) and
    ``Gx >= 0`` (extra rows, may be None).

    SLSQP with analytic gradients, then an exact active-set polish: solve the
    KKT system with the constraints SLSQP left active as equalities. The
    polished point is returned when it is certified (KKT system solved,
    feasible, multipliers non-negative, objective no worse than SLSQP's to
    rounding): it is then the exact optimum. Otherwise SLSQP's own point is
    returned if SLSQP reports success and the point is feasible; otherwise
    ConfigError names ``model`` and SLSQP's message."""
    n = q.shape[0]
    rows, rhs_in = [np.eye(n)], [np.zeros(n)]  # all inequalities as Ax >= b
    if upper is not None:
        rows.append(-np.eye(n))
        rhs_in.append(np.full(n, -upper))
    cons = [{"type": "eq", "fun": lambda x: e @ x - 1.0, "jac": lambda x: e}]
    if g is not None:
        rows.append(g)
        rhs_in.append(np.zeros(g.shape[0]))
        cons.append({"type": "ineq", "fun": lambda x: g @ x, "jac": lambda x: g})
    a_in, b_in = np.vstack(rows), np.concatenate(rhs_in)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        qx = q @ x
        return float(x @ qx), 2.0 * qx

    res = minimize(fun, x0, jac=True, method="SLSQP", bounds=[(0.0, upper)] * n,
                   constraints=cons, options={"ftol": 1e-16, "maxiter": 1000})
    x = np.asarray(res.x, dtype=np.float64)
    if x.shape == (n,) and np.all(np.isfinite(x)):
        scale = max(1.0, float(np.abs(x).max()))
        active = a_in @ x - b_in <= 1e-7 * scale
        a = np.vstack([e, a_in[active]])
        b = np.concatenate([[1.0], b_in[active]])
        m = a.shape[0]
        kkt = np.block([[2.0 * q, -a.T], [a, np.zeros((m, m))]])
        rhs = np.concatenate([np.zeros(n), b])
        try:
            sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
        except np.linalg.LinAlgError:
            sol = np.full(n + m, np.nan)
        xp, lam = sol[:n], sol[n + 1:]
        f_x, f_p = fun(x)[0], fun(xp)[0]
        certified = (np.all(np.isfinite(sol)) and np.allclose(kkt @ sol, rhs, rtol=0.0, atol=1e-12 * scale)
                     and np.all(a_in @ xp - b_in >= -1e-12 * scale) and np.all(lam >= -1e-9)
                     and f_p <= f_x + 1e-9 * abs(f_x) + 1e-12)
        if certified:
            return xp
        feasible = (abs(e @ x - 1.0) <= 1e-9 * max(1.0, float(np.abs(e).max()) * scale)
                    and np.all(a_in @ x - b_in >= -1e-9 * scale))
        if res.success and feasible:
            return x
    raise ConfigError(f"allocation: {model}: the SLSQP optimiser failed ({res.message}; status {res.status}) "
                      f"and its result could not be verified as optimal; try another allocation.model or "
                      f"a longer allocation.lookback")


def min_variance(returns: pd.DataFrame, cap: float = 1.0) -> pd.Series:
    """Long-only minimum variance: ``min wᵀΣw`` s.t. ``Σw = 1``, ``0 <= w <= cap``
    (Σ sample covariance, ddof=1, zero-variance convention applied), by
    SLSQP with analytic gradient and the cap as bounds. Requires
    ``cap * n >= 1``. All variances zero -> equal weight."""
    n = returns.shape[1]
    cov = _scaled_cov(returns)
    if cov is None or n == 1:
        return equal_weight(returns)
    upper = min(cap, 1.0)
    x = _solve_qp(cov, np.ones(n), upper if upper < 1.0 else None, None, _equal(n), "min_variance")
    return _series(x, returns, "min_variance")


def _max_mean(mu: np.ndarray, cap: float) -> np.ndarray:
    """Feasible weights maximising ``μᵀw`` under ``0 <= w <= cap``, ``Σw = 1``."""
    w = np.zeros_like(mu)
    left = 1.0
    for i in np.argsort(-mu, kind="stable"):
        w[i] = min(cap, left)
        left -= w[i]
    return w


def max_sharpe(returns: pd.DataFrame, cap: float = 1.0) -> pd.Series:
    """Long-only tangency portfolio (risk-free 0): maximise ``μᵀw / sqrt(wᵀΣw)``
    s.t. ``Σw = 1``, ``0 <= w <= cap`` (μ mean per-bar returns, Σ sample
    covariance, ddof=1, zero-variance convention applied; all variances
    zero -> equal weight).

    Solved by SLSQP (analytic gradients) as the equivalent convex problem
    ``min yᵀΣy`` s.t. ``μᵀy = 1``, ``y >= 0``, ``y_i <= cap Σy``, with
    ``w = y / Σy``. When no feasible portfolio has a positive mean (with no
    cap: every mean return <= 0) falls back to :func:`min_variance`.
    """
    n = returns.shape[1]
    cap = min(cap, 1.0)
    cov = _scaled_cov(returns)
    if cov is None or n == 1:
        return equal_weight(returns)
    mu = returns.mean().to_numpy(dtype=np.float64)
    w0 = _max_mean(mu, cap)
    if not mu @ w0 > 0:
        return min_variance(returns, cap)
    mu = mu / np.abs(mu).max()
    g = np.full((n, n), cap) - np.eye(n) if cap < 1.0 else None  # cap*Σy - y_i >= 0
    even = np.full(n, 1.0 / n)
    if mu @ even > 0 and 1.0 / n <= cap:
        w0 = even  # start from equal weights when feasible: ties (identical assets) stay even
    y = _solve_qp(cov, mu, None, g, w0 / (mu @ w0), "max_sharpe")
    return _series(y, returns, "max_sharpe")


def run_model(model: str, returns: pd.DataFrame, cap: float, scores: pd.Series | None) -> pd.Series:
    """Dispatch ``model`` (one of :data:`MODELS`) on ``returns``."""
    if model == "equal_weight":
        return equal_weight(returns)
    if model == "inverse_volatility":
        return inverse_volatility(returns)
    if model == "risk_parity":
        return risk_parity(returns)
    if model == "performance_weighted":
        return performance_weighted(returns, scores)
    if model == "min_variance":
        return min_variance(returns, cap)
    if model == "max_sharpe":
        return max_sharpe(returns, cap)
    raise ConfigError(f"allocation: unknown model {model!r}")
