"""Per-asset attribution of a portfolio run's PnL and risk (pure functions).

Inputs are the frames of a finished run folder: ``portfolio_equity.csv``
loaded with ``pd.read_csv(path, index_col="timestamp", parse_dates=True)``
(columns ``equity``, ``drawdown`` and one sleeve-equity column per asset, in
account currency; the portfolio equity is the row sum of the sleeves).

Conventions (those of :mod:`raybt.metrics`):

* returns are bar-to-bar *simple* returns as fractions (N bars -> N-1
  returns, the first row dropped);
* PnL is in account currency; contributions and shares are fractions
  (0.01 = 1 %), never percent;
* risk-free rate 0; sample (co)variances use ``ddof=1``.

Capital flows (rebalancing)
---------------------------
A portfolio that rebalances moves cash between sleeves: ``multipliers.csv``
holds, per chunk and asset, the ``capital_adjustment`` added to the sleeve's
cash at the start of the chunk (its first bar, ``chunk_start``).  Such a
transfer shows up as a jump in the sleeve equity that is *not* trading PnL.
Every function here takes an optional ``flows`` frame (see
:func:`capital_flows`; same index as the equity, one column per asset, the
cash added to the sleeve at that bar, 0 elsewhere).  With ``flows``:

* a sleeve's PnL is ``last - first - sum(flows)``;
* a sleeve's return over bar t treats the flow as arriving at the *start* of
  the bar (which is what the kernel does): ``r_t = E_t / (E_{t-1} + F_t) - 1``
  (a time-weighted return).

Without ``flows`` sleeve equity is taken at face value (``last - first``),
which is exact for runs without rebalancing but mis-attributes transfers as
PnL otherwise.  Internal transfers net to zero across sleeves at every bar,
so in both cases the attributed PnLs sum to the portfolio PnL.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd

__all__ = [
    "NON_ASSET_COLUMNS",
    "asset_columns",
    "capital_flows",
    "sleeve_returns",
    "portfolio_equity",
    "pnl_attribution",
    "return_contribution",
    "equity_weights",
    "as_weight_series",
    "risk_attribution",
]

NON_ASSET_COLUMNS = ("equity", "drawdown")


def asset_columns(equity: pd.DataFrame) -> list[str]:
    """The sleeve columns of a ``portfolio_equity`` frame (all but equity/drawdown)."""
    return [c for c in equity.columns if c not in NON_ASSET_COLUMNS]


def _assets(equity: pd.DataFrame, assets: Iterable[str] | None) -> list[str]:
    names = asset_columns(equity) if assets is None else list(assets)
    missing = [a for a in names if a not in equity.columns]
    if missing:
        raise KeyError(f"assets not in the equity frame: {missing}")
    if not names:
        raise ValueError("no asset columns")
    return names


def _flows_frame(flows: pd.DataFrame | None, equity: pd.DataFrame,
                 assets: list[str]) -> pd.DataFrame:
    """``flows`` aligned to the equity index and the assets (missing -> 0)."""
    if flows is None:
        return pd.DataFrame(0.0, index=equity.index, columns=assets)
    return (flows.reindex(index=equity.index, columns=assets)
            .fillna(0.0).astype(np.float64))


def capital_flows(multipliers: pd.DataFrame, index: pd.DatetimeIndex,
                  assets: Iterable[str] | None = None) -> pd.DataFrame:
    """Wide frame of cash moved into (+) / out of (-) each sleeve, per bar.

    ``multipliers`` is the long ``multipliers.csv`` table (columns
    ``chunk_start``, ``asset``, ``capital_adjustment``); each adjustment is
    placed on the first bar of ``index`` at or after its ``chunk_start``
    (currency; 0 on every other bar).  Adjustments after the last bar are
    dropped.  Returns a frame with ``index`` and one column per asset.
    """
    index = pd.DatetimeIndex(index)
    if assets is None:
        assets = list(pd.unique(multipliers["asset"]))
    assets = list(assets)
    out = np.zeros((len(index), len(assets)))
    if len(multipliers) and len(index):
        m = multipliers[multipliers["capital_adjustment"].astype(float) != 0.0]
        col = {a: j for j, a in enumerate(assets)}
        m = m[m["asset"].isin(col)]
        if len(m):
            starts = pd.DatetimeIndex(pd.to_datetime(m["chunk_start"], utc=index.tz is not None))
            if index.tz is not None and starts.tz is None:
                starts = starts.tz_localize(index.tz)
            pos = index.searchsorted(starts)
            ok = pos < len(index)
            rows = pos[ok]
            cols = np.array([col[a] for a in m["asset"]])[ok]
            np.add.at(out, (rows, cols), m["capital_adjustment"].to_numpy(float)[ok])
    return pd.DataFrame(out, index=index, columns=assets)


def sleeve_returns(equity: pd.DataFrame, assets: Iterable[str] | None = None,
                   flows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-bar simple returns (fractions) of each sleeve's equity.

    ``r_t = E_t / (E_{t-1} + F_t) - 1`` with ``F`` the capital flows (0 when
    ``flows`` is None, giving ``E_t / E_{t-1} - 1``).  The first row (no
    previous bar) is dropped, so the result has ``len(equity) - 1`` rows
    indexed by the later bar's timestamp.  A sleeve at zero equity gives
    inf/NaN returns (not masked).
    """
    names = _assets(equity, assets)
    values = equity[names].to_numpy(dtype=np.float64)
    f = _flows_frame(flows, equity, names).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        r = values[1:] / (values[:-1] + f[1:]) - 1.0
    return pd.DataFrame(r, index=equity.index[1:], columns=names)


def portfolio_equity(equity: pd.DataFrame, assets: Iterable[str] | None = None) -> pd.Series:
    """The ``equity`` column, or the row sum of the sleeves when it is absent."""
    if "equity" in equity.columns:
        return equity["equity"].astype(np.float64)
    return equity[_assets(equity, assets)].sum(axis=1).rename("equity")


def pnl_attribution(equity: pd.DataFrame, assets: Iterable[str] | None = None,
                    flows: pd.DataFrame | None = None) -> pd.Series:
    """Each asset's PnL contribution in account currency.

    ``pnl_i = E_i[last] - E_i[first] - sum_t F_i[t]`` (capital flows excluded
    when given).  The contributions sum to the portfolio PnL
    ``equity[last] - equity[first]`` up to float rounding (minus the net
    external flow, which is 0 for internal rebalancing).
    """
    names = _assets(equity, assets)
    sleeves = equity[names].astype(np.float64)
    pnl = sleeves.iloc[-1] - sleeves.iloc[0]
    if flows is not None:
        pnl = pnl - _flows_frame(flows, equity, names).sum(axis=0)
    return pnl.rename("pnl")


def return_contribution(equity: pd.DataFrame, assets: Iterable[str] | None = None,
                        flows: pd.DataFrame | None = None) -> pd.Series:
    """Each asset's PnL as a fraction of the *initial portfolio* equity.

    Sums to the portfolio total return ``equity[last] / equity[first] - 1``.
    """
    names = _assets(equity, assets)
    initial = float(portfolio_equity(equity, names).iloc[0])
    return (pnl_attribution(equity, names, flows) / initial).rename("return_contribution")


def equity_weights(equity: pd.DataFrame, assets: Iterable[str] | None = None) -> pd.Series:
    """Each sleeve's average share of portfolio equity over all bars (sums to 1).

    Shares are taken against the row sum of the listed sleeves, so they sum
    to 1 even when only a subset of assets is passed.
    """
    names = _assets(equity, assets)
    sleeves = equity[names].astype(np.float64)
    total = sleeves.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = sleeves.div(total, axis=0)
    w = share.mean(axis=0, skipna=True)
    return (w / w.sum()).rename("weight")


def as_weight_series(weights, assets: Iterable[str] | None = None) -> pd.Series:
    """Normalise weights given as a Series (asset -> weight), a dict, an array
    in ``assets`` order, or a ``weights.csv`` frame (columns asset, weight)
    into a float Series indexed by ``assets`` (missing assets -> 0).
    Not rescaled."""
    if isinstance(weights, pd.DataFrame):
        if {"asset", "weight"} <= set(weights.columns):
            weights = weights.set_index("asset")["weight"]
        elif weights.shape[1] == 1:
            weights = weights.iloc[:, 0]
        else:
            raise ValueError("weights frame needs columns 'asset' and 'weight'")
    if isinstance(weights, dict):
        weights = pd.Series(weights, dtype=np.float64)
    if not isinstance(weights, pd.Series):
        arr = np.asarray(weights, dtype=np.float64).ravel()
        if assets is None or len(list(assets)) != len(arr):
            raise ValueError("array weights need a matching list of assets")
        return pd.Series(arr, index=list(assets), name="weight")
    weights = weights.astype(np.float64)
    if assets is not None:
        weights = weights.reindex(list(assets)).fillna(0.0)
    return weights.rename("weight")


def _clean_returns(returns: pd.DataFrame) -> pd.DataFrame:
    return returns.replace([np.inf, -np.inf], np.nan).dropna(how="any")


def risk_attribution(returns: pd.DataFrame, weights=None,
                     equity: pd.DataFrame | None = None) -> pd.Series:
    """Each asset's share of portfolio variance (Euler / component risk).

    ``share_i = w_i (Σ w)_i / (wᵀ Σ w)`` with ``Σ`` the sample covariance
    (ddof=1) of the per-bar ``returns`` (rows with a non-finite value are
    dropped) and ``w`` the weights, which sum to 1 over the shares.  The
    portfolio is the fixed-weight mix ``Σ w_i r_i`` (an approximation of a
    drifting-weight portfolio).

    Weights: ``weights`` if given (Series/dict/array, rescaling does not
    change the shares); otherwise each sleeve's average share of portfolio
    equity when ``equity`` (the run's equity frame) is given; otherwise equal
    weights.

    Shares can be **negative**: an asset negatively correlated with the rest
    (a hedge) *reduces* portfolio variance, and the other shares then exceed
    1 in total.  A zero-variance portfolio gives NaN shares.
    """
    assets = list(returns.columns)
    if weights is None:
        if equity is not None:
            w = equity_weights(equity, assets)
        else:
            w = pd.Series(1.0 / len(assets), index=assets)
    else:
        w = as_weight_series(weights, assets)
    wv = w.to_numpy(dtype=np.float64)
    cov = np.atleast_2d(_clean_returns(returns).cov(ddof=1).to_numpy())
    marginal = cov @ wv
    total = float(wv @ marginal)
    if not math.isfinite(total) or total <= 0:
        return pd.Series(np.nan, index=assets, name="risk_share")
    return pd.Series(wv * marginal / total, index=assets, name="risk_share")
