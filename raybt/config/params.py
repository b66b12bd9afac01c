"""The strategy and broker parameters of one asset (the spec's table): defaults, types, ranges.

:func:`validate_params` turns user values (a config section, ``--set
key=value``) into a plain ``dict`` of typed values with every default
filled in; every problem is one ConfigError line naming where the value came
from and the parameter (with the closest valid name for a typo).
:mod:`raybt.broker` packs such dicts into the kernel's records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from raybt.config.common import INT_LIMIT, closest_name, text_number_hint
from raybt.errors import ConfigError
from raybt.types import SIZING_NAMES


@dataclass(frozen=True)
class Parameter:
    """One parameter: its kind ('int', 'float', 'bool', 'choice'), default and range check."""

    name: str
    kind: str
    default: Any
    check: Callable[[Any], bool]
    rule: str  # human text of the check, used in error messages
    choices: tuple = ()
    group: str = "strategy"


def _p(name, kind, default, check, rule, group="strategy", choices=()):
    return Parameter(name, kind, default, check, rule, choices, group)


STRATEGY = "strategy"


BROKER = "broker"


PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in [
        _p("bb_period", "int", 20, lambda v: v >= 2, "an integer >= 2"),
        _p("entry_z", "float", 2.0, lambda v: v >= 0, ">= 0"),
        _p("exit_z", "float", 0.0, lambda v: True, "a number"),
        _p("atr_period", "int", 14, lambda v: v >= 1, "an integer >= 1"),
        _p("sl_atr", "float", 1.5, lambda v: v > 0, "> 0"),
        _p("tp_atr", "float", 3.0, lambda v: v > 0, "> 0"),
        _p("allow_short", "bool", True, lambda v: True, "true or false"),
        _p("max_hold_bars", "int", 0, lambda v: v >= 0, "an integer >= 0 (0 = off)"),
        _p("initial_capital", "float", 100000.0, lambda v: v > 0, "> 0", BROKER),
        _p("weight", "float", 1.0, lambda v: 0 < v <= 1, "in (0, 1]", BROKER),
        _p("sizing", "choice", "fixed", lambda v: True, "fixed or risk", BROKER, SIZING_NAMES),
        _p("size", "float", 1.0, lambda v: v > 0, "> 0", BROKER),
        _p("risk_per_trade", "float", 0.01, lambda v: 0 < v <= 1, "in (0, 1]", BROKER),
        _p("lot_size", "float", 1.0, lambda v: v >= 0, ">= 0 (0 = no rounding)", BROKER),
        _p("contract_size", "float", 1.0, lambda v: v > 0, "> 0", BROKER),
        _p("leverage", "float", 1.0, lambda v: v > 0, "> 0", BROKER),
        _p("stop_out_level", "float", 0.5, lambda v: v >= 0, ">= 0", BROKER),
        _p("commission", "float", 0.0, lambda v: 0 <= v < 1, "in [0, 1)", BROKER),
        _p("spread", "float", 0.0, lambda v: v >= 0, ">= 0", BROKER),
        _p("slippage", "float", 0.0, lambda v: v >= 0, ">= 0", BROKER),
    ]
}


STRATEGY_PARAMETERS = tuple(k for k, p in PARAMETERS.items() if p.group == STRATEGY)


BROKER_PARAMETERS = tuple(k for k, p in PARAMETERS.items() if p.group == BROKER)


def default_params() -> dict:
    """Every parameter at the spec's default."""
    return {k: p.default for k, p in PARAMETERS.items()}




_TYPES = {"bool": (bool, np.bool_), "choice": (str,), "int": (int, float, np.integer, np.floating),
          "float": (int, float, np.integer, np.floating)}


def _convert(param: Parameter, value: Any, where: str, typed: bool = False) -> Any:
    """Convert a raw value (str from --set, or a JSON/YAML scalar) to the parameter's type.

    ``typed``: the value comes from a JSON/YAML file, which has numbers and
    booleans, so it must already be one ('20' or 'false' in quotes is refused;
    an integer may be written 20.0).
    """
    bad = ConfigError(f"{where}: '{param.name}' must be {param.rule}, got {value!r}"[:300])
    wrong_type = not isinstance(value, _TYPES[param.kind]) or (param.kind in ("int", "float")
                                                                and isinstance(value, (bool, np.bool_)))
    if typed and wrong_type:
        raise ConfigError(f"{where}: '{param.name}' must be {param.rule}, got {value!r}"[:300]
                          + text_number_hint(value))
    if param.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
            return False
        if isinstance(value, (int, np.integer)) and value in (0, 1):
            return bool(value)
        raise bad
    if param.kind == "choice":
        text = str(value).strip().lower()
        if text not in param.choices:
            raise ConfigError(
                f"{where}: '{param.name}' must be one of {', '.join(param.choices)}, got {value!r}"
                + closest_name(text, param.choices)
            )
        return text
    if isinstance(value, bool):
        raise bad
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise bad from None
    if not math.isfinite(number):
        raise bad
    if param.kind == "int":
        if number != int(number) or abs(number) > INT_LIMIT:
            raise bad
        return int(number)
    return number


def validate_params(values: Mapping[str, Any], where: str = "parameters", base: Mapping | None = None, *,
                    typed: bool = False) -> dict:
    """Validate ``values`` (raw names -> raw values) over ``base`` (default: spec defaults).

    Unknown names and bad values raise :class:`ConfigError` naming the key,
    the rule and (for unknown names) the closest valid name; so does a
    ``values`` that is not a mapping. Validating a validated dict again
    returns it unchanged. ``typed``: the values come from a JSON/YAML file
    and must have their type already (``"bb_period": "20"`` and
    ``"allow_short": 0`` are refused; ``--set`` strings are converted).
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: parameters must be a mapping of name -> value, got {type(values).__name__}")
    params = dict(default_params() if base is None else base)
    for key, raw in values.items():
        param = PARAMETERS.get(key)
        if param is None:
            raise ConfigError(f"{where}: unknown parameter '{key}'" + closest_name(key, PARAMETERS))
        value = _convert(param, raw, where, typed)
        if not param.check(value):
            raise ConfigError(f"{where}: '{key}' must be {param.rule}, got {raw!r}")
        params[key] = value
    return params


def parse_set_options(items, where: str = "--set") -> dict:
    """Parse ``["key=value", ...]`` from the command line into raw strings."""
    values = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{where}: expected key=value, got {item!r}")
        if key.strip() in values:
            raise ConfigError(f"{where}: {key.strip()} given twice ({values[key.strip()]!r} and {value.strip()!r}); "
                              f"keep one")
        values[key.strip()] = value.strip()
    return values


def min_bars(params: Mapping[str, Any]) -> int:
    """Bars needed before the first possible entry decision (indicator warm-up + 1)."""
    return max(int(params["bb_period"]), int(params["atr_period"])) + 1
