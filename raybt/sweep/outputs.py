"""The outputs of a sweep: the ranked results table, the scatter plot, ``best_config.yaml`` and ``sweep.json``."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raybt.errors import ConfigError
from raybt.config.sweep import RANK_METRICS, SweepPoint, SweepSpec, format_value, label_legend


METRIC_COLUMNS = ("total_return", "cagr", "sharpe", "max_drawdown", "calmar", "diversification_ratio", "n_trades")


def _cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, tuple, dict)):
        return format_value(value)
    return value


def rank_table(rows: list[dict], rank_by: str = "sharpe") -> pd.DataFrame:
    """Rows ranked best first: ok points by ``rank_by`` (NaN last, ties in point order), failed last."""
    if rank_by not in RANK_METRICS:
        raise ConfigError(f"rank_by: must be one of {', '.join(RANK_METRICS)}, got {rank_by!r}")
    higher = RANK_METRICS[rank_by]

    def key(item):
        pos, row = item
        if row["status"] != "ok":
            return (2, 0.0, pos)
        value = row.get(rank_by)
        if value is None or not math.isfinite(float(value)):
            return (1, 0.0, pos)
        return (0, -float(value) if higher else float(value), pos)

    ordered = [row for _, row in sorted(enumerate(rows), key=key)]
    return pd.DataFrame(ordered)


def table_columns(swept: list[str]) -> list[str]:
    return ["point_id", "status", "error", *swept, *METRIC_COLUMNS]


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.parent / f".{path.name}.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)


def write_scatter(table: pd.DataFrame, labels: dict, path: Path, *, best_id: str | None, title: str,
                  legend: str, rank_by: str) -> Path | None:
    """Total return vs max drawdown (percent), every point labelled, the best one highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[table["status"] == "ok"]
    x = pd.to_numeric(ok["max_drawdown"], errors="coerce").to_numpy(dtype=float) * 100.0
    y = pd.to_numeric(ok["total_return"], errors="coerce").to_numpy(dtype=float) * 100.0
    ids = list(ok["point_id"])
    finite = np.isfinite(x) & np.isfinite(y)
    fig, ax = plt.subplots(figsize=(10, 7), dpi=120)
    try:
        ax.axhline(0.0, color="0.6", lw=0.8, zorder=1)
        ax.scatter(x[finite], y[finite], s=42, color="#1f77b4", alpha=0.85, zorder=3, label="point")
        # points at the same place share one label
        groups: dict[tuple, list[str]] = {}
        for xi, yi, pid, f in zip(x, y, ids, finite):
            if f:
                groups.setdefault((round(xi, 6), round(yi, 6)), []).append(pid)
        if best_id is not None and best_id in ids:
            b = ids.index(best_id)
            if finite[b]:
                ax.scatter([x[b]], [y[b]], s=260, marker="*", color="#d62728", edgecolor="black", lw=0.8,
                           zorder=4, label=f"best by {rank_by}")
        if finite.any():
            xs, ys = x[finite], y[finite]
            dx = (xs.max() - xs.min()) or max(abs(xs.max()), 1.0)
            dy = (ys.max() - ys.min()) or max(abs(ys.max()), 1.0)
            ax.set_xlim(xs.min() - 0.12 * dx, xs.max() + 0.25 * dx)
            ax.set_ylim(ys.min() - 0.15 * dy, ys.max() + 0.15 * dy)
        ax.set_xlabel("max drawdown (%)")
        ax.set_ylabel("total return (%)")
        ax.set_title(title, fontsize=11)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.text(0.01, 0.01, f"labels: {legend}", fontsize=8, color="0.3")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        _place_labels(fig, ax, groups, labels, best_id)
        tmp = path.parent / f".{path.stem}.tmp.png"
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
    return path


def _place_labels(fig, ax, groups: dict, labels: dict, best_id: str | None) -> None:
    """Annotate each point group (points at one place share a label, at most three names and
    "+n more"), placed by :func:`raybt.plots.labels.place_labels` clear of the other labels and
    markers; the best point's label first, in bold red."""
    from raybt.plots.labels import place_labels  # matplotlib only when a figure is drawn

    if not groups:
        return
    fig.canvas.draw()
    to_pt = 72.0 / fig.dpi
    order = sorted(groups.items(), key=lambda kv: 0 if best_id in kv[1] else 1)
    xy = np.array([key for key, _ in order], dtype=float)
    texts = []
    for _, pids in order:
        names = [labels.get(p, p) for p in pids]
        texts.append("\n".join(names) if len(names) <= 3 else "\n".join(names[:3]) + f"\n+{len(names) - 3} more")
    disp = ax.transData.transform(xy) * to_pt
    best = np.array([best_id in pids for _, pids in order])
    markers = np.column_stack([disp, np.where(best, 10.0, 4.0)])  # the best point's star is larger
    box = ax.get_window_extent()
    offsets = place_labels(disp, texts, 8, markers, (box.x0 * to_pt, box.y0 * to_pt, box.x1 * to_pt, box.y1 * to_pt))
    for (_, pids), text, (px, py), (ox, oy, ha, va) in zip(order, texts, xy, offsets):
        best = best_id in pids
        ax.annotate(text, (px, py), xytext=(ox, oy), textcoords="offset points", fontsize=8, ha=ha, va=va,
                    fontweight="bold" if best else "normal", color="#b00000" if best else "0.1", zorder=5,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7),
                    arrowprops=dict(arrowstyle="-", color="0.45", lw=0.6, shrinkA=0, shrinkB=3))


def best_config_text(point: SweepPoint, sweep_name: str, rank_by: str, value: float) -> str:
    import yaml

    head = (f"# best point of sweep '{sweep_name}' by {rank_by} ({value:.6g}): point {point.point_id}\n"
            f"# swept values: {', '.join(f'{k}={format_value(v)}' for k, v in point.params.items()) or '-'}\n"
            f"# run it with: raybt run <this file>\n")
    return head + yaml.safe_dump(point.config_dict, sort_keys=False)


def write_outputs(result: SweepResult, spec: SweepSpec, state: dict, engine: str) -> None:
    """sweep_results.csv, sweep_scatter.png, best_config.yaml and sweep.json in ``result.out``."""
    import raybt
    from raybt.results import write_json

    out = result.out
    table = result.table
    tmp_csv = out / ".sweep_results.csv.tmp"
    table.to_csv(tmp_csv, index=False)
    os.replace(tmp_csv, out / "sweep_results.csv")
    best = result.best
    best_value = None
    if best is not None:
        best_value = float(table.loc[table["point_id"] == best.point_id, result.rank_by].iloc[0])
        _atomic_write_text(out / "best_config.yaml", best_config_text(best, spec.name, result.rank_by, best_value))
    elif (out / "best_config.yaml").exists():
        (out / "best_config.yaml").unlink()  # stale from an earlier run
    legend = label_legend([p.params for p in result.points])
    n_ok = int((table["status"] == "ok").sum())
    title = f"sweep {spec.name}: {n_ok} of {len(table)} points, best by {result.rank_by}"
    if best is not None:
        title += f": {best.label} ({best_value:.3g})"
    write_scatter(table, result.labels, out / "sweep_scatter.png", best_id=best.point_id if best else None,
                  title=title, legend=legend, rank_by=result.rank_by)
    doc = {
        "name": spec.name, "description": spec.description, "spec_file": str(spec.path),
        "base": str(spec.base), "mode": spec.mode, "spec": spec.document, "swept": result.swept,
        "rank_by": result.rank_by, "engine": engine, "raybt_version": raybt.__version__,
        "label_legend": legend,
        "best": None if best is None else {"point_id": best.point_id, "label": best.label, "params": best.params,
                                           result.rank_by: best_value},
        "points": [{"index": p.index, "point_id": p.point_id, "label": p.label, "params": p.params,
                    "status": state[p.point_id]["status"], "error": state[p.point_id]["error"],
                    "reused": state[p.point_id]["reused"], "elapsed_s": state[p.point_id]["elapsed_s"],
                    "folder": f"points/{p.point_id}" if state[p.point_id]["status"] == "ok" else None}
                   for p in result.points],
        "timings": result.timings,
    }
    tmp = out / ".sweep.json.tmp"
    write_json(tmp, doc)
    os.replace(tmp, out / "sweep.json")


@dataclass
class SweepResult:
    """A finished sweep: the ranked table, the points, the best one and the output folder."""

    out: Path
    table: pd.DataFrame
    points: list
    best: SweepPoint | None
    rank_by: str
    swept: list
    n_failed: int = 0
    n_reused: int = 0
    timings: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
