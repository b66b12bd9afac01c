"""Intake, the first stage of a run: every asset's bars validated and stored once.

:func:`take_bars` takes a portfolio's assets, either ``{name: (AssetConfig,
DataFrame)}`` (the Python API) or a list of :class:`~raybt.config.AssetConfig`
whose files are read two at a time, checks every frame against the loader's
rules (files were checked while loading), and hands each one to ``store``:
on Ray, :func:`raybt.ray.actors.store_bars` puts its OHLC in the object store
and returns a frame viewing the stored arrays, so the bars exist once. Each
asset's data hash (for ``--resume``) is computed by a thread while the next
files load. The result, an :class:`Intake`, is what every later stage reads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from raybt.asset import ShardBars, shard_bars
from raybt.errors import ConfigError
from raybt.phases import PhaseTimer, phase
from raybt.timeline import asset_positions


@dataclass(frozen=True)
class Intake:
    """A portfolio's assets with their bars, in portfolio order.

    ``bars[i]``: asset i's frame (UTC DatetimeIndex, float64 ``open, high,
    low, close``): a view of the caller's columns or of the stored arrays,
    never a copy. ``refs[i]``: the object-store reference of its OHLC (None
    on the local engine) and ``starts[i]`` the row of the stored arrays where
    ``bars[i]`` begins (after an estimation window is cut off).
    """

    names: tuple
    configs: tuple
    bars: tuple
    refs: tuple
    starts: tuple
    data_hashes: dict  # name -> Future of its bars_hash
    #: the frames may view the caller's own arrays (DataFrames given to the local engine), which the
    #: caller can still change: :meth:`check_unchanged` before a run
    shared_with_caller: bool = False

    @property
    def n_assets(self) -> int:
        return len(self.names)

    def keep(self, indices) -> "Intake":
        """Only the assets at ``indices`` (in that order)."""
        pick = lambda values: tuple(values[i] for i in indices)  # noqa: E731
        return replace(self, names=pick(self.names), configs=pick(self.configs), bars=pick(self.bars),
                       refs=pick(self.refs), starts=pick(self.starts))

    def cut(self, rows) -> "Intake":
        """Each asset's bars from row ``rows[i]`` on (views)."""
        return replace(self, bars=tuple(b.iloc[k:] for b, k in zip(self.bars, rows)),
                       starts=tuple(s + k for s, k in zip(self.starts, rows)))

    def hashes(self) -> dict:
        """``{name: SHA-256 of its bars}`` (waits for the hashing thread)."""
        return {name: self.data_hashes[name].result() for name in self.names}

    def check_unchanged(self) -> None:
        """ConfigError naming the first asset whose bars changed since they were validated (a caller's
        DataFrame written to after the backtester was built); nothing to do when no frame is shared."""
        if not self.shared_with_caller:
            return
        from raybt.checkpoints import bars_hash

        hashes = self.hashes()
        for name, bars, start in zip(self.names, self.bars, self.starts):
            if start == 0 and bars_hash(bars) != hashes[name]:
                raise ConfigError(f"asset {name}: its bars DataFrame changed after PortfolioBacktester(...) "
                                  f"checked it (the local engine reads the frame's own columns); build a new "
                                  f"PortfolioBacktester for the new bars")


def release_free_memory() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    glibc keeps freed blocks of a few MB (one asset's columns) in its heap
    rather than unmapping them, so a process that dropped its bars would
    still hold their pages.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def take_bars(assets, *, store=None, universe=None, timeframe: str | None = None, echo=None,
              timer: PhaseTimer | None = None, frames=None) -> Intake:
    """The :class:`Intake` of ``assets`` (phases ``load.bars`` and ``load.store``).

    ``store(frame) -> (reference, frame viewing the stored arrays)``: where
    the bars go (None: they stay where they are). ``universe`` lets the
    bundled synthetic universe be generated on first use; ``timeframe``
    resamples every asset, read from a file or given as a DataFrame. ``frames``: for a list of asset
    configs, their bars already being read (:func:`raybt.engine.read_ahead.read_files_ahead`, made
    with the same ``universe`` and ``timeframe``).
    """
    from raybt.checkpoints import bars_hash
    from raybt.config.resolve import check_portfolio_asset
    from raybt.universe import iter_asset_bars, validate_asset_bars

    if isinstance(assets, dict):
        if frames is not None:
            raise ConfigError("frames: the files of asset configs being read, not given with "
                              "{name: (AssetConfig, DataFrame)} assets")
        names = list(assets)
        configs = [assets[n][0] for n in names]
        frames, validated = (assets[n][1] for n in names), False
    else:
        configs = list(assets)
        names = [a.name for a in configs]
        if frames is None:
            frames = iter_asset_bars(configs, universe, timeframe, echo=echo)
        validated = True
    if not names:
        raise ConfigError("the portfolio has no assets")
    for asset in configs:
        check_portfolio_asset(asset, f"asset {asset.name}")
    bars, refs, hashes = [], [], {}
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raybt-hash")  # sha256 drops the GIL
    frames = iter(frames)
    for name, asset in zip(names, configs):
        with phase(timer, "load.bars"):
            frame = next(frames)
            if not validated:  # the caller's frames pass the loader's rules (float64 columns not copied)
                frame = validate_asset_bars(frame, name, asset.params, asset=asset, timeframe=timeframe)
        ref = None
        if store is not None:
            with phase(timer, "load.store"):
                ref, frame = store(frame)
        bars.append(frame)
        refs.append(ref)
        hashes[name] = hasher.submit(bars_hash, frame)
        del frame
    shared_with_caller = not validated and store is None
    hasher.shutdown(wait=shared_with_caller)  # the caller may write to its frames once this returns
    if store is not None:
        with phase(timer, "load.store"):
            release_free_memory()  # the loaded frames' pages go back to the OS now
    return Intake(tuple(names), tuple(configs), tuple(bars), tuple(refs), (0,) * len(names), hashes,
                  shared_with_caller=shared_with_caller)


def pack_assets(bars_list, timeline, indices) -> ShardBars:
    """The bars of the assets ``indices`` for a shard: views of their columns, no copy."""
    return shard_bars(
        [bars_list[i]["open"].to_numpy() for i in indices],
        [bars_list[i]["high"].to_numpy() for i in indices],
        [bars_list[i]["low"].to_numpy() for i in indices],
        [bars_list[i]["close"].to_numpy() for i in indices],
        [asset_positions(bars_list[i].index, timeline) for i in indices],
    )

