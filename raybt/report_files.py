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

from pathlib import Path

import yaml

import raybt
from raybt.phases import PhaseTimer, phase
from raybt.results import atomic_run_dir, write_json
from raybt.tables import check_format, write_table


def write_portfolio_run(result, out: Path, *, report: bool = True, reuse: bool = False, format: str = "parquet",
                        timer: PhaseTimer | None = None) -> Path:
    """Write the run folder; with ``report`` also the figures, summary and report.html.

    Everything is written into the temporary folder first, so a folder under
    its final name is always complete (report included). ``timer`` gets one
    phase per file (``file.<name>``) and the report's phases.
    """
    from raybt.metrics import json_safe

    check_format(format)
    timer = timer if timer is not None else PhaseTimer()
    with atomic_run_dir(out, reuse=reuse) as tmp:
        tables = (("portfolio_equity", result.equity, "timestamp"), ("trades", result.trades, None),
                  ("multipliers", result.multipliers, None))
        for stem, frame, index_label in tables:
            with phase(timer, f"file.{stem}"):
                write_table(frame, tmp, stem, format, index_label=index_label)
        with phase(timer, "file.small"):
            result.events.to_csv(tmp / "events.csv", index=False)
            result.weights.rename("weight").to_csv(tmp / "weights.csv", index_label="asset")
            if result.weight_history is not None:
                result.weight_history.to_csv(tmp / "weights_history.csv", index=False)
            write_json(tmp / "metrics.json", {
                "portfolio": json_safe(result.metrics["portfolio"]),
                "assets": {k: json_safe(v) for k, v in result.metrics["assets"].items()},
            })
            (tmp / "config.yaml").write_text(yaml.safe_dump(result.config, sort_keys=False))
        if report:
            from raybt.plots.report import build_report, run_from_result

            build_report(tmp, run=run_from_result(result, tmp, out), timer=timer)
        result.timings["phases"] = timer.seconds
        write_json(tmp / "run_info.json", run_info(result))
    return out


def run_info(result) -> dict:
    """``run_info.json``: raybt version, provenance (config and data hashes) and timings."""
    return {"raybt_version": raybt.__version__, **result.provenance, "timings": result.timings}
