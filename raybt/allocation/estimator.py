"""Portfolio weights estimated from the sleeves' strategy returns, without look-ahead.

The estimation input is each asset's *strategy* equity (the kernel run on its
own, with the portfolio rules off), never its price: a mean-reversion sleeve's
risk is not its underlying's.

* At the start: the first ``allocation.lookback`` of the union timeline is an
  estimation window. Every asset's strategy runs over it on its own; the
  per-bar returns of those equities (on the union timeline, 0 where an asset
  has no bar) feed :func:`raybt.allocation.compute_weights` with the model and
  constraints of the config. The portfolio backtest then starts at the first
  bar after the window, so no weight uses a bar the portfolio trades on.
  Assets left at weight 0 by the selection (``max_assets``,
  ``max_asset_correlation``) are not simulated.
* At each rebalance (``rebalance: daily|weekly|monthly``) the coordinator
  re-estimates the model's weights among the selected assets from the sleeves'
  per-bar returns (net of earlier rebalancing transfers) over the trailing
  ``lookback`` ending at the decision time, then moves cash to them.
  Selection is decided once, at the start.
* ``equal_weight`` with no selection constraint needs no estimate: the
  backtest uses the whole timeline and 1/n weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from raybt.errors import ConfigError

#: allocation models whose weights come from an estimate
ESTIMATED = ("inverse_volatility", "risk_parity", "performance_weighted", "min_variance", "max_sharpe")


@dataclass(frozen=True)
class WeightEstimator:
    """The allocation settings as a picklable callable (it travels to the coordinator actor).

    ``ranking``: per-asset scores (higher is better, -inf last, portfolio
    order) used by the ``max_assets`` selection and the correlation filter;
    ``None`` ranks by the estimation window's Sharpe. See
    :func:`raybt.config.resolve.preference_ranking` for the scores ``raybt run``
    and ``raybt sweep`` pass.
    """

    model: str
    max_single_asset_weight: float | None = None
    max_asset_correlation: float | None = None
    max_assets: int | None = None
    ranking: tuple | None = None

    @classmethod
    def from_config(cls, allocation, ranking=None) -> "WeightEstimator":
        return cls(allocation.model, allocation.max_single_asset_weight, allocation.max_asset_correlation,
                   allocation.max_assets, None if ranking is None else tuple(float(x) for x in ranking))

    @property
    def selects(self) -> bool:
        """True when the starting estimate may drop assets."""
        return self.max_asset_correlation is not None or self.max_assets is not None

    @property
    def needs_window(self) -> bool:
        """True when the start needs an estimation window of strategy returns."""
        return (self.model in ESTIMATED or self.max_asset_correlation is not None
                or (self.max_assets is not None and self.ranking is None))

    @property
    def reestimates(self) -> bool:
        return self.model in ESTIMATED

    def _cap(self) -> float:
        return 1.0 if self.max_single_asset_weight is None else float(self.max_single_asset_weight)

    def initial(self, names, returns: pd.DataFrame | None) -> pd.Series:
        """Starting weights (selection included); ``returns``: the estimation window's, if any."""
        from raybt.allocation import compute_weights

        from raybt.allocation.constraints import rank_order, select_top

        names = list(names)
        ranking = None if self.ranking is None else pd.Series(self.ranking, index=names)
        if returns is None:  # equal weight, optionally the top max_assets of the given ranking
            chosen = pd.Series(0.0, index=names)
            # same ordering rule as compute_weights: higher first, -inf last, ties in portfolio order
            keep = names if ranking is None or self.max_assets is None else \
                select_top(rank_order(names, ranking), self.max_assets)
            chosen[keep] = 1.0 / len(keep)
            return chosen
        return compute_weights(self.model, returns, max_single_asset_weight=self._cap(),
                               max_asset_correlation=self.max_asset_correlation, max_assets=self.max_assets,
                               ranking=ranking)

    def rebalance(self, returns: np.ndarray, names) -> np.ndarray:
        """Target weights at a rebalance: the model (and cap) on the selected assets' trailing returns."""
        from raybt.allocation import compute_weights

        frame = pd.DataFrame(returns, columns=list(names))
        return compute_weights(self.model, frame, max_single_asset_weight=self._cap()).to_numpy(np.float64)


def window_end(timeline: pd.DatetimeIndex, lookback: str) -> int:
    """Index of the first union-timeline bar after the estimation window ``[t0, t0 + lookback)``."""
    if len(timeline) == 0:
        return 0
    end = int(np.searchsorted(timeline.as_unit("ns").asi8, (timeline[0] + pd.Timedelta(lookback)).value))
    if end < 3:
        raise ConfigError(f"allocation.lookback {lookback}: the estimation window holds fewer than 3 bars")
    if end >= len(timeline) - 1:
        raise ConfigError(f"allocation.lookback {lookback} covers the whole data span "
                          f"({timeline[0]} .. {timeline[-1]}): no bars left to backtest")
    return end


def strategy_returns(equity: np.ndarray, names) -> pd.DataFrame:
    """Per-bar simple returns of each asset's standalone strategy equity (``equity``: assets x bars)."""
    equity = np.asarray(equity, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(equity[:, :-1] > 0, equity[:, 1:] / equity[:, :-1] - 1.0, 0.0)
    return pd.DataFrame(returns.T, columns=list(names))


def growth_net_of_transfers(equity: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Per-bar growth factors ``E_t / (E_{t-1} + moved_t)`` of sleeves (assets x bars), elementwise, by
    :func:`raybt.kernels.portfolio.sleeve_growth_nb` (the one definition of a sleeve's own return; 1 where
    the base is not positive or the ratio not finite). Used by the coordinator's estimates
    (:func:`flow_adjusted_returns`) and the result's sleeve index (:func:`raybt.result.sleeve_performance`).
    """
    from raybt.kernels.portfolio import sleeve_growth_rows_nb

    return sleeve_growth_rows_nb(np.asarray(equity, dtype=np.float64), np.asarray(base, dtype=np.float64))


def flow_adjusted_returns(equity: np.ndarray, first: int, last: int, previous: np.ndarray,
                          bounds: np.ndarray, adjustments: dict) -> np.ndarray:
    """Per-bar sleeve returns over union positions ``[first, last)`` net of rebalancing transfers.

    ``equity``: assets x bars (filled up to ``last``); ``previous``: each
    sleeve's equity just before ``first`` (its starting capital when
    ``first`` is 0); ``adjustments``: ``{chunk: cash moved in at that
    chunk's first bar}``; ``bounds``: chunk boundaries on the union timeline.
    A transfer counts as arriving before the bar's return. Returns bars x assets.
    """
    window = equity[:, first:last]
    prev = np.concatenate([np.asarray(previous, dtype=np.float64)[:, None], window[:, :-1]], axis=1)
    for chunk, moved in adjustments.items():
        pos = int(bounds[chunk])
        if first <= pos < last:
            prev[:, pos - first] = prev[:, pos - first] + moved
    return (growth_net_of_transfers(window, prev) - 1.0).T
