"""Rolling block correlations and clusters vs a plain two-pass reference with scipy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.sparse.csgraph import connected_components

from raybt import risk
from raybt.kernels import dense_components_nb


def _reference_blocks(returns, first_pos, end, block, capacity):
    """Complete blocks (global alignment) ending before ``end``, last ``capacity`` of them."""
    last_complete = end // block
    first_block = max(first_pos // block, last_complete - capacity)  # the first block may start before the run
    rows = []
    for j in range(first_block, last_complete):
        lo, hi = max(j * block, first_pos), (j + 1) * block
        rows.append(returns[lo - first_pos:hi - first_pos].sum(axis=0))
    return np.array(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rolling_block_moments_match_two_pass_reference(seed):
    rng = np.random.default_rng(seed)
    n, bars, block = 12, 3000, 12
    factors = rng.normal(size=(bars, 2))
    returns = factors @ rng.normal(size=(2, n)) * 1e-3 + rng.normal(size=(bars, n)) * 1e-3
    returns[:, 3] = 0.0  # a flat sleeve: no variance, stays alone
    first_pos = 7  # the run does not start on a block boundary
    equity = 1e5 * np.cumprod(1 + returns, axis=0).T  # assets x bars
    realised = np.concatenate([equity[:, :1] / 1e5 - 1, equity[:, 1:] / equity[:, :-1] - 1], axis=1).T
    moments = risk.RollingBlockMoments(400, n, block)
    pos, previous = first_pos, np.full(n, 1e5)
    while pos < first_pos + bars:
        width = int(rng.integers(5, 300))
        chunk = equity[:, pos - first_pos: pos - first_pos + width]
        path_max, path_last = moments.append_chunk(np.ascontiguousarray(chunk), previous, pos)
        assert path_max == pytest.approx(chunk.sum(axis=0).max(), rel=1e-12)
        assert path_last == pytest.approx(chunk.sum(axis=0)[-1], rel=1e-12)
        previous = chunk[:, -1].copy()
        pos += chunk.shape[1]
        blocks = _reference_blocks(realised, first_pos, pos, block, moments.capacity)
        if len(blocks) < 3:
            assert moments.correlation() is None
            continue
        corr, valid = moments.correlation()
        assert not valid[3] and valid[[0, 1, 2, 4]].all()
        expected = np.corrcoef(blocks[:, valid].T)
        assert np.allclose(corr[np.ix_(valid, valid)], expected, atol=1e-8)
        linked = (expected > 0.4)
        np.fill_diagonal(linked, False)
        _, labels = connected_components(linked, directed=False)
        mine = risk.clusters_from_correlation(corr, valid, 0.4)[valid]
        fused = moments.clusters(0.4)
        assert np.array_equal(fused, risk.clusters_from_correlation(corr, valid, 0.4))
        assert all((mine[i] == mine[j]) == (labels[i] == labels[j])
                   for i in range(len(labels)) for j in range(len(labels)))


@settings(max_examples=150, deadline=None, database=None)
@given(st.integers(1, 14).flatmap(lambda n: st.lists(st.booleans(), min_size=n * n, max_size=n * n)
                                  .map(lambda cells: np.array(cells).reshape(n, n))))
def test_dense_components_equal_scipy(adjacency):
    _, expected = connected_components(adjacency, directed=False)
    assert np.array_equal(dense_components_nb(adjacency), expected)


def test_cluster_factors_divide_by_cluster_size():
    assert np.allclose(risk.cluster_factors(np.array([0, 0, 1, 2, 2, 2])), [0.5, 0.5, 1, 1 / 3, 1 / 3, 1 / 3])
