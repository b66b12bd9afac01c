"""Typed lists of arrays built by cached kernels.

Building a ``numba.typed.List`` from Python compiles numba's list methods in
every new process (about 1.8 s here: the bulk of a shard actor's start-up);
the same appends inside ``@njit(cache=True)`` functions are loaded from
numba's cache, compiled once per machine.
"""

from __future__ import annotations

from numba import njit
from numba.typed import List


@njit(cache=True)
def list_of_nb(first):
    """A typed list holding ``first`` (its item type is ``first``'s type)."""
    out = List()
    out.append(first)
    return out


@njit(cache=True)
def list_append_nb(items, item):
    items.append(item)


@njit(cache=True)
def list_length_nb(items):
    return len(items)
