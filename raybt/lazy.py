"""Package names imported on first use (PEP 562), so that importing a package stays light."""

from __future__ import annotations

import importlib


def lazy_getattr(package: str, exports: dict[str, str]):
    """A module ``__getattr__`` for ``package``: ``exports[name]`` is the module defining ``name``,
    relative to the package (``"figures"``) or absolute (``"raybt.result"``); imported on first use."""
    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        path = module if module.startswith("raybt.") else f"{package}.{module}"
        return getattr(importlib.import_module(path), name)

    return __getattr__
