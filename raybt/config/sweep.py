"""Sweep specification (YAML) -> validated, resolved sweep points.

Schema::

    name: allocation-risk            # optional (default: the file's stem)
    description: "..."               # optional
    base: portfolio_balanced.yaml    # a portfolio config, relative to this file
    mode: product                    # product (cartesian, default) | list
    rank_by: sharpe                  # optional default of --rank-by
    parameters:                      # mode product: dotted config path -> list of values
      allocation.model: [equal_weight, risk_parity]
      risk.max_portfolio_drawdown: [0.1, 0.2]
    points:                          # mode list: one mapping of dotted paths per point
      - {allocation.model: equal_weight, rebalance: none}
      - {allocation.model: risk_parity, max_assets: 5}

A dotted path names a key of the portfolio config (``PortfolioConfig.to_dict()``):
a top-level key (``preference``, ``rebalance``, ``assets`` ...) or
``<section>.<key>`` (``allocation.model``, ``risk.max_portfolio_drawdown``,
``engine.chunk`` ...). Short aliases: ``max_assets`` = ``allocation.max_assets``,
``allocation_model`` = ``allocation.model``, ``chunk`` = ``engine.chunk``.

Each point = the base document with its paths set, validated with
:func:`raybt.portfolio_config.portfolio_config_from_dict` (relative paths
resolve against the base config's folder). Every point is resolved before any
runs, so a bad value stops the sweep with one line naming the sweep file and
the point, e.g.
``configs/sweep.yaml: point 3 (risk.max_portfolio_drawdown=1.5): risk.max_portfolio_drawdown: must be in (0, 1), got 1.5``.

``point_id``: the first 10 hex digits of the SHA-256 of the point's resolved
config (canonical JSON, ``asset_config`` absolute) together with the SHA-256 of
the asset config file and of the optimiser's ``best_configs_<preference>.json``
when it exists (both change a point's per-asset parameters). The same point
in another sweep, or in another order, has the same id; the bars themselves
are not hashed.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from raybt.config.common import check_name, check_text, closest_name, load_document
from raybt.config.portfolio import PortfolioConfig, portfolio_config_from_dict
from raybt.errors import ConfigError

SPEC_KEYS = ("name", "description", "base", "mode", "parameters", "points", "rank_by")
MODES = ("product", "list")
#: the most points a product sweep expands to (each is a full portfolio backtest)
MAX_POINTS = 10_000
ALIASES = {"max_assets": "allocation.max_assets", "allocation_model": "allocation.model",
           "chunk": "engine.chunk"}
# metric -> True when higher is better
RANK_METRICS = {"sharpe": True, "total_return": True, "cagr": True, "calmar": True,
                "diversification_ratio": True, "max_drawdown": False, "n_trades": True}
ID_LENGTH = 10


# --- dotted paths ------------------------------------------------------------------------

def config_paths() -> dict[str, bool]:
    """Every settable dotted path of a portfolio config -> is it a section (mapping)?"""
    doc = PortfolioConfig().to_dict()
    out = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out[key] = True
            for sub in value:
                out[f"{key}.{sub}"] = False
        else:
            out[key] = False
    return out


def normalise_path(path: Any, where: str, valid: Mapping[str, bool] | None = None) -> str:
    """Check a dotted path (aliases resolved); ConfigError with the closest valid path."""
    valid = config_paths() if valid is None else valid
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{where}: a parameter must be a dotted config path string, got {path!r}")
    path = ALIASES.get(path, path)
    if path in valid:
        return path
    head, _, tail = path.partition(".")
    if tail and head in valid and valid[head]:
        keys = [p for p in valid if p.startswith(head + ".")]
        raise ConfigError(f"{where}: unknown config path '{path}'" + closest_name(path, keys))
    raise ConfigError(f"{where}: unknown config path '{path}'" + closest_name(path, list(valid) + list(ALIASES)))


def get_path(doc: Mapping, path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def set_path(doc: dict, path: str, value: Any) -> None:
    """Set ``a.b`` in a nested dict (a mapping value for a section is merged into it)."""
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    last = parts[-1]
    if isinstance(value, Mapping) and isinstance(node.get(last), dict):
        node[last] = {**node[last], **copy.deepcopy(dict(value))}
    else:
        node[last] = copy.deepcopy(value)


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def describe(params: Mapping[str, Any]) -> str:
    """``a=1, b=x`` for messages."""
    return ", ".join(f"{k}={format_value(v)}" for k, v in params.items())


# --- the spec ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file (points not yet resolved)."""

    path: Path
    name: str
    base: Path  # absolute path of the base portfolio config
    mode: str
    parameters: dict  # product mode: path -> list of values (file order)
    points: list  # list mode: list of {path: value}
    description: str = ""
    rank_by: str = "sharpe"
    document: dict = field(default_factory=dict)

    @property
    def swept(self) -> list[str]:
        """The dotted paths varied by the sweep, in file order."""
        if self.mode == "product":
            return list(self.parameters)
        out: list[str] = []
        for point in self.points:
            for key in point:
                if key not in out:
                    out.append(key)
        return out

    def expand(self) -> list[dict]:
        """Every point as ``{path: value}``: the cartesian product (first parameter
        varies slowest) or the listed points, in order."""
        if self.mode == "product":
            keys = list(self.parameters)
            return [dict(zip(keys, combo)) for combo in itertools.product(*(self.parameters[k] for k in keys))]
        return [dict(p) for p in self.points]


def sweep_spec_from_dict(doc: Any, where: str, folder: Path) -> SweepSpec:
    """Validate a parsed sweep document; ``base`` resolves against ``folder``."""
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(doc).__name__}")
    for key in doc:
        if key not in SPEC_KEYS:
            raise ConfigError(f"{where}: unknown key '{key}'" + closest_name(str(key), SPEC_KEYS))
    if "base" not in doc or not isinstance(doc["base"], str) or not doc["base"].strip():
        raise ConfigError(f"{where}: base: required, the path of a portfolio config (relative to this file)")
    base = Path(doc["base"])
    base = (base if base.is_absolute() else folder / base).resolve()
    if not base.is_file():
        raise ConfigError(f"{where}: base: portfolio config not found: {base}")
    mode = doc.get("mode", "product")
    if mode not in MODES:
        raise ConfigError(f"{where}: mode: must be one of {', '.join(MODES)}, got {mode!r}" + closest_name(str(mode), MODES))
    rank_by = doc.get("rank_by", "sharpe")
    if rank_by not in RANK_METRICS:
        raise ConfigError(f"{where}: rank_by: must be one of {', '.join(RANK_METRICS)}, got {rank_by!r}"
                          + closest_name(str(rank_by), RANK_METRICS))
    name = check_name(doc.get("name", Path(where).stem), f"{where}: name")
    valid = config_paths()
    parameters: dict = {}
    points: list = []
    if mode == "product":
        if "points" in doc:
            raise ConfigError(f"{where}: points: only with mode: list (mode is product; use parameters)")
        raw = doc.get("parameters")
        if not isinstance(raw, Mapping) or not raw:
            raise ConfigError(f"{where}: parameters: required for mode product, a mapping of dotted config "
                              f"path -> list of values")
        for key, values in raw.items():
            path = normalise_path(key, f"{where}: parameters", valid)
            if path in parameters:
                raise ConfigError(f"{where}: parameters: '{key}' and another key both set '{path}'")
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where}: parameters.{key}: must be a non-empty list of values, "
                                  f"got {values!r} (write [{format_value(values)}] for one value)")
            parameters[path] = list(values)
        count = math.prod(len(v) for v in parameters.values())
        if count > MAX_POINTS:
            sizes = " x ".join(str(len(v)) for v in parameters.values())
            raise ConfigError(f"{where}: parameters: {sizes} = {count:,} points, over the {MAX_POINTS:,} a sweep "
                              f"runs (each point is a full backtest); sweep fewer values, or list the points "
                              f"you want (mode: list)")
    else:
        if "parameters" in doc:
            raise ConfigError(f"{where}: parameters: only with mode: product (mode is list; use points)")
        raw = doc.get("points")
        if not isinstance(raw, list) or not raw:
            raise ConfigError(f"{where}: points: required for mode list, a list of mappings of dotted config "
                              f"path -> value")
        for i, point in enumerate(raw, 1):
            if not isinstance(point, Mapping):
                raise ConfigError(f"{where}: point {i}: expected a mapping of dotted path -> value, "
                                  f"got {type(point).__name__}")
            clean = {}
            for key, value in point.items():
                path = normalise_path(key, f"{where}: point {i}", valid)
                if path in clean:
                    raise ConfigError(f"{where}: point {i}: '{key}' and another key both set '{path}'")
                clean[path] = value
            points.append(clean)
    return SweepSpec(path=Path(where), name=name.strip(), base=base, mode=mode, parameters=parameters,
                     points=points, description=check_text(doc.get("description"), f"{where}: description"),
                     rank_by=rank_by, document=dict(doc))


def load_sweep_spec(path) -> SweepSpec:
    """Load and validate a sweep YAML/JSON file (points not yet resolved)."""
    path = Path(path)
    return sweep_spec_from_dict(load_document(path), str(path), path.resolve().parent)


# --- resolved points ---------------------------------------------------------------------

@dataclass(frozen=True)
class SweepPoint:
    """One resolved point: its swept values, validated config and stable id."""

    index: int  # 1-based position in the sweep
    params: dict  # {dotted path: value} as set by the sweep
    config: PortfolioConfig
    config_dict: dict  # config.to_dict() (asset_config absolute): what the point runs
    point_id: str
    label: str = ""

    def value(self, path: str) -> Any:
        """The effective value of a dotted path in the resolved config."""
        return get_path(self.config_dict, path)


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def point_id_of(config_dict: Mapping, best_configs_dir=None) -> str:
    """Short stable hash of a resolved config (+ the files that set its per-asset parameters)."""
    from raybt.config.resolve import best_configs_path

    payload = {"config": config_dict,
               "asset_config": _file_digest(Path(config_dict["asset_config"]))}
    if best_configs_dir is not None:
        best = best_configs_path(config_dict.get("preference", "balanced"), best_configs_dir)
        payload["best_configs"] = _file_digest(best) if best.is_file() else None
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]


_ABBREV = {"equal_weight": "EW", "inverse_volatility": "IV", "risk_parity": "RP",
           "performance_weighted": "PW", "min_variance": "MV", "max_sharpe": "MS",
           "none": "none", "daily": "d", "weekly": "w", "monthly": "m",
           "balanced": "bal", "drawdown": "dd", "pnl": "pnl"}


def short_value(value: Any) -> str:
    if isinstance(value, str):
        return _ABBREV.get(value, value if len(value) <= 8 else value[:7] + "~")
    if isinstance(value, float):
        return f"{value:g}"
    return format_value(value)


def short_labels(points: list[dict]) -> list[str]:
    """A short label per point from the values that differ between points (``RP/10/w/0.1``)."""
    keys: list[str] = []
    for p in points:
        for k in p:
            if k not in keys:
                keys.append(k)
    varying = [k for k in keys if len({format_value(p.get(k)) for p in points}) > 1]
    if not varying:
        return [f"P{i}" for i in range(1, len(points) + 1)]
    return ["/".join(short_value(p[k]) if k in p else "-" for k in varying) for p in points]


def label_legend(points: list[dict]) -> str:
    """``allocation.model/allocation.max_assets/...``: what the short labels list."""
    keys: list[str] = []
    for p in points:
        for k in p:
            if k not in keys:
                keys.append(k)
    varying = [k for k in keys if len({format_value(p.get(k)) for p in points}) > 1]
    return "/".join(varying) if varying else "point number"


def resolve_points(spec: SweepSpec, best_configs_dir="results") -> list[SweepPoint]:
    """Build and validate every point's config (no point runs); ConfigError names the point."""
    from raybt.config.portfolio import load_portfolio_config

    load_portfolio_config(spec.base)  # the base itself must be valid: errors name the base file
    base_doc = load_document(spec.base) or {}
    folder = spec.base.parent
    raw_points = spec.expand()
    labels = short_labels(raw_points)
    out: list[SweepPoint] = []
    seen: dict[str, int] = {}
    for i, (params, label) in enumerate(zip(raw_points, labels), 1):
        doc = copy.deepcopy(dict(base_doc))
        for path, value in params.items():
            set_path(doc, path, value)
        where = f"{spec.path}: point {i} ({describe(params)})" if params else f"{spec.path}: point {i}"
        config = portfolio_config_from_dict(doc, where, base=folder)
        config_dict = config.to_dict()
        pid = point_id_of(config_dict, best_configs_dir)
        if pid in seen:
            raise ConfigError(f"{where}: same resolved config as point {seen[pid]}")
        seen[pid] = i
        out.append(SweepPoint(index=i, params=params, config=config, config_dict=config_dict, point_id=pid,
                              label=label))
    return out


__all__ = ["ALIASES", "MODES", "RANK_METRICS", "SPEC_KEYS", "SweepPoint", "SweepSpec", "config_paths",
           "describe", "get_path", "label_legend", "load_sweep_spec", "normalise_path", "point_id_of",
           "resolve_points", "set_path", "short_labels", "sweep_spec_from_dict"]
