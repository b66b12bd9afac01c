"""Post-run analysis at scale: seconds per step of ``raybt.analysis.analyse_run``.

Workload (synthetic, shaped like a run folder's files): ``--assets`` sleeves x
``--bars`` five-minute bars of sleeve equity that sits flat part of the time
(a position is open about half the bars; returns are exactly 0 otherwise),
one common factor; a rebalance every ``--rebalance-every`` bars
(``multipliers.csv`` rows, applied to the equity); ``--trades-per-asset``
trades per sleeve (default bars / 16: 12,500 per asset at 200,000 bars);
``metrics.json``'s portfolio part; equal target weights; for the tear sheet
(issue 15) a breaker trip and resume, every asset's parameters (contract
size, leverage, spread, slippage) and the starting target weights; the
trades have the engine's categorical columns, 1-99 bar holds and the
spec's exit reasons.  The equity frame
is one float64 block (as the engine holds it) or, with ``--csv-layout``, one
block per column (as ``pandas.read_csv`` returns it).

Printed first: the one-off cost of the first analysis in a process (the
numba kernel of the sleeve pass loaded from its cache, or compiled).  Then
per size: the :class:`raybt.phases.PhaseTimer` table of
``analyse_run`` (frontier of 40 points included) plus the summary text and
``analysis_to_json``; the peak resident memory above the inputs during the
analysis; and, up to ``--baseline-max-assets`` assets (default 100), the
same run's baseline: the pre-issue-11 implementation
(``tests/test_analysis_reference.py``: one SLSQP solve per frontier point,
``DataFrame.corr``, a boolean mask per asset) timed on the same inputs, with
the ratios and the frontier's agreement (max |Δ| of weights, max relative Δ
of volatility and return).

Usage: python scripts/bench_analysis.py [--assets 100 1000] [--bars 200000 100000]
The machine's other load shows up directly in these numbers; compare within
one run.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from raybt import metrics as M  # noqa: E402
from raybt.analysis import (  # noqa: E402
    analyse_run,
    analysis_to_json,
    efficient_frontier,
    portfolio_summary_text,
)
from raybt.phases import PhaseTimer  # noqa: E402

#: the analysis steps of the tear sheet (raybt.analysis.tearsheet)
TEARSHEET_STEPS = ("monthly_returns", "drawdowns", "breaker", "trade_columns", "trade_analysis", "costs",
                   "exposure", "turnover")


def make_run(n_assets: int, n_bars: int, *, seed: int = 0, trades_per_asset: int | None = None,
             rebalance_every: int = 4000, csv_layout: bool = False) -> dict:
    """Equity frame, trades, multipliers, metrics and weights of a synthetic run."""
    rng = np.random.default_rng(seed)
    names = [f"A{i:04d}_5m" for i in range(n_assets)]
    idx = pd.date_range("2020-01-01", periods=n_bars, freq="5min", tz="UTC", name="timestamp")
    data = np.empty((n_bars, n_assets + 2), order="F")  # equity, drawdown, sleeves
    starts = np.arange(rebalance_every, n_bars, rebalance_every)
    factor = rng.normal(0.0, 4e-4, n_bars - 1)
    mult_rows = []
    width = max(1, (1 << 22) // n_bars)
    for j0 in range(0, n_assets, width):
        j1 = min(j0 + width, n_assets)
        b = j1 - j0
        switch = rng.random((n_bars - 1, b)) < 1 / 150  # open/close a position about every 150 bars
        open_ = (np.cumsum(switch, axis=0) % 2).astype(bool)
        beta = rng.uniform(0.2, 1.0, b)
        r = rng.normal(rng.normal(2e-6, 1e-5, b), rng.uniform(5e-4, 2e-3, b), (n_bars - 1, b))
        r += factor[:, None] * beta
        r[~open_] = 0.0
        eq = data[:, 2 + j0:2 + j1]
        eq[0] = 10_000.0
        flows = np.zeros((len(starts), b))
        if len(starts):
            flows = rng.normal(0.0, 200.0, (len(starts), b))
        bounds = np.concatenate([[0], starts, [n_bars]])
        level = eq[0].copy()
        for s, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            if s:  # the flow arrives at the start of bar lo
                level = level + flows[s - 1]
            growth = np.cumprod(1.0 + r[max(lo - 1, 0):hi - 1], axis=0)
            if lo == 0:
                eq[1:hi] = level * growth
                level = eq[hi - 1]
            else:
                eq[lo:hi] = level * growth
                level = eq[hi - 1]
        for s, t in enumerate(starts):
            mult_rows.append(pd.DataFrame({"chunk": s + 1, "chunk_start": str(idx[t]),
                                           "asset": names[j0:j1], "capital_adjustment": flows[s],
                                           "reason": "rebalance"}))
    data[:, 0] = data[:, 2:].sum(axis=1)
    data[:, 1] = M.drawdown_series(pd.Series(data[:, 0], index=idx)).to_numpy()
    columns = ["equity", "drawdown"] + names
    if csv_layout:
        equity = pd.DataFrame({c: data[:, k].copy() for k, c in enumerate(columns)}, index=idx)
        del data
    else:
        equity = pd.DataFrame(data, index=idx, columns=columns, copy=False)

    per = trades_per_asset if trades_per_asset is not None else max(1, n_bars // 16)
    m = per * n_assets
    code = np.repeat(np.arange(n_assets), per)
    hold = rng.integers(1, min(100, n_bars // 4), m)
    entry = rng.integers(0, n_bars - hold.max() - 1, m)
    order = np.argsort(entry + hold, kind="stable")  # exit order, as the engine writes them
    code, hold, entry = code[order], hold[order], entry[order]
    reasons = ["sl", "tp", "signal", "end", "stopout", "breaker"]
    trades = pd.DataFrame({
        "asset": pd.Categorical.from_codes(code, categories=names),
        "side": pd.Categorical.from_codes((rng.random(m) < 0.5).astype(np.int8), categories=["long", "short"]),
        "units": np.round(rng.uniform(0.01, 5.0, m), 2),
        "entry_time": idx[entry], "entry_price": 1.1 + rng.normal(0, 0.01, m),
        "exit_time": idx[entry + hold], "exit_price": 1.1 + rng.normal(0, 0.01, m),
        "exit_reason": pd.Categorical.from_codes(rng.choice(6, m, p=[0.44, 0.08, 0.46, 0.005, 0.005, 0.01]),
                                                 categories=reasons),
        "pnl": rng.normal(0.5, 20.0, m), "commission": rng.uniform(0.1, 5.0, m)})
    multipliers = pd.concat(mult_rows, ignore_index=True) if mult_rows else None
    metrics = {"portfolio": M.json_safe(M.compute_metrics(equity["equity"], None))}
    weights = pd.Series(1.0 / n_assets, index=names)
    # a breaker trip and resume a third of the way in, and the parameters of the exposure and costs
    trip = n_bars // 3
    events = pd.DataFrame({"chunk": [1, 2], "decided_at": [idx[trip], idx[min(trip + 576, n_bars - 1)]],
                           "event": ["trip", "resume"], "drawdown": [0.12, 0.121],
                           "breaker_drawdown": [0.12, 0.121], "equity": [0.0, 0.0]})
    asset_params = {a: {"contract_size": 100_000.0, "leverage": 30.0, "spread": 1e-4,
                        "slippage": 2e-5} for a in names}
    history = pd.DataFrame([[0, idx[0], *np.full(n_assets, 1.0 / n_assets)]],
                           columns=["chunk", "decided_at", *names])
    return {"equity": equity, "trades": trades, "multipliers": multipliers, "metrics": metrics,
            "weights": weights, "events": events, "asset_params": asset_params,
            "weights_history": history}


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 5 ms)."""

    def __init__(self):
        self.proc = psutil.Process(os.getpid())
        self.peak = 0

    def __enter__(self):
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def run_new(run: dict) -> tuple[dict, PhaseTimer, PeakRSS]:
    timer = PhaseTimer()
    with PeakRSS() as mem:
        res = analyse_run(run["equity"], run["trades"], run["weights"], run["metrics"],
                          multipliers=run["multipliers"], include_frontier=True,
                          events=run["events"], asset_params=run["asset_params"],
                          weights_history=run["weights_history"], timer=timer)
        portfolio_summary_text(run["equity"], run["trades"], run["metrics"], run["weights"],
                               multipliers=run["multipliers"], analysis=res, timer=timer)
        with timer.phase("analysis.to_json"):
            analysis_to_json(res)
    return res, timer, mem


def run_baseline(run: dict, new: dict) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    import test_analysis_reference as old  # the frozen pre-issue-11 implementation

    returns = new["frames"]["returns"]
    ppy = new["periods_per_year"]
    t0 = time.perf_counter()
    f_old = old.efficient_frontier(returns, n_points=40, max_weight=1.0, periods_per_year=ppy)
    t_front_old = time.perf_counter() - t0
    # the new public function on the same frame right after, under the same load
    # (it computes its own moments: the analysis shares them)
    t0 = time.perf_counter()
    efficient_frontier(returns, n_points=40, max_weight=1.0, periods_per_year=ppy)
    t_front_new_public = time.perf_counter() - t0
    t0 = time.perf_counter()
    res_old = old.analyse_run(run["equity"], run["trades"], run["weights"], run["metrics"],
                              multipliers=run["multipliers"], include_frontier=False)
    t_rest_old = time.perf_counter() - t0
    f_new = new["frames"]["frontier"]
    assets = new["assets"]
    dw = np.abs(f_new[assets].to_numpy() - f_old[assets].to_numpy()).max()
    dv = (np.abs(f_new["volatility"] - f_old["volatility"]) / f_old["volatility"]).max()
    dr = (np.abs(f_new["return"] - f_old["return"]) / f_old["return"].abs().max()).max()
    inside = (f_new["return"] >= f_old["return"].iloc[0]) & (f_new["return"] <= f_old["return"].iloc[-1])
    old_at = np.interp(f_new["return"][inside], f_old["return"], f_old["volatility"])
    worse = ((f_new["volatility"][inside] - old_at) / old_at).max()  # > 0: new less efficient
    corr_diff = np.nanmax(np.abs(new["frames"]["correlation"].to_numpy()
                                 - res_old["frames"]["correlation"].to_numpy()))
    t_new_front = new["_timer"].seconds.get("analysis.frontier", np.nan)
    t_new_rest = new["_timer"].total - t_new_front
    print("\nbaseline (pre-issue-11 code, same inputs, same run)")
    print(f"  SLSQP frontier (40 points)        {t_front_old:8.2f} s   new {t_new_front:6.3f} s"
          f"   ratio {t_front_old / t_new_front:8.1f}x   (SLSQP converged: {all(f_old.attrs['converged'])})")
    print(f"  efficient_frontier(returns) right after SLSQP, moments included: {t_front_new_public:.3f} s,"
          f" ratio {t_front_old / t_front_new_public:.1f}x")
    print(f"  analyse_run without the frontier  {t_rest_old:8.2f} s   new {t_new_rest:6.3f} s"
          f"   ratio {t_rest_old / t_new_rest:8.1f}x   (new includes summary text and JSON)")
    print(f"  whole analysis                    {t_front_old + t_rest_old:8.2f} s   new "
          f"{new['_timer'].total:6.3f} s   ratio {(t_front_old + t_rest_old) / new['_timer'].total:8.1f}x")
    print(f"  frontier agreement: max |dw| {dw:.2e}, max rel d(volatility) {dv:.2e}, "
          f"max d(return) / max|return| {dr:.2e}; at equal return new vol - SLSQP vol <= {worse:.1e} (relative)")
    print(f"  correlation: max |new - DataFrame.corr| {corr_diff:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--assets", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--bars", type=int, nargs="+", default=None,
                    help="bars per size (default 200000 up to 100 assets, else 100000)")
    ap.add_argument("--trades-per-asset", type=int, default=None)
    ap.add_argument("--rebalance-every", type=int, default=4000)
    ap.add_argument("--csv-layout", action="store_true", help="one block per column, as read_csv gives")
    ap.add_argument("--baseline-max-assets", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    bars = args.bars or [200_000 if n <= 100 else 100_000 for n in args.assets]
    # the sleeve kernel is numba: its first call in a process loads it from the
    # cache (or compiles it once); `raybt run` has numba loaded by then
    warm = make_run(3, 500, seed=args.seed)
    t0 = time.perf_counter()
    analyse_run(warm["equity"], warm["trades"], multipliers=warm["multipliers"], n_frontier=3,
                events=warm["events"], asset_params=warm["asset_params"])
    print(f"warm-up: first analysis in this process (numba kernel load or compile) "
          f"{time.perf_counter() - t0:.2f} s")
    if len(bars) == 1:
        bars = bars * len(args.assets)
    for n, t in zip(args.assets, bars):
        gc.collect()
        t0 = time.perf_counter()
        run = make_run(n, t, seed=args.seed, trades_per_asset=args.trades_per_asset,
                       rebalance_every=args.rebalance_every, csv_layout=args.csv_layout)
        t_make = time.perf_counter() - t0
        nbytes = run["equity"].memory_usage(index=False, deep=False).sum()
        print(f"\n=== {n} assets x {t:,} bars (load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores): equity frame {nbytes / 2**20:,.0f} MB "
              f"({'one block per column' if args.csv_layout else 'one block'}), "
              f"{len(run['trades']):,} trades, "
              f"{0 if run['multipliers'] is None else len(run['multipliers']):,} multiplier rows "
              f"(built in {t_make:.1f} s)")
        res, timer, mem = run_new(run)
        res["_timer"] = timer
        print(timer.table())
        sheet = sum(v for k, v in timer.seconds.items() if k.removeprefix("analysis.") in TEARSHEET_STEPS)
        print(f"tear-sheet steps (issue 15: {', '.join(TEARSHEET_STEPS)}): {sheet:.3f} s in all")
        front = res["frames"]["frontier"]
        print(f"frontier: {len(front)} points, {front.attrs.get('turning_points')} turning points, "
              f"ridge {front.attrs.get('ridge')}")
        print(f"peak RSS during the analysis: {mem.peak / 2**20:,.0f} MB, "
              f"{(mem.peak - mem.base) / 2**20:,.0f} MB above the {mem.base / 2**20:,.0f} MB before it "
              f"(returns matrix alone: {res['frames']['returns'].to_numpy().nbytes / 2**20:,.0f} MB)")
        if n <= args.baseline_max_assets:
            run_baseline(run, res)
        else:
            print(f"(baseline skipped above {args.baseline_max_assets} assets: the SLSQP frontier "
                  f"takes ~15 min at 100 assets on this machine and grows ~n^3)")
        del run, res
        gc.collect()


if __name__ == "__main__":
    main()
