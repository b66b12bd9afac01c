"""Writing a portfolio run folder (``results/<run>/``), atomically.

Large tables, as Parquet by default or CSV (``format="csv"``, see
:mod:`raybt.tables`): ``portfolio_equity`` (timestamp, equity, drawdown, one
equity column per asset), ``trades`` (all assets), ``multipliers`` (per chunk
and asset: multiplier, its factors, halted, flatten, reason). Small files,
always text: ``events.csv`` (breaker trips/resumes, rebalances),
``weights.csv`` (starting target weights), ``weights_history.csv`` (target
weights at the start and at every re-estimate), ``metrics.json`` (portfolio
and per asset), ``config.yaml`` (the resolved configuration); then (unless
``report=False``) the figures, ``portfolio_summary.txt``, ``analysis.json``
and ``report.html`` of :mod:`raybt.plots.report`, built from the result in
memory; last ``run_info.json`` (raybt version, hashes, engine timings and the
seconds of every phase, this writing included).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

import raybt
from raybt.phases import PhaseTimer, phase
from raybt.results import atomic_run_dir, write_json
from raybt.tables import check_format, write_table


def write_portfolio_run(result, out: Path, *, report: bool = True, reuse: bool = False, format: str = "parquet",
                        timer: PhaseTimer | None = None, figure_pool=None) -> Path:
    """Write the run folder; with ``report`` also the figures, summary and report.html.

    Everything is written into the temporary folder first, so a folder under
    its final name is always complete (report included). ``timer`` gets the
    report's phases, ``file.small`` and ``file.tables`` (the wait for the
    background writer of the large tables; the seconds each table took are
    in ``timings["table_write_s"]``; with a ``figure_pool``, the seconds each
    figure took in its worker in ``timings["figure_draw_s"]``).
    """
    check_format(format)
    timer = timer if timer is not None else PhaseTimer()
    with atomic_run_dir(out, reuse=reuse, timer=timer) as tmp:
        # the large tables are written by a thread while this one builds the report: compressing and
        # writing Parquet releases the GIL, so on two cores the files cost almost no extra wall time
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="raybt-write") as pool:
            tables = pool.submit(_write_tables, result, tmp, format)
            with phase(timer, "file.small"):
                _write_small_files(result, tmp)
            if report:
                from raybt.plots.report import build_report, run_from_result

                build_report(tmp, run=run_from_result(result, tmp, out), timer=timer, pool=figure_pool)
                if figure_pool is not None:
                    result.timings["figure_draw_s"] = dict(figure_pool.drawn_seconds)
            with phase(timer, "file.tables"):  # what is left to wait for once the report is done
                result.timings["table_write_s"] = tables.result()
        result.timings["phases"] = timer.seconds
        write_json(tmp / "run_info.json", run_info(result))
    return out


def _write_tables(result, folder: Path, fmt: str) -> dict:
    """The large tables; returns the seconds each took (written in a background thread)."""
    seconds = {}
    for stem, frame, index_label in (("portfolio_equity", result.equity, "timestamp"),
                                     ("trades", result.trades, None), ("multipliers", result.multipliers, None)):
        start = time.perf_counter()
        write_table(frame, folder, stem, fmt, index_label=index_label)
        seconds[stem] = time.perf_counter() - start
    return seconds


def _write_small_files(result, folder: Path) -> None:
    from raybt.metrics import json_safe

    result.events.to_csv(folder / "events.csv", index=False)
    result.weights.rename("weight").to_csv(folder / "weights.csv", index_label="asset")
    if result.weight_history is not None:
        result.weight_history.to_csv(folder / "weights_history.csv", index=False)
    write_json(folder / "metrics.json", {
        "portfolio": json_safe(result.metrics["portfolio"]),
        "assets": {k: json_safe(v) for k, v in result.metrics["assets"].items()},
    })
    (folder / "config.yaml").write_text(yaml.safe_dump(result.config, sort_keys=False))


def run_info(result) -> dict:
    """``run_info.json``: raybt version, provenance (config and data hashes) and timings."""
    return {"raybt_version": raybt.__version__, **result.provenance, "timings": result.timings}
