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
from typing import Iterable, NamedTuple

import numpy as np
import pandas as pd

from raybt.analysis.moments import ReturnMoments, return_moments
from raybt.analysis.nb import sleeve_columns_nb

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

# columns per chunk in the passes over the sleeve equity: about this many
# float64 values per temporary (32 MB), whatever the number of bars
_CHUNK_VALUES = 1 << 22


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


# ------------------------------------------------------------------ capital flows

class Flows(NamedTuple):
    """Capital flows as triplets, one per (bar, asset) with a non-zero net flow.

    ``rows``: bar positions in the equity index; ``cols``: asset positions
    in ``assets``; ``amount``: cash added (+) or removed (-), currency.
    Sorted by (col, row).  The dense frame of :func:`capital_flows` would be
    bars x assets of mostly zeros.
    """

    rows: np.ndarray
    cols: np.ndarray
    amount: np.ndarray
    n_rows: int
    assets: list

    def per_asset(self) -> np.ndarray:
        """Net flow into each asset over all bars (currency)."""
        return np.bincount(self.cols, weights=self.amount, minlength=len(self.assets))

    def dense(self) -> np.ndarray:
        out = np.zeros((self.n_rows, len(self.assets)))
        out[self.rows, self.cols] = self.amount
        return out


def _make_flows(rows, cols, amount, n_rows: int, assets: list) -> Flows:
    """Sum duplicates of (row, col) in input order (as ``np.add.at`` does), drop zeros."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    amount = np.asarray(amount, dtype=np.float64)
    key = cols * max(n_rows, 1) + rows
    uniq, inverse = np.unique(key, return_inverse=True)
    total = np.zeros(len(uniq))
    np.add.at(total, inverse, amount)
    keep = total != 0.0
    uniq, total = uniq[keep], total[keep]
    return Flows(uniq % max(n_rows, 1), uniq // max(n_rows, 1), total, int(n_rows), list(assets))


def _flows_from_multipliers(multipliers: pd.DataFrame, index: pd.DatetimeIndex,
                            assets: list) -> Flows:
    index = pd.DatetimeIndex(index)
    empty = Flows(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), len(index), assets)
    if not len(multipliers) or not len(index):
        return empty
    m = multipliers[multipliers["capital_adjustment"].astype(float) != 0.0]
    cols = pd.Index(assets).get_indexer(m["asset"])
    m, cols = m[cols >= 0], cols[cols >= 0]
    if not len(m):
        return empty
    starts = pd.DatetimeIndex(pd.to_datetime(m["chunk_start"], utc=index.tz is not None))
    if index.tz is not None and starts.tz is None:
        starts = starts.tz_localize(index.tz)
    pos = index.searchsorted(starts)
    ok = pos < len(index)
    return _make_flows(pos[ok], cols[ok], m["capital_adjustment"].to_numpy(float)[ok],
                       len(index), assets)


def _flows_from_frame(flows: pd.DataFrame, index: pd.Index, assets: list) -> Flows:
    if flows.index.equals(index) and list(flows.columns) == list(assets):
        values = flows.to_numpy(dtype=np.float64)
    else:
        values = flows.reindex(index=index, columns=assets).to_numpy(dtype=np.float64)
    rows, cols = np.nonzero((values != 0.0) & ~np.isnan(values))  # NaN = no flow
    order = np.lexsort((rows, cols))
    rows, cols = rows[order], cols[order]
    return Flows(rows.astype(np.int64), cols.astype(np.int64), values[rows, cols],
                 len(index), list(assets))


def _as_flows(flows, index: pd.Index, assets: list) -> Flows | None:
    """``flows`` (None, a wide frame or :class:`Flows`) as triplets for ``assets``."""
    if flows is None:
        return None
    if isinstance(flows, Flows):
        if list(flows.assets) == list(assets) and flows.n_rows == len(index):
            return flows
        flows = pd.DataFrame(flows.dense(), index=index, columns=flows.assets)
    return _flows_from_frame(flows, index, assets)


def capital_flows(multipliers: pd.DataFrame, index: pd.DatetimeIndex,
                  assets: Iterable[str] | None = None) -> pd.DataFrame:
    """Wide frame of cash moved into (+) / out of (-) each sleeve, per bar.

    ``multipliers`` is the long ``multipliers.csv`` table (columns
    ``chunk_start``, ``asset``, ``capital_adjustment``); each adjustment is
    placed on the first bar of ``index`` at or after its ``chunk_start``
    (currency; 0 on every other bar).  Adjustments after the last bar are
    dropped.  Returns a frame with ``index`` and one column per asset
    (bars x assets: :func:`raybt.analysis.analyse_run` keeps the flows as
    triplets instead).
    """
    index = pd.DatetimeIndex(index)
    if assets is None:
        assets = list(pd.unique(multipliers["asset"]))
    f = _flows_from_multipliers(multipliers, index, list(assets))
    return pd.DataFrame(f.dense(), index=index, columns=list(assets))


# ------------------------------------------------------------- passes over sleeves

def _rows_view(equity: pd.DataFrame, names: list) -> np.ndarray | None:
    """The sleeve columns as one (bars, assets) view, when they are consecutive rows of one
    C-contiguous float64 (assets x bars) array: the frame :func:`raybt.result.equity_frame` builds
    around the engine's matrix. None otherwise (a frame read from a file, reordered columns...)."""
    if not names:
        return None
    columns = [equity[name].to_numpy(copy=False) for name in names]
    base = columns[0].base
    if not (isinstance(base, np.ndarray) and base.ndim == 2 and base.dtype == np.float64
            and base.flags.c_contiguous and base.shape[1] == len(equity)):
        return None
    start, row_bytes = base.__array_interface__["data"][0], base.strides[0]
    first = (columns[0].__array_interface__["data"][0] - start) // row_bytes
    for j, col in enumerate(columns):
        if col.base is not base or col.strides != (8,) or \
                col.__array_interface__["data"][0] != start + (first + j) * row_bytes:
            return None
    return base[first:first + len(names)].T


def _column_chunks(equity: pd.DataFrame, names: list):
    """``(j0, j1, values)`` over the sleeve columns, ``values`` a (bars, j1 - j0)
    float64 array: views of the engine's matrix when the columns are its rows
    (:func:`_rows_view`), or of the frame's one float64 block, else chunk-sized
    copies (pandas interleaves the column blocks: two copies of the sleeves,
    ~0.5 s at 100 x 200,000)."""
    whole = _rows_view(equity, names)
    n_rows = max(len(equity), 1)
    width = max(1, _CHUNK_VALUES // n_rows)  # the same chunks either way: the same sums, to the last bit
    for j0 in range(0, len(names), width):
        j1 = min(j0 + width, len(names))
        yield j0, j1, (whole[:, j0:j1] if whole is not None
                       else equity[names[j0:j1]].to_numpy(dtype=np.float64, copy=False))


def _row_totals(equity: pd.DataFrame, names: list) -> np.ndarray:
    """Row sums of the sleeves, NaN skipped (pandas ``sum(axis=1)``).

    One matrix-vector product per column chunk; only chunks with a NaN are
    added column by column with the NaNs masked.
    """
    total = np.zeros(len(equity))
    for _, _, values in _column_chunks(equity, names):
        part = values @ np.ones(values.shape[1])
        if np.isnan(part).any():
            part = np.zeros(len(equity))
            for j in range(values.shape[1]):
                col = values[:, j]
                np.add(part, col, out=part, where=~np.isnan(col))
        total += part
    return total


class SleeveStats(NamedTuple):
    """Per-sleeve results of one pass over the sleeve equity (arrays by asset).

    ``returns``: (bars - 1, assets) simple returns (F-ordered; None when not
    asked for); ``first``/``last``: first and last equity; ``flow_total``:
    net flows per asset (0 without flows); ``share``: average share of the
    sleeves' row sum (not normalised; None when not asked for);
    ``max_drawdown`` and ``total_return`` (None when not asked for): see
    :func:`raybt.analysis.asset_table`.
    """

    assets: list
    returns: np.ndarray | None
    first: np.ndarray
    last: np.ndarray
    flow_total: np.ndarray
    share: np.ndarray | None
    max_drawdown: np.ndarray | None
    total_return: np.ndarray | None


def _mean_shares(V: np.ndarray, total: np.ndarray, inv_total: np.ndarray | None) -> np.ndarray:
    """Mean over the bars of ``V / total`` per column, NaN shares skipped
    (pandas ``div(...).mean(skipna=True)``); one matrix-vector product when no
    share can be NaN (``inv_total`` given: no zero or NaN total, no NaN in V)."""
    if inv_total is not None:
        return (V.T @ inv_total) / len(total)
    S = np.divide(V, total[:, None], out=np.empty(V.shape, order="F"))
    valid = ~np.isnan(S)
    S[~valid] = 0.0
    return S.sum(axis=0) / valid.sum(axis=0)


def sleeve_pass(equity: pd.DataFrame, names: list, flows: Flows | None, *,
                returns: bool = True, shares: bool = True, stats: bool = True) -> SleeveStats:
    """Everything per sleeve from the equity frame, in one pass over it.

    Column chunks of the frame (views of a single float64 block, else
    chunk-sized copies) go through one numba kernel
    (:func:`raybt.analysis.nb.sleeve_columns_nb`) that reads each column once
    in bar order; the equity shares are a matrix-vector product per chunk.
    Holds the returns matrix (when ``returns``) and never a second full copy
    of the sleeve equity.  ``stats`` with ``flows`` needs ``returns``.

    Same arithmetic as the per-sleeve definitions (``E_t / (E_{t-1} + F_t) - 1``,
    :func:`raybt.metrics.drawdown_series`, the wealth index
    ``cumprod(1 + r)``), element by element and in the same order.  Only the
    equity shares differ in rounding (~1e-16 relative).
    """
    T, n = len(equity), len(names)
    R = np.empty((max(T - 1, 0), n), order="F") if returns else None
    first, last = np.full(n, math.nan), np.full(n, math.nan)
    share = np.full(n, math.nan) if shares else None
    mdd = np.full(n, math.nan) if stats else None
    tot = np.full(n, math.nan) if stats else None
    flow_total = flows.per_asset() if flows is not None else np.zeros(n)
    total = inv_total = None
    if shares and T:
        total = _row_totals(equity, names)
        if np.isfinite(total).all() and (total != 0).all():
            inv_total = 1.0 / total  # (a NaN sleeve value would have made its total NaN)
    if flows is not None and returns:
        at = flows.rows >= 1  # a flow on the first bar has no return to adjust
        f_rows, f_cols, f_amount = flows.rows[at], flows.cols[at], flows.amount[at]
    else:
        f_rows = f_cols = np.zeros(0, np.int64)
        f_amount = np.zeros(0)
    by_col = np.searchsorted(f_cols, np.arange(n + 1))  # flows of col j: [by_col[j], by_col[j+1])
    for j0, j1, V in _column_chunks(equity, names):
        if not T:
            continue
        first[j0:j1], last[j0:j1] = V[0], V[-1]
        if shares:
            with np.errstate(divide="ignore", invalid="ignore"):
                share[j0:j1] = _mean_shares(V, total, inv_total)
        if returns or stats:
            lo, hi = by_col[j0], by_col[j1]
            sleeve_columns_nb(
                np.asfortranarray(V), R[:, j0:j1] if returns else np.empty((0, j1 - j0), order="F"),
                by_col[j0:j1 + 1] - lo, f_rows[lo:hi], f_amount[lo:hi],
                flows is not None, returns, stats,
                mdd[j0:j1] if stats else np.empty(j1 - j0), tot[j0:j1] if stats else np.empty(j1 - j0))
    return SleeveStats(list(names), R, first, last, flow_total, share, mdd, tot)


# ------------------------------------------------------------------ public API

def sleeve_returns(equity: pd.DataFrame, assets: Iterable[str] | None = None,
                   flows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-bar simple returns (fractions) of each sleeve's equity.

    ``r_t = E_t / (E_{t-1} + F_t) - 1`` with ``F`` the capital flows (0 when
    ``flows`` is None, giving ``E_t / E_{t-1} - 1``).  The first row (no
    previous bar) is dropped, so the result has ``len(equity) - 1`` rows
    indexed by the later bar's timestamp.  A sleeve at zero equity gives
    inf/NaN returns (not masked).  The frame wraps one (bars - 1, assets)
    float64 array.
    """
    names = _assets(equity, assets)
    f = _as_flows(flows, equity.index, names)
    st = sleeve_pass(equity, names, f, returns=True, shares=False, stats=False)
    return _returns_frame(st.returns, equity.index, names)


def _returns_frame(R: np.ndarray, index: pd.Index, names: list) -> pd.DataFrame:
    return pd.DataFrame(R, index=index[1:], columns=names, copy=False)


def portfolio_equity(equity: pd.DataFrame, assets: Iterable[str] | None = None) -> pd.Series:
    """The ``equity`` column, or the row sum of the sleeves when it is absent."""
    if "equity" in equity.columns:
        return equity["equity"].astype(np.float64)
    return equity[_assets(equity, assets)].sum(axis=1).rename("equity")


def _first_last(equity: pd.DataFrame, names: list) -> tuple[np.ndarray, np.ndarray]:
    ends = equity[names].iloc[[0, -1]].to_numpy(dtype=np.float64)
    return ends[0], ends[1]


def pnl_attribution(equity: pd.DataFrame, assets: Iterable[str] | None = None,
                    flows: pd.DataFrame | None = None) -> pd.Series:
    """Each asset's PnL contribution in account currency.

    ``pnl_i = E_i[last] - E_i[first] - sum_t F_i[t]`` (capital flows excluded
    when given).  The contributions sum to the portfolio PnL
    ``equity[last] - equity[first]`` up to float rounding (minus the net
    external flow, which is 0 for internal rebalancing).
    """
    names = _assets(equity, assets)
    first, last = _first_last(equity, names)
    f = _as_flows(flows, equity.index, names)
    pnl = last - first
    if f is not None:
        pnl = pnl - f.per_asset()
    return pd.Series(pnl, index=names, name="pnl")


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
    to 1 even when only a subset of assets is passed.  Bars where a share is
    NaN are skipped for that sleeve.
    """
    names = _assets(equity, assets)
    st = sleeve_pass(equity, names, None, returns=False, shares=True, stats=False)
    return _normalised_weights(st.share, names)


def _normalised_weights(share: np.ndarray, names: list) -> pd.Series:
    return pd.Series(share / share.sum(), index=names, name="weight")


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


def _risk_shares(mom: ReturnMoments, w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    marginal = mom.cov @ w
    total = float(w @ marginal)
    if not math.isfinite(total) or total <= 0:
        return np.full(len(w), math.nan)
    return w * marginal / total


def risk_attribution(returns: pd.DataFrame, weights=None,
                     equity: pd.DataFrame | None = None) -> pd.Series:
    """Each asset's share of portfolio variance (Euler / component risk).

    ``share_i = w_i (Σ w)_i / (wᵀ Σ w)`` with ``Σ`` the sample covariance
    (ddof=1) of the per-bar ``returns`` (rows with a non-finite value are
    dropped; :func:`raybt.analysis.moments.return_moments`) and ``w`` the
    weights, which sum to 1 over the shares.  The portfolio is the
    fixed-weight mix ``Σ w_i r_i`` (an approximation of a drifting-weight
    portfolio).

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
    shares = _risk_shares(return_moments(returns), w.to_numpy(dtype=np.float64))
    return pd.Series(shares, index=assets, name="risk_share")
