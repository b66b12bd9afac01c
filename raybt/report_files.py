"""Writing a portfolio run folder (``results/<run>/``), atomically.

Files: ``portfolio_equity.csv`` (timestamp, equity, drawdown, one equity
column per asset), ``trades.csv`` (all assets), ``multipliers.csv`` (per
chunk and asset: multiplier, its factors, halted, flatten, reason),
``events.csv`` (breaker trips/resumes, rebalances), ``weights.csv``,
``metrics.json`` (portfolio and per asset), ``config.yaml`` (the resolved
configuration) and ``run_info.json`` (raybt version, engine, timings).
"""

from __future__ import annotations

from pathlib import Path

import yaml

import raybt
from raybt.results import atomic_run_dir, write_json


def write_portfolio_run(result, out: Path) -> Path:
    from raybt.metrics import json_safe

    with atomic_run_dir(out) as tmp:
        result.equity.to_csv(tmp / "portfolio_equity.csv", index_label="timestamp")
        result.trades.to_csv(tmp / "trades.csv", index=False)
        result.multipliers.to_csv(tmp / "multipliers.csv", index=False)
        result.events.to_csv(tmp / "events.csv", index=False)
        result.weights.rename("weight").to_csv(tmp / "weights.csv", index_label="asset")
        write_json(tmp / "metrics.json", {
            "portfolio": json_safe(result.metrics["portfolio"]),
            "assets": {k: json_safe(v) for k, v in result.metrics["assets"].items()},
        })
        (tmp / "config.yaml").write_text(yaml.safe_dump(result.config, sort_keys=False))
        write_json(tmp / "run_info.json", {"raybt_version": raybt.__version__, **result.timings})
    return out
