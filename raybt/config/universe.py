"""Configuration files -> validated, frozen objects (the only place reading configs).

Formats: JSON (``.json``) or YAML (``.yaml``/``.yml``). Every problem is a
:class:`~raybt.errors.ConfigError` with one line naming the file and the key
(and, for a misspelt key, the closest valid one); YAML/JSON syntax errors give
the line number.

Asset configuration (``configs/assets_config_highperf.json``)::

    {
      "synthetic": {"dir": "../data/synth/5m", "n_assets": 15, "n_bars": 105120,
                    "timeframe": "5m", "seed": 42},          # optional
      "defaults": {"timeframe": "5m", "strategy": {...}, "broker": {...}},
      "assets": {
        "EURUSDX_5m": {"data": "../data/synth/5m/EURUSDX_5m.parquet",
                       "class": "fx", "timeframe": "5m",
                       "timestamp_format": "%d/%m/%Y %H:%M",   # optional
                       "strategy": {"bb_period": 20, ...},
                       "broker": {"leverage": 30, ...}},
        ...
      }
    }

Relative paths are relative to the config file's folder. ``timestamp_format``
(per asset or in ``defaults``) is a strptime format for the bars file's time
column, e.g. ``%d/%m/%Y %H:%M``: it settles day/month order (dates such as
``01/02/2019`` are otherwise refused as ambiguous unless the file settles it). ``strategy`` takes
the strategy parameters of the spec, ``broker`` the broker ones
(:data:`raybt.broker.STRATEGY_PARAMETERS` / ``BROKER_PARAMETERS``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from raybt.config.common import (check_keys, check_name, check_text, check_timeframe, closest_name, load_document,
                                 resolve_path)
from raybt.config.params import BROKER_PARAMETERS, STRATEGY_PARAMETERS, validate_params
from raybt.errors import ConfigError


@dataclass(frozen=True)
class SyntheticSpec:
    """Where and how the bundled synthetic universe is generated on first use."""

    dir: Path
    n_assets: int = 15
    n_bars: int = 105_120  # one year of 5-minute bars on the 24/7 calendar
    timeframe: str = "5m"
    seed: int = 42
    fmt: str = "parquet"


@dataclass(frozen=True)
class AssetConfig:
    """One asset: where its bars are, its timeframe and its validated parameters."""

    name: str
    data: Path
    timeframe: str
    params: dict = field(hash=False)
    asset_class: str = ""
    timestamp_format: str | None = None  # strptime format of the bars' time column; None: inferred
    #: where an asset config file states the timeframe (``FILE: assets.NAME.timeframe`` or ``FILE:
    #: defaults.timeframe``): bars finer are resampled to it, coarser refused; None when the file leaves it
    #: out (the 5m default, then only resampled to when the bars are finer; coarser bars run as they are),
    #: and for an AssetConfig built in Python unless given (its timeframe then works as a left-out one)
    timeframe_source: str | None = None


@dataclass(frozen=True)
class AssetUniverse:
    """All assets of an asset config file, in file order."""

    path: Path
    assets: dict = field(hash=False)  # name -> AssetConfig
    synthetic: SyntheticSpec | None = None

    def get(self, name: str) -> AssetConfig:
        if name not in self.assets:
            shown = f"'{name}'" if str(name).isprintable() else repr(str(name))
            raise ConfigError(f"{self.path}: unknown asset {shown}" + closest_name(name, self.assets))
        return self.assets[name]


#: the largest generated universe (10,000 assets; 10 million bars = 95 years of 5-minute bars, 400 MB per asset)
MAX_SYNTHETIC_ASSETS = 10_000
MAX_SYNTHETIC_BARS = 10_000_000

_ASSET_KEYS = ("data", "timeframe", "timestamp_format", "class", "strategy", "broker")


def check_timestamp_format(value: Any, where: str) -> str:
    """``value`` as a strptime format for bar timestamps (e.g. ``%d/%m/%Y %H:%M``); ConfigError otherwise."""
    if not isinstance(value, str) or "%" not in value or "\n" in value:
        raise ConfigError(f"{where}: must be a strptime format such as '%d/%m/%Y %H:%M', got {value!r}")
    import datetime

    try:  # a bad directive ('%Q') is refused here rather than at the first data row
        sample = datetime.datetime(2019, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.timezone.utc)
        datetime.datetime.strptime(sample.strftime(value), value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(f"{where}: not a usable strptime format {value!r} ({exc})") from None
    return value


def _section_params(section: Any, allowed, where: str) -> dict:
    if section is None:
        return {}
    other = BROKER_PARAMETERS if allowed is STRATEGY_PARAMETERS else STRATEGY_PARAMETERS
    if isinstance(section, Mapping):
        for key in section:
            if key in other:
                group = "broker" if allowed is STRATEGY_PARAMETERS else "strategy"
                raise ConfigError(f"{where}: '{key}' belongs in the '{group}' section")
    return dict(check_keys(section, allowed, where))


def _positive_int(value, where, limit):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise ConfigError(f"{where}: must be an integer in [1, {limit}], got {value!r}"[:200])
    return value


def _synthetic_spec(raw: Any, base: Path, where: str) -> SyntheticSpec:
    check_keys(raw, ("dir", "n_assets", "n_bars", "timeframe", "seed", "format"), where)
    if "dir" not in raw:
        raise ConfigError(f"{where}: missing key 'dir'")
    seed = raw.get("seed", 42)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{where}.seed: must be a non-negative integer, got {seed!r}")
    fmt = raw.get("format", "parquet")
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"{where}.format: must be parquet or csv, got {fmt!r}")
    return SyntheticSpec(
        dir=resolve_path(base, raw["dir"], f"{where}.dir"),
        n_assets=_positive_int(raw.get("n_assets", 15), f"{where}.n_assets", MAX_SYNTHETIC_ASSETS),
        n_bars=_positive_int(raw.get("n_bars", 105_120), f"{where}.n_bars", MAX_SYNTHETIC_BARS),
        timeframe=check_timeframe(raw.get("timeframe", "5m"), f"{where}.timeframe"),
        seed=seed,
        fmt=fmt,
    )


def load_asset_universe(path) -> AssetUniverse:
    """Load and validate an asset configuration file."""
    path = Path(path)
    doc = check_keys(load_document(path), ("description", "synthetic", "defaults", "assets"), str(path))
    check_text(doc.get("description"), f"{path}: description")
    base = path.resolve().parent
    synthetic = None
    if doc.get("synthetic") is not None:
        synthetic = _synthetic_spec(doc["synthetic"], base, f"{path}: synthetic")
    raw_defaults = {} if doc.get("defaults") is None else doc["defaults"]  # `defaults: false` is refused
    defaults = check_keys(raw_defaults, ("timeframe", "timestamp_format", "strategy", "broker"), f"{path}: defaults")
    default_strategy = _section_params(defaults.get("strategy"), STRATEGY_PARAMETERS, f"{path}: defaults.strategy")
    default_broker = _section_params(defaults.get("broker"), BROKER_PARAMETERS, f"{path}: defaults.broker")
    base_params = validate_params({**default_strategy, **default_broker}, f"{path}: defaults", typed=True)
    default_timeframe = check_timeframe(defaults.get("timeframe", "5m"), f"{path}: defaults.timeframe")
    default_format = defaults.get("timestamp_format")
    if default_format is not None:
        default_format = check_timestamp_format(default_format, f"{path}: defaults.timestamp_format")
    raw_assets = doc.get("assets")
    if not isinstance(raw_assets, Mapping) or not raw_assets:
        raise ConfigError(f"{path}: 'assets' must be a non-empty mapping of asset name -> settings")
    assets = {}
    for name, raw in raw_assets.items():
        shown = str(name) if str(name).isprintable() else repr(str(name))  # a newline would split the message
        where = f"{path}: assets.{shown}"
        check_name(name, f"{path}: assets: asset name")
        check_keys(raw, _ASSET_KEYS, where)
        if "data" not in raw:
            raise ConfigError(f"{where}: missing key 'data' (path of the bars file)")
        strategy = _section_params(raw.get("strategy"), STRATEGY_PARAMETERS, f"{where}.strategy")
        broker = _section_params(raw.get("broker"), BROKER_PARAMETERS, f"{where}.broker")
        params = validate_params({**strategy, **broker}, where, base=base_params, typed=True)
        timeframe = check_timeframe(raw.get("timeframe", default_timeframe), f"{where}.timeframe")
        timeframe_source = (f"{where}.timeframe" if "timeframe" in raw
                            else f"{path}: defaults.timeframe" if "timeframe" in defaults else None)
        timestamp_format = raw.get("timestamp_format", default_format)
        if "timestamp_format" in raw:
            timestamp_format = check_timestamp_format(timestamp_format, f"{where}.timestamp_format")
        assets[str(name)] = AssetConfig(
            name=str(name),
            data=resolve_path(base, raw["data"], f"{where}.data"),
            timeframe=timeframe,
            params=params,
            asset_class=check_text(raw.get("class"), f"{where}.class"),
            timestamp_format=timestamp_format,
            timeframe_source=timeframe_source,
        )
    return AssetUniverse(path=path, assets=assets, synthetic=synthetic)
