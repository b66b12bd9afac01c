"""raybt.numba_cache: a kernel whose compiled-in constant or callee changed in another file is
compiled again, not loaded stale from numba's cache (numba keys a kernel on its own file only)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from raybt.numba_cache import PACKAGE_DIR, STAMP_NAME, kernel_sources, refresh_numba_cache

CALL = "import sys; sys.path.insert(0, {root!r}); {refresh}from pkg.kernel import scaled; print(scaled(1.0))"
REFRESH = "from pathlib import Path; from raybt.numba_cache import refresh_numba_cache; " \
          "print(refresh_numba_cache(Path({root!r}) / 'pkg')); "


def _call(root, refresh: bool) -> list[str]:
    code = CALL.format(root=str(root), refresh=REFRESH.format(root=str(root)) if refresh else "")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_a_constant_changed_in_another_file_is_compiled_again(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "constants.py").write_text("FACTOR = 2.0\n")
    (package / "kernel.py").write_text(textwrap.dedent("""
        from numba import njit
        from pkg.constants import FACTOR

        @njit(cache=True)
        def scaled(x):
            return FACTOR * x
    """))
    assert _call(tmp_path, refresh=True) == ["True", "2.0"]  # no stamp yet: recorded
    assert _call(tmp_path, refresh=True) == ["False", "2.0"]  # unchanged: the cache is used
    assert list((package / "__pycache__").glob("kernel.scaled-*.nbi"))
    (package / "constants.py").write_text("FACTOR = 3.0\n")  # kernel.py untouched
    assert _call(tmp_path, refresh=False) == ["2.0"]  # numba alone: the stale machine code
    assert _call(tmp_path, refresh=True) == ["True", "3.0"]
    assert _call(tmp_path, refresh=True) == ["False", "3.0"]


def test_the_package_fingerprints_its_kernels_and_what_they_import():
    names = {path.relative_to(PACKAGE_DIR).as_posix() for path in kernel_sources()}
    assert {"kernels/indicators.py", "kernels/mean_reversion.py", "types.py", "optimize/evaluate.py"} <= names
    assert "cli.py" not in names and "numba_cache.py" not in names
    assert refresh_numba_cache() is False  # importing raybt (this test) recorded the current sources
    assert (PACKAGE_DIR / "__pycache__" / STAMP_NAME).is_file()
