"""Checkpoints of an unfinished run on disk, and resuming from them.

A ``raybt run`` writes into ``.<run>.partial/`` (see :mod:`raybt.results`)
from its first chunk: ``INCOMPLETE`` (why it is not finished),
``run_request.json`` (what was asked: config, preference, engine, chunk,
... and the config and data hashes) and, every ``engine.checkpoint_every``
chunks, ``checkpoint.pkl``: the coordinator's :meth:`snapshot` (portfolio
state, every asset's kernel state, the outputs so far), written to a
temporary file and renamed, so a kill mid-write leaves the previous one.
``raybt run --resume results/<run>`` reloads the request, checks the config
and data hashes, restores the snapshot and continues; the finished results
are bit-identical to an uninterrupted run.

Checkpoints are pickles: load only your own run folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from raybt.errors import ConfigError

CHECKPOINT = "checkpoint.pkl"
REQUEST = "run_request.json"


def partial_dir(final: Path) -> Path:
    final = Path(final)
    return final.parent / f".{final.name}.partial"


def start_run_dir(final: Path, request: dict) -> Path:
    """Create the ``.partial`` folder of a new run with its marker and request."""
    from raybt.results import check_output_dir

    check_output_dir(final)
    tmp = partial_dir(final)
    try:
        tmp.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise ConfigError(f"{final}: an unfinished run is already there ({tmp}); "
                          f"resume it with --resume {final} or delete it") from None
    except OSError as exc:
        raise ConfigError(f"{final}: output folder not writable ({exc.strerror or type(exc).__name__})") from None
    (tmp / "INCOMPLETE").write_text("run in progress (or interrupted): resume with raybt run --resume\n")
    (tmp / REQUEST).write_text(json.dumps(request, indent=2, default=str) + "\n")
    return tmp


def find_resumable(path: Path) -> tuple[Path, Path, dict]:
    """``(final, partial, request)`` for ``--resume PATH`` (the run's final name or its .partial folder)."""
    path = Path(path)
    if path.name.startswith(".") and path.name.endswith(".partial"):
        final, tmp = path.parent / path.name[1:-len(".partial")], path
    else:
        final, tmp = path, partial_dir(path)
    if final.is_dir() and not tmp.exists():
        raise ConfigError(f"{final}: this run is complete; nothing to resume")
    if not (tmp / REQUEST).is_file():
        raise ConfigError(f"{path}: no unfinished run here (expected {tmp / REQUEST})")
    try:
        request = json.loads((tmp / REQUEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{tmp / REQUEST}: unreadable ({exc})") from None
    return final, tmp, request


def save_checkpoint(tmp: Path, snapshot: dict, hashes: dict) -> None:
    """Write ``checkpoint.pkl`` atomically (temporary file, fsync, rename)."""
    part = tmp / (CHECKPOINT + ".tmp")
    with open(part, "wb") as fh:
        pickle.dump({"hashes": hashes, "snapshot": snapshot}, fh, protocol=pickle.HIGHEST_PROTOCOL)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(part, tmp / CHECKPOINT)


def load_checkpoint(tmp: Path, hashes: dict) -> dict | None:
    """The snapshot in ``tmp`` (None if the run stopped before its first checkpoint).

    Refuses a checkpoint whose config or data hashes differ from ``hashes``.
    """
    path = tmp / CHECKPOINT
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            doc = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        raise ConfigError(f"{path}: unreadable checkpoint ({exc})") from None
    saved = doc.get("hashes", {})
    if saved.get("config") != hashes.get("config"):
        raise ConfigError(f"{path}: the configuration changed since the checkpoint (config hash differs)")
    for name, digest in hashes.get("data", {}).items():
        if saved.get("data", {}).get(name) != digest:
            raise ConfigError(f"{path}: the data of asset {name} changed since the checkpoint")
    return doc["snapshot"]


def bars_hash(bars: pd.DataFrame) -> str:
    """SHA-256 of a bars frame's timestamps and OHLC values (float64 bytes)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(bars.index.as_unit("ns").asi8).view(np.uint8))
    for column in ("open", "high", "low", "close"):
        digest.update(np.ascontiguousarray(bars[column].to_numpy(np.float64)).view(np.uint8))
    return digest.hexdigest()


def config_hash(config: dict) -> str:
    """SHA-256 of the resolved configuration (canonical JSON)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
