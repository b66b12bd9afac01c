"""Loading an asset's bars as its config says (data edge: reads files).

Generates the bundled synthetic universe on first use when an asset's file is
missing and lies in the config's ``synthetic.dir``.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from raybt.config.universe import AssetConfig, AssetUniverse, SyntheticSpec
from raybt.errors import ConfigError, DataError


def ensure_synthetic(spec: SyntheticSpec, echo=None) -> None:
    """Generate the synthetic universe into ``spec.dir`` unless its manifest exists."""
    from raybt.data.synth import write_universe

    if (Path(spec.dir) / "universe.json").is_file():
        return
    if echo:
        echo(f"generating the synthetic universe ({spec.n_assets} assets x {spec.n_bars} "
             f"{spec.timeframe} bars, seed {spec.seed}) into {spec.dir} ...")
    write_universe(spec.dir, n_assets=spec.n_assets, n_bars=spec.n_bars,
                   timeframe=spec.timeframe, seed=spec.seed, fmt=spec.fmt)


def _needs_synthetic(asset: AssetConfig, universe: AssetUniverse | None) -> bool:
    spec = universe.synthetic if universe is not None else None
    return spec is not None and not asset.data.is_file() and Path(spec.dir) in asset.data.parents


def iter_asset_bars(assets, universe: AssetUniverse | None = None, timeframe: str | None = None, echo=None,
                    threads: int = 2):
    """Yield each asset's validated bars (:func:`load_asset_bars`) in order, read ``threads`` at a time.

    Parquet decoding and the numpy checks release the GIL, so two files load
    in about the time of one on two cores. At most ``2 * threads`` frames are
    in flight, so a caller that stores and drops each frame holds few at once.
    The bundled synthetic universe is generated first if a file of it is missing.
    """
    assets = list(assets)
    if universe is not None and any(_needs_synthetic(a, universe) for a in assets):
        ensure_synthetic(universe.synthetic, echo)
    if threads <= 1 or len(assets) <= 1:
        for asset in assets:
            yield load_asset_bars(asset, universe, timeframe, echo)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="raybt-load") as pool:
        pending = deque()
        todo = iter(assets)
        try:
            for asset in todo:
                pending.append(pool.submit(load_asset_bars, asset, universe, timeframe, echo))
                if len(pending) >= 2 * threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def load_asset_bars(asset: AssetConfig, universe: AssetUniverse | None = None,
                    timeframe: str | None = None, echo=None) -> pd.DataFrame:
    """Validated bars of one asset, resampled to ``timeframe`` (default: the asset's)."""
    from raybt.data.loader import load_bars

    if _needs_synthetic(asset, universe):
        ensure_synthetic(universe.synthetic, echo)
    bars = load_bars(asset.data, timestamp_format=asset.timestamp_format)
    bars = at_asset_timeframe(bars, asset, timeframe, f"{asset.data}", f" of asset {asset.name}")
    if len(bars) < 2:
        raise DataError(f"{asset.data}: only {len(bars)} bar(s); a backtest needs at least 2")
    check_enough_bars(bars, asset.params, asset.name, asset.data)
    return bars


def at_asset_timeframe(bars: pd.DataFrame, asset: AssetConfig, timeframe: str | None, source: str,
                       whose: str = "") -> pd.DataFrame:
    """An asset's bars at the timeframe it runs at, whether read from its file or given as a DataFrame.

    ``timeframe`` when one is asked for (``--timeframe``, the API's
    ``timeframe=``), else the one its asset config states
    (``timeframe_source``): bars finer are resampled to it, coarser refused
    (ConfigError naming ``source``). Else its timeframe (5m unless it says)
    works as a floor: finer bars are resampled to it, coarser ones run as
    they are.
    """
    from raybt.data.resample import resample_bars
    from raybt.data.timeframes import infer_timeframe, parse_timeframe

    if timeframe:  # asked for: refused when it cannot be had
        return at_timeframe(bars, timeframe, f"--timeframe {timeframe}", source, whose)
    if getattr(asset, "timeframe_source", None):  # stated in the asset config: the same
        return at_timeframe(bars, asset.timeframe, f"timeframe {asset.timeframe} ({asset.timeframe_source})",
                            source, whose)
    if len(bars) > 1 and parse_timeframe(asset.timeframe) > infer_timeframe(bars.index):
        return resample_bars(bars, asset.timeframe)  # finer than the asset's timeframe: resampled to it
    return bars


def at_timeframe(bars: pd.DataFrame, timeframe: str, asked: str, source: str, whose: str = "") -> pd.DataFrame:
    """``bars`` resampled to ``timeframe`` when it is coarser than theirs; a ConfigError naming
    ``source`` when it is finer (``asked``: how the request is named, e.g. ``--timeframe 1m``)."""
    from raybt.data.resample import resample_bars
    from raybt.data.timeframes import infer_timeframe, parse_timeframe, timeframe_label

    if len(bars) < 2:
        return bars
    target, native = parse_timeframe(timeframe), infer_timeframe(bars.index)
    if target < native:  # it cannot be had
        raise ConfigError(f"{source}: {asked} is finer than the {timeframe_label(native)} bars{whose}; "
                          f"bars can only be resampled to a coarser timeframe")
    return resample_bars(bars, target) if target > native else bars


def check_enough_bars(bars: pd.DataFrame, params, name: str, source=None) -> None:
    """DataError when ``bars`` are fewer than the indicator windows need (bb_period/atr_period + 1).

    ``source``: the asset's file named in the error; None for bars given as
    a DataFrame (the error then starts ``asset NAME:``).
    """
    from raybt.config.params import min_bars

    if not params or "bb_period" not in params or "atr_period" not in params:
        return
    need = min_bars(params)
    if len(bars) < need:
        where = f"{source}: asset '{name}'" if source is not None else f"asset {name}"
        raise DataError(f"{where}: only {len(bars)} bar(s), fewer than the minimum {need} "
                        f"its indicator windows need (max(bb_period={params['bb_period']}, "
                        f"atr_period={params['atr_period']}) + 1)")


def validate_asset_bars(bars, name: str, params=None, *, asset: AssetConfig | None = None,
                        timeframe: str | None = None) -> pd.DataFrame:
    """One asset's bars given as a DataFrame (the Python API), validated as a file's are.

    :func:`raybt.data.loader.validate_frame` (every rule of the loader; a
    tz-naive index is UTC; errors ``asset NAME: ...``); with ``asset``, at the
    timeframe its file's bars would run at (:func:`at_asset_timeframe`,
    ``timeframe`` as asked); then at least 2 bars and, when ``params`` has
    ``bb_period``/``atr_period``, as many as the indicator windows need
    (:func:`check_enough_bars`). Returns the loader's frame format, viewing
    the caller's float64 columns where it can (when not resampled).
    """
    from raybt.data.loader import validate_frame

    bars = validate_frame(bars, name)
    if asset is not None:
        bars = at_asset_timeframe(bars, asset, timeframe, f"asset {name}")
    if len(bars) < 2:
        raise DataError(f"asset {name}: only {len(bars)} bar(s); a backtest needs at least 2")
    check_enough_bars(bars, params, name)
    return bars


def load_portfolio_from_config(preference: str | None = None, config=None, *, timeframe: str | None = None,
                               max_assets: int | None = None, best_configs_dir="results", echo=None,
                               timer=None, **overrides):
    """Return ``(assets, portfolio_config)``; ``assets`` = {name: (AssetConfig, bars)}.

    ``max_assets`` sets ``allocation.max_assets``: the engine keeps the top N
    by :func:`preference_ranking` when optimisation results exist, else by
    Sharpe over the allocation lookback window. ``timer`` (a
    :class:`~raybt.phases.PhaseTimer`) gets ``load.config`` and ``load.bars``.
    """
    from raybt.config.resolve import check_chunk, chunk_source, resolve_portfolio
    from raybt.phases import phase

    with phase(timer, "load.config"):
        configs, pconf, universe = resolve_portfolio(preference, config, max_assets=max_assets,
                                                     best_configs_dir=best_configs_dir, **overrides)
    with phase(timer, "load.bars"):
        frames = iter_asset_bars(configs, universe, timeframe, echo=echo)
        assets = {asset.name: (asset, bars) for asset, bars in zip(configs, frames)}
    check_chunk(pconf, [bars.index for _, bars in assets.values()], chunk_source(pconf, overrides))
    return assets, pconf
