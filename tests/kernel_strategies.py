"""Hypothesis strategies shared by the kernel tests: bars, parameters, chunk instructions."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st


@st.composite
def bar_series(draw, min_bars=2, max_bars=240):
    n = draw(st.integers(min_bars, max_bars))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([0.0001, 1.1, 25.0, 150.0, 40000.0]))
    vol = draw(st.sampled_from([1e-4, 1e-3, 1e-2, 5e-2]))
    revert = draw(st.sampled_from([0.0, 0.1, 0.5]))
    flat_prob = draw(st.sampled_from([0.0, 0.0, 0.2, 0.6]))
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = x[i - 1] * (1 - revert) + rng.normal(0, vol) * (rng.random() > flat_prob)
    close = scale * np.exp(x)
    if draw(st.booleans()):  # quantise prices like a real feed (creates exact ties)
        tick = scale * 1e-4
        close = np.maximum(np.round(close / tick) * tick, tick)
    gaps = rng.normal(0, vol / 2, n) * (rng.random(n) < 0.3)
    open_ = np.empty(n)
    open_[0] = close[0]
    open_[1:] = close[:-1] * np.exp(gaps[1:])
    wick = np.abs(rng.normal(0, vol, (2, n))) * (rng.random((2, n)) > 0.2)
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    return open_.tolist(), high.tolist(), low.tolist(), close.tolist()


@st.composite
def param_sets(draw):
    p = {
        "bb_period": draw(st.integers(2, 30)),
        "entry_z": draw(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])),
        "exit_z": draw(st.sampled_from([-0.5, 0.0, 0.0, 0.3, 1.0])),
        "atr_period": draw(st.integers(1, 20)),
        "sl_atr": draw(st.sampled_from([0.2, 0.5, 1.0, 1.5, 3.0])),
        "tp_atr": draw(st.sampled_from([0.3, 1.0, 2.0, 3.0, 6.0])),
        "allow_short": draw(st.booleans()),
        "max_hold_bars": draw(st.sampled_from([0, 0, 1, 3, 10])),
        "initial_capital": draw(st.sampled_from([1000.0, 100000.0])),
        "weight": draw(st.sampled_from([1.0, 0.25])),
        "sizing": draw(st.sampled_from(["fixed", "risk"])),
        "size": draw(st.sampled_from([0.5, 1.0, 10.0, 1000.0, 1e6])),
        "risk_per_trade": draw(st.sampled_from([0.001, 0.01, 0.05, 0.5])),
        "lot_size": draw(st.sampled_from([0.0, 0.01, 1.0, 100.0])),
        "contract_size": draw(st.sampled_from([1.0, 100.0, 100000.0])),
        "leverage": draw(st.sampled_from([1.0, 5.0, 30.0, 500.0])),
        "stop_out_level": draw(st.sampled_from([0.0, 0.5, 1.0, 2.0])),
        "commission": draw(st.sampled_from([0.0, 0.0002, 0.001])),
    }
    return p


@st.composite
def chunk_lists(draw, n):
    k = draw(st.integers(0, 5))
    starts = sorted(set(draw(st.lists(st.integers(1, max(1, n - 1)), min_size=k, max_size=k))))
    chunks = [{"start": 0}]
    for s in starts:
        chunks.append({
            "start": s,
            "size_multiplier": draw(st.sampled_from([1.0, 0.5, 0.25, 2.0, 0.0])),
            "halted": draw(st.booleans()),
            "flatten": draw(st.sampled_from([False, False, True])),
            "capital_adjustment": draw(st.sampled_from([0.0, 0.0, 500.0, -250.0])),
        })
    return chunks


def close_for_z(window, z):
    """The close c that gives ``window + [c]`` the z-score ``z`` (|z| < sqrt(n - 1)), in exact arithmetic.

    With x the n - 1 earlier closes (mean mx, sum of squared deviations Q):
    z = d (n-1)/n / sqrt((Q + d^2 (n-1)/n) / n) for c = mx + d, solved for d.
    """
    x = np.asarray(window, dtype=np.float64)
    n = len(x) + 1
    mx = x.mean()
    q = float(((x - mx) ** 2).sum())
    d = np.sign(z) * abs(z) * np.sqrt(q * n / ((n - 1) * (n - 1 - z * z)))
    return mx + d


@st.composite
def adversarial_bars(draw, params, min_bars=2, max_bars=400):
    """OHLC arrays whose closes are built to probe the rolling z: closes that put z within
    a hair (from 1e-15 to 1e-5, relative) of +-entry_z, +-exit_z and the edges of their
    guard bands, runs of equal closes, one-bar spikes (ill-conditioned rolling sums),
    on random walks at several price scales, quantised or not."""
    n = draw(st.integers(min_bars, max_bars))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([1e-4, 1.1, 150.0, 4e4, 1e7]))
    vol = draw(st.sampled_from([1e-5, 1e-3, 3e-2]))
    tick = draw(st.sampled_from([0.0, 1e-5, 1e-3]))
    needle_prob = draw(st.sampled_from([0.0, 0.1, 0.4]))
    spike_prob = draw(st.sampled_from([0.0, 0.0, 0.02]))
    flat_prob = draw(st.sampled_from([0.0, 0.1, 0.5]))
    rng = np.random.default_rng(seed)
    period = int(params["bb_period"])
    entry_z, exit_z = float(params["entry_z"]), float(params["exit_z"])
    targets = []
    for t in (abs(entry_z), abs(exit_z)):
        band = 1e-6 * max(1.0, t)
        targets += [t, t - band, t + band, t - 1e-9, t + 1e-9]
    close = np.empty(n)
    close[0] = scale
    for i in range(1, n):
        u = rng.random()
        if u < flat_prob:
            close[i] = close[i - 1]
        elif u < flat_prob + spike_prob:
            close[i] = close[i - 1] * rng.choice([10.0, 0.1])
        else:
            close[i] = close[i - 1] * np.exp(rng.normal(0, vol))
        if tick > 0:
            close[i] = max(round(close[i] / (tick * scale)) * tick * scale, tick * scale)
        if i >= period - 1 and rng.random() < needle_prob:
            window = close[i - period + 1: i]
            z = targets[rng.integers(len(targets))] * rng.choice([-1.0, 1.0])
            z *= 1.0 + rng.choice([0.0, 1e-15, -1e-15, 1e-12, -1e-12, 1e-9, -1e-9])
            if z * z < period - 1 and np.ptp(window) > 0:
                c = close_for_z(window, z)
                if np.isfinite(c) and c > 0:
                    close[i] = c
    gaps = rng.normal(0, vol, n) * (rng.random(n) < 0.3)
    open_ = np.empty(n)
    open_[0] = close[0]
    open_[1:] = close[:-1] * np.exp(gaps[1:])
    wick = np.abs(rng.normal(0, max(vol, 1e-4), (2, n))) * (rng.random((2, n)) > 0.2)
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    return open_, high, low, close


@st.composite
def instruction_records(draw, n_assets):
    """One chunk's INSTR_DT records: multipliers, halts, flattens, cash moves, margin caps."""
    from raybt.types import neutral_instructions

    instr = neutral_instructions(n_assets)
    for a in range(n_assets):
        if draw(st.booleans()):
            continue  # neutral
        instr[a]["size_multiplier"] = draw(st.sampled_from([1.0, 0.5, 0.25, 2.0, 0.0]))
        instr[a]["halted"] = int(draw(st.booleans()))
        instr[a]["flatten"] = int(draw(st.sampled_from([False, False, True])))
        instr[a]["capital_adjustment"] = draw(st.sampled_from([0.0, 0.0, 500.0, -250.0, -1e6]))
        instr[a]["max_margin"] = draw(st.sampled_from([np.inf, np.inf, 1e3, 50.0, 0.0]))
    return instr
