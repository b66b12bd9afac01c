"""``run_request.json``: what a ``raybt run`` was asked, kept in its ``.partial`` folder for ``--resume``.

Written by :func:`raybt.checkpoints.start_run_dir` with the portfolio config's
path made absolute (:func:`request_to_store`), so the run resumes from any
folder. Read back by :func:`raybt.checkpoints.find_resumable` and checked key
by key here with the same validators as the config file and the flags
(:func:`check_request`): every problem is one ConfigError naming
``<run>/.<name>.partial/run_request.json`` and the key, never a flag or
another file. A relative config path (a request written before paths were
stored absolute) is tried against the current folder; when it is not there
the error says so, naming run_request.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from raybt.errors import ConfigError

#: the ``raybt run`` arguments a request holds (None: not given, the config's value applies)
RUN_REQUEST_KEYS = ("config", "preference", "allocation", "max_assets", "timeframe", "chunk", "checkpoint_every",
                    "checkpoint_seconds", "format", "date_format", "layout", "assets_per_actor", "report")


def request_to_store(request: Mapping) -> dict:
    """The request as written: ``config`` (a path) absolute, resolved against the current folder."""
    out = dict(request)
    if isinstance(out.get("config"), (str, Path)) and str(out["config"]).strip():
        out["config"] = str(Path(out["config"]).resolve())
    return out


def _config_path(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: must be the path of the portfolio config file (a non-empty string), "
                          f"got {value!r}"[:200])
    path = Path(value)
    if path.is_file():
        return str(path.resolve())
    if path.is_absolute():
        raise ConfigError(f"{where}: the portfolio config file {value} is not there any more "
                          f"(moved or deleted?); put it back or start the run again")
    raise ConfigError(f"{where}: the portfolio config file {value!r} is not in the current folder "
                      f"({Path.cwd()}); it was given relative to the folder the run started in: resume from "
                      f"that folder, or write the file's absolute path here")


def check_request(request: Any, path: Path) -> dict:
    """The validated request (``config`` absolute); ConfigError ``<path>: <key>: ...`` otherwise."""
    from raybt.config.common import PREFERENCES, check_keys, check_timeframe
    from raybt.config.portfolio import (ALLOCATION_MODELS, LAYOUTS, OUTPUT_FORMATS, _bool, _choice, _duration,
                                        _number)
    from raybt.config.universe import check_timestamp_format

    check_keys(request, RUN_REQUEST_KEYS, str(path))
    checks = {
        "config": _config_path,
        "preference": lambda v, w: _choice(v, PREFERENCES, w),
        "allocation": lambda v, w: _choice(v, ALLOCATION_MODELS, w),
        "max_assets": lambda v, w: _number(v, w, 1, integer=True),
        "timeframe": check_timeframe,
        "chunk": _duration,
        "checkpoint_every": lambda v, w: _number(v, w, 0, integer=True),
        "checkpoint_seconds": lambda v, w: _number(v, w, 0),
        "format": lambda v, w: _choice(v, OUTPUT_FORMATS, w),
        "date_format": check_timestamp_format,
        "layout": lambda v, w: _choice(v, LAYOUTS, w),
        "assets_per_actor": lambda v, w: _number(v, w, 1, integer=True),
        "report": _bool,
    }
    out = {}
    for key in RUN_REQUEST_KEYS:
        value = request.get(key)
        out[key] = None if value is None else checks[key](value, f"{path}: {key}")
    return out


__all__ = ["RUN_REQUEST_KEYS", "check_request", "request_to_store"]
