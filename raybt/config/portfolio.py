"""Portfolio configuration (YAML) -> frozen, validated dataclasses.

Schema (every key optional; defaults in the dataclasses below)::

    name: balanced
    description: "..."
    asset_config: assets_config_highperf.json   # relative to this file's folder
    assets: all                                 # or a list of asset names
    preference: balanced                        # balanced | pnl | drawdown
    initial_capital: 1000000                    # currency, split over sleeves by weight
    allocation: {model, lookback, max_assets, max_single_asset_weight, max_asset_correlation}
    rebalance: none                             # none | daily | weekly | monthly
    risk: {enabled, portfolio_risk, dd_scale_start, dd_scale_floor,
           max_portfolio_drawdown, breaker_flatten, resume, cooldown_chunks,
           resume_drawdown, cluster_correlation, correlation_window,
           max_entry_margin}
    engine: {chunk, layout, assets_per_actor, checkpoint_every, checkpoint_seconds, transport}
    output: {format, report}                    # parquet | csv (the large result tables); report: false
                                                # skips figures, summary, analysis.json and report.html

Fractions are fractions (0.2 = 20 %); drawdowns are positive. Unknown keys
get the closest valid name; wrong types and out-of-range values name the key
path, e.g. ``configs/x.yaml: risk.max_portfolio_drawdown: must be in (0, 1), got 1.5``.
A section is a mapping: an empty one (``risk:`` with nothing after it, YAML's
null) takes its defaults, anything else that is not a mapping (``risk:
false``) is refused: switch risk management off with ``risk: {enabled: false}``.
Durations carry a unit (``30D``, ``4h``, ``30min``): a bare number is refused.
Integers that size something (windows, counts) have an upper bound.
A value set by :meth:`PortfolioConfig.with_overrides` is named by its
command-line flag in errors (``--chunk: not a duration: 'bogus' ...``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raybt.config.common import (INT_LIMIT, PREFERENCES, check_keys, check_name, check_text, closest_name,
                                 load_document, resolve_path, text_number_hint)
from raybt.errors import ConfigError

if TYPE_CHECKING:  # pandas is imported where durations are read: the coordinator's process needs none
    import pandas as pd

ALLOCATION_MODELS = ("equal_weight", "inverse_volatility", "risk_parity", "performance_weighted",
                     "min_variance", "max_sharpe")
REBALANCE = ("none", "daily", "weekly", "monthly")
RESUME = ("never", "cooldown", "recovery")
TRANSPORTS = ("socket", "tasks", "compiled")
LAYOUTS = ("auto", "colocated", "actors")
OUTPUT_FORMATS = ("parquet", "csv")


@dataclass(frozen=True)
class AllocationConfig:
    model: str = "equal_weight"
    lookback: str = "30D"  # estimation window before the backtest start
    max_assets: int | None = None
    max_single_asset_weight: float | None = None
    max_asset_correlation: float | None = None


@dataclass(frozen=True)
class RiskConfig:
    enabled: bool = True
    portfolio_risk: float = 1.0
    dd_scale_start: float = 0.05
    dd_scale_floor: float = 0.5
    max_portfolio_drawdown: float = 0.2
    breaker_flatten: bool = True
    resume: str = "cooldown"
    cooldown_chunks: int = 5
    resume_drawdown: float = 0.1
    cluster_correlation: float | None = 0.8  # assets correlating above it share one position budget
    correlation_window: int = 2000  # bars of the union timeline
    max_entry_margin: float | None = None  # a new entry's margin <= this fraction of portfolio equity


@dataclass(frozen=True)
class EngineConfig:
    chunk: str = "1D"
    layout: str = "auto"  # on Ray: auto | colocated | actors (raybt.engine.plan)
    assets_per_actor: int | None = None  # the actors layout: assets per shard actor (None: one shard per CPU)
    checkpoint_every: int = 0  # chunks between checkpoints on disk; 0 = off
    checkpoint_seconds: float = 60.0  # wall-clock seconds between checkpoints on disk; 0 = off
    # the chunk fan-out to the Shard actors: socket (a local Unix socket to shards on the coordinator's
    # node, actor calls to the others) | tasks (actor calls) | compiled (Ray Compiled Graph)
    transport: str = "socket"


@dataclass(frozen=True)
class OutputConfig:
    format: str = "parquet"  # the large tables (equity, trades, multipliers): parquet | csv
    report: bool = True  # figures, portfolio_summary.txt, analysis.json and report.html (raybt report adds them later)


@dataclass(frozen=True)
class PortfolioConfig:
    name: str = "portfolio"
    description: str = ""
    asset_config: Path = Path("configs/assets_config_highperf.json")
    assets: Any = "all"  # 'all' or a tuple of names
    preference: str = "balanced"
    initial_capital: float = 1_000_000.0
    allocation: AllocationConfig = field(default_factory=AllocationConfig)
    rebalance: str = "none"
    risk: RiskConfig = field(default_factory=RiskConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    source: str = "portfolio config"

    @property
    def chunk_timedelta(self) -> pd.Timedelta:
        import pandas as pd

        return pd.Timedelta(self.engine.chunk)

    @property
    def lookback_timedelta(self) -> pd.Timedelta:
        import pandas as pd

        return pd.Timedelta(self.allocation.lookback)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["asset_config"] = str(self.asset_config)
        out["assets"] = self.assets if self.assets == "all" else list(self.assets)
        out.pop("source", None)
        return out

    def with_overrides(self, **changes) -> "PortfolioConfig":
        """New config with CLI-style overrides (``allocation_model``, ``chunk``, ``preference`` ...).

        A bad override is a ConfigError naming its flag (``--chunk: ...``,
        see :data:`OVERRIDE_FLAGS`), not the config file, which holds a valid value.
        """
        doc = self.to_dict()
        changed, labels = [], {}
        for key, value in changes.items():
            if key not in OVERRIDES:
                raise ConfigError(f"unknown override '{key}'" + closest_name(key, OVERRIDES))
            section, name = OVERRIDES[key]
            target = doc[section] if section else doc
            if target.get(name) != value and key in RESULT_OVERRIDES:
                changed.append(f"{section + '.' if section else ''}{name}={value}")
            target[name] = value
            labels[f"{section}.{name}" if section else name] = OVERRIDE_FLAGS.get(key, f"{key}=")
        if changed and doc.get("description"):  # the file's description no longer says it all
            doc["description"] = f"{doc['description']} [changed here: {', '.join(changed)}]"
        doc["asset_config"] = str(self.asset_config)
        return portfolio_config_from_dict(doc, self.source, base=Path("/"), labels=labels)


#: with_overrides() keys -> (section or None, key)
OVERRIDES = {"allocation_model": ("allocation", "model"), "chunk": ("engine", "chunk"),
             "max_assets": ("allocation", "max_assets"), "rebalance": (None, "rebalance"),
             "preference": (None, "preference"), "assets_per_actor": ("engine", "assets_per_actor"),
             "layout": ("engine", "layout"), "checkpoint_every": ("engine", "checkpoint_every"),
             "checkpoint_seconds": ("engine", "checkpoint_seconds"), "format": ("output", "format"),
             "report": ("output", "report")}
#: how errors name an override: its ``raybt run`` flag (an override without one: ``key=``)
OVERRIDE_FLAGS = {"allocation_model": "--allocation", "chunk": "--chunk", "max_assets": "--max-assets",
                  "preference": "--preference", "assets_per_actor": "--assets-per-actor", "layout": "--layout",
                  "checkpoint_every": "--checkpoint-every", "checkpoint_seconds": "--checkpoint-seconds",
                  "format": "--format", "report": "--no-report"}
#: the longest risk.correlation_window, in bars (95 years of 5-minute bars); the coordinator's window
#: is also never longer than the run's timeline
MAX_CORRELATION_WINDOW = 10_000_000


# --- validation helpers ----------------------------------------------------------------

def _number(value, where, lo=None, hi=None, lo_open=False, hi_open=False, integer=False, optional=False):
    if value is None and optional:
        return None
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{where}: must be {kind}{' or null' if optional else ''}, got {value!r}"[:200]
                          + text_number_hint(value))
    if integer and hi is None and value > INT_LIMIT:
        hi = INT_LIMIT  # a count or a size in bars: beyond this is never meant
    try:
        finite = integer or math.isfinite(value)
    except OverflowError:  # an int beyond float range (10**400)
        finite = False
    if not finite:
        raise ConfigError(f"{where}: must be a finite number, got {value!r}"[:200])
    bad = (lo is not None and (value <= lo if lo_open else value < lo)) or (
        hi is not None and (value >= hi if hi_open else value > hi))
    if bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        rng = f"in {left}{lo}, {hi}{right}" if hi is not None else f"{'>' if lo_open else '>='} {lo}"
        raise ConfigError(f"{where}: must be {rng}, got {value!r}"[:200])
    return int(value) if integer else float(value)


def _choice(value, choices, where):
    if value not in choices:
        raise ConfigError(f"{where}: must be one of {', '.join(choices)}, got {value!r}"
                          + closest_name(str(value), choices))
    return value


def _bool(value, where):
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: must be true or false, got {value!r}")
    return value


def _bare_number(value) -> bool:
    """True for 30, 1440.0 or '30': a duration without its unit (pandas would read nanoseconds)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        return isinstance(value, str) and math.isfinite(float(value))
    except ValueError:
        return False


def _duration(value, where):
    import pandas as pd

    if _bare_number(value):
        n = str(value).strip()
        raise ConfigError(f"{where}: a duration needs a unit, got the bare number {value!r} (write e.g. '{n}D' for "
                          f"days, '{n}h' for hours, '{n}min' for minutes"
                          + ("; YAML reads 24:00 as the number 1440)" if not isinstance(value, str) else ")"))
    try:
        td = pd.Timedelta(str(value))
    except (TypeError, ValueError, OverflowError):
        td = pd.NaT
    if isinstance(value, bool) or not isinstance(value, str) or td is pd.NaT or pd.isna(td):
        raise ConfigError(f"{where}: not a duration: {value!r} (e.g. 1D, 4h, 30min)")
    if td <= pd.Timedelta(0):
        raise ConfigError(f"{where}: must be a positive duration, got {value!r}")
    return str(value)


#: overrides that change the results (the others change how a run runs, not what it computes)
RESULT_OVERRIDES = ("allocation_model", "chunk", "max_assets", "rebalance", "preference")

#: settings renamed because one name meant two things: old key -> (new key, what it is)
RENAMED = {
    "risk": {"max_single_asset_weight": ("max_entry_margin", "the margin of a new entry as a fraction of "
                                         "portfolio equity; allocation.max_single_asset_weight caps weights"),
             "max_asset_correlation": ("cluster_correlation", "assets correlating above it share one position "
                                       "budget; allocation.max_asset_correlation drops the worse of a pair")},
}


#: how to write what a non-mapping section may have meant
SECTION_HINTS = {"risk": "to switch it off: risk: {enabled: false}",
                 "output": "e.g. output: {report: false}",
                 "allocation": "e.g. allocation: {model: equal_weight}",
                 "engine": "e.g. engine: {chunk: 1D}"}


def _yaml_value(value) -> str:
    """``value`` as YAML spells it (false, null, 'x', a list ...), for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(value)[:80]


def _section(doc, key, cls, where):
    """A section's mapping: {} when absent or empty (``risk:``, null); ConfigError for anything else."""
    raw = doc.get(key)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {key}: expected a mapping, got {_yaml_value(raw)} ({SECTION_HINTS[key]}; "
                          f"an empty '{key}:' takes the defaults)")
    for old, (new, meaning) in RENAMED.get(key, {}).items():
        if old in raw:
            raise ConfigError(f"{where}: {key}.{old} was renamed {key}.{new} ({meaning})")
    names = [f.name for f in fields(cls)]
    check_keys(raw, names, f"{where}: {key}")
    return raw


def portfolio_config_from_dict(doc, where: str = "portfolio config", base: Path | None = None,
                               labels: dict | None = None) -> PortfolioConfig:
    """Validate a parsed document; relative paths resolve against ``base``.

    ``labels``: dotted key -> how errors name it instead of ``<where>: <key>``
    (the command-line flag of an override).
    """
    if doc is None:
        doc = {}
    top = [f.name for f in fields(PortfolioConfig) if f.name != "source"]
    check_keys(doc, top, where)
    labels = labels or {}
    w = lambda k: labels.get(k, f"{where}: {k}")  # noqa: E731

    a = _section(doc, "allocation", AllocationConfig, where)
    allocation = AllocationConfig(
        model=_choice(a.get("model", "equal_weight"), ALLOCATION_MODELS, w("allocation.model")),
        lookback=_duration(a.get("lookback", "30D"), w("allocation.lookback")),
        max_assets=_number(a.get("max_assets"), w("allocation.max_assets"), 1, integer=True, optional=True),
        max_single_asset_weight=_number(a.get("max_single_asset_weight"), w("allocation.max_single_asset_weight"),
                                        0, 1, lo_open=True, optional=True),
        max_asset_correlation=_number(a.get("max_asset_correlation"), w("allocation.max_asset_correlation"),
                                      0, 1, lo_open=True, optional=True),
    )
    r = _section(doc, "risk", RiskConfig, where)
    d = RiskConfig()
    max_dd = _number(r.get("max_portfolio_drawdown", d.max_portfolio_drawdown), w("risk.max_portfolio_drawdown"),
                     0, 1, lo_open=True, hi_open=True)
    risk = RiskConfig(
        enabled=_bool(r.get("enabled", d.enabled), w("risk.enabled")),
        portfolio_risk=_number(r.get("portfolio_risk", d.portfolio_risk), w("risk.portfolio_risk"), 0, lo_open=True),
        dd_scale_start=_number(r.get("dd_scale_start", d.dd_scale_start), w("risk.dd_scale_start"), 0, 1, hi_open=True),
        dd_scale_floor=_number(r.get("dd_scale_floor", d.dd_scale_floor), w("risk.dd_scale_floor"), 0, 1, lo_open=True),
        max_portfolio_drawdown=max_dd,
        breaker_flatten=_bool(r.get("breaker_flatten", d.breaker_flatten), w("risk.breaker_flatten")),
        resume=_choice(r.get("resume", d.resume), RESUME, w("risk.resume")),
        cooldown_chunks=_number(r.get("cooldown_chunks", d.cooldown_chunks), w("risk.cooldown_chunks"), 1,
                                integer=True),
        resume_drawdown=_number(r.get("resume_drawdown", min(d.resume_drawdown, max_dd)), w("risk.resume_drawdown"),
                                0, max_dd, lo_open=True),
        cluster_correlation=_number(r.get("cluster_correlation", d.cluster_correlation),
                                    w("risk.cluster_correlation"), 0, 1, lo_open=True, optional=True),
        correlation_window=_number(r.get("correlation_window", d.correlation_window), w("risk.correlation_window"),
                                   10, MAX_CORRELATION_WINDOW, integer=True),
        max_entry_margin=_number(r.get("max_entry_margin"), w("risk.max_entry_margin"),
                                        0, 1, lo_open=True, optional=True),
    )
    if risk.enabled and risk.resume == "recovery" and risk.breaker_flatten:
        raise ConfigError(f"{w('risk.resume')}: recovery cannot resume a breaker that flattens "
                          "(breaker_flatten: true leaves the portfolio flat, so its drawdown never recovers "
                          "and trading would stay halted to the end): use resume: cooldown, or "
                          "breaker_flatten: false")
    e = _section(doc, "engine", EngineConfig, where)
    engine = EngineConfig(
        chunk=_duration(e.get("chunk", "1D"), w("engine.chunk")),
        layout=_choice(e.get("layout", "auto"), LAYOUTS, w("engine.layout")),
        assets_per_actor=_number(e.get("assets_per_actor"), w("engine.assets_per_actor"), 1, integer=True,
                                 optional=True),
        checkpoint_every=_number(e.get("checkpoint_every", 0), w("engine.checkpoint_every"), 0, integer=True),
        checkpoint_seconds=_number(e.get("checkpoint_seconds", 60.0), w("engine.checkpoint_seconds"), 0),
        transport=_choice(e.get("transport", "socket"), TRANSPORTS, w("engine.transport")),
    )
    o = _section(doc, "output", OutputConfig, where)
    output = OutputConfig(format=_choice(o.get("format", "parquet"), OUTPUT_FORMATS, w("output.format")),
                          report=_bool(o.get("report", True), w("output.report")))
    assets = doc.get("assets", "all")
    if assets != "all":
        if not isinstance(assets, list) or not assets or not all(isinstance(x, str) for x in assets):
            raise ConfigError(f"{where}: assets: must be 'all' or a non-empty list of asset names")
        dupes = sorted({x for x in assets if assets.count(x) > 1})
        if dupes:
            raise ConfigError(f"{where}: assets: duplicate asset '{dupes[0]}'")
        assets = tuple(assets)
    raw_asset_config = doc.get("asset_config", "assets_config_highperf.json")
    asset_config = resolve_path(Path("."), raw_asset_config, w("asset_config"))  # type/NUL checks
    asset_config = Path(str(raw_asset_config))
    if base is not None and not asset_config.is_absolute():
        asset_config = resolve_path(base, raw_asset_config, w("asset_config"))
    name = check_name(doc.get("name", "portfolio"), w("name"))
    return PortfolioConfig(
        name=name, description=check_text(doc.get("description"), w("description")), asset_config=asset_config,
        assets=assets,
        preference=_choice(doc.get("preference", "balanced"), PREFERENCES, w("preference")),
        initial_capital=_number(doc.get("initial_capital", 1_000_000.0), w("initial_capital"), 0, lo_open=True),
        allocation=allocation, rebalance=_choice(doc.get("rebalance", "none"), REBALANCE, w("rebalance")),
        risk=risk, engine=engine, output=output, source=where,
    )


def load_portfolio_config(path) -> PortfolioConfig:
    """Load and validate a portfolio YAML/JSON file."""
    path = Path(path)
    doc = load_document(path)
    if doc is None:  # an empty file (or only comments): the defaults would run, named after files not there
        raise ConfigError(f"{path}: empty config file (no settings; a portfolio needs at least its asset_config)")
    return portfolio_config_from_dict(doc, str(path), base=path.resolve().parent)
