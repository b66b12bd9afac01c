"""Sample mean and covariance of the sleeve returns, computed once and shared.

Every cross-asset number of :mod:`raybt.analysis` (correlation, risk
attribution, diversification ratio, the fixed-weight portfolio points and
the efficient frontier) is a function of the per-bar means ``μ`` and the
sample covariance ``Σ`` (``ddof=1``) of the *clean* rows of the sleeve
returns: the rows where every sleeve's return is finite.  This module
computes them in one blocked pass over the rows (a few MB of temporaries at
any size: no cleaned or centred copy of the whole matrix; the cross products
are one BLAS ``XᵀX`` per block).

Units are those of the returns: fractions per bar, not annualised.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

__all__ = ["ReturnMoments", "return_moments", "returns_array"]

# rows per block: about this many float64 values in one temporary (32 MB)
_BLOCK_VALUES = 1 << 22
# a column whose sample std is within this many ulps of its mean is constant
_CONSTANT_ULPS = 64.0


class ReturnMoments(NamedTuple):
    """Moments of the clean rows of a returns matrix (per bar, fractions).

    * ``assets``: column names;
    * ``n_rows``: rows of the matrix; ``n_obs``: clean rows (all finite);
    * ``mean`` (n,): per-bar mean returns over the clean rows;
    * ``cov`` (n, n): sample covariance (``ddof=1``) over the clean rows;
      rows and columns of constant assets are exactly 0; NaN when
      ``n_obs < 2``;
    * ``constant`` (n,) bool: the asset's return is the same on every clean
      row (zero variance: e.g. a sleeve that never traded).
    """

    assets: list
    n_rows: int
    n_obs: int
    mean: np.ndarray
    cov: np.ndarray
    constant: np.ndarray

    @property
    def all_clean(self) -> bool:
        """Every row is finite in every column."""
        return self.n_obs == self.n_rows

    @property
    def std(self) -> np.ndarray:
        """Per-bar sample standard deviations (ddof=1), ``sqrt(diag Σ)``."""
        return np.sqrt(np.maximum(np.diag(self.cov), 0.0))


def returns_array(returns) -> np.ndarray:
    """A float64 (rows, assets) array of a returns frame, without a copy when it
    already is one (a single float64 block)."""
    if isinstance(returns, pd.DataFrame):
        return returns.to_numpy(dtype=np.float64, copy=False)
    return np.asarray(returns, dtype=np.float64)


def return_moments(returns, assets=None) -> ReturnMoments:
    """Means and covariance (``ddof=1``) of the rows where every column is finite.

    ``returns`` is a DataFrame (columns = assets) or a 2-D array; pass
    ``assets`` to name an array's columns.  Two passes over row blocks: sums
    (and which rows are clean), then the centred cross products ``XᵀX``
    accumulated block by block.  Equals ``DataFrame.cov()`` / ``np.cov`` of
    the clean rows up to summation order (~1e-15 relative).
    """
    if assets is None:
        assets = list(returns.columns) if isinstance(returns, pd.DataFrame) else None
    R = returns_array(returns)
    if R.ndim != 2:
        raise ValueError("returns must be 2-D (rows = bars, columns = assets)")
    T, n = R.shape
    assets = list(range(n)) if assets is None else list(assets)
    rows = max(1024, _BLOCK_VALUES // max(n, 1))

    sums = np.zeros(n)
    n_obs = 0
    masks: list = []
    for i0 in range(0, T, rows):
        block = R[i0:i0 + rows]
        ok = np.isfinite(block.sum(axis=1))  # a non-finite entry makes its row sum non-finite
        if ok.all():
            masks.append(None)
            sums += block.sum(axis=0)
            n_obs += len(block)
        else:
            masks.append(ok)
            if ok.any():
                sums += block[ok].sum(axis=0)
                n_obs += int(ok.sum())
    if n_obs == 0:
        nan = np.full(n, math.nan)
        return ReturnMoments(assets, T, 0, nan, np.full((n, n), math.nan), np.zeros(n, bool))
    mean = sums / n_obs

    cross = np.zeros((n, n))
    # One BLAS thread: on a busy machine OpenBLAS's threads spin-wait for each
    # other and run several times slower than one; on an idle one a second
    # thread would save at most half of this step.
    with threadpool_limits(limits=1, user_api="blas"):
        for b, i0 in enumerate(range(0, T, rows)):
            block = R[i0:i0 + rows]
            if masks[b] is not None:
                if not masks[b].any():
                    continue
                block = block[masks[b]]
            centred = block - mean
            cross += centred.T @ centred
    if n_obs < 2:
        cov = np.full((n, n), math.nan)
        return ReturnMoments(assets, T, n_obs, mean, cov, np.zeros(n, bool))
    cov = cross / (n_obs - 1)
    cov = (cov + cov.T) * 0.5  # exactly symmetric
    var = np.diag(cov).copy()
    constant = var <= (_CONSTANT_ULPS * np.finfo(np.float64).eps * np.abs(mean)) ** 2
    if constant.any():
        cov[constant, :] = 0.0
        cov[:, constant] = 0.0
    return ReturnMoments(assets, T, n_obs, mean, cov, constant)
