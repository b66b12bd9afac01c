"""Input validation, asset selection and the weight cap.

Conventions: returns are simple per-bar fractions, one column per asset;
statistics use the sample (``ddof=1``) standard deviation; weights are
long-only fractions summing to 1. Every user error raises
:class:`raybt.errors.ConfigError` with a one-line message.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

from raybt.errors import ConfigError

#: A standard deviation at or below this (in return units) counts as zero.
ZERO_VOL = 1e-14


def validate_returns(returns: pd.DataFrame) -> pd.DataFrame:
    """Check ``returns`` and return it as a float64 frame.

    Raises ConfigError when it is not a DataFrame, has no columns, fewer than
    2 rows, duplicate or non-numeric columns, or any NaN/inf value (naming
    the column and the row).
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
    try:
        values = returns.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        bad = [c for c in returns.columns if not pd.api.types.is_numeric_dtype(returns[c])]
        raise ConfigError(f"allocation: non-numeric returns in column(s) {bad}") from None
    bad_mask = ~np.isfinite(values)
    if bad_mask.any():
        row, col = np.argwhere(bad_mask)[0]
        kind = "NaN" if np.isnan(values[row, col]) else "inf"
        raise ConfigError(
            f"allocation: {kind} in returns column {returns.columns[col]!r} at row {returns.index[row]!r}"
        )
    return pd.DataFrame(values, index=returns.index, columns=returns.columns)


def sharpe_ratios(returns: pd.DataFrame) -> pd.Series:
    """Per-bar Sharpe ratio ``mean / std(ddof=1)`` of each column (risk-free 0).

    Not annualised (scaling does not change rankings or proportions). A
    zero-volatility column gets Sharpe 0.
    """
    mean = returns.mean()
    std = returns.std(ddof=1)
    sharpe = mean / std.where(std > ZERO_VOL)
    return sharpe.fillna(0.0).astype(np.float64)


def aligned_scores(scores: pd.Series, assets: Sequence[Hashable], what: str) -> pd.Series:
    """``scores`` restricted to ``assets`` (extra entries ignored).

    Raises ConfigError when an asset is missing or its score is not finite.
    """
    if not isinstance(scores, pd.Series):
        raise ConfigError(f"allocation: {what} must be a pandas Series indexed by asset name")
    missing = [a for a in assets if a not in scores.index]
    if missing:
        raise ConfigError(f"allocation: {what} has no value for asset(s) {missing}")
    out = pd.Series([scores[a] for a in assets], index=pd.Index(list(assets)), dtype=np.float64)
    bad = out.index[~np.isfinite(out.to_numpy())].tolist()
    if bad:
        raise ConfigError(f"allocation: {what} is NaN/inf for asset(s) {bad}")
    return out


def rank_assets(returns: pd.DataFrame, ranking: pd.Series | None) -> list[Hashable]:
    """Asset names best first: by ``ranking`` (higher is better) or, when it is
    None, by per-column Sharpe. Ties keep column order."""
    assets = list(returns.columns)
    score = sharpe_ratios(returns) if ranking is None else aligned_scores(ranking, assets, "ranking")
    order = np.argsort(-score.to_numpy(), kind="stable")
    return [assets[i] for i in order]


def select_top(order: Sequence[Hashable], max_assets: int | None) -> list[Hashable]:
    """The first ``max_assets`` of ``order`` (all of them when None)."""
    if max_assets is None:
        return list(order)
    if isinstance(max_assets, bool) or not isinstance(max_assets, (int, np.integer)) or max_assets < 1:
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
    if not np.isfinite(threshold) or not -1.0 <= threshold <= 1.0:
        raise ConfigError(f"allocation: max_asset_correlation must be in [-1, 1], got {threshold!r}")
    values = returns[list(order)].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(values, rowvar=False) if len(order) > 1 else np.ones((1, 1))
    kept: list[int] = []
    for i in range(len(order)):
        if not any(corr[i, j] > threshold for j in kept):  # NaN compares False
            kept.append(i)
    return [order[i] for i in kept]


def check_cap(cap: float, n_assets: int) -> None:
    """Raise ConfigError unless ``0 < cap`` and ``cap * n_assets >= 1``."""
    if not np.isfinite(cap) or cap <= 0:
        raise ConfigError(f"allocation: max_single_asset_weight must be > 0, got {cap!r}")
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
