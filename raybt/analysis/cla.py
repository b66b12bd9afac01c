"""Markowitz's critical line algorithm for the long-only, capped frontier.

Solves, for every ``λ`` from ``+inf`` down to 0, the parametric quadratic
programme

    minimise ½ wᵀΣw - λ μᵀw   subject to   Σ_i w_i = 1,   0 <= w_i <= u_i

and returns its *turning points*: the portfolios where the set of assets
strictly inside their bounds (the free set) changes.  Between two turning
points the optimal weights are an affine function of ``λ`` and so is the
mean ``μᵀw``, so every efficient portfolio is an exact linear interpolation,
*in the target mean*, of the two turning points around it (Markowitz 1956;
Niedermayer & Niedermayer, "Applying Markowitz's critical line algorithm",
2010; Bailey & López de Prado, "An open-source implementation of the
critical-line algorithm", 2013).  The first turning point is the highest-mean
portfolio (λ = +inf), the last the minimum-variance one (λ = 0).

Implementation (numpy only, O(n k) per event, about n events):

* The inverse of the bordered KKT matrix ``K = [[0, 1ᵀ], [1, Σ_FF]]`` of the
  free set F (k assets) lives in the leading block of a preallocated buffer:
  a rank-one bordering when an asset enters, a Schur-complement downdate when
  one leaves, a fresh inverse when the KKT residual drifts above 1e-9.
* Σ is kept permuted so that the free assets are its leading rows and
  columns: ``Σ[:, F] @ w_F`` is a slice, not a gather.
* Start: the highest means filled up to their caps in order (ties in the
  order given); the asset that completes the budget is free.  Bounded assets
  tied with it on mean that lower the variance are freed before the first
  turning point, so it is the minimum-variance highest-mean portfolio.

The caller resolves what makes a free block singular: exact duplicate
assets (merge them: :func:`raybt.analysis.frontier` does) and constant
(riskless) assets, which need exactly zero rows and columns in Σ.  Any other
singular free block (fewer observations than assets, an asset that is an exact
mix of others) raises :class:`SingularFreeSet`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["CriticalLine", "SingularFreeSet", "critical_line", "interpolate_frontier"]


class SingularFreeSet(ArithmeticError):
    """The KKT matrix of a free set is singular (Σ is rank deficient on it)."""


class CriticalLine(NamedTuple):
    """Turning points, highest mean (``lambdas[0] = inf``) to minimum variance (``lambdas[-1] = 0``).

    ``weights`` is (points, n) in the caller's asset order; ``steps`` counts
    free-set events (an asset entering or leaving).
    """

    weights: np.ndarray
    lambdas: np.ndarray
    steps: int


_LOWER, _FREE, _UPPER = 0, 1, 2


class _State:
    """Σ, μ, caps and bound status by *position*; positions ``[0, k)`` are free,
    in the order of rows ``1..k`` of the KKT inverse (row 0 is the budget)."""

    def __init__(self, mean: np.ndarray, cov: np.ndarray, upper: np.ndarray):
        n = len(mean)
        self.n = n
        self.P = np.array(cov, dtype=np.float64, order="C", copy=True)
        self.mu = np.array(mean, dtype=np.float64, copy=True)
        self.up = np.array(upper, dtype=np.float64, copy=True)
        self.perm = np.arange(n)                      # position -> asset
        self.status = np.zeros(n, dtype=np.int8)
        self.k = 0
        self.kb = np.zeros((n + 1, n + 1))            # KKT inverse in kb[:k+1, :k+1]
        self.scratch = np.zeros((n + 1, n + 1))
        self.su = np.zeros(n)                         # Σ[:, U] @ u_U, by position
        self.budget = 1.0                             # 1 - Σ_U u

    @property
    def kinv(self) -> np.ndarray:
        m = self.k + 1
        return self.kb[:m, :m]

    def swap(self, i: int, j: int) -> None:
        if i == j:
            return
        P = self.P
        P[[i, j]] = P[[j, i]]
        P[:, [i, j]] = P[:, [j, i]]
        for a in (self.mu, self.up, self.perm, self.status, self.su):
            a[[i, j]] = a[[j, i]]
        if i < self.k and j < self.k:
            m, a, b = self.k + 1, i + 1, j + 1
            self.kb[[a, b], :m] = self.kb[[b, a], :m]
            self.kb[:m, [a, b]] = self.kb[:m, [b, a]]

    def refresh_upper(self) -> None:
        at_cap = self.status == _UPPER
        if at_cap.any():
            self.su = self.P[:, at_cap] @ self.up[at_cap]
            self.budget = 1.0 - float(self.up[at_cap].sum())
        else:
            self.su = np.zeros(self.n)
            self.budget = 1.0

    def _rank_one(self, m: int, x: np.ndarray, y: np.ndarray, sign: float) -> None:
        """``kinv[:m, :m] += sign * outer(x, y)`` in place, through a preallocated scratch."""
        block = self.kb[:m, :m]
        tmp = self.scratch[:m, :m]
        np.multiply.outer(x, y, out=tmp)
        (np.add if sign > 0 else np.subtract)(block, tmp, out=block)

    def refactor(self) -> None:
        k = self.k
        K = np.empty((k + 1, k + 1))
        K[0, 0] = 0.0
        K[0, 1:] = 1.0
        K[1:, 0] = 1.0
        K[1:, 1:] = self.P[:k, :k]
        try:
            inv = np.linalg.inv(K)
        except np.linalg.LinAlgError as exc:
            raise SingularFreeSet(str(exc)) from exc
        if not np.all(np.isfinite(inv)):
            raise SingularFreeSet("free-set KKT matrix is singular")
        self.kb[: k + 1, : k + 1] = inv

    def start(self, pos: int) -> None:
        """Make the asset at ``pos`` the only free one."""
        self.swap(pos, 0)
        self.k = 1
        self.status[0] = _FREE
        self.kb[:2, :2] = [[-self.P[0, 0], 1.0], [1.0, 0.0]]

    def add(self, pos: int, tol: float, scale: float) -> None:
        """Free the bounded asset at ``pos`` (``pos >= k``): bordering update."""
        k = self.k
        self.swap(pos, k)
        m = k + 1
        c = np.empty(m)
        c[0] = 1.0
        c[1:] = self.P[:k, k]
        v = self.kinv @ c
        s = self.P[k, k] - c @ v
        if not math.isfinite(s) or abs(s) <= tol * scale * (1.0 + float(np.abs(v).max())):
            raise SingularFreeSet("an entering asset makes the free-set KKT matrix singular")
        vs = v / s
        self._rank_one(m, v, vs, +1.0)
        self.kb[:m, m] = -vs
        self.kb[m, :m] = -vs
        self.kb[m, m] = 1.0 / s
        was_capped = self.status[k] == _UPPER
        self.status[k] = _FREE
        self.k = m
        if was_capped:
            self.refresh_upper()

    def remove(self, pos: int, to_upper: bool) -> None:
        """Bound the free asset at ``pos`` (``pos < k``) at 0 or its cap: downdate."""
        k = self.k
        self.swap(pos, k - 1)
        b = self.kb[:k, k].copy()
        self._rank_one(k, b, b / self.kb[k, k], -1.0)
        self.k = k - 1
        self.status[k - 1] = _UPPER if to_upper else _LOWER
        if to_upper:
            self.refresh_upper()

    def segment(self):
        """``(wa, wb, c, d)``: free weights ``wa + λ wb`` (positions ``[0, k)``)
        and, for every position, ``c + λ d = (Σw)_i - λ μ_i - γ`` (0 when free,
        >= 0 is optimal at the lower bound, <= 0 at the cap)."""
        k = self.k
        rhs = np.empty((k + 1, 2))
        rhs[0] = (self.budget, 0.0)
        rhs[1:, 0] = -self.su[:k]
        rhs[1:, 1] = self.mu[:k]
        y = self.kinv @ rhs
        g = self.P[:, :k] @ y[1:]
        return y[1:, 0], y[1:, 1], g[:, 0] + self.su + y[0, 0], g[:, 1] - self.mu + y[0, 1]

    def weights(self, wa: np.ndarray, wb: np.ndarray, lam: float) -> np.ndarray:
        """Weights at ``lam`` in the caller's asset order (``wa`` at λ = inf)."""
        w = np.where(self.status == _UPPER, self.up, 0.0)
        w[: self.k] = wa if math.isinf(lam) else wa + lam * wb
        out = np.empty(self.n)
        out[self.perm] = w
        return out


def critical_line(mean, cov, upper=1.0, *, tol: float = 1e-11,
                  max_steps: int | None = None) -> CriticalLine:
    """Turning points of ``min ½wᵀΣw - λμᵀw`` s.t. ``Σw = 1``, ``0 <= w <= upper``.

    ``mean`` (n,), ``cov`` (n, n) symmetric positive semi-definite, ``upper``
    a cap per asset or one for all (``sum(upper) >= 1``).  Scale ``mean`` and
    ``cov`` to O(1) (e.g. divide by the largest |mean| and the average
    variance): the tolerances are absolute in those units.  Raises
    :class:`SingularFreeSet` when a free block's KKT matrix is singular and
    ``RuntimeError`` when the path does not end within ``max_steps`` events
    (default ``20 n + 100``; the walk takes about n).
    """
    mean = np.asarray(mean, dtype=np.float64)
    n = len(mean)
    upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,))
    if n == 0:
        raise ValueError("no assets")
    if not np.all(upper > 0) or upper.sum() < 1.0 - 1e-12:
        raise ValueError("caps must be positive and sum to at least 1")
    if n == 1:
        return CriticalLine(np.ones((2, 1)), np.array([math.inf, 0.0]), 0)
    max_steps = 20 * n + 100 if max_steps is None else int(max_steps)
    # O(k²) matrix-vector work per event: BLAS threads only add overhead here
    # (and stall badly on a busy machine), so the walk runs single-threaded.
    with threadpool_limits(limits=1, user_api="blas"):
        return _walk(_State(mean, cov, upper), tol, max_steps)


def _walk(st: _State, tol: float, max_steps: int) -> CriticalLine:
    n = st.n
    order = np.argsort(-st.mu, kind="stable")
    left = 1.0
    free_asset = int(order[-1])
    for i in order:  # fill the best means up to their caps; the last one is free
        if st.up[i] >= left - 1e-15:
            free_asset = int(i)
            break
        st.status[i] = _UPPER
        left -= st.up[i]
    st.refresh_upper()
    st.start(free_asset)

    gscale = max(float(np.abs(np.diag(st.P)).max(initial=0.0)), 1e-300)
    mscale = max(float(np.abs(st.mu).max(initial=0.0)), 1e-300)
    dtol = 1e3 * tol * (gscale + mscale)
    ctol = 1e3 * tol * gscale
    points: list[np.ndarray] = []
    lams: list[float] = []
    lam = math.inf
    last = -1  # asset changed by the previous event: not eligible to undo it at once
    steps = 0
    while True:
        wa, wb, c, d = st.segment()
        k = st.k
        res = max(float(np.abs(c[:k]).max()) / gscale, float(np.abs(d[:k]).max()) / mscale)
        if res > 1e-9:  # the updated inverse drifted: refactor
            st.refactor()
            wa, wb, c, d = st.segment()
            res = max(float(np.abs(c[:k]).max()) / gscale, float(np.abs(d[:k]).max()) / mscale)
            if res > 1e-7:
                raise SingularFreeSet(f"free-set KKT system unsolvable (residual {res:.1e})")

        cand = np.full(n, -math.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            # a free weight wa + λ wb reaches 0 (wb > 0) or its cap (wb < 0) as λ falls
            to_low = np.where(wb > 0, -wa / wb, -math.inf)
            to_up = np.where(wb < 0, (st.up[:k] - wa) / wb, -math.inf)
            # a lone free asset is pinned by the budget (wb = 0 up to rounding): it
            # stays free even at a bound, so the KKT system keeps its budget row
            cand[:k] = np.maximum(to_low, to_up) if k > 1 else -math.inf
            # a bounded asset's c + λ d reaches 0 as λ falls: it enters
            cb, db = c[k:], d[k:]
            at_low = st.status[k:] == _LOWER
            crossing = np.where(at_low, db > dtol, db < -dtol)
            lam_b = np.where(crossing, -cb / db, -math.inf)
        # tied on the λ-slope but on the wrong side already (a tie in means): enter now
        violated = (np.abs(db) <= dtol) & np.where(at_low, cb < -ctol, cb > ctol)
        cand[k:] = np.where(violated, math.inf, lam_b)
        if last >= 0:  # the asset just moved may not undo that move at the same λ
            j = int(np.flatnonzero(st.perm == last)[0])
            if cand[j] >= (lam * (1.0 - 1e-9) if math.isfinite(lam) else math.inf):
                cand[j] = -math.inf
        best = int(np.argmax(cand))
        done = not cand[best] > 0.0
        lam_new = 0.0 if done else min(float(cand[best]), lam)
        if math.isinf(lam) and not math.isinf(lam_new):
            points.append(st.weights(wa, wb, math.inf))
            lams.append(math.inf)
        if done:
            points.append(st.weights(wa, wb, 0.0))
            lams.append(0.0)
            break
        steps += 1
        if steps > max_steps:
            raise RuntimeError(f"the critical line did not end within {max_steps} events")
        if not math.isinf(lam_new):
            points.append(st.weights(wa, wb, lam_new))
            lams.append(lam_new)
        last = int(st.perm[best])
        if best < k:
            st.remove(best, to_upper=bool(to_up[best] >= to_low[best]))
        elif math.isinf(cand[best]):
            # a tie (equal means) entering at the current λ: the new free set's
            # solution at this λ may leave the box, so walk to it as a primal
            # active-set step would, bounding the assets that block the way
            current = wa if math.isinf(lam_new) else wa + lam_new * wb
            entering = st.up[best] if st.status[best] == _UPPER else 0.0
            st.add(best, tol, gscale)
            steps += _settle(st, np.append(current, entering), lam_new)
        else:
            st.add(best, tol, gscale)
        lam = lam_new
    return CriticalLine(np.array(points), np.array(lams), steps)


def _settle(st: _State, w: np.ndarray, lam: float) -> int:
    """Move the free weights ``w`` (feasible) to the solution at ``lam`` of the
    free set, bounding each free asset that reaches a bound on the way
    (a primal active-set step); returns the number of assets bounded."""
    removed = 0
    while True:
        wa, wb, _, _ = st.segment()
        target = wa if math.isinf(lam) else wa + lam * wb
        step = target - w
        up = st.up[: st.k]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(step < 0, -w / step, np.where(step > 0, (up - w) / step, math.inf))
        i = int(np.argmin(t))
        if st.k <= 1 or not t[i] < 1.0:
            return removed
        w = w + max(float(t[i]), 0.0) * step
        last = st.k - 1
        w[[i, last]] = w[[last, i]]
        st.remove(i, to_upper=bool(step[i] > 0))
        w = w[:last]
        removed += 1


def interpolate_frontier(line: CriticalLine, mean, targets) -> np.ndarray:
    """Weights (len(targets), n) of the efficient portfolios with means ``targets``.

    Linear interpolation in the mean between the two turning points around
    each target (exact: weights and mean are both affine in λ between them).
    A target at (or beyond) an end gets that end's turning point unchanged.
    Stretches of constant mean keep their lowest-variance end.
    """
    W = line.weights[::-1]                       # minimum variance first
    m = W @ np.asarray(mean, dtype=np.float64)
    keep = m > np.maximum.accumulate(np.concatenate([[-math.inf], m[:-1]]))
    W, m = W[keep], m[keep]
    t = np.asarray(targets, dtype=np.float64)
    if len(m) == 1:
        return np.repeat(W, len(t), axis=0)
    j = np.clip(np.searchsorted(m, t, side="left"), 1, len(m) - 1)
    lo, hi = m[j - 1], m[j]
    f = np.clip((t - lo) / (hi - lo), 0.0, 1.0)[:, None]
    out = W[j - 1] + f * (W[j] - W[j - 1])
    out[t <= m[0]] = W[0]
    out[t >= m[-1]] = W[-1]
    return out
