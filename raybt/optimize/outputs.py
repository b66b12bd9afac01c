"""The outputs of ``raybt optimize``: ``best_configs_<preference>.json``, the candidates tables and a summary."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from raybt.errors import ConfigError
from raybt.optimize.runner import OptimizeResult
from raybt.optimize.select import PREFERENCES


def _json_value(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _span(index: pd.DatetimeIndex, start: int, end: int) -> dict:
    """Bars ``[start, end)`` of ``index`` as ``{start, end (last bar, inclusive), bars}``."""
    return {"start": index[start].isoformat(), "end": index[end - 1].isoformat(), "bars": int(end - start)}


def best_configs_document(result: OptimizeResult, preference: str, source: Path | str) -> dict:
    """The ``best_configs_<preference>.json`` payload (loads with ``raybt.config.resolve.load_best_configs``).

    Besides each asset's ``params``, ``candidate``, ``qualified`` and
    ``metrics``, it records what the pick rests on: top-level ``mode``,
    ``train``, ``walk_forward`` and ``ranking`` (the metric ``raybt run
    --max-assets`` ranks by); per asset ``trained_on`` (the bars the pick was
    selected on), ``split`` (``--train``: in-sample and out-of-sample spans)
    or ``windows`` (``--walk-forward``: every window's train/test spans and
    pick, ``trained_on`` being the last window's train span) and
    ``metrics_on`` (the bars the metrics describe).
    """
    from raybt.config.resolve import RANKING_METRIC, RANKING_PREFIX

    assets = {}
    for name, choice in result.choices[preference].items():
        index = result.indexes.get(name)
        entry = {
            "params": {k: _json_value(v) for k, v in choice.params.items()},
            "candidate": choice.candidate,
            "qualified": bool(choice.qualified),
            "metrics": {k: _json_value(v) for k, v in choice.metrics.items()},
        }
        if index is not None:
            spans = result.spans[name]
            if result.mode == "full":
                entry["trained_on"] = _span(index, *spans["full"])
                entry["metrics_on"] = entry["trained_on"]
            elif result.mode == "train":
                entry["trained_on"] = _span(index, *spans["is"])
                entry["split"] = {"train": result.settings.get("train"), "in_sample": entry["trained_on"],
                                  "out_of_sample": _span(index, *spans["oos"])}
                entry["metrics_on"] = {"is_": entry["split"]["in_sample"], "oos_": entry["split"]["out_of_sample"]}
            else:
                windows = result.windows[name]
                picks = result.window_picks[(name, preference)]
                entry["windows"] = []
                for w, (c, chosen) in zip(windows, picks):
                    configured = c == result.n_candidates
                    entry["windows"].append({
                        "window": w.index, "train": _span(index, w.train_start, w.train_end),
                        "test": _span(index, w.test_start, w.test_end),
                        "candidate": None if configured else int(c), "qualified": not configured,
                        "params": {k: _json_value(v) for k, v in chosen.items()},
                    })
                entry["trained_on"] = entry["windows"][-1]["train"]
                entry["metrics_on"] = {"oos_": {"stitched_test_spans": _span(index, windows[0].test_start,
                                                                              windows[-1].test_end)}}
        assets[name] = entry
    key, sign = RANKING_METRIC[preference]
    return {
        "preference": preference,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": str(source),
        "mode": result.mode,
        "train": result.settings.get("train") if result.mode != "full" else None,
        "walk_forward": result.settings.get("walk_forward") if result.mode == "walk_forward" else None,
        "ranking": {"metric": f"{RANKING_PREFIX[result.mode]}{key}", "higher_is_better": sign > 0},
        "selection": vars(result.grid.selection),
        "assets": assets,
    }


def _fmt(value, spec):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    try:
        return spec.format(value)
    except (TypeError, ValueError):
        return str(value)


def summary_rows(result: OptimizeResult) -> list[dict]:
    """One row per asset per preference: params summary and headline metrics (strings)."""
    names = list(result.grid.values)
    rows = []
    if result.mode == "walk_forward":
        blocks = [("oos", "oos_")]
    elif result.mode == "train":
        blocks = [("is", "is_"), ("oos", "oos_")]
    else:
        blocks = [("all", "")]
    for pref in PREFERENCES:
        for name, choice in result.choices[pref].items():
            params = " ".join(f"{k}={choice.params[k]}" for k in names)
            for label, prefix in blocks:
                m = choice.metrics
                rows.append({
                    "asset": name, "preference": pref, "sample": label,
                    "candidate": "configured" if choice.candidate is None else str(choice.candidate),
                    "qualified": "yes" if choice.qualified else "no", "params": params,
                    "PnL": _fmt(m.get(f"{prefix}pnl"), "{:,.0f}"),
                    "return": _fmt(m.get(f"{prefix}total_return"), "{:.2%}"),
                    "Sharpe": _fmt(m.get(f"{prefix}sharpe"), "{:.2f}"),
                    "max DD": _fmt(m.get(f"{prefix}max_drawdown"), "{:.2%}"),
                    "trades": _fmt(m.get(f"{prefix}n_trades"), "{:d}"),
                    "win rate": _fmt(m.get(f"{prefix}win_rate"), "{:.1%}"),
                })
    return rows


def summary_text(result: OptimizeResult, source: Path | str) -> str:
    rows = summary_rows(result)
    cols = ["asset", "preference", "sample", "candidate", "qualified", "PnL", "return", "Sharpe", "max DD",
            "trades", "win rate", "params"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) if rows else len(c) for c in cols}
    lines = [f"raybt optimize: {source}",
             f"mode: {result.mode}  candidates: {result.settings.get('n_candidates')}  "
             f"selection: max_drawdown <= {result.grid.selection.max_drawdown}, "
             f"min_trades >= {result.grid.selection.min_trades}"]
    if result.mode == "walk_forward":
        lines.append(f"walk-forward: {result.settings['walk_forward']} rolling windows, train fraction "
                     f"{result.settings['train']}; metrics = the stitched out-of-sample equity "
                     f"(walk_forward_equity.parquet: test spans chained, compounded); params = last window's "
                     f"choice")
    elif result.mode == "train":
        lines.append(f"train fraction {result.settings['train']}: selection on the in-sample (is) span, "
                     f"out-of-sample (oos) span evaluated as its own backtest")
    lines.append("")
    lines.append("  ".join(c.ljust(widths[c]) for c in cols).rstrip())
    lines.append("  ".join("-" * widths[c] for c in cols))
    for r in rows:
        lines.append("  ".join(r[c].ljust(widths[c]) if c in ("asset", "preference", "sample", "params")
                               else r[c].rjust(widths[c]) for c in cols).rstrip())
    return "\n".join(lines) + "\n"


def _write_json_atomic(path: Path, payload) -> None:
    tmp = path.parent / f".{path.name}.tmp"
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def write_outputs(result: OptimizeResult, out: Path | str, best_dir: Path | str | None = "results") -> Path:
    """Write the run folder atomically, then copy the best_configs files to ``best_dir``.

    Files: ``candidates.parquet`` / ``.csv``, ``best_configs_<preference>.json``,
    ``portfolio_summary.txt``, ``optimize.json``; with ``--walk-forward`` also
    ``walk_forward.csv`` (one row per window and a ``stitched`` row per asset
    and preference) and ``walk_forward_equity.parquet`` (asset, preference,
    window, timestamp, equity: the stitched out-of-sample equity the stitched
    metrics are computed from).
    """
    from raybt.results import atomic_run_dir, write_json

    out = Path(out)
    docs = {pref: best_configs_document(result, pref, out) for pref in PREFERENCES}
    with atomic_run_dir(out) as tmp:
        table = result.candidates
        table.to_parquet(tmp / "candidates.parquet", index=False)
        table.to_csv(tmp / "candidates.csv", index=False)
        for pref, doc in docs.items():
            write_json(tmp / f"best_configs_{pref}.json", doc)
        if result.walk_forward is not None:
            result.walk_forward.to_csv(tmp / "walk_forward.csv", index=False)
        if result.equity is not None:
            result.equity.to_parquet(tmp / "walk_forward_equity.parquet", index=False)
        (tmp / "portfolio_summary.txt").write_text(summary_text(result, out))
        write_json(tmp / "optimize.json", {**result.settings, "spans": result.spans,
                                           "windows": {k: [vars(w) for w in v] for k, v in result.windows.items()}})
    if best_dir is not None:
        best_dir = Path(best_dir)
        try:
            best_dir.mkdir(parents=True, exist_ok=True)
            for pref, doc in docs.items():
                _write_json_atomic(best_dir / f"best_configs_{pref}.json", doc)
        except OSError as exc:
            raise ConfigError(f"{best_dir}: cannot write best_configs files ({exc.strerror})") from None
    return out
