"""``raybt optimize``: argparse options and the command (wired into raybt/cli.py by the CLI)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from raybt.arg_types import address_arg, timeframe_arg
from raybt.errors import ConfigError

DEFAULT_ASSET_CONFIG = "assets_config_highperf.json"  # in ./configs (raybt.config.defaults)
DEFAULT_GRID = "grid.yaml"
DEFAULT_RESULTS = Path("results")


def _echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def add_optimize_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``raybt optimize`` options to ``parser``; returns it."""
    parser.add_argument("--config", help="asset config file (JSON/YAML; default configs/assets_config_highperf.json);"
                                          " its parameters are the base of every candidate")
    parser.add_argument("--assets", nargs="+", metavar="NAME",
                        help="assets to optimise (default: all of the asset config; comma lists allowed)")
    parser.add_argument("--grid", help="parameter grid file (YAML/JSON; default configs/grid.yaml)")
    parser.add_argument("--train", type=float, metavar="FRACTION",
                        help="select on the first FRACTION of each asset's bars, report out-of-sample on the "
                             "rest (with --walk-forward: the train fraction of each window, default 0.7)")
    parser.add_argument("--walk-forward", type=int, metavar="N",
                        help="N rolling walk-forward windows (select on train, evaluate on the next test span)")
    parser.add_argument("--timeframe", type=timeframe_arg,
                        help="resample every asset to this timeframe first (e.g. 15m, 1h)")
    parser.add_argument("--engine", choices=("ray", "local"), default="ray")
    parser.add_argument("--address", type=address_arg,
                        help="Ray cluster address (default: RAY_ADDRESS or an embedded local Ray)")
    parser.add_argument("--out", help="output folder (default: results/optimize-<timestamp>/)")
    parser.add_argument("--best-dir", default=str(DEFAULT_RESULTS),
                        help="folder receiving best_configs_<preference>.json for `raybt run --preference`")
    parser.add_argument("--batch", type=int, default=128, help="candidate evaluations per Ray task (default 128)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _asset_names(raw, universe) -> list[str]:
    if not raw:
        return list(universe.assets)
    names = []
    for item in raw:
        for name in str(item).split(","):
            name = name.strip()
            if name:
                universe.get(name)  # unknown -> ConfigError with a suggestion
                if name not in names:
                    names.append(name)
    if not names:
        raise ConfigError("--assets: no asset names given")
    return names


def print_optimize_table(result) -> None:
    """Print the per-asset, per-preference choices as a rich table."""
    from rich.table import Table

    from raybt.optimize.outputs import summary_rows
    from raybt.terminal import print_table

    rows = summary_rows(result)
    title = {"full": "optimize (all bars)", "train": "optimize (in-sample / out-of-sample)",
             "walk_forward": "optimize (walk-forward, stitched out-of-sample)"}[result.mode]
    table = Table(title=title)
    cols = ["asset", "preference", "sample", "candidate", "qualified", "PnL", "return", "Sharpe", "max DD",
            "trades", "win rate", "params"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("asset", "preference", "sample", "params") else "right")
    for r in rows:
        table.add_row(*(r[c] for c in cols))
    print_table(table, width=200)


def optimize_command(args) -> int:
    """Run ``raybt optimize`` from parsed arguments; print the table and the output folder."""
    from raybt.config.universe import load_asset_universe
    from raybt.config.grid import load_grid
    from raybt.optimize.outputs import write_outputs
    from raybt.optimize.runner import run_optimization
    from raybt.phases import PhaseTimer
    from raybt.results import check_output_dir, check_writable_folder, new_run_dir
    from raybt.universe import load_asset_bars

    train = getattr(args, "train", None)
    walk_forward = getattr(args, "walk_forward", None)
    if train is not None and not (0.0 < train < 1.0):
        raise ConfigError(f"--train must be a fraction in (0, 1), got {train}")
    if walk_forward is not None and walk_forward < 1:
        raise ConfigError(f"--walk-forward must be >= 1, got {walk_forward}")
    batch = getattr(args, "batch", None)
    batch = 128 if batch is None else batch
    if batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {batch}")
    engine = getattr(args, "engine", "ray") or "ray"

    from raybt.config.defaults import default_config

    timer = PhaseTimer()
    with timer.phase("load.config"):
        grid = load_grid(getattr(args, "grid", None) or default_config(DEFAULT_GRID, _echo))
        universe = load_asset_universe(getattr(args, "config", None) or default_config(DEFAULT_ASSET_CONFIG, _echo))
        names = _asset_names(getattr(args, "assets", None), universe)
    out = Path(args.out) if getattr(args, "out", None) else new_run_dir(DEFAULT_RESULTS, "optimize")
    check_output_dir(out)  # both folders before the grid runs, not after
    best_dir = getattr(args, "best_dir", None)
    check_writable_folder(DEFAULT_RESULTS if best_dir is None else Path(best_dir), "--best-dir folder")
    assets = {}
    with timer.phase("load.bars"):
        for name in names:
            asset = universe.get(name)
            bars = load_asset_bars(asset, universe, getattr(args, "timeframe", None), echo=_echo)
            assets[name] = (asset.params, bars)
    n_cand = len(grid.candidates())
    _echo(f"optimize: {len(assets)} assets x {n_cand} candidates, engine {engine}")
    if engine == "ray":
        from raybt.ray.runtime import ensure_ray

        with timer.phase("ray.init"):
            ensure_ray(getattr(args, "address", None))
    show = sys.stderr.isatty() and not getattr(args, "no_progress", False)
    with timer.phase("run.grid"):
        result = run_optimization(assets, grid, train=train, walk_forward=walk_forward, engine=engine,
                                  batch=batch, address=getattr(args, "address", None), progress=show)
    with timer.phase("file.outputs"):
        write_outputs(result, out, DEFAULT_RESULTS if best_dir is None else best_dir)
    print_optimize_table(result)
    print(f"results: {out}")
    print(timer.one_line())
    return 0


__all__ = ["add_optimize_arguments", "optimize_command", "print_optimize_table"]
