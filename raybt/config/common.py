"""What every configuration file shares: reading JSON/YAML, checking keys and values, suggesting names.

Every problem is a :class:`~raybt.errors.ConfigError` with one line naming
the file and the key (and, for a misspelt key or value, the closest valid
one: :func:`closest_name`, the one suggestion helper); YAML/JSON syntax
errors give the line number. A key written twice in one mapping is refused
(JSON and YAML alike), rather than the last one silently winning.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from raybt.errors import ConfigError

#: how ``raybt optimize`` picks each asset's parameters, and how ``raybt run --preference`` ranks assets
PREFERENCES = ("balanced", "pnl", "drawdown")

#: the largest integer a config may give (kernel fields are int32/int64; a count or a size in bars beyond it
#: is never meant, and would only allocate or loop without end)
INT_LIMIT = 2**31 - 1


class DuplicateKey(ValueError):
    """A mapping with the same key twice (raised while parsing; :func:`load_document` names the file)."""

    def __init__(self, key, line: int | None = None):
        shown = f"'{key}'" if str(key).isprintable() else repr(str(key))
        super().__init__(f"duplicate key {shown}" + (f" at line {line}" if line else "")
                         + " (a key may appear once per mapping)")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` refusing a key written twice in one mapping (merge keys ``<<`` may still be overridden)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:  # the mapping's own keys, before ``<<`` merges are flattened in
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        raise DuplicateKey(key, key_node.start_mark.line + 1)
                    seen.add(key)
                except TypeError:  # an unhashable key: SafeLoader's own error follows
                    pass
        return super().construct_mapping(node, deep=deep)


def _unique_pairs(pairs):
    """``json.loads`` object hook: a dict, DuplicateKey for a key written twice."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def parse_json(text: str) -> Any:
    """``json.loads`` refusing duplicate keys (:class:`DuplicateKey`)."""
    return json.loads(text, object_pairs_hook=_unique_pairs)


def json_document(raw: bytes | str, path) -> Any:
    """The JSON document in ``raw`` (a file's bytes or text), duplicate keys refused; anything that
    does not decode is one ConfigError line naming ``path`` (the one JSON reader of config files,
    optimiser results and run folders)."""
    try:
        return parse_json(raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw)
    except DuplicateKey as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: invalid JSON: {first}") from None


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
        return json_document(text, path)
    if suffix in (".yaml", ".yml"):
        try:
            return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
        except DuplicateKey as exc:
            raise ConfigError(f"{path}: {exc}") from None
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


def text_number_hint(value: Any) -> str:
    """For a number given as text: how to write it. YAML 1.1 (PyYAML) reads ``1e6`` as a string (it
    wants ``1.0e6``); other numbers as text were quoted."""
    if not isinstance(value, str):
        return ""
    if re.fullmatch(r"\s*[-+]?\d+[eE][-+]?\d+\s*", value):
        return f" (YAML reads {value.strip()} as text: write {value.strip().replace('e', '.0e').replace('E', '.0E')})"
    try:
        float(value)
    except ValueError:
        return ""
    return " (a quoted string: write the value without quotes)"


def check_text(value: Any, where: str) -> str:
    """A free-text value (``description``): a string, or null/absent for ''; ConfigError for a list, a number..."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: must be a string, got {type(value).__name__} {value!r}"[:200])
    return value


def check_name(value: Any, where: str) -> str:
    """A name (a portfolio's, an asset's): a non-empty string without control characters (it labels
    columns and messages; folder names are made from it by :func:`raybt.results.folder_label`)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: must be a non-empty string, got {value!r}")
    if not value.isprintable():
        raise ConfigError(f"{where}: must not contain control characters (newline, tab...), got {value!r}")
    return value


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
