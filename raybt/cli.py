"""``raybt`` command line: a thin argparse layer over the library.

User errors (:class:`~raybt.errors.RaybtError`) print one line ``error: ...``
to stderr and exit with status 2, without a traceback; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from dataclasses import replace
from pathlib import Path

from raybt.arg_types import address_arg, timeframe_arg
from raybt.errors import ConfigError, RaybtError, RaybtWarning
from raybt.interrupts import Terminated, install_signal_handlers
from raybt.run_request import RUN_REQUEST_KEYS  # what a run's run_request.json holds (--resume reads it back)
from raybt.terminal import print_asset_table, print_summary

DEFAULT_ASSET_CONFIG = "assets_config_highperf.json"  # in ./configs, written from the packaged defaults if absent
DEFAULT_RESULTS = Path("results")


def _echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- raybt backtest ------------------------------------------------------------

def _backtest(args) -> int:
    from raybt.backtest import run_backtest
    from raybt.config.params import parse_set_options, validate_params
    from raybt.config.universe import load_asset_universe
    from raybt.data.checks import degenerate_warnings, result_warnings
    from raybt.data.loader import load_bars
    from raybt.results import new_run_dir
    from raybt.universe import at_timeframe, check_enough_bars, load_asset_bars

    overrides = parse_set_options(args.set)
    date_format = _date_format(args)
    if args.data:
        if args.asset:
            raise ConfigError("use either --asset or --data, not both")
        bars = load_bars(Path(args.data), timestamp_format=date_format)
        if args.timeframe:
            bars = at_timeframe(bars, args.timeframe, f"--timeframe {args.timeframe}", args.data)
        name = Path(args.data).stem
        params = validate_params(overrides, "--set")
        check_enough_bars(bars, params, name, args.data)
    else:
        from raybt.config.defaults import default_config

        universe = load_asset_universe(args.config or default_config(DEFAULT_ASSET_CONFIG, _echo))
        name = args.asset or next(iter(universe.assets))
        asset = universe.get(name)
        if date_format:
            asset = replace(asset, timestamp_format=date_format)
        bars = load_asset_bars(asset, universe, args.timeframe, echo=_echo)
        params = validate_params(overrides, "--set", base=asset.params)

    result = run_backtest(bars, params, asset=name)
    out = Path(args.out) if args.out else new_run_dir(DEFAULT_RESULTS, f"backtest-{name}")
    write_backtest(result, out, overwrite=args.overwrite)
    # the warnings raybt run prints: data that cannot give a meaningful backtest, results that say nothing
    found = degenerate_warnings(bars, args.data or f"asset {name}", params) + result_warnings({name: result.metrics})
    for line in found:
        _echo(f"warning: {line}")
    print_summary(f"{name}: {len(bars)} bars, {bars.index[0]} .. {bars.index[-1]}", result.metrics)
    print(f"results: {out}")
    return 0


def _date_format(args) -> str | None:
    """``--date-format``, checked (a strptime format for the bars files' time column)."""
    from raybt.config.universe import check_timestamp_format

    value = getattr(args, "date_format", None)
    return None if value is None else check_timestamp_format(value, "--date-format")


def write_backtest(result, out: Path, *, overwrite: bool = False) -> None:
    """Write trades.csv, equity.csv, metrics.json and params.json atomically into ``out``."""
    from raybt.metrics import json_safe
    from raybt.results import atomic_run_dir, write_json

    with atomic_run_dir(out, overwrite=overwrite) as tmp:
        result.trades.to_csv(tmp / "trades.csv", index=False)
        result.equity.to_csv(tmp / "equity.csv", index_label="timestamp")
        write_json(tmp / "metrics.json", json_safe(result.metrics))
        write_json(tmp / "params.json", {"asset": result.asset, **result.params})


# --- raybt run --------------------------------------------------------------------

def _run(args) -> int:
    """``raybt run``: the request checked (flags, configs, output folder), then :func:`_run_checked`."""
    from raybt.checkpoints import find_resumable
    from raybt.config.resolve import (best_configs_provenance, check_chunk_timeframe, chunk_source,
                                      preference_ranking, resolve_portfolio)
    from raybt.phases import PhaseTimer, phase
    from raybt.results import check_output_dir, new_run_dir, partial_path

    timer = PhaseTimer()
    resume = args.resume is not None
    if resume:
        # what to run comes from the interrupted run's request; only engine and address may differ
        given = [key for key in (*RUN_REQUEST_KEYS, "out") if getattr(args, key) is not None] + \
            (["overwrite"] if args.overwrite else [])
        if given:
            flags = ", ".join({"config": "CONFIG", "report": "--no-report"}.get(key, "--" + key.replace("_", "-"))
                              for key in given)
            raise ConfigError(f"--resume continues a run as it was asked and cannot change it: remove {flags} "
                              f"(only --engine, --address and --no-progress go with --resume)")
        out, tmp, request = find_resumable(Path(args.resume))
        check_output_dir(out)  # where the finished run goes: checked now, not after running it again
        for key in RUN_REQUEST_KEYS:
            setattr(args, key, request.get(key))
    if args.max_assets is not None and args.max_assets < 1:
        raise ConfigError(f"--max-assets must be >= 1, got {args.max_assets}")
    overrides = {}
    if args.allocation:
        overrides["allocation_model"] = args.allocation
    if args.chunk:
        overrides["chunk"] = args.chunk
    if args.checkpoint_every is not None:
        overrides["checkpoint_every"] = args.checkpoint_every
    if args.checkpoint_seconds is not None:
        overrides["checkpoint_seconds"] = args.checkpoint_seconds
    if args.format:
        overrides["format"] = args.format
    if args.report is not None:
        overrides["report"] = args.report
    if args.layout:
        overrides["layout"] = args.layout
    if args.assets_per_actor is not None:
        overrides["assets_per_actor"] = args.assets_per_actor
    with phase(timer, "load.config"):
        configs, pconf, universe = resolve_portfolio(args.preference, args.config, max_assets=args.max_assets,
                                                     best_configs_dir=DEFAULT_RESULTS, echo=_echo, **overrides)
        check_chunk_timeframe(pconf, configs, args.timeframe, chunk_source(pconf, overrides))
        best = best_configs_provenance(pconf.preference, DEFAULT_RESULTS, assets=[c.name for c in configs])
        # the --max-assets order from the optimiser's results (the same function ranks every sweep point)
        ranking = preference_ranking(pconf.preference, DEFAULT_RESULTS, allocation=pconf.allocation,
                                     assets=[c.name for c in configs])
        date_format = _date_format(args)
        if date_format:  # every asset's bars file is read with it
            configs = [replace(c, timestamp_format=date_format) for c in configs]
    if not resume:
        out = Path(args.out) if args.out else new_run_dir(DEFAULT_RESULTS, f"run-{pconf.name}")
        args.run_folder = out  # named by an interrupt's message
        check_output_dir(out)  # fail before the run, not after it
        if partial_path(out).exists() and not args.overwrite:
            raise ConfigError(f"{out}: an unfinished run is already there ({partial_path(out)}); "
                              f"resume it with --resume {out}, delete it, or pass --overwrite")
    # the figure workers start now, before Ray's threads, and import matplotlib while the run goes on
    with _figure_pool() if pconf.output.report else contextlib.nullcontext() as figure_pool:
        return _run_checked(args, timer, configs, pconf, universe, overrides, ranking, best, out, resume,
                            tmp if resume else None, figure_pool)


def _figure_pool():
    from raybt.plots.pool import FigurePool, figure_workers

    workers = figure_workers()
    return FigurePool(workers) if workers else contextlib.nullcontext()


def _run_checked(args, timer, configs, pconf, universe, overrides, ranking, best, out, resume, tmp,
                 figure_pool) -> int:
    """``raybt run`` once its request is checked: Ray, the bars, the run, the files."""
    from raybt.checkpoints import discarded_on_user_error, start_run_dir
    from raybt.config.resolve import check_chunk, chunk_source
    from raybt.engine import PortfolioBacktester

    if args.engine == "ray":
        from raybt.compile import start_driver_warm_up

        start_driver_warm_up(report=pconf.output.report)  # this process's kernels and modules load while Ray starts
    # Ray starts (phase ray.init) while a thread reads the first files; the bars are loaded two files
    # at a time and, for Ray, put in the object store as they come
    backtester = PortfolioBacktester(configs, pconf, engine=args.engine, address=args.address,
                                     ranking=ranking, timer=timer, universe=universe, timeframe=args.timeframe,
                                     echo=_echo, run_name=out.name)
    check_chunk(pconf, [bars.index for bars in backtester.bars], chunk_source(pconf, overrides))
    if not resume:
        request = {key: getattr(args, key) for key in RUN_REQUEST_KEYS} | {"config": args.config or pconf.source}
        tmp = start_run_dir(out, request, overwrite=args.overwrite)
    # a user error before the first checkpoint leaves no .partial folder to block the corrected command
    # (one while writing the files, e.g. disk full, leaves it marked INCOMPLETE for --resume)
    with contextlib.nullcontext() if resume else discarded_on_user_error(tmp):
        result = _simulate(args, backtester, pconf, best, out, tmp, resume, len(configs))
    result.save(out, reuse=True, format=pconf.output.format, report=pconf.output.report, timer=timer,
                figure_pool=figure_pool)
    n_assets = len(configs)
    print_summary(f"portfolio {pconf.name}: {n_assets} assets, engine {args.engine}", result.metrics["portfolio"])
    print_asset_table(result.metrics["assets"])
    print(f"results: {out}" + ("" if pconf.output.report else f" (no report: `raybt report {out}` writes it)"))
    print(timer.one_line())
    return 0


def _simulate(args, backtester, pconf, best, out: Path, tmp: Path, resume: bool, n_assets: int):
    """Say what runs, then run it with a progress bar (checkpoints in ``tmp``); the result."""
    from raybt.progress import chunk_progress
    from raybt.timeline import chunk_bounds, union_timeline

    # what runs, on stdout once everything is checked (stderr is for the progress bar and errors)
    print(f"parameters: {pconf.asset_config}"
          + (f" with the optimiser's picks for {len(best['assets'])} asset(s) from {best['path']} "
             f"(sha256 {best['sha256'][:12]})" if best else " (no best_configs file applied)"), flush=True)
    layout = backtester.execution.layout
    print(f"layout: {layout.describe(backtester.names) if layout else 'local: this process (numba threads)'}",
          flush=True)
    if args.engine == "ray":
        from raybt.ray.runtime import dashboard_url

        print(f"Ray dashboard: {dashboard_url() or 'not running'}", flush=True)
    n_chunks = len(chunk_bounds(union_timeline([b.index for b in backtester.bars]), pconf.engine.chunk)) - 1
    dashboard = None
    if args.engine == "ray":
        from raybt.ray.metrics import DashboardMetrics

        dashboard = DashboardMetrics(out.name, lambda: backtester.names)
    show = sys.stderr.isatty() and not args.no_progress
    with chunk_progress(n_chunks, f"{pconf.name} ({n_assets} assets, {args.engine})", show, dashboard) as update:
        backtester.progress = update
        with warnings.catch_warnings():  # printed below as warning: lines, not as Python warnings
            warnings.simplefilter("ignore", RaybtWarning)
            result = backtester.run(checkpoint_dir=tmp, resume=resume)
    for line in result.provenance["warnings"]:
        _echo(f"warning: {line}")
    result.provenance["best_configs"] = best
    return result


# --- raybt report ----------------------------------------------------------------

def _report(args) -> int:
    from raybt.phases import PhaseTimer, phase
    from raybt.plots.report import build_report, load_run
    from raybt.results import atomic_files

    timer = PhaseTimer()
    run_dir = Path(args.run_dir)
    with phase(timer, "report.load"):  # refuses an unfinished run, and any damaged file, before writing anything
        run = load_run(run_dir)
    # every file is written aside and moved into place whole: an interruption leaves old or new files, never half
    with atomic_files(run_dir) as tmp, _figure_pool() as figure_pool:
        path = build_report(run_dir, run=run, frontier=not args.no_frontier, timer=timer, out_dir=tmp,
                            pool=figure_pool)
    print(f"report: {path}")
    print(timer.one_line())
    return 0


# --- raybt init ---------------------------------------------------------------------

def _init(args) -> int:
    """Write an editable copy of raybt's default configs into ``DIR/configs``."""
    from raybt.config.defaults import write_defaults

    target = Path(args.dir) / "configs"
    written = write_defaults(target, overwrite=args.overwrite)
    print(f"wrote {len(written)} configs to {target}: {', '.join(p.name for p in written)}")
    print(f"run the default portfolio from {args.dir}: raybt run (or raybt run {target / 'portfolio_balanced.yaml'})")
    return 0


# --- raybt data synth --------------------------------------------------------------

def _data_synth(args) -> int:
    """Generate the universe into a temporary sibling folder, then move it into place whole.

    An existing non-empty ``--out`` is refused unless ``--overwrite``, so two
    universes are never mixed in one folder.
    """
    import shutil

    from raybt.data.synth import write_universe
    from raybt.results import atomic_run_dir

    _check_synth_size(args)
    out = Path(args.out)
    if out.is_dir() and any(out.iterdir()):
        if not args.overwrite:
            raise ConfigError(f"{out}: folder exists and is not empty; choose another --out or pass --overwrite")
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)  # kept until the new universe is in place
    else:
        old = None
    try:
        with atomic_run_dir(out, overwrite=args.overwrite) as tmp:
            paths = write_universe(tmp, n_assets=args.assets, n_bars=args.bars, timeframe=args.timeframe,
                                   seed=args.seed, fmt=args.format, calendar=args.calendar)
    except BaseException:
        if old is not None and not out.exists():
            old.rename(out)  # nothing new was written: the old universe stays as it was
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    print(f"wrote {len(paths)} assets to {args.out}")
    return 0


#: the largest synthetic universe ``raybt data synth`` writes (assets x bars: about 40 GB of Parquet input)
SYNTH_MAX_CELLS = 10**9


def _check_synth_size(args) -> None:
    """ConfigError naming the flag for a size, seed or span ``raybt data synth`` cannot write."""
    import pandas as pd

    from raybt.data.timeframes import parse_timeframe

    if args.assets < 1 or args.bars < 2:
        raise ConfigError("--assets must be >= 1 and --bars >= 2")
    if args.assets * args.bars > SYNTH_MAX_CELLS:
        raise ConfigError(f"--assets {args.assets} x --bars {args.bars} is over {SYNTH_MAX_CELLS:,} asset-bars")
    if not 0 <= args.seed < 2**63:
        raise ConfigError(f"--seed must be a whole number >= 0, got {args.seed}")
    span_ns = parse_timeframe(args.timeframe).value * args.bars * (2 if args.calendar == "market" else 1)  # weekends
    if span_ns >= (pd.Timestamp.max - pd.Timestamp("2025-01-01")).value:
        raise ConfigError(f"--bars {args.bars} of --timeframe {args.timeframe} run past the year 2261")


# --- parser ------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error of every other user error (not its usage block); exit status 2."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {_one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="raybt", description="Multi-asset portfolio backtesting on Ray.")
    sub = parser.add_subparsers(dest="command", required=True)

    bt = sub.add_parser("backtest", help="backtest one asset")
    bt.add_argument("--asset", help="asset name from the asset config (default: its first asset)")
    bt.add_argument("--config", help="asset config file (JSON/YAML; default configs/assets_config_highperf.json)")
    bt.add_argument("--data", help="bars file (CSV/Parquet) instead of --asset")
    bt.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a strategy/broker parameter")
    bt.add_argument("--timeframe", type=timeframe_arg,
                    help="resample bars to this timeframe first (e.g. 15m, 1h)")
    bt.add_argument("--date-format", metavar="FORMAT",
                    help="strptime format of the bars' time column (e.g. %%d/%%m/%%Y %%H:%%M); settles day/month order")
    bt.add_argument("--out", help="output folder (default: a new results/<run>/)")
    bt.add_argument("--overwrite", action="store_true",
                    help="replace an unfinished earlier run left in the output folder's .partial")
    bt.set_defaults(handler=_backtest)

    run = sub.add_parser("run", help="run a portfolio backtest (all assets on one clock)")
    run.add_argument("config", nargs="?", help="portfolio config YAML (default configs/portfolio_balanced.yaml)")
    run.add_argument("--preference", choices=("balanced", "pnl", "drawdown"))
    run.add_argument("--allocation", help="allocation model (equal_weight, risk_parity, performance_weighted, ...)")
    run.add_argument("--max-assets", type=int)
    run.add_argument("--timeframe", type=timeframe_arg,
                     help="resample every asset to this timeframe (e.g. 15m)")
    run.add_argument("--date-format", metavar="FORMAT",
                     help="strptime format of every bars file's time column (default: timestamp_format of the "
                          "asset config, else inferred)")
    run.add_argument("--engine", choices=("ray", "local"), default="ray")
    run.add_argument("--chunk", help="chunk duration (e.g. 1D, 4h)")
    run.add_argument("--address", type=address_arg,
                     help="Ray cluster address (default: RAY_ADDRESS or an embedded local Ray)")
    run.add_argument("--layout", choices=("auto", "colocated", "actors"),
                     help="on Ray: colocated (the coordinator's actor advances every asset; the default on one "
                          "node) or actors (shard actors; the default on a cluster) (engine.layout)")
    run.add_argument("--assets-per-actor", type=int, metavar="N",
                     help="the actors layout: N assets per shard actor (engine.assets_per_actor; "
                          "default: one shard per CPU)")
    run.add_argument("--out", help="output folder (default: a new results/<run>/)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an unfinished run left in the output folder's .partial (instead of --resume)")
    run.add_argument("--format", choices=("parquet", "csv"),
                     help="format of the large result tables (default: output.format of the config, parquet)")
    run.add_argument("--no-report", dest="report", action="store_const", const=False,
                     help="write the tables, metrics and run info only: no figures, summary, analysis.json or "
                          "report.html (output.report: false; `raybt report RUN_DIR` writes them later)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--checkpoint-every", type=int, metavar="CHUNKS",
                     help="save a checkpoint every CHUNKS chunks (engine.checkpoint_every; 0 = off)")
    run.add_argument("--checkpoint-seconds", type=float, metavar="SECONDS",
                     help="save a checkpoint every SECONDS of wall time (engine.checkpoint_seconds, default 60; "
                          "0 = off)")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue an interrupted run (results/<run>) from its last checkpoint")
    run.set_defaults(handler=_run)

    from raybt.optimize.command import add_optimize_arguments, optimize_command

    opt = sub.add_parser("optimize", help="grid-search strategy parameters per asset (writes best_configs_*.json)")
    add_optimize_arguments(opt)
    opt.set_defaults(handler=optimize_command)

    from raybt.sweep.command import add_sweep_arguments, sweep_command

    sw = sub.add_parser("sweep", help="sweep portfolio settings (one full backtest per point, in parallel on Ray)")
    add_sweep_arguments(sw)
    sw.set_defaults(handler=sweep_command)

    rep = sub.add_parser("report", help="rebuild the figures, summary and report.html of a run folder")
    rep.add_argument("run_dir", help="a results/<run>/ folder written by raybt run")
    rep.add_argument("--no-frontier", action="store_true", help="skip the efficient frontier")
    rep.set_defaults(handler=_report)

    init = sub.add_parser("init", help="write an editable copy of the default configs into DIR/configs")
    init.add_argument("dir", nargs="?", default=".", help="where to put configs/ (default: this folder)")
    init.add_argument("--overwrite", action="store_true", help="replace config files already there")
    init.set_defaults(handler=_init)

    data = sub.add_parser("data", help="data utilities")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    synth = data_sub.add_parser("synth", help="generate a synthetic universe")
    synth.add_argument("--assets", type=int, default=15)
    synth.add_argument("--bars", type=int, default=105_120)
    synth.add_argument("--timeframe", type=timeframe_arg, default="5m")
    synth.add_argument("--seed", type=int, default=42)
    synth.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    synth.add_argument("--calendar", choices=("market", "24x7"), default="market")
    synth.add_argument("--out", required=True)
    synth.add_argument("--overwrite", action="store_true", help="replace the universe already in --out")
    synth.set_defaults(handler=_data_synth)
    return parser


def _one_line(message: str) -> str:
    """An error message on one line (a stray newline from a library would split it)."""
    return "; ".join(part.strip() for part in message.splitlines() if part.strip()) or message


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    install_signal_handlers()
    try:
        return args.handler(args)
    except RaybtError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        # a file system operation failed (output folder, a file that vanished...): user-facing, one line.
        # Other OSErrors (sockets, ...) carry no file name: a bug, so let them raise.
        if exc.filename is None:
            raise
        target = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else f"{exc.filename}"
        print(f"error: {_one_line(target)}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        # the run's .partial folder keeps its INCOMPLETE marker and last checkpoint: --resume continues it
        folder = getattr(args, "run_folder", None) or getattr(args, "resume", None) or "<run folder>"
        print(f"interrupted: resume with raybt run --resume {folder}" if args.command == "run" else "interrupted",
              file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


def entry() -> None:
    """The ``raybt`` command: :func:`main`, then the process ends with its code
    (:func:`raybt.process_exit.exit_now`: without the interpreter's teardown)."""
    from raybt.process_exit import exit_now

    exit_now(main())


if __name__ == "__main__":
    entry()
