"""Writing run folders atomically.

A run is written into a hidden sibling folder ``.<name>.partial`` and renamed
to its final name only when every file is written, so a folder under
``results/`` that has its final name is always complete. A run that fails or
is interrupted leaves only the ``.partial`` folder (with an ``INCOMPLETE``
marker naming the reason), never a folder that looks finished.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
from pathlib import Path

from raybt.errors import ConfigError


def new_run_dir(root: Path, label: str) -> Path:
    """A fresh, not yet existing run folder name under ``root``: <UTC time>-<label>."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    candidate = Path(root) / f"{stamp}-{label}"
    k = 1
    while candidate.exists() or partial_path(candidate).exists():
        k += 1
        candidate = Path(root) / f"{stamp}-{label}-{k}"
    return candidate


def partial_path(final: Path) -> Path:
    """The hidden folder a run is written into before it gets its final name."""
    final = Path(final)
    return final.parent / f".{final.name}.partial"


def check_output_dir(final: Path) -> None:
    """Fail early (ConfigError, one line) when ``final`` cannot become a run folder.

    It must not exist (or be an empty folder), and its nearest existing parent
    must be a writable folder.
    """
    final = Path(final)
    try:
        if final.exists():
            if not final.is_dir():
                raise ConfigError(f"{final}: output path exists and is a file, not a folder")
            if any(final.iterdir()):
                raise ConfigError(f"{final}: output folder already exists and is not empty")
        parent = final.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise ConfigError(f"{final}: cannot create the output folder: {parent} is a file, not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(f"{final}: output folder not writable ({parent}: permission denied)")
    except OSError as exc:
        raise ConfigError(f"{final}: output folder not usable ({exc.strerror or type(exc).__name__})") from None


@contextlib.contextmanager
def atomic_run_dir(final: Path, *, reuse: bool = False):
    """Yield a temporary folder; rename it to ``final`` when the block succeeds.

    ``reuse``: the run's ``.partial`` folder already exists (created when the
    run started, see :mod:`raybt.checkpoints`) and is written into; its
    ``INCOMPLETE`` marker and checkpoint are removed just before the rename.
    """
    final = Path(final)
    check_output_dir(final)
    tmp = partial_path(final)
    try:
        if tmp.exists() and not reuse:
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True, exist_ok=reuse)
    except OSError as exc:
        raise ConfigError(f"{final}: output folder not writable ({exc.strerror or type(exc).__name__})") from None
    try:
        yield tmp
    except BaseException as exc:  # noqa: BLE001 - marker for any interruption, then re-raise
        _mark_incomplete(tmp, exc)
        raise
    try:
        shutil.rmtree(tmp / "checkpoint", ignore_errors=True)
        (tmp / "INCOMPLETE").unlink(missing_ok=True)
        if final.exists():
            final.rmdir()
        os.replace(tmp, final)
    except OSError as exc:
        _mark_incomplete(tmp, exc)
        raise ConfigError(f"{final}: cannot move the finished run into place ({exc.strerror or exc}); "
                          f"it is in {tmp}") from None


def _mark_incomplete(tmp: Path, exc: BaseException) -> None:
    with contextlib.suppress(OSError):
        (tmp / "INCOMPLETE").write_text(f"run did not finish: {type(exc).__name__}: {exc}\n")


def write_json(path: Path, payload) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
