"""One-line data errors: ``source: column 'x', data row N (timestamp): what is wrong``."""

from __future__ import annotations

import numpy as np

from raybt.errors import DataError


def _num(value) -> str:
    """A value for a message: ``1.099`` rather than ``np.float64(1.099)``."""
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return repr(value)


def _shown(value) -> str:
    """A raw cell for a message: ``True`` rather than ``np.True_``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _col(name) -> str:
    return f"column '{name}'"


def _fail(source, where, row, stamp, message):
    """Raise the one-line DataError: ``source: where, data row N (stamp): message``."""
    where = f"{where}, " if where else ""
    at = f"data row {row}" if row is not None else ""
    if stamp is not None and at:
        at += f" ({stamp})"
    raise DataError(f"{source}: {where}{at}: {message}" if at else f"{source}: {where}{message}")
