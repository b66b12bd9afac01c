"""Reading a portfolio run folder back: the tables (Parquet or CSV), weights, metrics, config.

:func:`load_run` gives the files as pandas/py objects (what the report needs,
tolerating missing optional files); :func:`run_from_result` the same dict from
a result still in memory; :func:`load_result` a
:class:`~raybt.result.PortfolioResult` (``PortfolioResult.load``). Nothing
read here executes code: tables are Parquet/CSV, the rest JSON and YAML read
with ``yaml.safe_load``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raybt.coordinator import EVENT_COLUMNS
from raybt.errors import ConfigError
from raybt.tables import find_table, read_table

#: unusable run folders raise this (one line naming the file)
ReportError = ConfigError

REQUIRED = "portfolio_equity"  # .parquet or .csv (raybt.tables)


# ------------------------------------------------------------------ loading

def _read_table_optional(run_dir: Path, stem: str, **kwargs) -> pd.DataFrame | None:
    """The table (Parquet or CSV), an empty frame for an empty file, None when absent."""
    path = find_table(run_dir, stem)
    if path is None:
        return None
    try:
        return read_table(path, **kwargs)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read: {_first_line(exc)}") from None


def _read_csv_optional(path: Path, **kwargs) -> pd.DataFrame | None:
    """The CSV, an empty frame for an empty file, None when absent."""
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _read_equity(run_dir: Path) -> pd.DataFrame:
    path = find_table(run_dir, REQUIRED)
    if path is None:
        raise ReportError(f"{run_dir}: required run file {REQUIRED}.parquet (or {REQUIRED}.csv) not found "
                          f"(is it a portfolio run folder?)")
    try:
        eq = read_table(path)
    except pd.errors.EmptyDataError:
        raise ReportError(f"{path}: {path.name} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise ReportError(f"{path}: cannot parse {path.name}: {_first_line(exc)}") from None
    if "timestamp" not in eq.columns:
        raise ReportError(f"{path}: {path.name} has no 'timestamp' column")
    if len(eq) == 0:
        raise ReportError(f"{path}: {path.name} has no rows")
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(eq.pop("timestamp"), utc=True))
    except (ValueError, TypeError):
        raise ReportError(f"{path}: column 'timestamp' of {path.name} is not a date/time") \
            from None
    eq.index = idx.rename("timestamp")
    assets = [c for c in eq.columns if c not in ("equity", "drawdown")]
    if not assets:
        raise ReportError(f"{path}: {path.name} has no asset (sleeve) columns")
    for c in eq.columns:
        if not pd.api.types.is_numeric_dtype(eq[c]):
            raise ReportError(f"{path}: column '{c}' of {path.name} is not numeric")
    return eq.astype(np.float64)


def _read_json_optional(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: invalid JSON (line {exc.lineno}): {exc.msg}") from None


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
    Raises :data:`ReportError` when the folder or ``portfolio_equity`` is
    missing or unusable, naming the file.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: run folder not found (expected {REQUIRED}.parquet or .csv inside it)")
    equity = _read_equity(run_dir)
    trades = _usable_trades(_read_table_optional(run_dir, "trades", times=("entry_time", "exit_time")))

    weights = None
    wdf = _read_csv_optional(run_dir / "weights.csv")
    if wdf is not None and len(wdf) and {"asset", "weight"} <= set(wdf.columns):
        weights = _target_weights(pd.Series(wdf["weight"].to_numpy(float), index=wdf["asset"].astype(str)), equity)

    multipliers = _usable_multipliers(_read_table_optional(run_dir, "multipliers", text=("reason",),
                                                           times=("decided_at", "chunk_start")))
    events = _read_csv_optional(run_dir / "events.csv")
    if events is None or "event" not in events.columns or "decided_at" not in events.columns:
        events = pd.DataFrame(columns=list(EVENT_COLUMNS))

    history = _weights_history(_read_csv_optional(run_dir / "weights_history.csv"))
    config_text, config = None, {}
    cpath = run_dir / "config.yaml"
    if cpath.is_file():
        config_text = cpath.read_text(encoding="utf-8", errors="replace")
        try:
            import yaml

            parsed = yaml.safe_load(config_text)
            config = parsed if isinstance(parsed, dict) else {}
        except Exception:  # a broken config must not stop the report
            config = {}
    info = _read_json_optional(run_dir / "run_info.json") or {}
    return {"run_dir": run_dir, "equity": equity, "trades": trades, "weights": weights,
            "multipliers": multipliers, "events": events, "weights_history": history,
            "metrics": _read_json_optional(run_dir / "metrics.json"),
            "run_info": info, "asset_params": _asset_params(info),
            "config_text": config_text, "config": config}


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
    come from ``run_info.json``.
    """
    from raybt.result import PortfolioResult

    run = load_run(run_dir)
    run_dir = run["run_dir"]
    trades = _read_table_optional(run_dir, "trades", times=("entry_time", "exit_time"))
    multipliers = _read_table_optional(run_dir, "multipliers", text=("reason",), times=("decided_at", "chunk_start"))
    weights = _read_csv_optional(run_dir / "weights.csv")
    weights = (pd.Series(weights["weight"].to_numpy(float), index=weights["asset"].astype(str).to_numpy(),
                         name="weight") if weights is not None and len(weights) else pd.Series(dtype=float))
    history = run["weights_history"]
    events = run["events"].copy()
    events["decided_at"] = pd.to_datetime(events["decided_at"], utc=True)
    info = dict(run["run_info"])
    timings = info.pop("timings", {})
    info.pop("raybt_version", None)
    provenance = {"raybt_version": run["run_info"].get("raybt_version"), **info}
    return PortfolioResult(run["equity"], trades if trades is not None else pd.DataFrame(),
                           multipliers if multipliers is not None else pd.DataFrame(), events, weights,
                           run["metrics"] or {}, run["config"], timings, history, provenance)
