"""A finished portfolio run: :class:`PortfolioResult`, assembled from the coordinator's arrays.

:func:`assemble_result` turns a :class:`~raybt.coordinator.CoordinatorOutput`
(numpy: sleeve equity assets x bars, trade records, decision columns) into
the pandas tables a user reads and the metrics, with numpy over the assets x
bars matrix: no Python loop per bar, per trade or per chunk-and-asset row
(one small loop per asset computes its metrics on views).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from raybt.allocation.estimator import growth_net_of_transfers
from raybt.coordinator import EVENT_COLUMNS
from raybt.errors import ConfigError
from raybt.phases import PhaseTimer, phase
from raybt.records import drawdown, order_by_code, trades_frame


@dataclass
class PortfolioResult:
    """A finished portfolio run.

    ``equity``: DataFrame indexed by timestamp with ``equity`` (portfolio,
    currency), ``drawdown`` (positive fraction) and one column per asset (its
    sleeve equity); ``trades``: all assets' trades (the spec's columns) in exit
    order; ``multipliers``: one row per chunk and asset with the decided
    multiplier, its factors, ``halted``, ``flatten``, ``reason``; ``events``:
    breaker trips/resumes and rebalances; ``metrics``: ``{"portfolio": {...},
    "assets": {name: {...}}}``; ``config``: the resolved configuration;
    ``timings``: engine seconds (``setup_s``, ``loop_s``, ...) and, once
    saved, ``phases``: seconds per phase of the whole command.
    """

    equity: pd.DataFrame
    trades: pd.DataFrame
    multipliers: pd.DataFrame
    events: pd.DataFrame
    weights: pd.Series
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    weight_history: pd.DataFrame | None = None
    provenance: dict = field(default_factory=dict)  # raybt version, config hash, data hashes

    def save(self, path, *, report: bool = True, reuse: bool = False, format: str = "parquet",
             timer: PhaseTimer | None = None, figure_pool=None) -> Path:
        """Write the run folder atomically (see :mod:`raybt.report_files`).

        ``format``: ``parquet`` (default) or ``csv`` for the large tables.
        ``reuse``: write into the run's existing ``.partial`` folder (the one
        its checkpoints went to) instead of a fresh one. ``timer``: gets one
        phase per file, analysis step and figure. ``figure_pool``: a
        :class:`raybt.plots.pool.FigurePool` drawing the figures in parallel.
        """
        from raybt.report_files import write_portfolio_run

        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"save: path: expected a folder path, got {type(path).__name__}")
        for flag, value in (("report", report), ("reuse", reuse)):
            if not isinstance(value, bool):
                raise ConfigError(f"save: {flag}: expected True or False, got {value!r}")
        return write_portfolio_run(self, Path(path), report=report, reuse=reuse, format=format, timer=timer,
                                   figure_pool=figure_pool)

    @classmethod
    def load(cls, path) -> "PortfolioResult":
        """Read a run folder written by :meth:`save` (Parquet or CSV tables)."""
        from raybt.run_folder import load_result

        return load_result(path)


def equity_frame(portfolio, sleeves, names, index) -> pd.DataFrame:
    """``equity`` (portfolio), ``drawdown`` and one column per asset; the asset columns are
    views of ``sleeves`` (assets x bars), not copies."""
    columns = {"equity": portfolio, "drawdown": drawdown(portfolio)}
    if set(names) & set(columns):  # an asset named like a portfolio column: keep both, side by side
        return pd.concat([pd.DataFrame(columns, index=index),
                          pd.DataFrame(sleeves.T, index=index, columns=names)], axis=1)
    columns.update({name: sleeves[a] for a, name in enumerate(names)})
    return pd.DataFrame(columns, index=index, copy=False)


def cumulative_transfers(multipliers: dict, n_assets: int, bounds, n_bars: int):
    """Cash moved into each sleeve by rebalancing, cumulated per bar (assets x bars); None if none.

    ``multipliers``: the coordinator's decision columns (``chunk``, ``asset``
    as global index, ``capital_adjustment``), one row per chunk and asset.
    """
    if not len(multipliers.get("chunk", ())):
        return None
    amount = np.asarray(multipliers["capital_adjustment"], dtype=np.float64)
    moved = amount != 0
    if not moved.any():
        return None
    out = np.zeros((n_assets, n_bars))
    bars = np.asarray(bounds, dtype=np.int64)[np.asarray(multipliers["chunk"])[moved]]
    np.add.at(out, (np.asarray(multipliers["asset"])[moved], bars), amount[moved])
    return np.cumsum(out, axis=1)


def sleeve_performance(equity: np.ndarray, transfers) -> np.ndarray:
    """Each sleeve's time-weighted equity index (assets x bars), rebalancing transfers removed.

    Returns ``r_t = E_t / (E_{t-1} + moved_t) - 1`` (``moved_t``: cash moved
    in at bar t) compounded from the sleeve's first equity; without
    transfers, the equity itself. Metrics of this index are the sleeve's own
    return, volatility and drawdown, whatever rebalancing did to its size.
    """
    if transfers is None:
        return equity
    growth = growth_net_of_transfers(equity[:, 1:], equity[:, :-1] + np.diff(transfers, axis=1))
    index = np.empty_like(equity)
    index[:, 0] = equity[:, 0]
    index[:, 1:] = equity[:, :1] * np.cumprod(growth, axis=1)
    return index


def multipliers_frame(columns: dict, names) -> pd.DataFrame:
    """The decision columns as the ``multipliers`` table (asset names, UTC times)."""
    frame = pd.DataFrame(columns)
    if len(frame):
        frame["asset"] = np.asarray(names, dtype=object)[frame["asset"].to_numpy()]
        for col in ("decided_at", "chunk_start"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def asset_codes(trades: pd.DataFrame, names) -> np.ndarray:
    """Each trade's asset as its position in ``names`` (int64)."""
    column = trades["asset"]
    if isinstance(column.dtype, pd.CategoricalDtype) and list(column.cat.categories) == list(names):
        return column.cat.codes.to_numpy().astype(np.int64)
    return pd.Categorical(column, categories=list(names)).codes.astype(np.int64)


def rows_by_asset(codes: np.ndarray, n_assets: int) -> list[np.ndarray]:
    """For each asset code 0..n-1, the positions of its rows in ascending order (one stable sort)."""
    order = order_by_code(codes, n_assets)
    ends = np.searchsorted(codes[order], np.arange(n_assets), side="right")
    starts = np.r_[0, ends[:-1]] if n_assets else ends
    return [order[s:e] for s, e in zip(starts, ends)]


def asset_metrics(equity: np.ndarray, performance: np.ndarray, transfers, trades: pd.DataFrame, names,
                  index: pd.DatetimeIndex) -> dict:
    """``{name: metrics}`` for every sleeve (see :func:`raybt.metrics.compute_metrics`).

    Metrics are on the sleeve's time-weighted index (``performance``), so a
    sleeve's return, volatility and drawdown are its own whatever rebalancing
    moved in or out, and ``final_equity / initial_equity - 1 == total_return``
    (time-weighted). With rebalancing transfers, ``pnl`` is money-weighted: the
    currency the sleeve made, net of the cash moved in and out (so asset PnLs
    add up to the portfolio's), and ``sleeve_initial_equity``,
    ``sleeve_final_equity`` and ``net_transfers`` are the sleeve's raw cash
    figures (``sleeve_final - sleeve_initial = pnl + net_transfers``). A sleeve
    that received cash can show a positive PnL and a negative return, or the
    reverse. Each asset's trades are one slice of a stable sort.
    """
    from raybt.metrics import TradeColumns, metrics_of

    columns = TradeColumns.from_frame(trades)
    rows = rows_by_asset(asset_codes(trades, names), len(names))
    ns = index.as_unit("ns").asi8  # one copy for every sleeve

    def one(a: int) -> dict:
        return metrics_of(index, performance[a], None if columns is None else columns.take(rows[a]), ns)

    # two at a time: numpy's passes over a sleeve release the GIL, so two cores share the assets
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="raybt-metrics") as pool:
        out = dict(zip(names, pool.map(one, range(len(names)))))
    for a, name in enumerate(names):
        if transfers is not None:
            own = equity[a]
            out[name].update(pnl=float(own[-1] - own[0] - transfers[a, -1] + transfers[a, 0]),
                             sleeve_initial_equity=float(own[0]), sleeve_final_equity=float(own[-1]),
                             net_transfers=float(transfers[a, -1]))
    return out


def weight_history_frame(history: list, names, start_weights: pd.Series, index) -> pd.DataFrame:
    """Target weights at the start (chunk 0) and at every re-estimate, one column per asset."""
    rows = [(c, pd.Timestamp(t, tz="UTC"), *w) for c, t, w in history]
    columns = ["chunk", "decided_at", *names]
    start = pd.DataFrame([(0, index[0] if len(index) else pd.NaT, *start_weights[names])], columns=columns)
    return pd.concat([start, pd.DataFrame(rows, columns=columns)], ignore_index=True) if rows else start


def assemble_result(output, names, bars_index, timeline: pd.DatetimeIndex, bounds, weights: pd.Series,
                    config: dict, timings: dict, provenance: dict,
                    timer: PhaseTimer | None = None) -> PortfolioResult:
    """The :class:`PortfolioResult` of a finished run (phases ``assemble.*`` and ``metrics.*``).

    ``output``: the coordinator's :class:`~raybt.coordinator.CoordinatorOutput`;
    ``bars_index``: each asset's own timestamps (trade bars are local to them).
    """
    from raybt.metrics import compute_metrics

    index = timeline.rename("timestamp")
    with phase(timer, "assemble.equity"):
        equity = equity_frame(output.portfolio, output.equity, names, index)  # the path the rules saw
    with phase(timer, "assemble.trades"):
        trades = trades_frame(output.trades, names, bars_index)
        output.trades = []  # the records are in the table now; free them before the metrics
    with phase(timer, "assemble.tables"):
        multipliers = multipliers_frame(output.multipliers, names)
        events = pd.DataFrame(output.events, columns=list(EVENT_COLUMNS))
        events["decided_at"] = pd.to_datetime(events["decided_at"], utc=True)
        weight_history = weight_history_frame(output.weight_history, names, weights, index)
    with phase(timer, "metrics.portfolio"):
        metrics = {"portfolio": compute_metrics(equity["equity"], trades)}
    with phase(timer, "metrics.assets"):
        transfers = cumulative_transfers(output.multipliers, len(names), bounds, len(index))
        performance = sleeve_performance(output.equity, transfers)
        metrics["assets"] = asset_metrics(output.equity, performance, transfers, trades, names, index)
        del performance, transfers
    return PortfolioResult(equity, trades, multipliers, events, weights.copy(), metrics, config, timings,
                           weight_history, provenance)
