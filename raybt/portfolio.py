"""Loading a portfolio from its config files (edge: reads files).

``load_portfolio_from_config(preference)`` returns the portfolio's assets
(config + bars) and its validated :class:`PortfolioConfig`. Per-asset
parameters come from the asset config file, overridden by the optimiser's
``best_configs_<preference>.json`` when one exists in ``best_configs_dir``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from raybt.broker import validate_params
from raybt.config import load_asset_universe
from raybt.errors import ConfigError

DEFAULT_PORTFOLIO_CONFIG = Path("configs/portfolio_balanced.yaml")
PREFERENCES = ("balanced", "pnl", "drawdown")


def best_configs_path(preference: str, directory: Path | str = "results") -> Path:
    return Path(directory) / f"best_configs_{preference}.json"


def load_best_configs(path: Path) -> dict:
    """``{asset: {param: value}}`` from an optimiser output (see ``raybt optimize``)."""
    try:
        doc = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: JSON syntax error at line {exc.lineno}: {exc.msg}") from None
    assets = doc.get("assets") if isinstance(doc, dict) else None
    if not isinstance(assets, dict):
        raise ConfigError(f"{path}: expected an 'assets' mapping of asset -> parameters")
    return {name: (entry.get("params", entry) if isinstance(entry, dict) else entry)
            for name, entry in assets.items()}


#: how each preference ranks assets from their optimisation metrics (higher is better)
RANKING_METRIC = {"balanced": ("sharpe", 1.0), "pnl": ("pnl", 1.0), "drawdown": ("max_drawdown", -1.0)}


def preference_ranking(preference: str, directory: Path | str = "results") -> dict | None:
    """``{asset: score}`` from ``best_configs_<preference>.json`` metrics, or None without one.

    balanced ranks by Sharpe, pnl by net PnL, drawdown by the smallest max
    drawdown (the optimiser's selection criteria); ``--max-assets`` keeps the top N.
    """
    path = best_configs_path(preference, directory)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: JSON syntax error at line {exc.lineno}: {exc.msg}") from None
    key, sign = RANKING_METRIC[preference]
    scores = {}
    for name, entry in (doc.get("assets") or {}).items():
        value = (entry.get("metrics") or {}).get(key) if isinstance(entry, dict) else None
        scores[name] = sign * float(value) if isinstance(value, (int, float)) and value == value else float("-inf")
    return scores


def load_portfolio_from_config(preference: str | None = None, config=None, *, timeframe: str | None = None,
                               max_assets: int | None = None, best_configs_dir="results", echo=None,
                               **overrides):
    """Return ``(assets, portfolio_config)``; ``assets`` = {name: (AssetConfig, bars)}.

    ``max_assets`` sets ``allocation.max_assets``: the engine keeps the top N
    by :func:`preference_ranking` when optimisation results exist, else by
    Sharpe over the allocation lookback window.
    """
    from raybt.portfolio_config import load_portfolio_config
    from raybt.universe import load_asset_bars

    pconf = load_portfolio_config(config or DEFAULT_PORTFOLIO_CONFIG)
    changes = {k: v for k, v in overrides.items() if v is not None}
    if preference is not None:
        changes["preference"] = preference
    if changes:
        pconf = pconf.with_overrides(**changes)
    universe = load_asset_universe(pconf.asset_config)
    names = list(universe.assets) if pconf.assets == "all" else list(pconf.assets)
    for name in names:
        universe.get(name)  # unknown asset -> ConfigError with a suggestion
    best_path = best_configs_path(pconf.preference, best_configs_dir)
    best = load_best_configs(best_path) if best_path.is_file() else {}
    if max_assets is not None:
        if max_assets < 1:
            raise ConfigError(f"--max-assets must be >= 1, got {max_assets}")
        pconf = pconf.with_overrides(max_assets=max_assets)
    assets = {}
    for name in names:
        asset = universe.get(name)
        if name in best:
            asset = dataclasses.replace(asset, params=validate_params(best[name], f"{best_path}: {name}",
                                                                      base=asset.params))
        assets[name] = (asset, load_asset_bars(asset, universe, timeframe, echo=echo))
    return assets, pconf
