"""What the Python API is handed, checked before anything loads or starts.

:class:`~raybt.engine.PortfolioBacktester` takes objects built by hand, not
only ones read from config files, so it checks them here with the config
files' own validators, and every problem is one :class:`ConfigError` line
naming the asset or the argument:

* :func:`check_config`: the portfolio config is a :class:`PortfolioConfig`;
* :func:`check_assets`: ``{name: (AssetConfig, bars DataFrame)}`` or a list
  of ``AssetConfig``; each name a non-empty string as in an asset config
  file (a dict's key the same as its AssetConfig's ``name``, names unique),
  each timeframe one that parses; each asset's ``params`` pass
  :func:`~raybt.config.params.validate_params` (keys left out take the spec
  default, as in an asset config file) and come back validated;
* :func:`check_weights`: fixed target weights, one finite weight >= 0 per
  asset of the portfolio, summing to 1 (an asset weighted 0 is not simulated,
  as the allocation's unselected assets are not), within the config's caps
  (:func:`check_weights_allowed`);
* :func:`check_arguments` (timeframe, ranking, progress, timer) and
  :func:`check_checkpoint_dir` (``run``'s ``checkpoint_dir`` and ``resume``).

The bars themselves are checked while they load
(:func:`raybt.universe.validate_asset_bars`, in :func:`raybt.engine.intake.take_bars`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from raybt.config.common import check_name, check_timeframe
from raybt.config.params import validate_params
from raybt.config.portfolio import PortfolioConfig
from raybt.config.universe import AssetConfig
from raybt.errors import ConfigError

_ASSETS = "{name: (AssetConfig, bars DataFrame)} or a list of AssetConfig"

#: how far fixed weights may sum from 1 (rounding of hand-typed fractions such as 1/3)
WEIGHT_SUM_TOLERANCE = 1e-6


def check_config(config) -> PortfolioConfig:
    """``config`` itself when it is a :class:`PortfolioConfig`; ConfigError otherwise."""
    if not isinstance(config, PortfolioConfig):
        raise ConfigError(f"portfolio_config: expected a PortfolioConfig (raybt.config.load_portfolio_config(path) "
                          f"or portfolio_config_from_dict(doc)), got {type(config).__name__}")
    return config


def _asset_config(asset, where: str) -> AssetConfig:
    """``asset`` with validated parameters; ConfigError when it is not an AssetConfig, or its name,
    timeframe or a parameter is bad."""
    if not isinstance(asset, AssetConfig):
        hint = " (for (AssetConfig, DataFrame) pairs pass a dict {name: (AssetConfig, DataFrame)})" \
            if isinstance(asset, tuple) else ""
        raise ConfigError(f"{where}: expected an AssetConfig, got {type(asset).__name__}{hint}")
    check_name(asset.name, f"{where}: name")
    check_timeframe(asset.timeframe, f"{where}: timeframe")
    return dataclasses.replace(asset, params=validate_params(asset.params, where))


def _unique(names) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"asset {name}: named twice in the portfolio")
        seen.add(name)


def check_assets(assets):
    """``assets`` in the same form with every asset's parameters validated (see the module docstring)."""
    if isinstance(assets, Mapping):
        checked = {}
        for name, pair in assets.items():
            where = f"asset {name!r}" if not isinstance(name, str) else f"asset {name}"
            check_name(name, f"{where}: the key naming it")
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                got = f"{len(pair)} items" if isinstance(pair, (tuple, list)) else type(pair).__name__
                raise ConfigError(f"{where}: expected a pair (AssetConfig, bars DataFrame), got {got}")
            config = _asset_config(pair[0], where)
            if config.name != name:
                raise ConfigError(f"{where}: its AssetConfig is named {config.name!r}; the key and the name "
                                  f"must be the same")
            checked[name] = (config, pair[1])
        return checked
    if isinstance(assets, Iterable) and not isinstance(assets, (str, bytes, pd.DataFrame, pd.Series)):
        # a list, tuple, dict_values (universe.assets.values()), generator...
        checked = [_asset_config(a, f"asset {getattr(a, 'name', f'#{i + 1}')}") for i, a in enumerate(assets)]
        _unique(a.name for a in checked)
        return checked
    raise ConfigError(f"assets: expected {_ASSETS}, got {type(assets).__name__}")


def check_weights(weights, names) -> pd.Series | None:
    """Fixed target weights as a float64 Series in portfolio order (None stays None).

    ``weights``: a Series or a mapping ``{asset: weight}`` naming every asset
    of the portfolio (``names``) and no other; each weight a finite number
    >= 0, together summing to 1 (within :data:`WEIGHT_SUM_TOLERANCE`).
    """
    from raybt.allocation.constraints import aligned_scores

    if weights is None:
        return None
    if isinstance(weights, Mapping):
        weights = pd.Series(dict(weights), dtype=object)
    if not isinstance(weights, pd.Series):
        raise ConfigError(f"weights: expected a pandas Series or a dict {{asset: weight}}, "
                          f"got {type(weights).__name__}")
    portfolio = set(names)
    unknown = [a for a in weights.index if a not in portfolio]
    if unknown:
        raise ConfigError(f"weights: asset {unknown[0]!r} is not in the portfolio ({', '.join(map(str, names))})")
    out = aligned_scores(weights, list(names), "weights")  # every asset once, finite numbers
    negative = out.index[out.to_numpy() < 0].tolist()
    if negative:
        raise ConfigError(f"weights: asset {negative[0]!r}: must be >= 0 (long-only sleeves), "
                          f"got {out[negative[0]]:g}")
    total = float(np.sum(out.to_numpy()))
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise ConfigError(f"weights: must sum to 1 (fractions of the portfolio's capital), got {total:.6g}")
    return out


def check_ranking(ranking, names) -> dict | None:
    """``{asset: score}`` for the ``max_assets`` selection: a mapping over assets of the portfolio
    (``names``) to numbers (assets left out rank last); None stays None."""
    if ranking is None:
        return None
    if not isinstance(ranking, Mapping):
        raise ConfigError(f"ranking: expected a dict {{asset: score}}, got {type(ranking).__name__}")
    portfolio = set(names)
    for asset, score in ranking.items():
        if asset not in portfolio:
            raise ConfigError(f"ranking: asset {asset!r} is not in the portfolio ({', '.join(map(str, names))})")
        if isinstance(score, bool) or not isinstance(score, (int, float, np.integer, np.floating)) \
                or np.isnan(score):
            raise ConfigError(f"ranking: asset {asset}: the score must be a number, got {score!r}")
    return dict(ranking)


def check_arguments(names, *, timeframe=None, ranking=None, progress=None, timer=None) -> tuple:
    """``(timeframe, ranking)`` checked (:func:`check_ranking`), and ``progress`` a function and ``timer``
    a :class:`~raybt.phases.PhaseTimer` when given; ConfigError naming the argument otherwise."""
    from raybt.phases import PhaseTimer

    if timeframe is not None:
        timeframe = check_timeframe(timeframe, "timeframe")
    if progress is not None and not callable(progress):
        raise ConfigError(f"progress: expected a function of a list of chunk summaries, got {type(progress).__name__}")
    if timer is not None and not isinstance(timer, PhaseTimer):
        raise ConfigError(f"timer: expected a raybt.phases.PhaseTimer, got {type(timer).__name__}")
    return timeframe, check_ranking(ranking, names)


def check_checkpoint_dir(checkpoint_dir, resume) -> Path | None:
    """``checkpoint_dir`` as a Path; ConfigError for ``resume`` without one, for a resume flag that is not
    a bool, and for a finished run's folder (checkpoints belong to a run still being written)."""
    if not isinstance(resume, bool):
        raise ConfigError(f"resume: expected True or False, got {resume!r}")
    if checkpoint_dir is None:
        if resume:
            raise ConfigError("resume: needs checkpoint_dir, the folder of the interrupted run's checkpoints")
        return None
    if not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise ConfigError(f"checkpoint_dir: expected a path, got {type(checkpoint_dir).__name__}")
    checkpoint_dir = Path(checkpoint_dir)
    finished = (checkpoint_dir / "metrics.json").exists() and not os.path.lexists(checkpoint_dir / "INCOMPLETE") \
        and not checkpoint_dir.name.endswith(".partial")
    if finished:
        raise ConfigError(f"checkpoint_dir: {checkpoint_dir} holds a finished run (metrics.json); checkpoints go "
                          f"in the folder of a run still being written")
    return checkpoint_dir


def check_weights_allowed(weights: pd.Series | None, allocation) -> list[str]:
    """Fixed ``weights`` against the config's ``allocation``: ConfigError when they break a cap it
    sets (``max_assets``, ``max_single_asset_weight``); the lines to warn about what it sets that
    fixed weights replace (the model, ``max_asset_correlation``)."""
    if weights is None or allocation is None:
        return []
    held = weights[weights > 0]
    max_assets = getattr(allocation, "max_assets", None)
    if max_assets is not None and len(held) > max_assets:
        raise ConfigError(f"weights: {len(held)} assets weighted above 0, but allocation.max_assets is "
                          f"{max_assets}")
    cap = getattr(allocation, "max_single_asset_weight", None)
    if cap is not None and (held > cap + WEIGHT_SUM_TOLERANCE).any():
        asset = held.index[int(np.argmax(held.to_numpy() > cap + WEIGHT_SUM_TOLERANCE))]
        raise ConfigError(f"weights: asset {asset}: {held[asset]:g} is above allocation.max_single_asset_weight "
                          f"{cap:g}")
    replaced = []
    if getattr(allocation, "model", "equal_weight") != "equal_weight":
        replaced.append(f"allocation.model {allocation.model}")
    if getattr(allocation, "max_asset_correlation", None) is not None:
        replaced.append(f"allocation.max_asset_correlation {allocation.max_asset_correlation:g}")
    return [f"weights: the fixed weights replace {' and '.join(replaced)} (not applied)"] if replaced else []
