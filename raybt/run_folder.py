"""Reading a portfolio run folder back: the tables (Parquet or CSV), weights, metrics, config.

:func:`load_run` gives the files as pandas/py objects (what the report needs,
tolerating missing optional files); :func:`run_from_result` the same dict from
a result still in memory; :func:`load_result` a
:class:`~raybt.result.PortfolioResult` (``PortfolioResult.load``). Both read
every file once through :func:`_read_run`, which checks each where it is read
(:mod:`raybt.run_files`: no symbolic links, columns, types, finite numbers,
UTC times) and refuses an unfinished run (:func:`check_finished`). Nothing
read here executes code: tables are Parquet/CSV, the rest JSON and YAML read
with ``yaml.safe_load``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raybt.decisions import EVENT_COLUMNS
from raybt.records import SIDES, TRADE_COLUMNS
from raybt.run_files import (ReportError, check_bools, check_increasing, check_numbers, check_object,
                             check_scalars, check_text, check_times, find_run_table, need_columns, read_run_json,
                             read_run_table, read_run_text, run_file)
from raybt.types import EXIT_REASON_NAMES

__all__ = ["ReportError", "check_finished", "load_result", "load_run", "run_from_result"]

REQUIRED = "portfolio_equity"  # .parquet or .csv (raybt.tables)
_PORTFOLIO_COLUMNS = ("equity", "drawdown")
_FACTORS = ("multiplier", "base", "portfolio_risk", "correlation", "drawdown", "capital_adjustment")
_MULTIPLIER_COLUMNS = ("chunk", "decided_at", "chunk_start", "asset", *_FACTORS, "max_margin", "halted", "flatten",
                       "reason")
_METRIC_TEXT = ("start", "end")  # every other metric is a number or null (undefined)


# ------------------------------------------------------------------ reading and checking each file once

def check_finished(run_dir: Path) -> None:
    """Refuse an unfinished run: a ``.partial`` folder, or one still holding ``INCOMPLETE``."""
    if run_dir.name.endswith(".partial") or os.path.lexists(run_dir / "INCOMPLETE"):
        raise ReportError(f"{run_dir}: an unfinished run; finish it with raybt run --resume first")


def _read_equity(run_dir: Path) -> pd.DataFrame:
    """``portfolio_equity``: at least 2 rows of sorted unique UTC times, finite numbers, a positive
    start; ``drawdown`` (when there) never negative. Sleeves may end at or below 0 (a stop-out
    filled past a gap) and so may the portfolio after its first bar (the metrics allow it)."""
    path = find_run_table(run_dir, REQUIRED)
    if path is None:
        raise ReportError(f"{run_dir}: required run file {REQUIRED}.parquet (or {REQUIRED}.csv) not found "
                          f"(is it a portfolio run folder?)")
    eq = read_run_table(path)
    if len(eq.columns) == 0:
        raise ReportError(f"{path}: {path.name} is empty")
    need_columns(path, eq, ("timestamp", "equity"))
    if len(eq) < 2:
        raise ReportError(f"{path}: {len(eq)} data row(s); a run has at least 2 bars")
    check_times(path, eq, "timestamp", unit=None)
    idx = pd.DatetimeIndex(eq.pop("timestamp")).rename("timestamp")
    check_increasing(path, idx)
    eq.index = idx
    if not [c for c in eq.columns if c not in _PORTFOLIO_COLUMNS]:
        raise ReportError(f"{path}: {path.name} has no asset (sleeve) columns")
    values = {c: check_numbers(path, eq, c) for c in eq.columns}
    if values["equity"][0] <= 0:
        raise ReportError(f"{path}: column 'equity', data row 1: {float(values['equity'][0]):g} "
                          "(the starting equity must be positive)")
    if "drawdown" in values and (values["drawdown"] < 0).any():
        row = int(np.flatnonzero(values["drawdown"] < 0)[0])
        raise ReportError(f"{path}: column 'drawdown', data row {row + 1}: {values['drawdown'][row]!r} "
                          "(a drawdown is a positive fraction)")
    return eq.astype(np.float64)


def _sleeves(equity: pd.DataFrame) -> list[str]:
    return [str(c) for c in equity.columns if c not in _PORTFOLIO_COLUMNS]


def _read_trades(run_dir: Path, sleeves: list) -> pd.DataFrame | None:
    """``trades``: the spec's columns; assets of the run, known sides and exit reasons, UTC times, finite numbers."""
    path = find_run_table(run_dir, "trades")
    if path is None:
        return None
    trades = read_run_table(path, text=("asset",))
    if len(trades.columns) == 0:
        return trades
    need_columns(path, trades, TRADE_COLUMNS)
    check_text(path, trades, "asset", sleeves, "an asset of the run (a sleeve column of portfolio_equity)")
    check_text(path, trades, "side", SIDES, "long or short")
    check_text(path, trades, "exit_reason", EXIT_REASON_NAMES, f"an exit reason ({', '.join(EXIT_REASON_NAMES)})")
    for column in ("entry_time", "exit_time"):
        check_times(path, trades, column)
    for column in ("units", "entry_price", "exit_price", "pnl", "commission"):
        check_numbers(path, trades, column)
    return trades


def _read_multipliers(run_dir: Path, sleeves: list) -> pd.DataFrame | None:
    """``multipliers``: every column; finite factors, ``max_margin`` a number (+inf when off), True/False flags."""
    path = find_run_table(run_dir, "multipliers")
    if path is None:
        return None
    table = read_run_table(path, text=("reason", "asset"))
    if len(table.columns) == 0:
        return table
    need_columns(path, table, _MULTIPLIER_COLUMNS)
    check_numbers(path, table, "chunk")
    for column in ("decided_at", "chunk_start"):
        check_times(path, table, column)
    check_text(path, table, "asset", sleeves, "an asset of the run (a sleeve column of portfolio_equity)")
    for column in _FACTORS:
        check_numbers(path, table, column)
    check_numbers(path, table, "max_margin", finite=False)
    for column in ("halted", "flatten"):
        check_bools(path, table, column)
    return table


def _read_weights(run_dir: Path, sleeves: list) -> pd.Series | None:
    """``weights.csv`` as a Series asset -> weight (finite, one row per asset of the run); None when absent or empty."""
    path = run_file(run_dir, "weights.csv")
    frame = read_run_table(path, text=("asset",)) if path is not None else None
    if frame is None or len(frame) == 0:
        return None
    need_columns(path, frame, ("asset", "weight"))
    check_text(path, frame, "asset", sleeves, "an asset of the run (a sleeve column of portfolio_equity)")
    weights = check_numbers(path, frame, "weight")
    assets = frame["asset"].astype(str).to_numpy()
    repeated = pd.Index(assets).duplicated()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise ReportError(f"{path}: column 'asset', data row {row + 1}: {assets[row]!r} listed twice")
    return pd.Series(weights, index=assets, name="weight")


def _read_events(run_dir: Path) -> pd.DataFrame:
    """``events.csv`` with ``decided_at`` as UTC times; an empty table when absent or empty."""
    path = run_file(run_dir, "events.csv")
    events = read_run_table(path) if path is not None else None
    if events is None or len(events.columns) == 0:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    need_columns(path, events, ("decided_at", "event"))
    check_times(path, events, "decided_at", unit=None)
    check_text(path, events, "event")
    for column in ("chunk", "drawdown", "equity", "breaker_drawdown"):
        if column in events.columns:  # breaker_drawdown is NaN on rebalance rows
            check_numbers(path, events, column, nan_ok=column == "breaker_drawdown")
    return events


def _read_history(run_dir: Path) -> pd.DataFrame | None:
    """``weights_history.csv``: ``decided_at`` UTC times, every other column finite numbers; None when
    absent or empty."""
    path = run_file(run_dir, "weights_history.csv")
    history = read_run_table(path) if path is not None else None
    if history is None or len(history) == 0:
        return None
    need_columns(path, history, ("decided_at",))
    check_times(path, history, "decided_at", unit=None)
    for column in history.columns:
        if column != "decided_at":
            check_numbers(path, history, column)
    return history


def _read_metrics(run_dir: Path) -> dict | None:
    """``metrics.json``: an object whose ``portfolio`` and ``assets.<name>`` objects hold numbers or null."""
    path = run_file(run_dir, "metrics.json")
    if path is None:
        return None
    doc = check_object(path, "", read_run_json(path), optional=False)
    if "portfolio" in doc:
        check_scalars(path, "portfolio", check_object(path, "portfolio", doc["portfolio"], optional=False),
                      text=_METRIC_TEXT)
    if "assets" in doc:
        for name, metrics in check_object(path, "assets", doc["assets"], optional=False).items():
            check_scalars(path, f"assets.{name}", check_object(path, f"assets.{name}", metrics, optional=False),
                          text=_METRIC_TEXT)
    return doc


def _read_run_info(run_dir: Path) -> dict:
    """``run_info.json`` (``{}`` when absent): an object; the keys the report shows have their types."""
    path = run_file(run_dir, "run_info.json")
    if path is None:
        return {}
    doc = check_object(path, "", read_run_json(path), optional=False)
    for key in ("raybt_version", "config_hash", "engine"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise ReportError(f"{path}: key '{key}' must be a string, got {type(doc[key]).__name__}")
    if "timings" in doc:
        timings = check_object(path, "timings", doc["timings"], optional=False)
        check_scalars(path, "timings", {k: timings[k] for k in ("n_chunks",) if k in timings})
    check_scalars(path, "run_info", {k: doc[k] for k in ("n_chunks",) if k in doc})
    if doc.get("asset_params") is not None:
        for name, params in check_object(path, "asset_params", doc["asset_params"], optional=False).items():
            check_scalars(path, f"asset_params.{name}",
                          check_object(path, f"asset_params.{name}", params, optional=False), any_text=True)
    warnings = doc.get("warnings")
    if warnings is not None and not (isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)):
        raise ReportError(f"{path}: key 'warnings' must be a list of strings")
    return doc


def _read_config(run_dir: Path) -> tuple[str | None, dict]:
    """``config.yaml``'s text and parsed mapping ({} when absent or unparsable: it is shown, not used)."""
    path = run_file(run_dir, "config.yaml")
    if path is None:
        return None, {}
    text = read_run_text(path)
    try:
        import yaml

        parsed = yaml.safe_load(text)
    except Exception:  # a broken config must not stop the report
        return text, {}
    return text, parsed if isinstance(parsed, dict) else {}


def _read_run(run_dir) -> dict[str, Any]:
    """Every file of a finished run folder, each read and checked once (tables as written)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: run folder not found (expected {REQUIRED}.parquet or .csv inside it)")
    check_finished(run_dir)
    equity = _read_equity(run_dir)
    sleeves = _sleeves(equity)
    config_text, config = _read_config(run_dir)
    return {"run_dir": run_dir, "equity": equity, "trades": _read_trades(run_dir, sleeves),
            "weights": _read_weights(run_dir, sleeves), "multipliers": _read_multipliers(run_dir, sleeves),
            "events": _read_events(run_dir), "weights_history": _weights_history(_read_history(run_dir)),
            "metrics": _read_metrics(run_dir), "run_info": _read_run_info(run_dir),
            "config_text": config_text, "config": config}


def _usable_trades(trades: pd.DataFrame | None) -> pd.DataFrame | None:
    return None if trades is None or len(trades) == 0 or "pnl" not in trades.columns else trades


def _usable_multipliers(multipliers: pd.DataFrame | None) -> pd.DataFrame | None:
    return None if multipliers is None or len(multipliers) == 0 or "asset" not in multipliers.columns \
        else multipliers


def _target_weights(weights: pd.Series | None, equity: pd.DataFrame) -> pd.Series | None:
    if weights is None:
        return None
    return weights.reindex([c for c in equity.columns if c not in ("equity", "drawdown")]).fillna(0.0)


def load_run(run_dir) -> dict[str, Any]:
    """The files of a run folder as pandas/py objects.

    Keys: ``equity`` (DataFrame indexed by UTC timestamp), ``trades``,
    ``weights`` (Series asset -> weight), ``multipliers``, ``events``
    (DataFrames, None when the file is absent, empty frames when empty),
    ``weights_history`` (``weights_history.csv``: ``chunk``, ``decided_at``
    as UTC times, one target weight column per asset; None when absent),
    ``metrics``, ``run_info`` (dicts or None), ``asset_params`` (``run_info.json``'s
    ``{asset: parameters}``, None when the run did not record them),
    ``config_text`` (str or None) and ``config`` (parsed YAML dict, {} when
    absent or unparsable). The large tables are read from Parquet or CSV,
    whichever the run wrote.
    Every file read is checked once, where it is read (columns, types, finite
    numbers, UTC times; ``portfolio_equity``'s sorted and unique): raises
    :data:`ReportError`, one line naming the file, column or key and row,
    when the folder or ``portfolio_equity`` is missing, when a file is damaged
    or is a symbolic link, or when the run is unfinished (``.partial``).
    """
    files = _read_run(run_dir)
    weights = files["weights"]
    return {**files, "trades": _usable_trades(files["trades"]),
            "weights": None if weights is None else _target_weights(weights.rename(None).rename_axis("asset"),
                                                                    files["equity"]),
            "multipliers": _usable_multipliers(files["multipliers"]), "asset_params": _asset_params(files["run_info"])}


def _weights_history(history: pd.DataFrame | None) -> pd.DataFrame | None:
    """``weights_history.csv`` with ``decided_at`` as UTC times; None when absent, empty or malformed."""
    if history is None or len(history) == 0 or "decided_at" not in history.columns:
        return None
    history = history.copy()
    history["decided_at"] = pd.to_datetime(history["decided_at"], utc=True)
    return history


def _asset_params(info: dict | None) -> dict | None:
    params = (info or {}).get("asset_params")
    return params if isinstance(params, dict) and params else None


def run_from_result(result, run_dir, final_dir=None) -> dict[str, Any]:
    """The same dict as :func:`load_run`, from a :class:`~raybt.engine.PortfolioResult` in memory.

    ``run_dir`` is where the report is written (the run's temporary folder
    while it is being written); ``final_dir`` the name the report shows.
    """
    import yaml

    from raybt.metrics import json_safe
    from raybt.report_files import run_info

    equity = result.equity
    config_text = yaml.safe_dump(result.config, sort_keys=False)
    metrics = {"portfolio": json_safe(result.metrics["portfolio"]),
               "assets": {k: json_safe(v) for k, v in result.metrics["assets"].items()}}
    info = run_info(result)
    return {"run_dir": Path(run_dir), "final_dir": Path(final_dir or run_dir), "equity": equity,
            "trades": _usable_trades(result.trades),
            "weights": _target_weights(result.weights, equity) if len(result.weights) else None,
            "multipliers": _usable_multipliers(result.multipliers), "events": result.events,
            "weights_history": _weights_history(result.weight_history),
            "metrics": metrics, "run_info": info, "asset_params": _asset_params(info),
            "config_text": config_text, "config": result.config}


def load_result(run_dir) -> "PortfolioResult":  # noqa: F821 - imported below
    """A run folder as a :class:`~raybt.result.PortfolioResult` (``PortfolioResult.load``).

    Tables come back with the values that were written (float64 exact, UTC
    times) whichever format the run used; ``metrics`` is ``metrics.json``
    (undefined ratios are ``None`` there), ``timings`` and ``provenance``
    come from ``run_info.json``. Refuses what ``raybt report`` refuses (an
    unfinished run, a damaged file, a symbolic link) with the same
    :data:`ReportError`.
    """
    from raybt.result import PortfolioResult

    run = _read_run(run_dir)
    trades, multipliers, weights = run["trades"], run["multipliers"], run["weights"]
    events = run["events"].copy()
    events["decided_at"] = pd.to_datetime(events["decided_at"], utc=True)  # an empty table's column too
    info = dict(run["run_info"])
    timings = info.pop("timings", {})
    info.pop("raybt_version", None)
    provenance = {"raybt_version": run["run_info"].get("raybt_version"), **info}
    return PortfolioResult(run["equity"], trades if trades is not None else pd.DataFrame(),
                           multipliers if multipliers is not None else pd.DataFrame(), events,
                           weights if weights is not None else pd.Series(dtype=float),
                           run["metrics"] or {}, run["config"], timings, run["weights_history"], provenance)
