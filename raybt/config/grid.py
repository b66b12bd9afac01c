"""The optimiser's parameter grid file (``configs/grid.yaml``) -> validated candidates.

Format (YAML or JSON)::

    grid:                       # parameter name -> list of values (a scalar = one value)
      bb_period: [20, 30, 50]
      entry_z: [1.8, 2.2, 2.6]
      ...
    max_candidates: 100         # optional: seeded random subsample of the product
    seed: 0                     # optional: seed of that subsample (default 0)
    selection:                  # optional: thresholds of the selection rules
      max_drawdown: 0.25        # fraction
      min_trades: 30
    description: "..."          # optional, ignored

Any parameter of :data:`raybt.broker.PARAMETERS` may be gridded (strategy or
broker). Names are checked (closest-name suggestion), values converted and
range-checked by :func:`raybt.broker.validate_params`; every problem is a
:class:`~raybt.errors.ConfigError` naming the file and the key. The
candidates are the Cartesian product in file order (last key varies fastest);
each candidate is completed per asset with that asset's configured parameters
(:func:`candidate_params`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from raybt.config.params import PARAMETERS, validate_params
from raybt.config.common import closest_name
from raybt.config.common import check_keys, check_text, load_document
from raybt.errors import ConfigError

TOP_KEYS = ("grid", "selection", "max_candidates", "seed", "description")
SELECTION_KEYS = ("max_drawdown", "min_trades")


@dataclass(frozen=True)
class SelectionRules:
    """Thresholds of the selection preferences (see :mod:`raybt.optimize.select`)."""

    max_drawdown: float = 0.25  # fraction; balanced: max_drawdown <= this
    min_trades: int = 30  # balanced and drawdown: n_trades >= this


@dataclass(frozen=True)
class GridSpec:
    """A validated grid: ``values[name]`` = typed values, in file order."""

    values: dict = field(hash=False)
    max_candidates: int | None = None
    seed: int = 0
    selection: SelectionRules = SelectionRules()
    path: Path | None = None

    @property
    def names(self) -> tuple:
        return tuple(self.values)

    @property
    def size(self) -> int:
        """Number of points of the full Cartesian product."""
        return math.prod(len(v) for v in self.values.values()) if self.values else 1

    def candidates(self) -> list[dict]:
        """The grid points (``{name: value}``), subsampled to ``max_candidates`` if set."""
        return expand_grid(self)


def _int_option(raw, where, minimum) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, np.integer)) or raw < minimum:
        raise ConfigError(f"{where}: must be an integer >= {minimum}, got {raw!r}")
    return int(raw)


def _selection(raw: Any, where: str) -> SelectionRules:
    if raw is None:
        return SelectionRules()
    check_keys(raw, SELECTION_KEYS, where)
    rules = SelectionRules()
    max_dd = raw.get("max_drawdown", rules.max_drawdown)
    if isinstance(max_dd, bool) or not isinstance(max_dd, (int, float)) or not (0 < max_dd <= 1):
        raise ConfigError(f"{where}.max_drawdown: must be a fraction in (0, 1], got {max_dd!r}")
    min_trades = _int_option(raw.get("min_trades", rules.min_trades), f"{where}.min_trades", 0)
    return SelectionRules(max_drawdown=float(max_dd), min_trades=min_trades)


def parse_grid(doc: Any, where: str = "grid", path: Path | None = None) -> GridSpec:
    """Validate a parsed grid document (see the module docstring)."""
    check_keys(doc, TOP_KEYS, where)
    check_text(doc.get("description"), f"{where}: description")
    raw_grid = doc.get("grid")
    if not isinstance(raw_grid, Mapping) or not raw_grid:
        raise ConfigError(f"{where}: 'grid' must be a non-empty mapping of parameter -> list of values")
    values: dict[str, list] = {}
    for name, raw_values in raw_grid.items():
        key_where = f"{where}: grid.{name}"
        if name not in PARAMETERS:
            raise ConfigError(f"{where}: grid: unknown parameter '{name}'" + closest_name(name, PARAMETERS))
        items = raw_values if isinstance(raw_values, (list, tuple)) else [raw_values]
        if not items:
            raise ConfigError(f"{key_where}: needs at least one value")
        typed = []
        for raw in items:
            if isinstance(raw, (list, tuple, Mapping)) or raw is None:
                raise ConfigError(f"{key_where}: values must be scalars, got {raw!r}")
            value = validate_params({name: raw}, key_where, typed=True)[name]
            if value not in typed:  # duplicates would only repeat candidates
                typed.append(value)
        values[str(name)] = typed
    max_candidates = doc.get("max_candidates")
    if max_candidates is not None:
        max_candidates = _int_option(max_candidates, f"{where}: max_candidates", 1)
    seed = _int_option(doc.get("seed", 0), f"{where}: seed", 0)
    selection = _selection(doc.get("selection"), f"{where}: selection")
    return GridSpec(values=values, max_candidates=max_candidates, seed=seed, selection=selection, path=path)


def load_grid(path) -> GridSpec:
    """Load and validate a grid file (YAML or JSON)."""
    path = Path(path)
    return parse_grid(load_document(path), str(path), path)


def expand_grid(spec: GridSpec) -> list[dict]:
    """Cartesian product in file order; a seeded subsample (kept in product order) when capped."""
    names = list(spec.values)
    points = [dict(zip(names, combo)) for combo in itertools.product(*(spec.values[n] for n in names))]
    if spec.max_candidates is not None and spec.max_candidates < len(points):
        rng = np.random.default_rng(spec.seed)
        keep = np.sort(rng.choice(len(points), size=spec.max_candidates, replace=False))
        points = [points[i] for i in keep]
    return points


def candidate_params(candidates, base: Mapping, where: str = "grid") -> list[dict]:
    """Full validated parameter dicts: each candidate over ``base`` (an asset's parameters)."""
    return [validate_params(c, f"{where}: candidate {i}", base=base) for i, c in enumerate(candidates)]


__all__ = ["GridSpec", "SelectionRules", "candidate_params", "expand_grid", "load_grid", "parse_grid"]
