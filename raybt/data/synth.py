"""Deterministic synthetic universe: correlated FX pairs, metals and crypto.

Log price of each asset = random walk driven by shared factors plus its own
noise, + an Ornstein-Uhlenbeck component (intraday mean reversion of the
asset's own strength). Factors: USD (signed loadings, so EURUSD and USDCHF
move against each other), EUR, commodity/risk-on, metals, crypto, and a
global risk factor that ``shocks`` hit (a market-wide crash moves crypto and
metals far more than FX). Crypto noise is Student-t (fat tails).

Calendars: crypto trades 24/7; FX and metals close from Friday 22:00 UTC to
Sunday 22:00 UTC (the path keeps moving while closed, so Monday opens gap).
``n_bars`` counts bars of the 24/7 calendar: the span is ``n_bars *
timeframe`` from ``start``; ``calendar="24x7"`` puts every asset on it.

Same arguments -> bit-identical data (numpy ``default_rng`` seeded from
``(seed, stream, asset index)``, no global state).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from raybt.data.loader import save_bars
from raybt.data.timeframes import parse_timeframe, timeframe_label
from raybt.errors import ConfigError

FACTORS = ("usd", "eur", "risk_on", "metal", "crypto", "global")
YEAR = pd.Timedelta(days=365.25)


@dataclass(frozen=True)
class AssetSpec:
    """One synthetic asset: class, start price, annual vol, factor loadings, mean reversion."""

    name: str
    asset_class: str  # fx | metal | crypto
    price: float
    annual_vol: float  # of the random-walk part, fraction per sqrt(year)
    loadings: dict = field(default_factory=dict)  # factor -> loading (sum of squares < 1)
    reversion_half_life: float = 24.0  # bars, OU component
    reversion_share: float = 0.5  # OU stdev relative to one day's random-walk stdev
    tick: float = 1e-5


DEFAULT_SPECS = (
    AssetSpec("EURUSDX", "fx", 1.10, 0.07, {"usd": -0.75, "eur": 0.45, "global": 0.05}, 30, 0.36, 1e-5),
    AssetSpec("GBPUSDX", "fx", 1.27, 0.08, {"usd": -0.70, "eur": 0.30, "global": 0.08}, 30, 0.32, 1e-5),
    AssetSpec("USDJPYX", "fx", 150.0, 0.09, {"usd": 0.65, "risk_on": 0.30, "global": 0.10}, 36, 0.28, 1e-3),
    AssetSpec("AUDUSDX", "fx", 0.66, 0.09, {"usd": -0.55, "risk_on": 0.55, "global": 0.12}, 30, 0.32, 1e-5),
    AssetSpec("NZDUSDX", "fx", 0.61, 0.10, {"usd": -0.50, "risk_on": 0.55, "global": 0.12}, 30, 0.32, 1e-5),
    AssetSpec("USDCADX", "fx", 1.36, 0.06, {"usd": 0.60, "risk_on": -0.35, "global": -0.05}, 30, 0.36, 1e-5),
    AssetSpec("USDCHFX", "fx", 0.88, 0.08, {"usd": 0.70, "eur": -0.40, "global": -0.10}, 30, 0.32, 1e-5),
    AssetSpec("EURGBPX", "fx", 0.86, 0.05, {"eur": 0.60, "global": 0.02}, 24, 0.45, 1e-5),
    AssetSpec("EURCHFX", "fx", 0.95, 0.05, {"eur": 0.50, "risk_on": 0.30, "global": 0.10}, 24, 0.45, 1e-5),
    AssetSpec("GOLDX", "metal", 2000.0, 0.15, {"metal": 0.70, "usd": -0.30, "global": 0.15}, 36, 0.30, 0.01),
    AssetSpec("SILVERX", "metal", 25.0, 0.25, {"metal": 0.70, "risk_on": 0.20, "global": 0.25}, 36, 0.30, 0.001),
    AssetSpec("BTCUSDX", "crypto", 40000.0, 0.60, {"crypto": 0.80, "global": 0.35}, 48, 0.20, 0.01),
    AssetSpec("ETHUSDX", "crypto", 2500.0, 0.75, {"crypto": 0.80, "global": 0.35}, 48, 0.20, 0.01),
    AssetSpec("LTCUSDX", "crypto", 80.0, 0.85, {"crypto": 0.70, "global": 0.35}, 48, 0.20, 0.001),
    AssetSpec("XRPUSDX", "crypto", 0.55, 0.90, {"crypto": 0.65, "global": 0.35}, 48, 0.20, 1e-5),
)


def universe_specs(n_assets: int, seed: int = 0) -> list[AssetSpec]:
    """The first ``n_assets`` default assets; beyond 15, ``SYN####X`` cycling the classes."""
    specs = list(DEFAULT_SPECS[:n_assets])
    rng = np.random.default_rng([seed, 7])
    for i in range(len(specs), n_assets):
        base = DEFAULT_SPECS[i % len(DEFAULT_SPECS)]
        jitter = float(rng.uniform(0.7, 1.4))
        specs.append(AssetSpec(f"SYN{i + 1:04d}X", base.asset_class, base.price * jitter,
                               base.annual_vol * float(rng.uniform(0.8, 1.25)), dict(base.loadings),
                               base.reversion_half_life * float(rng.uniform(0.7, 1.5)),
                               base.reversion_share * float(rng.uniform(0.7, 1.3)), base.tick))
    return specs


def _market_open_mask(index: pd.DatetimeIndex) -> np.ndarray:
    """False from Friday 22:00 UTC to Sunday 22:00 UTC (FX and metals closed)."""
    dow = index.day_of_week.to_numpy()
    hour = index.hour.to_numpy()
    closed = ((dow == 4) & (hour >= 22)) | (dow == 5) | ((dow == 6) & (hour < 22))
    return ~closed


def _factor_paths(n_bars: int, seed: int, shocks, bar_fraction_of_year: float) -> dict:
    rng = np.random.default_rng([seed, 1])
    paths = {name: rng.standard_normal(n_bars) for name in FACTORS}
    shock_path = np.zeros(n_bars)
    for fraction, log_move, duration in shocks or ():
        start = int(float(fraction) * n_bars)
        duration = max(1, int(duration))
        stop = min(n_bars, start + duration)
        if start < n_bars:
            shock_path[start:stop] += float(log_move) / duration
    paths["shock"] = shock_path
    return paths


def _asset_frame(spec: AssetSpec, index_all, factors, rng, timeframe, calendar) -> pd.DataFrame:
    n = len(index_all)
    bar_years = timeframe / YEAR
    sigma = spec.annual_vol * np.sqrt(bar_years)
    loadings = {k: v for k, v in spec.loadings.items() if k in FACTORS}
    shared = sum(v * v for v in loadings.values())
    idio_weight = np.sqrt(max(1.0 - shared, 0.05))
    if spec.asset_class == "crypto":
        noise = rng.standard_t(4, n) / np.sqrt(2.0)  # unit variance, fat tails
    else:
        noise = rng.standard_normal(n)
    drive = idio_weight * noise
    for name, weight in loadings.items():
        drive = drive + weight * factors[name]
    shock_beta = {"fx": 0.15, "metal": 0.8, "crypto": 1.6}[spec.asset_class]
    walk = np.cumsum(sigma * drive + shock_beta * factors["shock"])
    phi = 0.5 ** (1.0 / max(spec.reversion_half_life, 1.0))
    bars_per_day = max(1, int(pd.Timedelta(days=1) / timeframe))
    ou_sd = spec.reversion_share * sigma * np.sqrt(bars_per_day)
    ou = lfilter([1.0], [1.0, -phi], rng.standard_normal(n) * ou_sd * np.sqrt(1 - phi * phi))
    log_close = np.log(spec.price) + walk + ou
    close = np.exp(log_close)
    open_ = np.empty(n)
    open_[0] = spec.price
    open_[1:] = close[:-1] * np.exp(rng.standard_normal(n - 1) * sigma * 0.05)
    wick = np.abs(rng.standard_normal((2, n))) * sigma * 0.6
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    tick = spec.tick
    open_ = np.maximum(np.round(open_ / tick) * tick, tick)
    close = np.maximum(np.round(close / tick) * tick, tick)
    high = np.maximum(np.ceil(high / tick) * tick, np.maximum(open_, close))
    low = np.minimum(np.maximum(np.floor(low / tick) * tick, tick), np.minimum(open_, close))
    volume = np.round(np.exp(rng.normal(6.0, 0.6, n)))
    frame = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume},
                         index=index_all)
    if calendar == "market" and spec.asset_class in ("fx", "metal"):
        mask = _market_open_mask(index_all)
        # the first bar after a closure opens at the last (unseen) price: a weekend gap
        frame = frame[mask]
    return frame


def iter_universe(n_assets: int = 15, n_bars: int = 105_120, timeframe="5m", seed: int = 0,
                  calendar: str = "market", start="2024-01-01", shocks=None):
    """Yield ``(name, bars)`` one asset at a time (bounded memory for large universes)."""
    if calendar not in ("market", "24x7"):
        raise ConfigError(f"calendar: must be 'market' or '24x7', got {calendar!r}")
    if n_assets < 1 or n_bars < 2:
        raise ConfigError("synthetic universe: need at least 1 asset and 2 bars")
    step = parse_timeframe(timeframe)
    label = timeframe_label(step)
    index_all = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=n_bars, freq=step, name="timestamp").as_unit("ns")
    factors = _factor_paths(n_bars, seed, shocks, step / YEAR)
    for i, spec in enumerate(universe_specs(n_assets, seed)):
        rng = np.random.default_rng([seed, 2, i])
        yield f"{spec.name}_{label}", _asset_frame(spec, index_all, factors, rng, step, calendar)


def generate_universe(**kwargs) -> dict:
    """``{name: bars}`` for a small universe (see :func:`iter_universe` for the arguments)."""
    return dict(iter_universe(**kwargs))


def write_universe(out_dir, n_assets: int = 15, n_bars: int = 105_120, timeframe="5m", seed: int = 0,
                   fmt: str = "parquet", calendar: str = "market", shocks=None, start="2024-01-01") -> list[Path]:
    """Write one file per asset plus ``universe.json``; each file is written then renamed."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot create output folder ({exc.strerror})") from None
    ext = {"parquet": "parquet", "csv": "csv"}.get(fmt)
    if ext is None:
        raise ConfigError(f"format: must be parquet or csv, got {fmt!r}")
    paths, manifest = [], []
    specs = {f"{s.name}_{timeframe_label(parse_timeframe(timeframe))}": s for s in universe_specs(n_assets, seed)}
    for name, frame in iter_universe(n_assets=n_assets, n_bars=n_bars, timeframe=timeframe, seed=seed,
                                     calendar=calendar, start=start, shocks=shocks):
        path = out / f"{name}.{ext}"
        tmp = out / f".{name}.{ext}.tmp"
        save_bars(frame, tmp, fmt)
        os.replace(tmp, path)
        paths.append(path)
        manifest.append({"name": name, "class": specs[name].asset_class, "file": path.name, "bars": len(frame)})
    doc = {"seed": seed, "n_assets": n_assets, "n_bars": n_bars, "timeframe": timeframe,
           "calendar": calendar, "start": str(start), "shocks": shocks, "assets": manifest}
    tmp = out / ".universe.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, out / "universe.json")
    return paths
