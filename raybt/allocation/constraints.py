"""Input validation, asset selection and the weight cap.

Conventions: returns are simple per-bar fractions, one column per asset;
statistics use the sample (``ddof=1``) standard deviation; weights are
long-only fractions summing to 1. Every user error raises
:class:`raybt.errors.ConfigError` with a one-line message.

Zero-variance columns (sample std <= :data:`ZERO_VOL`, e.g. a sleeve that
never traded in the window) get the same treatment from every model: such a
column counts as uncorrelated with the others, with the smallest positive
volatility among them (:func:`effective_vols`). When every column has zero
variance the models fall back to equal weight.
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

from raybt.errors import ConfigError

#: A standard deviation at or below this (in return units) counts as zero.
ZERO_VOL = 1e-14

#: Largest accepted magnitude of a per-bar return. Returns are fractions
#: (0.01 = 1%); beyond this the statistics (variance, covariance) would come
#: close to float64 overflow, so such data is refused rather than rounded to
#: meaningless weights.
MAX_ABS_RETURN = 1e100


def check_number(value, name: str, *, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False) -> float:
    """``value`` as a float: a real number (not a bool) in ``[lo, hi]`` (``(lo, hi]`` when ``lo_open``).

    ConfigError ``allocation: <name> must be ...`` otherwise.
    """
    if lo is not None and hi is not None:
        rng = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
    elif lo is not None:
        rng = f"{'>' if lo_open else '>='} {lo:g}"
    else:
        rng = "finite"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ConfigError(f"allocation: {name} must be a number {rng}, got {value!r}")
    x = float(value)
    if (not np.isfinite(x) or (lo is not None and (x < lo or (lo_open and x == lo)))
            or (hi is not None and x > hi)):
        raise ConfigError(f"allocation: {name} must be {rng}, got {value!r}")
    return x


def validate_returns(returns: pd.DataFrame) -> pd.DataFrame:
    """Check ``returns`` and return it as a float64 frame.

    Raises ConfigError when it is not a DataFrame, has no columns, fewer than
    2 rows, duplicate, boolean or non-numeric columns, any NaN/inf value, or a
    value beyond ±:data:`MAX_ABS_RETURN` (naming the column and the row).
    """
    if not isinstance(returns, pd.DataFrame):
        raise ConfigError(f"allocation: returns must be a pandas DataFrame, got {type(returns).__name__}")
    if returns.shape[1] == 0 or returns.shape[0] == 0:
        raise ConfigError("allocation: returns frame is empty (no assets or no rows)")
    if returns.shape[0] < 2:
        raise ConfigError(f"allocation: need at least 2 rows of returns, got {returns.shape[0]}")
    dupes = returns.columns[returns.columns.duplicated()].unique().tolist()
    if dupes:
        raise ConfigError(f"allocation: duplicate asset columns in returns: {dupes}")
    bad = [c for c, dtype in returns.dtypes.items()
           if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype)]
    if bad:
        # object columns holding numbers are accepted below; booleans and text are not
        bad = [c for c in bad if pd.api.types.is_bool_dtype(returns[c].dtype)
               or not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                          for v in returns[c].tolist())]
    if bad:
        raise ConfigError(f"allocation: non-numeric returns in column(s) {bad} "
                          f"(dtype {returns[bad[0]].dtype}; need numbers, fractions per bar)")
    values = returns.to_numpy(dtype=np.float64)
    bad_mask = ~np.isfinite(values)
    if bad_mask.any():
        row, col = np.argwhere(bad_mask)[0]
        kind = "NaN" if np.isnan(values[row, col]) else "inf"
        raise ConfigError(
            f"allocation: {kind} in returns column {returns.columns[col]!r} at row {returns.index[row]!r}"
        )
    huge = np.abs(values) > MAX_ABS_RETURN
    if huge.any():
        row, col = np.argwhere(huge)[0]
        raise ConfigError(
            f"allocation: return {values[row, col]:.3g} in column {returns.columns[col]!r} at row "
            f"{returns.index[row]!r} is beyond ±{MAX_ABS_RETURN:g}: returns must be simple per-bar "
            f"fractions (0.01 = 1%)"
        )
    return pd.DataFrame(values, index=returns.index, columns=returns.columns)


def effective_vols(returns: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """``(vols, zero)``: sample vols (ddof=1) with every zero-variance column's vol
    replaced by the smallest positive vol, and the mask of those columns.
    None when every column has zero variance."""
    vol = returns.std(ddof=1).to_numpy(dtype=np.float64)
    zero = ~(vol > ZERO_VOL)
    if zero.all():
        return None
    return np.where(zero, vol[~zero].min(), vol), zero


def sharpe_ratios(returns: pd.DataFrame) -> pd.Series:
    """Per-bar Sharpe ratio ``mean / std(ddof=1)`` of each column (risk-free 0).

    Not annualised (scaling does not change rankings or proportions). A
    zero-volatility column's std is the smallest positive one among the
    others (:func:`effective_vols`); when every column has zero volatility
    every Sharpe is 0 (undefined).
    """
    vols = effective_vols(returns)
    if vols is None:
        return pd.Series(0.0, index=returns.columns, dtype=np.float64)
    return pd.Series(returns.mean().to_numpy(dtype=np.float64) / vols[0], index=returns.columns,
                     dtype=np.float64)


def aligned_scores(scores: pd.Series, assets: Sequence[Hashable], what: str, *,
                   allow_inf: bool = False) -> pd.Series:
    """``scores`` restricted to ``assets`` (extra entries ignored).

    Raises ConfigError when ``scores`` is not a Series, names an asset twice,
    lacks an asset, or holds a non-numeric or NaN value for one (inf too,
    unless ``allow_inf``: a ranking of -inf means "rank last").
    """
    if not isinstance(scores, pd.Series):
        raise ConfigError(f"allocation: {what} must be a pandas Series indexed by asset name, "
                          f"got {type(scores).__name__}")
    dupes = scores.index[scores.index.duplicated()].unique().tolist()
    if dupes:
        raise ConfigError(f"allocation: {what} names asset(s) {dupes} more than once")
    missing = [a for a in assets if a not in scores.index]
    if missing:
        raise ConfigError(f"allocation: {what} has no value for asset(s) {missing}")
    values = []
    for a in assets:
        v = scores[a]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise ConfigError(f"allocation: {what} for asset {a!r} must be a number, got {v!r}")
        values.append(float(v))
    out = pd.Series(values, index=pd.Index(list(assets)), dtype=np.float64)
    x = out.to_numpy()
    bad = out.index[np.isnan(x) if allow_inf else ~np.isfinite(x)].tolist()
    if bad:
        raise ConfigError(f"allocation: {what} is {'NaN' if allow_inf else 'NaN/inf'} for asset(s) {bad}")
    return out


def rank_assets(returns: pd.DataFrame, ranking: pd.Series | None) -> list[Hashable]:
    """Asset names best first: by ``ranking`` (higher is better, -inf last) or,
    when it is None, by per-column Sharpe. Ties keep column order."""
    assets = list(returns.columns)
    if ranking is None:
        return rank_order(assets, sharpe_ratios(returns))
    return rank_order(assets, ranking)


def rank_order(assets: Sequence[Hashable], ranking: pd.Series) -> list[Hashable]:
    """``assets`` best first by ``ranking`` (higher is better; -inf ranks last;
    NaN or a missing asset is a ConfigError). Ties keep the given order."""
    assets = list(assets)
    score = aligned_scores(ranking, assets, "ranking", allow_inf=True)
    order = np.argsort(-score.to_numpy(), kind="stable")
    return [assets[i] for i in order]


def select_top(order: Sequence[Hashable], max_assets: int | None) -> list[Hashable]:
    """The first ``max_assets`` of ``order`` (all of them when None)."""
    if max_assets is None:
        return list(order)
    if isinstance(max_assets, (bool, np.bool_)) or not isinstance(max_assets, (int, np.integer)) or max_assets < 1:
        raise ConfigError(f"allocation: max_assets must be an integer >= 1, got {max_assets!r}")
    return list(order)[: int(max_assets)]


def correlation_filter(
    returns: pd.DataFrame, order: Sequence[Hashable], threshold: float | None
) -> list[Hashable]:
    """Greedy de-correlation: walk ``order`` (best first) and keep an asset
    unless its return correlation with an already kept asset exceeds
    ``threshold`` (strictly, signed). A zero-volatility asset has no defined
    correlation and is never dropped by this filter."""
    if threshold is None:
        return list(order)
    threshold = check_number(threshold, "max_asset_correlation", lo=-1.0, hi=1.0)
    values = returns[list(order)].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(values, rowvar=False) if len(order) > 1 else np.ones((1, 1))
    kept: list[int] = []
    for i in range(len(order)):
        if not any(corr[i, j] > threshold for j in kept):  # NaN compares False
            kept.append(i)
    return [order[i] for i in kept]


def check_cap(cap: float, n_assets: int) -> None:
    """Raise ConfigError unless ``0 < cap <= 1`` and ``cap * n_assets >= 1``."""
    cap = check_number(cap, "max_single_asset_weight", lo=0.0, hi=1.0, lo_open=True)
    if cap * n_assets < 1.0 - 1e-12:
        raise ConfigError(
            f"allocation: max_single_asset_weight={cap} is infeasible for {n_assets} asset(s) "
            f"(cap * n_assets = {cap * n_assets:.6g} < 1)"
        )


def cap_weights(weights: pd.Series, cap: float) -> pd.Series:
    """Cap every weight at ``cap`` by water-filling.

    ``weights`` (non-negative, positive sum) are first normalised to sum 1.
    Each weight above ``cap`` is set to ``cap`` and the excess is shared
    among the uncapped assets pro-rata to their weights, repeatedly until none
    exceeds the cap. If the uncapped assets all have weight 0 the remainder is
    shared equally among them (the only way to stay fully invested). The
    result sums to 1; ConfigError when ``cap * len(weights) < 1``.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        raise ConfigError("allocation: cannot cap an empty weight vector")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError("allocation: weights to cap must be finite, non-negative and not all zero")
    check_cap(cap, w.size)
    base = w / w.sum()
    capped = np.zeros(w.size, dtype=bool)
    out = base.copy()
    while True:
        free = ~capped
        remaining = 1.0 - cap * capped.sum()
        if not free.any():
            break
        total = base[free].sum()
        if total > 0:
            out[free] = remaining * (base[free] / total)
        else:
            out[free] = remaining / free.sum()
        out[capped] = cap
        over = free & (out > cap)
        if not over.any():
            break
        capped |= over
    out[capped] = cap
    return pd.Series(out, index=weights.index, dtype=np.float64)
