"""A sweep is checked whole before its first point runs (and before its output folder exists).

:func:`validate_points` runs, for every resolved point, the checks ``raybt
run`` makes on the same config before and while it loads the bars, so a
point that would fail on them is refused up front with one line naming the
sweep file and the point (``configs/sweep.yaml: point 3 (assets=[A,NOPE]):
assets: unknown asset 'NOPE' ...``):

* the asset config loads; every asset the point names exists;
* ``allocation.max_single_asset_weight`` x assets >= 1;
* the optimiser's ``best_configs_<preference>.json`` (when present) loads and
  its parameters are valid for each asset (no ``weight``); an asset it names
  that the asset config lacks is one ``warning:`` line (once per sweep); the
  ``max_assets`` / ``max_asset_correlation`` ranking can be read from it
  (:func:`raybt.config.resolve.preference_ranking`);
* ``engine.chunk`` is not shorter than an asset's declared timeframe nor
  than the bar spacing of the point's union timeline;
* every asset's bars load and are enough for its indicator windows;
* the ``allocation.lookback`` estimation window (when the point needs one)
  leaves at least 3 bars and some bars to backtest.

Bars are read once per (file, timeframe, time format) and returned: the sweep runs on them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from raybt.errors import ConfigError, RaybtError


def _prefixed(exc: RaybtError, where: str) -> RaybtError:
    """The same error type with ``where: `` in front (once)."""
    message = str(exc)
    if message.startswith(where):
        return exc
    return type(exc)(f"{where}: {message}")


class _Cache:
    """Asset configs, best_configs files and bar timestamps shared by the points."""

    def __init__(self, best_configs_dir, echo=None):
        self.best_dir = best_configs_dir
        self.echo = echo
        self.warned: set = set()
        self.universes: dict = {}
        self.best: dict = {}
        self.bars: dict = {}  # bars_key(asset) -> the asset's validated bars (kept: the sweep runs on them)

    def universe(self, path: Path):
        from raybt.config.universe import load_asset_universe

        key = str(path)
        if key not in self.universes:
            self.universes[key] = load_asset_universe(path)
        return self.universes[key]

    def best_configs(self, preference: str):
        """``(path, {asset: params})`` of the point's best_configs file, or ``(None, {})``."""
        from raybt.config.resolve import best_configs_path, load_best_configs

        if self.best_dir is None:
            return None, {}
        path = best_configs_path(preference, self.best_dir)
        if preference not in self.best:
            self.best[preference] = load_best_configs(path) if path.is_file() else {}
        return path, self.best[preference]

    def warn(self, line: str) -> None:
        """A warning about a shared file, once per sweep (``echo``: ``warning: ...``; else a RaybtWarning)."""
        from raybt.config.resolve import _warn

        if line not in self.warned:
            self.warned.add(line)
            _warn(line, self.echo)

    def index(self, asset, universe) -> pd.DatetimeIndex:
        """The timestamps of an asset's bars (read once per file, timeframe and time format)."""
        from raybt.universe import load_asset_bars

        key = bars_key(asset)
        if key not in self.bars:
            # parameters are checked per point below (check_enough_bars), not with this load
            self.bars[key] = load_asset_bars(dataclasses.replace(asset, params={}), universe)
        return self.bars[key].index


def bars_key(asset) -> tuple:
    """What makes two assets' bars the same: file, timeframe (and whether the asset config states it:
    a stated one is refused when finer than the file's bars, a left-out one is not) and time format."""
    return (str(asset.data), asset.timeframe, getattr(asset, "timeframe_source", None) is not None,
            getattr(asset, "timestamp_format", None))


def validate_point(point, cache: _Cache) -> None:
    """Raise the first problem of one point (message not yet prefixed)."""
    from raybt.config.common import closest_name
    from raybt.config.resolve import (apply_best_params, check_chunk, check_chunk_timeframe, check_weight_cap,
                                      preference_ranking, unknown_best_assets)
    from raybt.timeline import union_timeline
    from raybt.universe import check_enough_bars
    from raybt.allocation.estimator import WeightEstimator, window_end

    pconf = point.config
    universe = cache.universe(pconf.asset_config)
    names = list(universe.assets) if pconf.assets == "all" else list(pconf.assets)
    for name in names:
        if name not in universe.assets:
            raise ConfigError(f"assets: unknown asset '{name}'" + closest_name(name, universe.assets)
                              + f" (not in {universe.path})")
    check_weight_cap(pconf, len(names))
    best_path, best = cache.best_configs(pconf.preference)
    for line in unknown_best_assets(best, universe, best_path):
        cache.warn(line)
    configs = [apply_best_params(universe.get(name), best, best_path) for name in names]
    ranking = preference_ranking(pconf.preference, cache.best_dir, allocation=pconf.allocation, assets=names)
    check_chunk_timeframe(pconf, configs, None, "engine.chunk")
    indexes = []
    for asset in configs:
        index = cache.index(asset, universe)
        check_enough_bars(pd.DataFrame(index=index), asset.params, asset.name, asset.data)
        indexes.append(index)
    check_chunk(pconf, indexes, "engine.chunk")
    ranks = None if ranking is None else [float(ranking.get(n, float("-inf"))) for n in names]
    if WeightEstimator.from_config(pconf.allocation, ranks).needs_window:
        window_end(union_timeline(indexes), pconf.allocation.lookback)


def validate_points(points, best_configs_dir=None, echo=None) -> dict:
    """Check every point (see the module docstring); RaybtError naming the sweep file and the point.

    Returns the bars it loaded, ``{bars_key(asset): validated frame}``, which the sweep then runs on.
    Warnings (a best_configs file naming an asset the asset config lacks) go once each to ``echo``.
    """
    cache = _Cache(best_configs_dir, echo)
    for point in points:
        where = point.config.source
        try:
            validate_point(point, cache)
        except RaybtError as exc:
            raise _prefixed(exc, where) from None
    return cache.bars


__all__ = ["validate_point", "validate_points"]
