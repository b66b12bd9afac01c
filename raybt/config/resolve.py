"""A portfolio's assets resolved from its config files and the optimiser's results.

:func:`resolve_portfolio` gives the validated :class:`PortfolioConfig`, its
assets in portfolio order and their universe. Per-asset parameters come from
the asset config file, overridden by the optimiser's
``best_configs_<preference>.json`` when one exists in ``best_configs_dir``;
:func:`preference_ranking` reads the same file for the ``max_assets``
ranking. The checks here are the ones that need the assets together (weight
caps, reserved names, chunk length against the bars). Loading the bars is
:func:`raybt.universe.load_portfolio_from_config`.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

from raybt.config.common import closest_name, json_document
from raybt.config.params import validate_params
from raybt.config.universe import load_asset_universe
from raybt.errors import ConfigError, RaybtWarning

DEFAULT_PORTFOLIO_CONFIG = "portfolio_balanced.yaml"  # in ./configs, written from the packaged defaults if absent


def best_configs_path(preference: str, directory: Path | str = "results") -> Path:
    return Path(directory) / f"best_configs_{preference}.json"


def load_best_configs(path: Path) -> dict:
    """``{asset: {param: value}}`` from an optimiser output (see ``raybt optimize``)."""
    doc = _read_json(path)
    assets = doc.get("assets") if isinstance(doc, dict) else None
    if not isinstance(assets, dict):
        raise ConfigError(f"{path}: expected an 'assets' mapping of asset -> parameters")
    out = {}
    for name, entry in assets.items():
        params = entry.get("params", entry) if isinstance(entry, dict) else entry
        if not isinstance(params, dict):
            raise ConfigError(f"{path}: assets.{name}: expected a mapping of parameter -> value, "
                              f"got {type(params).__name__}")
        out[name] = params
    return out


def _read_json(path) -> object:
    """A JSON file's document; ConfigError (one line) for unreadable text or a syntax error."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    return json_document(raw, path)


#: how each preference ranks assets from their optimisation metrics (higher is better)
RANKING_METRIC = {"balanced": ("sharpe", 1.0), "pnl": ("pnl", 1.0), "drawdown": ("max_drawdown", -1.0)}

#: the metric prefix ranking uses, per ``raybt optimize`` mode: the out-of-sample metrics whenever
#: there are any (in-sample ones are biased upward by the selection itself); with --walk-forward
#: they are the stitched out-of-sample equity's
RANKING_PREFIX = {"full": "", "train": "oos_", "walk_forward": "oos_"}


def _ranking_key(doc: dict, preference: str, path) -> tuple[str, float]:
    """The metric key and sign a best_configs document ranks by (its ``ranking``, else from its ``mode``)."""
    ranking = doc.get("ranking")
    if ranking is not None:
        metric = ranking.get("metric") if isinstance(ranking, dict) else None
        higher = ranking.get("higher_is_better") if isinstance(ranking, dict) else None
        if not isinstance(metric, str) or not metric or not isinstance(higher, bool):
            raise ConfigError(f"{path}: ranking: expected {{metric: <name>, higher_is_better: true|false}}, "
                              f"got {ranking!r}")
        return metric, 1.0 if higher else -1.0
    mode = doc.get("mode", "full")
    if mode not in RANKING_PREFIX:
        raise ConfigError(f"{path}: mode: unknown optimize mode {mode!r} (one of {', '.join(RANKING_PREFIX)})")
    key, sign = RANKING_METRIC[preference]
    return RANKING_PREFIX[mode] + key, sign


def preference_ranking(preference: str, directory: Path | str | None = "results", *, allocation=None,
                       assets=None) -> dict | None:
    """``{asset: score}`` (higher is better) from ``best_configs_<preference>.json``, or None.

    The same function ranks for ``raybt run`` and for every ``raybt sweep``
    point, so a sweep point and ``raybt run`` of its config select the same assets.

    * balanced ranks by Sharpe, pnl by net PnL, drawdown by the smallest max
      drawdown (the optimiser's selection criteria), taken from the metrics
      the file's ``ranking`` names: the full-sample metric after a plain
      ``raybt optimize``, the out-of-sample ``oos_*`` one after ``--train``
      or ``--walk-forward`` (files without ``ranking``: by their ``mode``).
    * A metric that is null/NaN (e.g. a Sharpe with no trades) scores -inf:
      that asset ranks last.
    * None (rank by the estimation window's Sharpe instead) when there is no
      file, ``directory`` is None, the file carries parameters only (no
      ``metrics``, e.g. written by hand), or ``allocation`` is given and
      selects nothing (no ``max_assets`` and no ``max_asset_correlation``:
      the order is then unused and the file is not read).

    ConfigError (one line naming the file, the asset and the key) when the
    file has metrics but an asset's entry lacks the ranking metric or holds a
    non-number (it cannot be ranked: re-run ``raybt optimize``), or when
    ``assets`` (the portfolio's) names an asset the file has no entry for;
    given ``assets``, only their scores are returned.
    """
    if allocation is not None and getattr(allocation, "max_assets", None) is None \
            and getattr(allocation, "max_asset_correlation", None) is None:
        return None
    if directory is None:
        return None
    path = best_configs_path(preference, directory)
    if not path.is_file():
        return None
    doc = _read_json(path)
    entries = doc.get("assets") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: expected an 'assets' mapping of asset -> parameters")
    if not any(isinstance(e, dict) and "metrics" in e for e in entries.values()):
        return None  # parameters only: nothing to rank by
    key, sign = _ranking_key(doc, preference, path)
    scores = {}
    for name, entry in entries.items():
        metrics = entry.get("metrics") if isinstance(entry, dict) else None
        if not isinstance(metrics, dict):
            raise ConfigError(f"{path}: assets.{name}.metrics: missing or not a mapping, so {name} cannot be "
                              f"ranked by {key}; re-run raybt optimize")
        if key not in metrics:
            raise ConfigError(f"{path}: assets.{name}.metrics.{key}: missing (mode {doc.get('mode', 'full')}), "
                              f"so the assets cannot be ranked for allocation.max_assets; re-run raybt optimize")
        value = metrics[key]
        if value is None or (isinstance(value, float) and value != value):
            scores[name] = float("-inf")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: assets.{name}.metrics.{key}: must be a number or null, got {value!r}")
        else:
            scores[name] = sign * float(value)
    if assets is not None:
        missing = [a for a in assets if a not in scores]
        if missing:
            raise ConfigError(f"{path}: assets: no entry for portfolio asset '{missing[0]}'"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                              + ", so it cannot be ranked for allocation.max_assets / max_asset_correlation; "
                                "optimise every asset of the portfolio (raybt optimize --assets ...)")
        return {a: scores[a] for a in assets}  # the file's other assets belong to other portfolios
    return scores


def chunk_source(pconf, overrides: dict) -> str:
    """Where the chunk length came from, for error messages: ``--chunk`` or the config's key."""
    return "--chunk" if overrides.get("chunk") is not None else f"{pconf.source}: engine.chunk"


def resolve_portfolio(preference: str | None = None, config=None, *, max_assets: int | None = None,
                      best_configs_dir="results", echo=None, **overrides):
    """``(asset configs, portfolio config, universe)``: the validated config, its assets in
    portfolio order with the optimiser's ``best_configs_<preference>.json`` parameters applied
    (no bars read yet; see :func:`raybt.universe.iter_asset_bars`)."""
    from raybt.config.portfolio import _number, load_portfolio_config

    from raybt.config.defaults import default_config

    if config is not None and not isinstance(config, (str, os.PathLike)):
        raise ConfigError(f"config: expected the path of a portfolio config file (str or pathlib.Path) or None, "
                          f"got {type(config).__name__}")
    if not isinstance(best_configs_dir, (str, os.PathLike)):
        raise ConfigError(f"best_configs_dir: expected a folder path (str or pathlib.Path), "
                          f"got {type(best_configs_dir).__name__}")
    if max_assets is not None:
        max_assets = _number(max_assets, "max_assets", 1, integer=True)
    pconf = load_portfolio_config(config or default_config(DEFAULT_PORTFOLIO_CONFIG, echo))
    changes = {k: v for k, v in overrides.items() if v is not None}
    if preference is not None:
        changes["preference"] = preference
    if changes:
        pconf = pconf.with_overrides(**changes)
    universe = load_asset_universe(pconf.asset_config)
    names = list(universe.assets) if pconf.assets == "all" else list(pconf.assets)
    for name in names:
        if name not in universe.assets:  # unknown asset -> ConfigError with a suggestion
            raise ConfigError(f"{pconf.source}: assets: unknown asset '{name}'" + closest_name(name, universe.assets)
                              + f" (not in {universe.path})")
    if max_assets is not None:
        pconf = pconf.with_overrides(max_assets=max_assets)
    check_weight_cap(pconf, len(names))
    best_path = best_configs_path(pconf.preference, best_configs_dir)
    best = load_best_configs(best_path) if best_path.is_file() else {}
    for line in unknown_best_assets(best, universe, best_path):
        _warn(line, echo)
    configs = []
    for name in names:
        asset = universe.get(name)
        check_portfolio_asset(asset, f"{universe.path}: assets.{name}")
        configs.append(apply_best_params(asset, best, best_path))
    return configs, pconf, universe


def _warn(line: str, echo=None) -> None:
    """``warning: line`` through ``echo`` (the CLI's stderr), else a :class:`RaybtWarning`."""
    if echo is not None:
        echo(f"warning: {line}")
    else:
        warnings.warn(line, RaybtWarning, stacklevel=3)


def apply_best_params(asset, best: dict, best_path: Path):
    """``asset`` with its entry of a best_configs file (``best``, from ``best_path``) applied: the
    parameters validated over the asset's own; ConfigError naming ``best_path`` and the asset for a bad
    value or a ``weight`` (:func:`check_portfolio_asset`)."""
    if asset.name not in best:
        return asset
    where = f"{best_path}: assets.{asset.name}"
    asset = dataclasses.replace(asset, params=validate_params(best[asset.name], where, base=asset.params))
    check_portfolio_asset(asset, where)
    return asset


def unknown_best_assets(best: dict, universe, best_path: Path) -> list[str]:
    """One warning line per asset a best_configs file names that the asset config does not have (a
    misspelt name would otherwise silently leave the real asset on its configured parameters). Assets of
    the universe that this portfolio does not hold are not warned about: one file serves every portfolio
    of the universe."""
    return [f"{best_path}: assets.{name}: no such asset in {universe.path}"
            + closest_name(name, universe.assets) + "; its parameters are not applied"
            for name in best if name not in universe.assets]


#: the columns of a portfolio's equity table besides the sleeves: no asset may be named like them
RESERVED_ASSET_NAMES = ("timestamp", "equity", "drawdown")


def check_portfolio_asset(asset, where: str) -> None:
    """ConfigError when an asset cannot be a sleeve of a portfolio as configured.

    Its name must not be a column of the equity table (``timestamp``,
    ``equity``, ``drawdown``), and its parameters must not set a ``weight``
    other than 1: a portfolio sizes its sleeves by ``allocation`` (or the
    ``weights`` given to the engine), so a per-asset weight would be ignored.
    """
    if asset.name in RESERVED_ASSET_NAMES:
        raise ConfigError(f"{where}: the asset name '{asset.name}' is a column of the portfolio's equity table "
                          f"({', '.join(RESERVED_ASSET_NAMES)}); rename the asset")
    weight = asset.params.get("weight", 1.0) if asset.params else 1.0
    if weight != 1.0:
        raise ConfigError(f"{where}: weight {weight:g} would be ignored: a portfolio sizes its sleeves by "
                          f"allocation.model (or fixed weights given to the engine); remove the asset's weight")


def best_configs_provenance(preference: str, directory="results", assets=None) -> dict | None:
    """``{"path", "sha256", "assets"}`` of the ``best_configs_<preference>.json`` a run applies, or None.

    ``assets``: the portfolio's asset names; ``"assets"`` then lists only those the file sets (the
    ones applied), not the file's other entries."""
    import hashlib

    path = best_configs_path(preference, directory)
    if not path.is_file():
        return None
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "assets": sorted(n for n in load_best_configs(path) if assets is None or n in assets)}


def check_weight_cap(pconf, n_assets: int) -> None:
    """ConfigError when ``allocation.max_single_asset_weight`` x assets < 1 (weights cannot sum to 1)."""
    cap = pconf.allocation.max_single_asset_weight
    if cap is None or n_assets < 1:
        return
    n = min(n_assets, pconf.allocation.max_assets or n_assets)
    if cap * n < 1 - 1e-9:
        raise ConfigError(
            f"{pconf.source}: allocation.max_single_asset_weight: {cap:g} x {n} asset(s) = {cap * n:.4g} < 1, "
            f"so the weights cannot sum to 1; use at least {1 / n:.4g} or more assets")


def check_chunk_timeframe(pconf, configs, timeframe: str | None, where: str) -> None:
    """ConfigError, before any bar is read, when the chunk is shorter than an asset's declared timeframe."""
    import pandas as pd

    from raybt.data.timeframes import parse_timeframe

    for asset in configs:
        bar = pd.Timedelta(parse_timeframe(timeframe or asset.timeframe))
        if pconf.chunk_timedelta < bar:
            raise ConfigError(f"{where}: {pconf.engine.chunk} is shorter than one bar ({bar}, the timeframe of "
                              f"asset {asset.name}); use at least the bar spacing")


def check_chunk(pconf, indexes, where: str) -> None:
    """ConfigError when the chunk is shorter than the bar spacing of the portfolio's union timeline.

    ``indexes``: each asset's DatetimeIndex.
    """
    import numpy as np
    import pandas as pd

    from raybt.timeline import union_timeline

    indexes = [index for index in indexes if len(index) > 1]
    if not indexes:
        return
    stamps = union_timeline(indexes).asi8
    if len(stamps) < 2:
        return
    bar = pd.Timedelta(int(np.min(np.diff(stamps))), unit="ns")
    chunk = pconf.chunk_timedelta
    if chunk < bar:
        raise ConfigError(f"{where}: {pconf.engine.chunk} is shorter than one bar ({bar}); "
                          f"use at least the bar spacing")
