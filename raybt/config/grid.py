"""The optimiser's parameter grid file (``configs/grid.yaml``) -> validated candidates.

Format (YAML or JSON)::

    grid:                       # parameter name -> list of values (a scalar = one value)
      bb_period: [20, 30, 50]
      entry_z: [1.8, 2.2, 2.6]
      ...
    max_candidates: 100         # optional: seeded random subsample of the product (<= 1,000,000)
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

Size: the product's size is computed from the value counts before anything
is expanded. More than :data:`MAX_CANDIDATES` candidates (the full product
without ``max_candidates``, or ``max_candidates`` itself) is refused with one
line naming the file and the size. With ``max_candidates`` the subsample is
drawn as indices into the product (``numpy.random.default_rng(seed).choice``,
the same draw as when the product was materialised) and each index decoded
mixed-radix, so a 40-million-point grid costs no more memory than its sample.
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

#: the most candidates a grid may give (each is one backtest per asset); above it, set max_candidates
MAX_CANDIDATES = 1_000_000
#: numpy draws indices below this; a larger product is sampled digit by digit (:func:`_sample_indices`)
_INT64_LIMIT = 2**63 - 1

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
    spec = GridSpec(values=values, max_candidates=max_candidates, seed=seed, selection=selection, path=path)
    check_grid_size(spec, where)
    return spec


def check_grid_size(spec: GridSpec, where: str = "grid") -> int:
    """The number of candidates ``spec`` gives (from the value counts, nothing expanded); ConfigError
    naming ``where`` and the size when it exceeds :data:`MAX_CANDIDATES`."""
    size = spec.size
    if spec.max_candidates is not None:
        if spec.max_candidates > MAX_CANDIDATES and size > MAX_CANDIDATES:
            raise ConfigError(f"{where}: max_candidates: must be at most {MAX_CANDIDATES:,} "
                              f"(one backtest each per asset), got {spec.max_candidates:,}")
        return min(size, spec.max_candidates)
    if size > MAX_CANDIDATES:
        counts = " x ".join(str(len(v)) for v in spec.values.values())
        raise ConfigError(f"{where}: the grid has {size:,} candidates ({counts} values), more than the "
                          f"limit of {MAX_CANDIDATES:,}; set max_candidates (e.g. max_candidates: 1000) to "
                          f"run a seeded random sample of them, or list fewer values")
    return size


def load_grid(path) -> GridSpec:
    """Load and validate a grid file (YAML or JSON)."""
    path = Path(path)
    return parse_grid(load_document(path), str(path), path)


def _sample_indices(size: int, k: int, seed: int) -> list[int]:
    """``k`` distinct indices in ``[0, size)``, sorted, from ``seed`` (``size`` > ``k``).

    Below 2**63 this is ``default_rng(seed).choice(size, k, replace=False)``,
    exactly the draw made when the product was a list of ``size`` points (numpy
    uses Floyd's algorithm, O(k) memory, unless ``k`` > ``size`` / 50). A larger
    product draws each index as random 62-bit limbs until ``k`` distinct ones.
    """
    rng = np.random.default_rng(seed)
    if size <= _INT64_LIMIT:
        return [int(i) for i in np.sort(rng.choice(size, size=k, replace=False))]
    chosen: set[int] = set()
    limbs = (size.bit_length() + 61) // 62 + 1  # extra limb: modulo bias below 2**-62
    while len(chosen) < k:
        draw = rng.integers(0, 2**62, size=(k - len(chosen), limbs), dtype=np.int64)
        for row in draw:
            value = 0
            for limb in row:
                value = (value << 62) | int(limb)
            chosen.add(value % size)
    return sorted(chosen)


def _decode(index: int, names: list, values: dict, radices: list) -> dict:
    """The product's point number ``index`` (file order, last key fastest) as ``{name: value}``."""
    digits = []
    for radix in reversed(radices):
        index, digit = divmod(index, radix)
        digits.append(digit)
    return {name: values[name][d] for name, d in zip(names, reversed(digits))}


def expand_grid(spec: GridSpec) -> list[dict]:
    """Cartesian product in file order; a seeded subsample (kept in product order) when capped.

    Only the returned candidates are built (never the whole product); a grid
    above :data:`MAX_CANDIDATES` raises ConfigError (:func:`check_grid_size`).
    """
    check_grid_size(spec, str(spec.path) if spec.path is not None else "grid")
    names = list(spec.values)
    size = spec.size
    if spec.max_candidates is not None and spec.max_candidates < size:
        indices = _sample_indices(size, spec.max_candidates, spec.seed)
        radices = [len(spec.values[n]) for n in names]
        return [_decode(i, names, spec.values, radices) for i in indices]
    return [dict(zip(names, combo)) for combo in itertools.product(*(spec.values[n] for n in names))]


def candidate_params(candidates, base: Mapping, where: str = "grid") -> list[dict]:
    """Full validated parameter dicts: each candidate over ``base`` (an asset's parameters)."""
    return [validate_params(c, f"{where}: candidate {i}", base=base) for i, c in enumerate(candidates)]


__all__ = ["MAX_CANDIDATES", "GridSpec", "SelectionRules", "candidate_params", "check_grid_size", "expand_grid",
           "load_grid", "parse_grid"]
