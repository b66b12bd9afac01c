"""``raybt sweep``: argparse options and the command (wired into raybt/cli.py by the CLI)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from raybt.arg_types import address_arg
from raybt.errors import ConfigError
from raybt.config.sweep import RANK_METRICS

DEFAULT_SWEEP = "sweep.yaml"  # in ./configs (raybt.config.defaults)
DEFAULT_RESULTS = Path("results")


def _echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def add_sweep_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``raybt sweep`` options to ``parser``; returns it."""
    parser.add_argument("sweep_config", nargs="?",
                        help="sweep file (YAML/JSON): base portfolio config + parameters to vary "
                             "(default configs/sweep.yaml)")
    parser.add_argument("--engine", choices=("ray", "local"), default="ray",
                        help="ray: one Ray task per point, in parallel (default); local: in-process, sequential")
    parser.add_argument("--address", type=address_arg,
                        help="Ray cluster address (default: RAY_ADDRESS or an embedded local Ray)")
    parser.add_argument("--out", help="output folder (default: results/<UTC time>-sweep-<name>/); "
                                      "an existing sweep folder is resumed (complete points are skipped)")
    parser.add_argument("--rank-by", choices=tuple(RANK_METRICS),
                        help="metric ranking the points (default: the file's rank_by, else sharpe)")
    parser.add_argument("--max-parallel", type=int, metavar="N", help="at most N points running at once (Ray)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _fmt(value, spec: str) -> str:
    try:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        return spec.format(value)
    except (TypeError, ValueError):
        return str(value)


def print_sweep_table(result) -> None:
    """Print the ranked points as a rich table."""
    from rich.table import Table

    from raybt.terminal import print_table

    frame = result.table
    # constant swept values go in the caption, varying ones get a column
    varying = [p for p in result.swept if frame[p].astype(str).nunique() > 1]
    fixed = [f"{p}={frame[p].iloc[0]}" for p in result.swept if p not in varying and len(frame)]
    table = Table(title=f"sweep ranked by {result.rank_by} ({len(frame)} points)",
                  caption=("fixed: " + ", ".join(fixed)) if fixed else None)
    cols = ["#", "point", "label", "status", *varying, "return", "CAGR", "Sharpe", "max DD", "Calmar",
            "div. ratio", "trades"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("point", "label", "status") or col in varying
                         else "right", overflow="fold")
    best_id = result.best.point_id if result.best is not None else None
    for i, row in enumerate(result.table.to_dict("records"), 1):
        status = row["status"] if row["status"] == "ok" else f"[red]failed: {row['error']}[/red]"
        cells = [str(i), row["point_id"], result.labels.get(row["point_id"], ""), status,
                 *("" if row[p] is None else str(row[p]) for p in varying),
                 _fmt(row["total_return"], "{:.2%}"), _fmt(row["cagr"], "{:.2%}"), _fmt(row["sharpe"], "{:.3f}"),
                 _fmt(row["max_drawdown"], "{:.2%}"), _fmt(row["calmar"], "{:.3f}"),
                 _fmt(row["diversification_ratio"], "{:.3f}"),
                 _fmt(None if row["status"] != "ok" else int(row["n_trades"]), "{:d}")]
        table.add_row(*cells, style="bold green" if row["point_id"] == best_id else None)
    print_table(table, width=220)


def sweep_command(args) -> int:
    """Run ``raybt sweep`` from parsed arguments; 0 when every point succeeded, 1 otherwise."""
    from raybt.sweep.runner import run_sweep
    from raybt.config.sweep import load_sweep_spec

    max_parallel = getattr(args, "max_parallel", None)
    if max_parallel is not None and max_parallel < 1:
        raise ConfigError(f"--max-parallel must be >= 1, got {max_parallel}")
    from raybt.config.defaults import default_config

    spec = load_sweep_spec(getattr(args, "sweep_config", None) or default_config(DEFAULT_SWEEP, _echo))
    show = sys.stderr.isatty() and not getattr(args, "no_progress", False)
    result = run_sweep(spec, getattr(args, "out", None), engine=getattr(args, "engine", "ray") or "ray",
                       address=getattr(args, "address", None), rank_by=getattr(args, "rank_by", None),
                       progress=show, max_parallel=max_parallel, best_configs_dir=DEFAULT_RESULTS, echo=_echo)
    print_sweep_table(result)
    t = result.timings
    print(f"{t['points']} points: {t['points_run']} run, {t['points_reused']} reused, {t['points_failed']} failed; "
          f"{t['total_s']:.1f} s")
    if result.best is not None:
        b = result.best
        value = result.table.loc[result.table["point_id"] == b.point_id, result.rank_by].iloc[0]
        print(f"best by {result.rank_by}: {b.point_id} ({b.label}) = {value:.4g}; config: {result.out / 'best_config.yaml'}")
    print(f"results: {result.out}")
    if result.n_failed:
        _echo(f"error: {result.n_failed} of {t['points']} sweep points failed (see sweep_results.csv)")
        return 1
    return 0


__all__ = ["add_sweep_arguments", "print_sweep_table", "sweep_command"]
