"""What every configuration file shares: reading JSON/YAML, checking keys and values, suggesting names.

Every problem is a :class:`~raybt.errors.ConfigError` with one line naming
the file and the key (and, for a misspelt key or value, the closest valid
one: :func:`closest_name`, the one suggestion helper); YAML/JSON syntax
errors give the line number.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Mapping

import yaml

from raybt.errors import ConfigError

#: how ``raybt optimize`` picks each asset's parameters, and how ``raybt run --preference`` ranks assets
PREFERENCES = ("balanced", "pnl", "drawdown")


def load_document(path) -> Any:
    """Parse a JSON or YAML file; ConfigError for a missing file or a syntax error."""
    path = Path(path)
    try:
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found" + (" (it is a folder)" if path.is_dir() else ""))
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); config files must be UTF-8 "
                          f"JSON or YAML") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or type(exc).__name__})") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        except RecursionError:
            raise ConfigError(f"{path}: JSON nested too deeply") from None
    if suffix in (".yaml", ".yml"):
        try:
            return yaml.safe_load(text)
        except RecursionError:
            raise ConfigError(f"{path}: YAML nested too deeply") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None
    raise ConfigError(f"{path}: unsupported config format '{suffix}' (use .json, .yaml or .yml)")


def resolve_path(base: Path, value: Any, where: str) -> Path:
    """``base / value`` resolved; ConfigError unless ``value`` is a usable, non-empty path string."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise ConfigError(f"{where}: must be a file path (a non-empty string), got {value!r}")
    try:
        return (Path(base) / str(value)).resolve()
    except (ValueError, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ConfigError(f"{where}: not a usable path {str(value)!r} ({reason})") from None


def check_timeframe(value: Any, where: str) -> str:
    """``value`` as a timeframe string (``5m``, ``1h`` ...); ConfigError naming ``where`` otherwise."""
    from raybt.data.timeframes import parse_timeframe

    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(f"{where}: not a timeframe: {value!r} (use e.g. 1m, 5m, 15m, 1h, 4h, 1d)")
    try:
        parse_timeframe(str(value))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {str(exc).removeprefix('timeframe: ')}") from None
    except (ValueError, OverflowError):
        raise ConfigError(f"{where}: timeframe {value!r} is out of range") from None
    return str(value)


def check_keys(mapping: Any, allowed, where: str) -> Mapping:
    """Require a mapping whose keys are all in ``allowed``; suggest the closest on a typo."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(mapping).__name__}")
    for key in mapping:
        if key not in allowed:
            shown = f"'{key}'" if str(key).isprintable() else repr(str(key))  # a newline would split the message
            raise ConfigError(f"{where}: unknown key {shown}" + closest_name(key, allowed))
    return mapping


def closest_name(name: str, valid) -> str:
    """' (did you mean 'x'?)' for the closest valid name, or '' when none is close."""
    match = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""
