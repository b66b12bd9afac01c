"""Random sleeve equity for figure tests: ``(equity frame with an "equity" column, returns, names)``."""

from __future__ import annotations

import numpy as np
import pandas as pd


def random_sleeves(n_assets: int, n_bars: int, seed: int = 1, suffix: str = ""):
    """``n_assets`` sleeves of 5-minute bars, each a compounded random walk from 1,000 with its own drift."""
    idx = pd.date_range("2024-01-01", periods=n_bars, freq="5min", tz="UTC")
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 1e-3, (n_bars, n_assets)) + rng.normal(2e-6, 3e-6, n_assets)
    r[0] = 0.0
    names = [f"A{i:04d}{suffix}" for i in range(n_assets)]
    sleeves = 1000.0 * np.cumprod(1 + r, axis=0)
    equity = pd.DataFrame(sleeves, index=idx, columns=names)
    equity.insert(0, "equity", sleeves.sum(axis=1))
    return equity, pd.DataFrame(r[1:], index=idx[1:], columns=names), names
