"""Writing a portfolio run folder (``results/<run>/``), atomically.

Files: ``portfolio_equity.csv`` (timestamp, equity, drawdown, one equity
column per asset), ``trades.csv`` (all assets), ``multipliers.csv`` (per
chunk and asset: multiplier, its factors, halted, flatten, reason),
``events.csv`` (breaker trips/resumes, rebalances), ``weights.csv`` (starting
target weights), ``weights_history.csv`` (target weights at the start and at
every re-estimate),
``metrics.json`` (portfolio and per asset), ``config.yaml`` (the resolved
configuration) and ``run_info.json`` (raybt version, engine, timings); then
(unless ``report=False``) the figures, ``portfolio_summary.txt``,
``analysis.json`` and ``report.html`` of :mod:`raybt.plots.report`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

import raybt
from raybt.results import atomic_run_dir, write_json


def write_portfolio_run(result, out: Path, *, report: bool = True, reuse: bool = False) -> Path:
    """Write the run folder; with ``report`` also the figures, summary and report.html.

    Everything is written into the temporary folder first, so a folder under
    its final name is always complete (report included).
    """
    from raybt.metrics import json_safe

    with atomic_run_dir(out, reuse=reuse) as tmp:
        result.equity.to_csv(tmp / "portfolio_equity.csv", index_label="timestamp")
        result.trades.to_csv(tmp / "trades.csv", index=False)
        result.multipliers.to_csv(tmp / "multipliers.csv", index=False)
        result.events.to_csv(tmp / "events.csv", index=False)
        result.weights.rename("weight").to_csv(tmp / "weights.csv", index_label="asset")
        if result.weight_history is not None:
            result.weight_history.to_csv(tmp / "weights_history.csv", index=False)
        write_json(tmp / "metrics.json", {
            "portfolio": json_safe(result.metrics["portfolio"]),
            "assets": {k: json_safe(v) for k, v in result.metrics["assets"].items()},
        })
        (tmp / "config.yaml").write_text(yaml.safe_dump(result.config, sort_keys=False))
        write_json(tmp / "run_info.json", {"raybt_version": raybt.__version__, **result.provenance,
                                            "timings": result.timings})
        if report:
            from raybt.plots.report import build_report

            build_report(tmp)
    return out
