"""Numba's on-disk cache of raybt's kernels, kept in step with their sources.

Numba keys a cached kernel on the stamp (mtime and size) of the one source
file that defines it. A kernel also holds, compiled in, the kernels it calls
from other files and the module-level constants it reads (``raybt.types``'
codes, say): when only such a file changes (a ``git pull`` into an editable
install, an edit), numba keeps loading the stale machine code, and a run is
silently wrong. (Numba issue 6845; seen here: ``indicators.py`` fixed, the
cached ``advance_asset_nb`` of ``mean_reversion.py`` still ran the old z.)

:func:`refresh_numba_cache` fingerprints the contents of every raybt source
file that defines numba kernels plus the raybt modules those files import
from, and when the fingerprint differs from the one recorded beside the cache,
deletes raybt's cached kernels there (numba compiles them again, once) and
records the new one. It runs when ``raybt`` is imported, so in every process
before any kernel is loaded; the driver imports raybt before it starts any Ray
worker, so workers find the fingerprint current. Only numba's default
location, ``__pycache__`` beside the sources, is looked after: a read-only
install (numba then caches elsewhere) cannot have its sources change in place.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

THIS_FILE = Path(__file__).resolve()
PACKAGE_DIR = THIS_FILE.parent
STAMP_NAME = "raybt-numba-sources.sha256"


def kernel_sources(package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The files that define numba kernels (``@njit``), and the raybt modules they import from, sorted."""
    sources = set()
    for folder, _, names in os.walk(package_dir):
        for name in names:
            if not name.endswith(".py"):
                continue
            path = Path(folder, name)
            text = path.read_bytes()
            if b"@njit" in text and path != THIS_FILE:
                sources.update(_imported_sources(text.decode("utf-8"), package_dir, path))
    return sorted(sources)


def _imported_sources(text: str, package_dir: Path, path: Path) -> set:
    """``path`` and the files of the package's modules its ``text`` imports from."""
    sources = {path}
    pattern = rf"^\s*(?:from|import)\s+({re.escape(package_dir.name)}(?:\.\w+)+)"
    for module in re.findall(pattern, text, re.MULTILINE):
        parts = module.split(".")[1:]
        for candidate in (package_dir.joinpath(*parts).with_suffix(".py"),
                          package_dir.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                sources.add(candidate)
    return sources


def sources_fingerprint(sources, package_dir: Path = PACKAGE_DIR) -> str:
    """sha256 over each source's path (relative to the package) and bytes."""
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


_FINGERPRINT = {}  # package folder -> its kernels' fingerprint, computed once per process


def kernels_fingerprint(package_dir: Path = PACKAGE_DIR) -> str:
    """The fingerprint of the package's kernel sources (:func:`sources_fingerprint`), once per process:
    what a checkpoint records so that a run is never continued by other kernels than started it."""
    if package_dir not in _FINGERPRINT:
        _FINGERPRINT[package_dir] = sources_fingerprint(kernel_sources(package_dir), package_dir)
    return _FINGERPRINT[package_dir]


def refresh_numba_cache(package_dir: Path = PACKAGE_DIR) -> bool:
    """Delete raybt's cached kernels if their sources changed since they were cached; True if it did.

    Never raises for the file system (a read-only install, a race with another process): the
    cache is then left as it is.
    """
    try:
        sources = kernel_sources(package_dir)
        fingerprint = _FINGERPRINT[package_dir] = sources_fingerprint(sources, package_dir)
        stamp = package_dir / "__pycache__" / STAMP_NAME
        if stamp.is_file() and stamp.read_text().strip() == fingerprint:
            return False
        for directory in sorted({path.parent / "__pycache__" for path in sources}):
            for cached in directory.glob("*.nb[ic]"):
                cached.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        partial = stamp.with_name(f"{STAMP_NAME}.{os.getpid()}")
        partial.write_text(fingerprint + "\n")
        os.replace(partial, stamp)
        return True
    except OSError:
        return False
