"""The breaker's figures: the portfolio drawdown with what the breaker
measures, and the risk multipliers per chunk.  See :mod:`raybt.plots.figures`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from raybt.plots import base as B
from raybt.plots.base import (
    _HALT,
    _MIN_SPAN,
    _REBAL,
    _RESUME,
    _TRIP,
    _breaker_spans,
    _date_axis,
    _dates,
    _event_times,
    _figure,
    _no_data,
    _pct_axis,
    _title,
    _to_times,
    _to_utc_index,
    downsample,
)


# ------------------------------------------------------------------ 2 drawdown

def _breaker_marks(events: pd.DataFrame | None, word: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Times of the ``word`` rows (``trip``/``resume``) and the drawdown the
    breaker measured there: ``events.csv``'s ``breaker_drawdown`` column when
    present, else its ``drawdown`` (which runs before that column recorded
    from the breaker's own peak on these rows)."""
    if events is None or len(events) == 0 or "event" not in events.columns:
        return pd.DatetimeIndex([], tz="UTC"), np.zeros(0)
    rows = events[events["event"].astype(str).str.lower().str.contains(word, regex=False)]
    col = "breaker_drawdown" if "breaker_drawdown" in rows.columns else "drawdown"
    values = (pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=float) if col in rows.columns
              else np.full(len(rows), np.nan))
    return _to_times(rows["decided_at"]), values


def plot_drawdown(drawdown: pd.Series, path, *, events: pd.DataFrame | None = None,
                  breaker_level: float | None = None, breaker_drawdown: pd.Series | None = None,
                  title: str = "Portfolio drawdown") -> Path:
    """The all-time drawdown (positive fraction, filled downwards on a
    percent axis) and what the breaker measures.

    The breaker compares ``breaker_level`` with its *own* drawdown, from a
    peak reset at each resume (``breaker_drawdown``, e.g. ``analyse_run(...)
    ["frames"]["breaker_drawdown"]``; drawn as a line when it differs from
    the all-time drawdown).  The level is drawn against that line and each
    trip (▼) and resume (▲) from ``events`` is marked at the drawdown the
    breaker measured then (``breaker_drawdown`` column of ``events.csv``, or
    ``drawdown`` on the trip/resume rows of older runs), the all-time
    drawdown at a trip written next to it.  Halted periods (trip to resume)
    are shaded, each at least :data:`_MIN_SPAN` of the axis wide so that a
    two-day halt in a year stays visible (the legend gives their number and
    total length).  Long series keep each bucket's deepest and shallowest
    point (:func:`downsample`)."""
    fig = _figure(12, 5.0)
    ax = fig.add_subplot()
    dd = pd.Series(drawdown, dtype=float).dropna()
    if len(dd) == 0:
        _no_data(ax, "no drawdown data")
        _title(ax, title)
        return B._save(fig, path)
    dd.index = _to_utc_index(dd.index)
    shown = -downsample(dd)
    x = _dates(shown.index)
    ax.fill_between(x, shown.to_numpy(), 0.0, color="#e06666", alpha=0.45, lw=0,
                    label="Drawdown from the all-time peak")
    ax.plot(x, shown.to_numpy(), color="#8e1b10", lw=0.8)
    lo = float(shown.min())
    level = (breaker_level if breaker_level is not None and math.isfinite(breaker_level)
             and breaker_level > 0 else None)
    trips, trip_dd = _breaker_marks(events, "trip")
    resumes, resume_dd = _breaker_marks(events, "resume")
    own = None
    if breaker_drawdown is not None and len(resumes):
        b = pd.Series(breaker_drawdown, dtype=float).dropna()
        b.index = _to_utc_index(b.index)
        if not np.allclose(b.to_numpy(), dd.reindex(b.index).to_numpy(), atol=1e-12,
                           equal_nan=True):
            own = -downsample(b)
            ax.plot(_dates(own.index), own.to_numpy(), color="#1f3b73", lw=1.1, zorder=4,
                    label="Breaker's drawdown (from its own peak, reset at each resume)")
            lo = min(lo, float(own.min()))
    x0, x1 = _dates(dd.index[[0, -1]])
    spans = _breaker_spans(events, dd.index[-1])
    if spans:
        days = sum((t1 - t0) / pd.Timedelta(days=1) for t0, t1 in spans)
        min_w = _MIN_SPAN * max(x1 - x0, 1e-9)
        for i, (t0, t1) in enumerate(spans):
            a, b = _dates([t0, t1])
            ax.axvspan(a, max(b, a + min_w), color=_HALT, alpha=0.75, lw=0, zorder=0,
                       label=(f"Breaker halted ({len(spans)} period{'s' * bool(len(spans) > 1)}, "
                              f"{days:.1f} days in all; drawn at least {_MIN_SPAN:.1%} of the "
                              "width)") if i == 0 else None)
    if level is not None:
        against = "the breaker's drawdown" if own is not None else "the drawdown from its peak"
        ax.axhline(-level, color="#555555", lw=1.1, ls=(0, (5, 2)),
                   label=f"Breaker level {level:.0%} (compared with {against})")
        lo = min(lo, -level)
    if len(trips):
        ok = np.isfinite(trip_dd)
        ax.scatter(_dates(trips[ok]), -trip_dd[ok], marker="v", s=70, color=_TRIP, zorder=7,
                   edgecolors="white", linewidths=0.6,
                   label="Breaker trip (at the drawdown the breaker measured)")
        if ok.sum() <= 8:  # say both numbers where they differ
            at = dd.reindex(trips[ok], method="ffill").to_numpy()
            for t, b, a in zip(_dates(trips[ok]), trip_dd[ok], at):
                text = f"{b:.1%}" if not np.isfinite(a) or abs(a - b) < 5e-4 else \
                    f"{b:.1%} (all-time {a:.1%})"
                label_right = t < x0 + 0.75 * (x1 - x0)  # in the last quarter: written to the left
                ax.annotate(text, (t, -b), xytext=(6 if label_right else -6, -10),
                            textcoords="offset points", ha="left" if label_right else "right",
                            fontsize=8.5, color=_TRIP, zorder=8)
    if len(resumes):
        ok = np.isfinite(resume_dd)
        ax.scatter(_dates(resumes[ok]), -resume_dd[ok], marker="^", s=60, color=_RESUME,
                   zorder=7, edgecolors="white", linewidths=0.6, label="Breaker resume")
    ax.set_ylim(lo * 1.15 if lo < 0 else -0.01, 0.0)
    _pct_axis(ax.yaxis)
    ax.set_ylabel("Drawdown (%)")
    ax.set_xlabel("Date (UTC)")
    full = f"{title} (max {float(dd.max()):.2%} from the all-time peak)"
    if own is not None:
        full += "\nthe breaker measures from its own peak, reset at each resume: its level applies to the blue line"
    _title(ax, full, fontsize=12)
    ax.grid(True, alpha=0.3)
    _date_axis(ax)
    ax.set_xlim(x0, x1)
    fig.legend(loc="outside lower center", ncol=2, fontsize=9, frameon=False)
    return B._save(fig, path)


# ------------------------------------------------------------------ 7 multipliers

def _as_flags(column: pd.Series) -> np.ndarray:
    """A halted-style column (bools, 0/1 or their text) as a bool array."""
    if column.dtype == bool:
        return column.to_numpy()
    codes, uniques = pd.factorize(column)
    truth = np.array([str(u).strip().lower() in ("true", "1", "1.0") for u in uniques] + [False])
    return truth[codes]  # code -1 (missing) picks the trailing False


def _chunk_table(multipliers: pd.DataFrame) -> pd.DataFrame:
    """Per chunk: time, mean/min/max multiplier, mean drawdown and correlation
    factors, halted flag (timestamps parsed once per chunk, not per row)."""
    m = multipliers
    tcol = "chunk_start" if "chunk_start" in m.columns else "decided_at"
    cols = {"t": m[tcol], "multiplier": m["multiplier"],
            "halted": _as_flags(m["halted"]) if "halted" in m.columns else False}
    for c in ("drawdown", "correlation", "portfolio_risk"):
        if c in m.columns:
            cols[c] = m[c]
    key = "chunk" if "chunk" in m.columns else "t"
    if key == "chunk":
        cols["chunk"] = m["chunk"]
    frame = pd.DataFrame(cols, index=m.index)
    agg = {"t": ("t", "first"), "mult_mean": ("multiplier", "mean"),
           "mult_min": ("multiplier", "min"), "mult_max": ("multiplier", "max"),
           "halted": ("halted", "any")}
    for c in ("drawdown", "correlation", "portfolio_risk"):
        if c in frame.columns:
            agg[c] = (c, "mean")
    g = frame.groupby(key, sort=True).agg(**agg)
    g["t"] = _to_times(g["t"]).to_numpy()
    return g.sort_values("t", kind="stable").reset_index(drop=True)


def plot_multipliers(multipliers: pd.DataFrame | None, path, *,
                     events: pd.DataFrame | None = None,
                     title: str = "Risk multipliers and breaker timeline") -> Path:
    """Per daily chunk: the mean size multiplier across assets (its min-max
    range shaded), the mean drawdown and correlation factors (step lines),
    halted chunks shaded red and rebalances marked with triangles on top."""
    fig = _figure(12, 4.8)
    ax = fig.add_subplot()
    if multipliers is None or len(multipliers) == 0 or "multiplier" not in multipliers.columns:
        _no_data(ax, "no multipliers recorded")
        _title(ax, title)
        return B._save(fig, path)
    g = _chunk_table(multipliers)
    t = _dates(g["t"])
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0  # days
    tt = np.append(t, t[-1] + step)

    def stairs(col):
        v = g[col].to_numpy(dtype=float)
        return np.append(v, v[-1])

    ax.fill_between(tt, stairs("mult_min"), stairs("mult_max"), step="post",
                    color="#1f3b73", alpha=0.15, lw=0, label="Multiplier range across assets")
    ax.step(tt, stairs("mult_mean"), where="post", color="#1f3b73", lw=2.0,
            label="Mean size multiplier", zorder=5)
    if "drawdown" in g:
        ax.step(tt, stairs("drawdown"), where="post", color="#d95f02", lw=1.3, ls="--",
                label="Drawdown factor (mean)", zorder=6)
    if "correlation" in g:
        ax.step(tt, stairs("correlation"), where="post", color="#1b9e77", lw=1.3, ls="-.",
                label="Correlation factor (mean)", zorder=6)
    # halted spans: consecutive halted chunks merged, each at least _MIN_SPAN of the axis wide
    edges = np.diff(np.r_[0, g["halted"].to_numpy().astype(np.int8), 0])
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    min_w = _MIN_SPAN * max(tt[-1] - tt[0], 1e-9)
    for k, (i, j) in enumerate(zip(starts, stops)):  # one per halted period (a few)
        ax.axvspan(tt[i], max(tt[j], tt[i] + min_w), color=_HALT, alpha=0.75, lw=0, zorder=0,
                   label=(f"Breaker halted ({len(starts)} period{'s' * bool(len(starts) > 1)}, "
                          f"{int((stops - starts).sum())} chunks)") if k == 0 else None)
    top = max(1.05, float(np.nanmax(g["mult_max"])) * 1.08)
    for c in ("drawdown", "correlation"):
        if c in g:
            top = max(top, float(np.nanmax(g[c])) * 1.08)
    ax.set_ylim(0.0, top * 1.06)
    reb = _event_times(events, "rebalance")
    if len(reb):
        ax.scatter(_dates(reb), np.full(len(reb), top * 1.02), marker="v", s=22, color=_REBAL,
                   zorder=6, label=f"Rebalance ({len(reb)})", clip_on=False)
    trips = _event_times(events, "trip")
    if len(trips):
        ax.vlines(_dates(trips), 0, 1, transform=ax.get_xaxis_transform(), color=_TRIP,
                  lw=1.0, label="Breaker trip")
    ax.set_ylabel("Factor (× base position size)")
    ax.set_xlabel("Chunk start (UTC)")
    _title(ax, title, fontsize=12)
    ax.grid(True, alpha=0.3)
    _date_axis(ax)
    ax.set_xlim(tt[0], tt[-1])
    fig.legend(loc="outside right upper", fontsize=8.5, frameon=False)
    return B._save(fig, path)
