"""Single-asset backtest: one asset's bars and parameters -> trades, equity, metrics.

Runs the same kernel and :class:`~raybt.asset.AssetGroup` as the portfolio
engine, with a group of one asset on its own timeline and neutral portfolio
instructions. ``chunk_bars`` splits the run into chunks (results are
bit-identical for any chunking; it exists to prove that and to bound memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from raybt.asset import AssetGroup, shard_bars
from raybt.broker import param_records
from raybt.records import drawdown, trades_frame
from raybt.types import neutral_instructions


@dataclass
class BacktestResult:
    """Outputs of a single-asset backtest.

    ``trades``: the spec's trades table; ``equity``: DataFrame indexed by
    timestamp with ``equity`` (currency) and ``drawdown`` (positive fraction);
    ``metrics``: :func:`raybt.metrics.compute_metrics` of them; ``params``:
    the resolved parameters.
    """

    asset: str
    params: dict
    trades: pd.DataFrame
    equity: pd.DataFrame
    metrics: dict = field(default_factory=dict)


def simulate_bars(bars: pd.DataFrame, params: Mapping, *, chunk_bars: int | None = None):
    """Run the kernel over one asset's bars; return (TRADE_DT records, equity array)."""
    n = len(bars)
    group = AssetGroup(
        shard_bars([bars["open"].to_numpy()], [bars["high"].to_numpy()],
                  [bars["low"].to_numpy()], [bars["close"].to_numpy()],
                  [np.arange(n, dtype=np.int64)]),
        param_records([params]),
    )
    step = n if not chunk_bars else int(chunk_bars)
    instructions = neutral_instructions(1)
    equity_parts, trade_parts = [], []
    for t_start in range(0, n, max(step, 1)):
        report = group.step(t_start, min(n, t_start + step), instructions)
        equity_parts.append(report.equity[0])
        trade_parts.append(report.trades)
    equity = np.concatenate(equity_parts) if equity_parts else np.zeros(0)
    trades = np.concatenate(trade_parts) if trade_parts else np.zeros(0, dtype=group._trade_buffer.dtype)
    return trades, equity


def run_backtest(bars: pd.DataFrame, params: Mapping, *, asset: str = "asset",
                 chunk_bars: int | None = None) -> BacktestResult:
    """Backtest one asset: its bars and its parameters, checked first.

    ``bars``: a DataFrame with a DatetimeIndex and open, high, low, close
    columns, validated by the loader's rules
    (:func:`raybt.universe.validate_asset_bars`: DataError ``asset NAME: ...``
    naming the column and row); ``params``: the spec's parameters
    (:func:`raybt.config.params.validate_params`: keys left out take the spec
    default; ConfigError naming the key). ``result.params`` holds them validated.
    """
    from raybt.config.params import validate_params
    from raybt.metrics import compute_metrics
    from raybt.universe import validate_asset_bars

    from raybt.config.common import check_name
    from raybt.errors import ConfigError

    check_name(asset, "asset")
    if chunk_bars is not None and (isinstance(chunk_bars, bool) or not isinstance(chunk_bars, (int, np.integer))
                                   or chunk_bars < 1):
        raise ConfigError(f"chunk_bars: expected a whole number of bars >= 1 (or None), got {chunk_bars!r}")
    params = validate_params(params, f"asset {asset}")
    bars = validate_asset_bars(bars, asset, params)
    records, equity_values = simulate_bars(bars, params, chunk_bars=chunk_bars)
    trades = trades_frame(records, [asset], [bars.index])
    equity = pd.DataFrame(
        {"equity": equity_values, "drawdown": drawdown(equity_values)},
        index=bars.index.rename("timestamp"),
    )
    metrics = compute_metrics(equity["equity"], trades)
    return BacktestResult(asset, dict(params), trades, equity, metrics)
