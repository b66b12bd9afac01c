"""The package's structure, as issue 13 set it: Ray at one boundary, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "raybt"


def _imports(path: Path) -> set[str]:
    """Top-level module names imported anywhere in ``path`` (absolute imports only)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_ray_package_imports_ray():
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if "ray" in _imports(p) and p.parent.name != "ray"]
    assert offenders == [], f"modules importing ray outside raybt/ray/: {offenders}"
    assert any("ray" in _imports(p) for p in (PACKAGE / "ray").glob("*.py"))  # the check can see imports


def test_no_module_over_500_lines_outside_the_kernels():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if "kernels" not in p.parts and (n := len(p.read_text().splitlines())) > 500}
    assert long == {}, f"modules over 500 lines: {long}"


def test_pyproject_lists_every_package():
    import tomllib

    doc = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    listed = set(doc["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py")}
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert listed - found == {"raybt.default_configs"}  # the repository's configs/, shipped as package data


def test_every_name_a_package_exports_lazily_resolves():
    """The packages' ``__all__`` names come through :func:`raybt.lazy.lazy_getattr`: each one imports
    (a name left behind by a moved module fails here, not in a user's import)."""
    import importlib

    for package in ("raybt", "raybt.engine", "raybt.plots", "raybt.sweep", "raybt.optimize"):
        module = importlib.import_module(package)
        missing = [name for name in module.__all__ if getattr(module, name, None) is None]
        assert missing == [], f"{package}: {missing}"
