"""Portfolio allocation: per-asset strategy returns -> long-only weights.

``compute_weights(model, returns, ...)`` takes one column of simple per-bar
returns (fractions) per asset and returns a weight per asset: non-negative,
summing to 1, indexed by every column of ``returns`` (filtered assets get 0).
Statistics use the sample standard deviation / covariance (``ddof=1``).

Models (:data:`MODELS`):

* ``equal_weight`` -- ``1/n``;
* ``inverse_volatility`` -- ``w_i ∝ 1/σ_i``;
* ``risk_parity`` -- equal risk contributions ``w_i (Σw)_i / wᵀΣw = 1/n``
  (Spinu's convex formulation, L-BFGS-B + Newton polish);
* ``performance_weighted`` -- ``w_i ∝ max(Sharpe_i, 0)`` (per-bar
  ``mean/std``) or ``max(scores_i, 0)``; none positive -> equal weight;
* ``min_variance`` -- long-only minimum variance (SLSQP);
* ``max_sharpe`` -- long-only tangency portfolio, risk-free 0 (SLSQP);
  no positive-mean portfolio -> ``min_variance``.

Zero-variance assets (sample std <= 1e-14, e.g. a sleeve that never traded
in the window) are treated alike by every model: as uncorrelated with the
others, with the smallest positive volatility among them (so a zero-variance
sleeve is never "riskless" to ``min_variance`` nor infinitely good to
``max_sharpe`` / ``performance_weighted``). When every asset has zero
variance the estimated models return equal weight.

SLSQP (``min_variance``, ``max_sharpe``) is checked: its answer is used only
when the polished point is a certified optimum (KKT conditions hold) or SLSQP
reports success with a feasible point; otherwise ConfigError names the model
and the solver's message (no silent fallback to other weights).

Constraints, applied in this order:

1. ``max_assets`` -- keep the top ``max_assets`` by ``ranking`` (higher is
   better; default: per-column Sharpe);
2. ``max_asset_correlation`` -- walking the kept assets best-ranked first,
   drop an asset whose return correlation with an already kept one exceeds
   the threshold;
3. the model on the kept assets;
4. ``max_single_asset_weight`` -- water-filling cap (also passed to the
   min_variance / max_sharpe optimisers as bounds); ConfigError when
   ``cap * n_kept < 1``.

Invalid input raises :class:`raybt.errors.ConfigError` with one line: not a
DataFrame, empty frame, < 2 rows, duplicate / boolean / non-numeric columns,
NaN/inf (naming column and row), a return beyond ±1e100 (fractions are
expected; larger values would overflow the covariance), unknown model, or a
bad constraint (``max_single_asset_weight`` not in (0, 1] or infeasible,
``max_asset_correlation`` not in [-1, 1], ``max_assets`` not an integer >= 1,
``ranking`` / ``scores`` not a Series covering every asset with numbers,
``periods_per_year`` not > 0; booleans are not numbers).
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from raybt.allocation.constraints import (
    aligned_scores,
    cap_weights,
    check_cap,
    check_number,
    correlation_filter,
    rank_assets,
    select_top,
    validate_returns,
)
from raybt.allocation.models import MODELS, risk_contributions, run_model
from raybt.errors import ConfigError

__all__ = ["MODELS", "cap_weights", "compute_weights", "risk_contributions"]


def _check_model(model: str) -> None:
    if model in MODELS:
        return
    close = difflib.get_close_matches(str(model), MODELS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown allocation model {model!r}{hint} (valid: {', '.join(MODELS)})")


def compute_weights(
    model: str,
    returns: pd.DataFrame,
    *,
    max_single_asset_weight: float = 1.0,
    max_asset_correlation: float | None = None,
    max_assets: int | None = None,
    ranking: pd.Series | None = None,
    scores: pd.Series | None = None,
    periods_per_year: float | None = None,
) -> pd.Series:
    """Long-only portfolio weights from per-asset returns.

    Args:
        model: one of :data:`MODELS`.
        returns: simple per-bar returns (fractions), one column per asset,
            rows in time order; at least 2 rows, no NaN/inf.
        max_single_asset_weight: cap on any single weight (fraction).
        max_asset_correlation: drop the worse-ranked asset of any pair whose
            return correlation exceeds this (greedy, best-ranked first).
        max_assets: keep only this many best-ranked assets.
        ranking: asset -> score, higher is better, ``-inf`` ranks last, NaN
            refused (default: per-bar Sharpe ``mean/std``, ddof=1); used by
            ``max_assets`` and the correlation filter.
        scores: asset -> finite score for ``performance_weighted`` (default:
            Sharpe); validated whenever given.
        periods_per_year: accepted for callers that annualise; validated only
            (weights do not depend on annualisation).

    Returns:
        Weights indexed by ``returns.columns`` (same order), >= 0, summing to
        1; assets filtered out get 0.0.

    Raises:
        ConfigError: unknown model, invalid returns or parameters, an
            infeasible cap (``cap * n_kept < 1``), or an optimiser failure
            that could not be verified (naming the model and the message).
    """
    _check_model(model)
    frame = validate_returns(returns)
    if periods_per_year is not None:
        check_number(periods_per_year, "periods_per_year", lo=0.0, lo_open=True)
    cap = check_number(max_single_asset_weight, "max_single_asset_weight", lo=0.0, hi=1.0, lo_open=True)
    check_cap(cap, frame.shape[1])
    if max_asset_correlation is not None:
        check_number(max_asset_correlation, "max_asset_correlation", lo=-1.0, hi=1.0)
    select_top([], max_assets)  # type/range check before any work
    if scores is not None:
        aligned_scores(scores, list(frame.columns), "scores")

    order = rank_assets(frame, ranking)
    order = select_top(order, max_assets)
    order = correlation_filter(frame, order, max_asset_correlation)
    keep = set(order)
    kept = [c for c in frame.columns if c in keep]
    check_cap(cap, len(kept))

    weights = run_model(model, frame[kept], cap, scores)
    if cap < 1.0:
        weights = cap_weights(weights, cap)
    out = pd.Series(0.0, index=frame.columns, dtype=np.float64)
    out.loc[kept] = weights.to_numpy()
    return out
