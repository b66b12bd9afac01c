"""Time the report figures at 15, 100 and 1,000 assets against the old code.

For each ``--assets`` count, synthetic inputs of the shapes a run gives
(sleeve equity of assets x five-minute bars with ``equity``/``drawdown``
columns, flow-adjusted sleeve returns, events, multipliers per daily chunk and
asset, and an analysis dict shaped like :func:`raybt.analysis.analyse_run`'s,
built directly so that analysis speed does not enter) go through
:func:`raybt.plots.report.write_figures` with a
:class:`raybt.phases.PhaseTimer`; the seconds per figure are printed.  On
the ``--baseline-assets`` case the same inputs also go through the figures
of commit f7a5f7f (its ``figures.py`` and ``write_figures`` loaded from git
as modules), in the same run, and the ratio old / new is printed.

    PYTHONPATH=. python scripts/bench_figures.py
    PYTHONPATH=. python scripts/bench_figures.py --assets 15 100 1000 \\
        --bars 200000 200000 100000 --out /tmp/figs

PNGs are written to ``--out/<assets>x<bars>/`` (old code: ``.../old/``) so
they can be looked at afterwards.  The tear-sheet figures of issue 15
(monthly returns, trades, costs, exposure, weights) have no old version:
their lines show the new code only, and "prep" and "total" of the old code
cover its seven figures.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd

from raybt.phases import PhaseTimer
from raybt.plots import report as R

BASELINE_COMMIT = "f7a5f7f"
REPO = Path(__file__).resolve().parents[1]
START = 100_000.0
PPY_5MIN = 365 * 288
BREAKER = 0.10


# ------------------------------------------------------------------ inputs

def make_inputs(n_assets: int, n_bars: int, seed: int = 11) -> dict:
    """Synthetic run of ``n_assets`` sleeves over ``n_bars`` five-minute bars."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n_bars, freq="5min", tz="UTC")
    assets = [f"A{i:04d}_5m" if n_assets > 99 else f"ASSET{i:02d}_5m" for i in range(n_assets)]
    n_sectors = max(2, min(10, n_assets // 8))
    sector = rng.integers(0, n_sectors, n_assets)
    beta = rng.uniform(0.3, 1.3, n_assets)
    loading = rng.uniform(0.5, 1.5, n_assets)
    idio = rng.uniform(0.6e-3, 1.6e-3, n_assets)
    drift = rng.normal(1e-6, 4e-6, n_assets)
    # a market slump a third of the way in, so the portfolio has a real drawdown
    market_drift = np.zeros(n_bars)
    slump = slice(n_bars // 3, n_bars // 3 + n_bars // 12)
    market_drift[slump] = -2.5e-5

    # one float block: equity, drawdown, then the sleeves (as the run folder's CSV)
    table = np.empty((n_bars, n_assets + 2))
    r = np.empty((n_bars, n_assets))
    block = max(1, 4_000_000 // n_assets)
    level = np.full(n_assets, START / n_assets)
    for a in range(0, n_bars, block):
        b = min(a + block, n_bars)
        k = b - a
        market = rng.normal(0, 4e-4, k) + market_drift[a:b]
        sectors = rng.normal(0, 5e-4, (k, n_sectors))
        rr = (drift + market[:, None] * beta + sectors[:, sector] * loading
              + rng.normal(0, 1, (k, n_assets)) * idio)
        if a == 0:
            rr[0] = 0.0
        r[a:b] = rr
        sleeves = level * np.cumprod(1.0 + rr, axis=0)
        level = sleeves[-1]
        table[a:b, 2:] = sleeves
    table[:, 0] = table[:, 2:].sum(axis=1)
    peak = np.maximum.accumulate(table[:, 0])
    table[:, 1] = 1.0 - table[:, 0] / peak
    equity = pd.DataFrame(table, index=idx.rename("timestamp"),
                          columns=["equity", "drawdown"] + assets)
    returns = pd.DataFrame(r[1:], index=idx[1:], columns=assets)

    # events and multipliers as read back from the run folder's CSVs (times as text)
    # the breaker trips on the first day the drawdown passes 10 %, resumes 3 days later
    days = pd.date_range(idx[0], idx[-1], freq="1D")
    n_days = len(days)
    dd_day = table[idx.searchsorted(days), 1]
    over = np.flatnonzero(dd_day > BREAKER)
    trip_day = int(over[0]) if len(over) else n_days // 2
    resume_day = min(n_days - 1, trip_day + 3)
    ev = [{"chunk": c, "decided_at": days[c] - pd.Timedelta("5min"), "event": "rebalance",
           "drawdown": 0.01, "equity": START} for c in range(7, n_days, 7)]
    ev += [{"chunk": trip_day, "decided_at": days[trip_day] - pd.Timedelta("5min"),
            "event": "trip", "drawdown": 0.1, "equity": START * 0.9},
           {"chunk": resume_day, "decided_at": days[resume_day] - pd.Timedelta("5min"),
            "event": "resume", "drawdown": 0.08, "equity": START * 0.92}]
    events = pd.DataFrame(ev).sort_values("chunk", kind="stable").reset_index(drop=True)
    events["decided_at"] = events["decided_at"].astype(str)

    chunk = np.repeat(np.arange(n_days), n_assets)
    halted_day = (np.arange(n_days) >= trip_day) & (np.arange(n_days) < resume_day)
    dd_factor = np.where(halted_day, 0.0, np.clip(1.0 - 2.0 * dd_day, 0.5, 1.0))
    corr_factor = rng.choice([1.0, 0.9, 0.75], size=(n_days, n_assets), p=[0.8, 0.15, 0.05])
    start_txt = np.array([str(d) for d in days])
    decided_txt = np.array([str(d - pd.Timedelta("5min")) for d in days])
    rebalance_day = np.zeros(n_days, bool)
    rebalance_day[7::7] = True
    adj = rng.normal(0, 50, (n_days, n_assets))
    adj -= adj.mean(axis=1, keepdims=True)
    multipliers = pd.DataFrame({
        "chunk": chunk, "decided_at": decided_txt[chunk], "chunk_start": start_txt[chunk],
        "asset": np.tile(assets, n_days),
        "multiplier": (dd_factor[:, None] * corr_factor).ravel(), "base": 1.0,
        "portfolio_risk": 1.0, "correlation": corr_factor.ravel(),
        "drawdown": np.repeat(dd_factor, n_assets), "halted": np.repeat(halted_day, n_assets),
        "flatten": np.repeat(halted_day, n_assets), "max_margin": np.inf,
        "capital_adjustment": np.where(rebalance_day[:, None], adj, 0.0).ravel(),
        "reason": np.where(np.repeat(halted_day, n_assets), "breaker", "")})

    analysis = make_analysis(equity, returns, assets, rng)
    add_tearsheet(analysis, equity, returns, assets, events, multipliers, rng)
    return {"equity": equity, "returns": returns, "events": events,
            "multipliers": multipliers, "analysis": analysis,
            "config": {"risk": {"enabled": True, "max_portfolio_drawdown": BREAKER}}}


def add_tearsheet(analysis: dict, equity: pd.DataFrame, returns: pd.DataFrame, assets: list,
                  events: pd.DataFrame, multipliers: pd.DataFrame, rng: np.random.Generator) -> None:
    """The tear sheet's keys and frames (issue 15), computed by
    :func:`raybt.analysis.tearsheet.tearsheet` from synthetic trades (one per
    40 bars and asset, 1-99 bar holds, the spec's exit reasons), each
    asset's parameters and the starting target weights."""
    from raybt.analysis.tearsheet import tearsheet

    n_bars, n_assets = len(equity), len(assets)
    idx = equity.index
    m = max(1, n_bars // 40) * n_assets
    hold = rng.integers(0, 100, m)
    entry = rng.integers(0, n_bars - 100, m)
    order = np.argsort(entry + hold, kind="stable")
    entry, hold = entry[order], hold[order]
    trades = pd.DataFrame({
        "asset": pd.Categorical.from_codes(rng.integers(0, n_assets, m), categories=assets),
        "side": pd.Categorical.from_codes((rng.random(m) < 0.5).astype(np.int8), categories=["long", "short"]),
        "units": rng.uniform(0.01, 3.0, m), "entry_time": idx[entry],
        "entry_price": rng.uniform(0.9, 1.1, m), "exit_time": idx[entry + hold], "exit_price": 1.0,
        "exit_reason": pd.Categorical.from_codes(rng.choice(6, m, p=[0.44, 0.08, 0.46, 0.005, 0.005, 0.01]),
                                                 categories=["sl", "tp", "signal", "end", "stopout", "breaker"]),
        "pnl": rng.normal(0.5, 20.0, m), "commission": rng.uniform(0.1, 2.0, m)})
    params = {a: {"contract_size": 10_000.0, "leverage": 30.0, "spread": 1e-4, "slippage": 2e-5}
              for a in assets}
    history = pd.DataFrame([[0, idx[0], *np.full(n_assets, 1.0 / n_assets)]],
                           columns=["chunk", "decided_at", *assets])
    keys, frames = tearsheet(equity, equity["equity"], returns, assets, trades=trades,
                             multipliers=multipliers, events=events, asset_params=params,
                             weights_history=history)
    analysis.update(keys)
    analysis["frames"].update(frames)
    analysis["frames"]["asset_table"] = pd.DataFrame(
        {"return": ((1 + frames["monthly_assets"]).prod() - 1).reindex(assets)})
    analysis["portfolio"] = {"total_return": float(equity["equity"].iloc[-1] / equity["equity"].iloc[0] - 1)}


def make_analysis(equity: pd.DataFrame, returns: pd.DataFrame, assets: list,
                  rng: np.random.Generator) -> dict:
    """The keys of ``analyse_run``'s result that ``write_figures`` reads, computed
    directly (correlation and risk shares from a sample of 5,000 bars; a
    synthetic frontier hyperbola through the asset cloud)."""
    n, m = returns.shape
    ppy = PPY_5MIN
    sample = returns.to_numpy()[rng.choice(n, size=min(n, 5000), replace=False)]
    corr = pd.DataFrame(np.corrcoef(sample, rowvar=False), index=assets, columns=assets)
    w = equity[assets].iloc[0].to_numpy() / equity["equity"].iloc[0]
    cov = np.cov(sample, rowvar=False)
    risk = w * (cov @ w) / float(w @ cov @ w)
    pnl = equity[assets].iloc[-1] - equity[assets].iloc[0]
    port_r = equity["equity"].pct_change().to_numpy()[1:]
    ew_r = returns.to_numpy().mean(axis=1)
    vol = returns.std(ddof=1).to_numpy() * math.sqrt(ppy)
    mean = returns.mean().to_numpy() * ppy
    p_vol, p_ret = float(port_r.std(ddof=1) * math.sqrt(ppy)), float(port_r.mean() * ppy)
    e_vol, e_ret = float(ew_r.std(ddof=1) * math.sqrt(ppy)), float(ew_r.mean() * ppy)
    # frontier: a hyperbola from a minimum-variance point left of the mixes up to the
    # best mean, as steep as the most efficient asset so that no asset lies beyond it
    v0, r0 = 0.85 * min(p_vol, e_vol), min(p_ret, e_ret)
    above = mean > r0 + 1e-9
    a = float(np.min((vol[above] ** 2 - v0 ** 2) / (mean[above] - r0) ** 2)) if above.any() \
        else 1.0
    rets = np.linspace(r0, max(float(mean.max()), r0 + 1e-6), 40)
    frontier = pd.DataFrame({"volatility": np.sqrt(v0 ** 2 + max(a, 1e-12) * (rets - r0) ** 2),
                             "return": rets})
    return {
        "assets": assets, "periods_per_year": float(ppy),
        "pnl_attribution": {a_: float(v) for a_, v in pnl.items()},
        "risk_attribution": {a_: float(v) for a_, v in zip(assets, risk)},
        "correlation": {"assets": assets, "matrix": corr.to_numpy().tolist()},
        "points": {"portfolio": [p_vol, p_ret], "equal_weight": [e_vol, e_ret],
                   "weights": [e_vol, e_ret]},
        "frames": {"returns": returns, "correlation": corr, "frontier": frontier},
    }


# ------------------------------------------------------------------ the old code

def load_old_write_figures():
    """``write_figures`` of commit f7a5f7f bound to that commit's figures module."""
    def module(path: str, name: str):
        src = subprocess.run(["git", "-C", str(REPO), "show", f"{BASELINE_COMMIT}:{path}"],
                             check=True, capture_output=True, text=True).stdout
        mod = types.ModuleType(name)
        mod.__file__ = f"<{BASELINE_COMMIT}:{path}>"
        sys.modules[name] = mod
        exec(compile(src, mod.__file__, "exec"), mod.__dict__)
        return mod

    old_f = module("raybt/plots/figures.py", "_old_figures")
    old_r = module("raybt/plots/report.py", "_old_report")
    old_r.F = old_f
    return old_r.write_figures, old_f


class _Clock(PhaseTimer):
    """A PhaseTimer (wall seconds) that also keeps CPU seconds per phase:
    CPU time is what the code costs, wall time what a user waits for on a
    machine that other processes share."""

    def __init__(self):
        super().__init__()
        self.cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str):
        c0 = time.process_time()
        try:
            with super().phase(name):
                yield
        finally:
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - c0


def _totals(clock: _Clock, wall: float, cpu: float) -> dict[str, tuple[float, float]]:
    """``{figure: (wall s, cpu s)}`` plus ``prep`` (the rest) and ``total``."""
    out = {k.removeprefix("figure."): (v, clock.cpu[k]) for k, v in clock.seconds.items()}
    out["prep"] = (wall - sum(w for w, _ in out.values()), cpu - sum(c for _, c in out.values()))
    out["total"] = (wall, cpu)
    return out


def time_old(inputs: dict, out: Path) -> dict[str, tuple[float, float]]:
    """The old code's seconds per figure (its ``plot_*`` calls), the rest of
    its ``write_figures`` as ``prep``, the whole as ``total``."""
    write_figures, old_f = load_old_write_figures()
    clock = _Clock()
    names = {"plot_equity": "equity.png", "plot_drawdown": "drawdown.png",
             "plot_correlation": "correlation.png", "plot_attribution": "attribution.png",
             "plot_frontier": "frontier.png", "plot_rolling_sharpe": "rolling_sharpe.png",
             "plot_multipliers": "multipliers.png"}
    for fn, fig in names.items():
        def timed(*a, _f=getattr(old_f, fn), _fig=fig, **k):
            with clock.phase(f"figure.{_fig}"):
                return _f(*a, **k)
        setattr(old_f, fn, timed)
    out.mkdir(parents=True, exist_ok=True)
    w0, c0 = time.perf_counter(), time.process_time()
    write_figures(out, inputs["analysis"], equity=inputs["equity"], events=inputs["events"],
                  multipliers=inputs["multipliers"], config=inputs["config"])
    return _totals(clock, time.perf_counter() - w0, time.process_time() - c0)


def time_new(inputs: dict, out: Path) -> dict[str, tuple[float, float]]:
    out.mkdir(parents=True, exist_ok=True)
    clock = _Clock()
    w0, c0 = time.perf_counter(), time.process_time()
    R.write_figures(out, inputs["analysis"], equity=inputs["equity"], events=inputs["events"],
                    multipliers=inputs["multipliers"], config=inputs["config"], timer=clock)
    return _totals(clock, time.perf_counter() - w0, time.process_time() - c0)


def _best(runs: list[dict]) -> dict[str, tuple[float, float]]:
    return {k: (min(r[k][0] for r in runs), min(r[k][1] for r in runs)) for k in runs[0]}


# ------------------------------------------------------------------ main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=int, nargs="+", default=[15, 100, 1000])
    ap.add_argument("--bars", type=int, nargs="+", default=None,
                    help="bars per case: one value for all, or one per --assets value "
                         "(default 200,000, and 100,000 from 1,000 assets up)")
    ap.add_argument("--baseline-assets", type=int, default=100,
                    help="case also drawn by the old code (f7a5f7f); 0 for none")
    ap.add_argument("--repeat", type=int, default=1, help="best of this many runs per case")
    ap.add_argument("--out", type=Path, default=None, help="folder for the PNGs")
    args = ap.parse_args(argv)
    bars = args.bars or [100_000 if n >= 1000 else 200_000 for n in args.assets]
    if len(bars) == 1:
        bars = bars * len(args.assets)
    if len(bars) != len(args.assets):
        ap.error("--bars takes one value or one per --assets value")
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_figures_"))
    figs = list(R.FIGURES)
    print(f"PNGs in {out}")
    summary = []
    for n, nb in zip(args.assets, bars):
        t0 = time.perf_counter()
        inputs = make_inputs(n, nb)
        case = f"{n}x{nb}"
        print(f"\n== {n:,} assets x {nb:,} five-minute bars "
              f"(inputs built in {time.perf_counter() - t0:.1f} s, not timed)")
        # new and old code alternate, so both see the same load from other processes
        new, old = [], []
        for _ in range(args.repeat):
            new.append(time_new(inputs, out / case))
            if n == args.baseline_assets:
                old.append(time_old(inputs, out / case / "old"))
        best = _best(new)
        old = _best(old) if old else None
        print(f"best of {args.repeat}; load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} CPUs; wall = seconds waited, cpu = CPU seconds used")
        head = f"{'figure':<26} {'new wall':>9} {'new cpu':>8}"
        if old:
            head += f" {'old wall':>9} {'old cpu':>8} {'old/new wall':>13} {'old/new cpu':>12}"
        print(head)
        for k in figs + ["prep", "total"]:
            (w, c) = best[k]
            line = f"{k:<26} {w:>9.3f} {c:>8.3f}"
            if old and k in old:
                ow, oc = old[k]
                line += (f" {ow:>9.3f} {oc:>8.3f} {ow / max(w, 1e-9):>12.1f}x"
                         f" {oc / max(c, 1e-9):>11.1f}x")
            print(line)
        worst = max(figs, key=lambda k: best[k][0])
        summary.append((case, best["total"], worst, best[worst], old["total"] if old else None))
        del inputs
    print("\nsummary (wall s / cpu s): case, new total, slowest new figure, old total, old/new")
    for case, (tw, tc), worst, (ww, wc), old_total in summary:
        line = f"  {case:<13} {tw:5.2f} / {tc:5.2f}   {worst:<26} {ww:4.2f} / {wc:4.2f}"
        if old_total:
            ow, oc = old_total
            line += f"   {ow:5.2f} / {oc:5.2f}   {ow / tw:.1f}x / {oc / tc:.1f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
