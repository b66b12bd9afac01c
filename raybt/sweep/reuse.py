"""Resuming a sweep: is an earlier run's ``points/<id>/`` folder trustworthy enough to reuse?

A point folder is reused only when it is complete and its ``point.json``
validates: a JSON object (UTF-8) with exactly the keys :func:`save_point`
writes (``point_id``, ``params``, ``summary``, ``elapsed_s``, ``config``);
``point_id`` the folder's and the point's id; ``params`` and ``config`` the
point's own (what the sweep file resolves to now); ``summary`` one finite
number (or null) per metric column and ``n_trades`` an integer >= 0;
``elapsed_s`` a finite number >= 0. Its summary must match the point's own
``metrics.json`` (the same values the run wrote there), and the run folder's
files must all be present and non-empty.

Anything else is not an error of the sweep: the point is simply run again
(its config comes from the sweep file, never from the folder) and
:func:`reuse_problem` returns one line, printed as ``warning: <file>: <why>; the
point runs again``. The folder is replaced atomically when the point is saved.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from raybt.config.common import load_document
from raybt.errors import RaybtError

POINT_FILE = "point.json"
POINT_KEYS = ("point_id", "params", "summary", "elapsed_s", "config")
SUMMARY_KEYS = ("total_return", "cagr", "sharpe", "max_drawdown", "calmar", "diversification_ratio", "n_trades")
#: summary columns that ``metrics.json`` ("portfolio") also holds, with the same value
CHECKED_AGAINST_METRICS = ("total_return", "cagr", "sharpe", "max_drawdown", "calmar", "n_trades")
#: the run folder's files (tables: .parquet or .csv); weights_history.csv is optional
RUN_FILES = ("metrics.json", "config.yaml", "run_info.json", "events.csv", "weights.csv")
RUN_TABLES = ("portfolio_equity", "trades", "multipliers")


class NotReusable(Exception):
    """Why a point folder is not reused (one line); ``path``: the file at fault (default point.json)."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path


def _number(value: Any, where: str, *, integer: bool = False, nullable: bool = True) -> float | int | None:
    if value is None and nullable:
        return None
    if integer:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise NotReusable(f"{where}: must be an integer >= 0, got {value!r}"[:200])
        return value
    try:
        finite = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        finite = False
    if not finite:
        raise NotReusable(f"{where}: must be a finite number{' or null' if nullable else ''}, got {value!r}"[:200])
    return float(value)


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def _read_json(path: Path) -> Any:
    try:
        return load_document(path)
    except RaybtError as exc:  # not found, not UTF-8, syntax: the message names the file
        raise NotReusable(str(exc).removeprefix(f"{path}: "), path) from None


def _exact_keys(doc: dict, keys, where: str) -> None:
    """NotReusable unless ``doc`` holds exactly ``keys`` (``where`` prefixes the reason)."""
    missing = [k for k in keys if k not in doc]
    extra = [str(k) for k in doc if k not in keys]
    if missing or extra:
        raise NotReusable(f"{where}missing key '{missing[0]}'" if missing else f"{where}unknown key '{extra[0]}'")


def check_point_folder(folder: Path, point) -> tuple[dict, float]:
    """``(summary, elapsed_s)`` of a reusable point folder; :class:`NotReusable` otherwise."""
    from raybt.tables import find_table

    path = folder / POINT_FILE
    doc = _read_json(path)
    if not isinstance(doc, dict):
        raise NotReusable(f"expected a JSON object, got {type(doc).__name__}")
    _exact_keys(doc, POINT_KEYS, "")
    if doc["point_id"] != point.point_id:
        raise NotReusable(f"point_id: {doc['point_id']!r} is not this folder's point ({point.point_id})"[:200])
    if _canonical(doc["params"]) != _canonical(point.params):
        raise NotReusable("params: differ from the sweep file's values for this point")
    if _canonical(doc["config"]) != _canonical(point.config_dict):
        raise NotReusable("config: differs from the point's resolved config")
    raw = doc["summary"]
    if not isinstance(raw, dict):
        raise NotReusable(f"summary: expected a JSON object, got {type(raw).__name__}")
    _exact_keys(raw, SUMMARY_KEYS, "summary: ")
    summary = {k: _number(raw[k], f"summary.{k}", integer=k == "n_trades", nullable=k != "n_trades")
               for k in SUMMARY_KEYS}
    elapsed = _number(doc["elapsed_s"], "elapsed_s", nullable=False)
    if elapsed < 0:
        raise NotReusable(f"elapsed_s: must be >= 0, got {elapsed!r}")
    for name in RUN_FILES:
        if not (folder / name).is_file() or (folder / name).stat().st_size == 0:
            raise NotReusable("missing or empty (the point's run folder is incomplete)", folder / name)
    for stem in RUN_TABLES:
        table = find_table(folder, stem)
        if table is None or table.stat().st_size == 0:
            raise NotReusable("missing or empty, nor .csv (the point's run folder is incomplete)",
                              folder / f"{stem}.parquet")
    metrics = _read_json(folder / "metrics.json")
    portfolio = metrics.get("portfolio") if isinstance(metrics, dict) else None
    if not isinstance(portfolio, dict):
        raise NotReusable("no 'portfolio' object", folder / "metrics.json")
    for key in CHECKED_AGAINST_METRICS:
        expected = portfolio.get(key)
        if key == "n_trades" and not expected:  # point_summary counts the trades then
            continue
        try:
            same = not isinstance(expected, bool) and _same(summary[key], expected)
        except (TypeError, ValueError, OverflowError):  # metrics.json itself damaged
            same = False
        if not same:
            raise NotReusable(f"summary.{key}: {summary[key]!r} does not match the point's metrics.json "
                              f"({expected!r})"[:200])
    summary = {k: (math.nan if v is None else v) for k, v in summary.items()}
    return summary, elapsed


def reuse_problem(points_dir: Path, point) -> tuple[str | None, tuple[dict, float] | None]:
    """``(None, (summary, elapsed_s))`` when ``points/<id>/`` can be reused; ``(None, None)`` when
    there is nothing to reuse; ``(warning line, None)`` when a folder is there but is not reusable."""
    folder = Path(points_dir) / point.point_id
    if not folder.exists() and not folder.is_symlink():
        return None, None
    path = folder / POINT_FILE
    if folder.is_symlink() or not folder.is_dir():
        return f"{folder}: not a point folder (a file or a link); the point runs again", None
    if not path.exists():
        return None, None  # an incomplete leftover (the point never finished): runs again, as before
    try:
        return None, check_point_folder(folder, point)
    except NotReusable as exc:
        return f"{exc.path or path}: {exc}; the point runs again", None
    except (OSError, ValueError, TypeError, RecursionError) as exc:  # unreadable in some other way
        return f"{path}: cannot be checked ({type(exc).__name__}: {str(exc)[:120]}); the point runs again", None


__all__ = ["NotReusable", "POINT_FILE", "check_point_folder", "reuse_problem"]
