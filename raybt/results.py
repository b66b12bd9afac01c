"""Writing run folders atomically, one writer at a time.

A run is written into a hidden sibling folder ``.<name>.partial`` and renamed
to its final name only when every file is written and flushed to disk
(fsync), so a folder under ``results/`` that has its final name is always
complete. A run that fails or is interrupted leaves only the ``.partial``
folder (with an ``INCOMPLETE`` marker naming the reason), never a folder that
looks finished, and an unfinished run is never deleted or written over
without an explicit ``overwrite``. The process writing a ``.partial`` folder
holds an exclusive lock on it (``fcntl``), so a second writer (``--resume``
of a run that is still going, the same ``--out`` twice) gets a clear error.

Folder names made from user text (a portfolio's or an asset's name) pass
through :func:`folder_label`, so no name can lead outside ``results/``.
File system errors while writing (disk full, permission denied) are one line
naming the path (:class:`~raybt.errors.ConfigError`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import re
import shutil
from pathlib import Path

from raybt.errors import ConfigError

LOCK = ".lock"
_HELD: dict[Path, int] = {}  # .partial folder -> open file descriptor of its lock, held by this process
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def folder_label(text) -> str:
    """``text`` as one safe folder-name component: letters, digits, ``.``, ``_`` and ``-`` only,
    no ``..``, no leading dot, at most 80 characters (``../x`` -> ``x``, ``a/b`` -> ``a_b``)."""
    label = _UNSAFE.sub("_", str(text))
    label = re.sub(r"[._]*\.\.[._]*", "_", label)  # no '..' anywhere
    label = re.sub(r"_+", "_", label)
    label = re.sub(r"-_|_-", "-", label).strip("._-")
    return label[:80] or "run"


def new_run_dir(root: Path, label: str) -> Path:
    """A fresh, not yet existing run folder name under ``root``: <UTC time>-<label> (label made safe)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    label = folder_label(label)
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


def os_error_text(exc: OSError) -> str:
    """``disk full``, ``permission denied``, ... for a message."""
    if exc.errno == errno.ENOSPC:
        return "no space left on the device (disk full)"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    return (exc.strerror or type(exc).__name__).lower()


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
        _probe(parent)
    except OSError as exc:
        raise ConfigError(f"{final}: output folder not usable ({os_error_text(exc)})") from None


def _probe(folder: Path) -> None:
    """Create and remove a folder in ``folder``: permissions say yes to root even where nothing can be
    written (/proc, a read-only mount); this asks the file system (OSError if it refuses)."""
    import tempfile

    os.rmdir(tempfile.mkdtemp(prefix=".raybt-probe-", dir=folder))


def check_writable_folder(folder: Path, what: str = "folder") -> None:
    """``folder`` (existing or not) can receive files: ConfigError naming it, one line, if not."""
    folder = Path(folder)
    try:
        parent = folder
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise ConfigError(f"{folder}: {what} not usable: {parent} is a file, not a folder")
        _probe(parent)
    except OSError as exc:
        raise ConfigError(f"{folder}: {what} not writable ({os_error_text(exc)})") from None


def lock_partial(tmp: Path) -> None:
    """Take the exclusive lock of a ``.partial`` folder for this process (ConfigError if another holds it)."""
    import fcntl

    tmp = Path(tmp).resolve()
    if tmp in _HELD:
        return
    try:  # never through a symbolic link: it would truncate and write a file outside the run
        fd = os.open(tmp / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise ConfigError(f"{tmp / LOCK}: a symbolic link in a run folder; raybt does not write through "
                          f"one (delete it)") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        finally:
            os.close(fd)
        raise ConfigError(f"{tmp}: another raybt process (pid {holder}) is writing this run; "
                          f"wait for it to finish or stop it first") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _HELD[tmp] = fd


def unlock_partial(tmp: Path) -> None:
    fd = _HELD.pop(Path(tmp).resolve(), None)
    if fd is not None:
        with contextlib.suppress(OSError):
            (Path(tmp) / LOCK).unlink(missing_ok=True)
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` and the folders themselves to disk."""
    for root, dirs, files in os.walk(folder):
        for name in files:
            fsync_path(Path(root) / name)
        fsync_path(Path(root))


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries (its renames), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_run_dir(final: Path, *, reuse: bool = False, overwrite: bool = False, timer=None):
    """Yield a temporary folder; rename it to ``final`` when the block succeeds.

    ``reuse``: the run's ``.partial`` folder already exists (created when the
    run started, see :mod:`raybt.checkpoints`) and is written into; its
    ``INCOMPLETE`` marker and checkpoint are removed just before the rename.
    Otherwise an existing ``.partial`` (an unfinished earlier run) is an
    error unless ``overwrite``. Every file is fsync'd before the rename
    (``timer`` gets that as ``file.sync``).
    """
    final = Path(final)
    check_output_dir(final)
    tmp = partial_path(final)
    try:
        if tmp.exists() and not reuse:
            if not overwrite:
                if (tmp / "run_request.json").is_file():  # a portfolio run's: it can be resumed
                    raise ConfigError(f"{final}: an unfinished run is in {tmp}; resume it (raybt run --resume "
                                      f"{final}), delete it, or pass --overwrite")
                raise ConfigError(f"{final}: an earlier unfinished write left {tmp}; delete it (or pass --overwrite "
                                  f"where the command has it)")
            lock_partial(tmp)  # not while another process writes it
            unlock_partial(tmp)
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True, exist_ok=reuse)
        lock_partial(tmp)
    except OSError as exc:
        raise ConfigError(f"{final}: output folder not writable ({os_error_text(exc)})") from None
    try:
        yield tmp
    except OSError as exc:  # a file system error while writing: one line naming the file
        _mark_incomplete(tmp, exc)
        unlock_partial(tmp)
        where = exc.filename or tmp
        raise ConfigError(f"{where}: cannot write ({os_error_text(exc)}); the unfinished run is in {tmp}") from None
    except BaseException as exc:  # noqa: BLE001 - marker for any interruption, then re-raise
        _mark_incomplete(tmp, exc)
        unlock_partial(tmp)
        raise
    try:
        from raybt.phases import phase

        with phase(timer, "file.sync"):  # every byte on disk before the folder gets its final name
            shutil.rmtree(tmp / "checkpoint", ignore_errors=True)
            (tmp / "INCOMPLETE").unlink(missing_ok=True)
            unlock_partial(tmp)
            _fsync_tree(tmp)
            if final.exists():
                final.rmdir()
            os.replace(tmp, final)
            fsync_path(final.parent)
    except OSError as exc:
        _mark_incomplete(tmp, exc)
        raise ConfigError(f"{final}: cannot move the finished run into place ({os_error_text(exc)}); "
                          f"it is in {tmp}") from None


@contextlib.contextmanager
def atomic_files(folder: Path):
    """Yield a temporary folder inside ``folder``; move each file written there into ``folder`` at the end.

    For rewriting files of a finished run (``raybt report``): each file is
    replaced whole (fsync, then rename), so an interruption leaves the old
    file or the new one, never a truncated one.
    """
    folder = Path(folder)
    tmp = folder / ".rewrite.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
    except OSError as exc:
        raise ConfigError(f"{folder}: not writable ({os_error_text(exc)})") from None
    try:
        yield tmp
        _fsync_tree(tmp)
        for path in sorted(tmp.iterdir()):
            os.replace(path, folder / path.name)
        fsync_path(folder)
    except OSError as exc:
        raise ConfigError(f"{exc.filename or folder}: cannot write ({os_error_text(exc)})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _mark_incomplete(tmp: Path, exc: BaseException) -> None:
    with contextlib.suppress(OSError):
        (tmp / "INCOMPLETE").write_text(f"run did not finish: {type(exc).__name__}: {exc}\n")


def write_json(path: Path, payload) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
