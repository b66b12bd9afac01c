"""Connected components of a small dense graph (numba), for per-chunk correlation clusters.

scipy's ``connected_components`` is the reference (the tests compare the
two); this kernel exists because the coordinator calls it once per chunk on a
dense n x n matrix, where scipy's sparse conversion costs more than the
whole search.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _root_nb(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True)
def _union_nb(parent, i, j):
    """Join the components of i and j; the smaller root becomes the root."""
    a = _root_nb(parent, i)
    b = _root_nb(parent, j)
    if a < b:
        parent[b] = a
    elif b < a:
        parent[a] = b


@njit(cache=True)
def _labels_nb(parent):
    """Component labels 0..k-1 from a union-find forest, numbered by smallest vertex."""
    n = parent.shape[0]
    labels = np.empty(n, dtype=np.int64)
    next_label = 0
    root_label = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        r = _root_nb(parent, i)
        if root_label[r] < 0:
            root_label[r] = next_label
            next_label += 1
        labels[i] = root_label[r]
    return labels


@njit(cache=True)
def dense_components_nb(linked):
    """Labels 0..k-1 of the components of the undirected graph ``linked`` (n x n bool).

    Labels are numbered in order of each component's smallest vertex, as
    scipy's ``connected_components`` numbers them.
    """
    n = linked.shape[0]
    parent = np.arange(n)
    for i in range(n):
        for j in range(i + 1, n):
            if linked[i, j] or linked[j, i]:
                _union_nb(parent, i, j)
    return _labels_nb(parent)


@njit(cache=True)
def correlation_components_nb(S, s, m, threshold, valid):
    """Clusters of assets whose correlation exceeds ``threshold``, straight from window sums.

    ``S``: sum of x x^T, ``s``: sum of x, over ``m`` rows (blocks) of asset
    returns; ``valid``: assets with variance (others stay alone). The
    Pearson correlation of a pair is ``cov_ij / sqrt(cov_ii cov_jj)`` with
    ``cov = S - s s^T / m``; pairs above ``threshold`` are joined
    (single linkage). One pass over the upper triangle, no n x n temporaries.
    Labels numbered as :func:`dense_components_nb` numbers them.
    """
    n = S.shape[0]
    var = np.empty(n)
    for i in range(n):
        var[i] = S[i, i] - s[i] * s[i] / m
    parent = np.arange(n)
    for i in range(n):
        if not valid[i]:
            continue
        for j in range(i + 1, n):
            if not valid[j]:
                continue
            cov = S[i, j] - s[i] * s[j] / m
            if cov > threshold * math.sqrt(var[i] * var[j]):
                _union_nb(parent, i, j)
    return _labels_nb(parent)
