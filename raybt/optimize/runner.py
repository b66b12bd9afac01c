"""Running an optimisation: jobs (:mod:`raybt.optimize.jobs`, Ray or in-process) -> candidates
table -> choices (files: :mod:`raybt.optimize.outputs`).

Modes
-----
* plain: every candidate on all bars; selection on those metrics.
* ``train=f``: the first ``floor(f * n_bars)`` bars of each asset are the
  in-sample span, the rest the out-of-sample span; every candidate is
  evaluated on both (columns ``is_*`` / ``oos_*``) and selection uses the
  in-sample metrics only.
* ``walk_forward=N``: N **rolling** windows per asset, by bar count. Window k
  has a train span of ``L_train`` bars immediately followed by a test span of
  ``L_test`` bars; the test spans are consecutive and do not overlap, and
  they tile the bars after the first train span:
  ``L_train = f / (1 - f) * L_test`` (f = ``train``, default 0.7) and
  ``L_train + N * L_test = n_bars`` (the last test span takes the rounding
  remainder). In each window the candidates are evaluated and selected on the
  train span; the chosen parameters are then evaluated on the test span.

  The stitched out-of-sample equity chains the test spans: each test span is
  its own backtest starting flat at the initial capital (see evaluate.py),
  and window k's equity curve is scaled by the growth of windows 0..k-1, so
  window k starts where window k-1 ended (compounding; no position is held
  across a boundary, so the boundary bar has a zero return). Its trades are
  scaled by the same factor. Every stitched metric (PnL, total return,
  Sharpe, max drawdown, trades, win rate, profit factor) is
  :func:`raybt.metrics.compute_metrics` of that equity and those trades;
  the equity is written to ``walk_forward_equity.parquet``.
  ``best_configs_*.json`` carry the parameters chosen in the last (most
  recent) window, the bars it was trained on, every window's spans and pick,
  and the stitched out-of-sample metrics.

Every ``best_configs_<preference>.json`` records ``mode``, ``train``,
``walk_forward``, the metric ``raybt run --max-assets`` ranks assets by
(``ranking``: ``sharpe`` / ``pnl`` / ``max_drawdown`` for a full-sample
optimisation, the out-of-sample ``oos_*`` metric after ``--train`` or
``--walk-forward``; see :func:`raybt.config.resolve.preference_ranking`) and, per
asset, the bars (timestamps) the pick was trained on (``trained_on``), the
split (``split``, with ``--train``) or the windows (``windows``, with
``--walk-forward``).

An asset with no qualifying candidate (see :mod:`raybt.optimize.select`)
keeps its configured parameters, marked ``qualified: false``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from raybt.broker import param_records
from raybt.errors import ConfigError
from raybt.optimize.evaluate import METRIC_COLUMNS, metrics_from_raw, span_periods_per_year
from raybt.config.grid import GridSpec, candidate_params
from raybt.optimize.jobs import DEFAULT_BATCH, AssetJobs, run_jobs
from raybt.optimize.select import PREFERENCES, select_candidate

# metrics written to best_configs / summaries (subset of METRIC_COLUMNS)
REPORT_METRICS = ("pnl", "total_return", "sharpe", "max_drawdown", "n_trades", "win_rate",
                  "profit_factor", "final_equity", "n_bars")


# --- spans and windows ------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """One walk-forward window: train bars [train_start, train_end), test bars [test_start, test_end)."""

    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int


def train_split(n_bars: int, train: float) -> int:
    """First out-of-sample bar: ``floor(train * n_bars)``; both parts need >= 2 bars."""
    if not (0.0 < train < 1.0):
        raise ConfigError(f"train: must be a fraction in (0, 1), got {train!r}")
    split = int(math.floor(train * n_bars))
    if split < 2 or n_bars - split < 2:
        raise ConfigError(f"train {train}: {n_bars} bars leave {split} in-sample and "
                          f"{n_bars - split} out-of-sample bars (need >= 2 each)")
    return split


def walk_forward_windows(n_bars: int, n_windows: int, train: float = 0.7) -> list[Window]:
    """Rolling windows (see the module docstring); consecutive, non-overlapping test spans."""
    if isinstance(n_windows, bool) or int(n_windows) != n_windows or n_windows < 1:
        raise ConfigError(f"walk_forward: must be an integer >= 1, got {n_windows!r}")
    if not (0.0 < train < 1.0):
        raise ConfigError(f"train: must be a fraction in (0, 1), got {train!r}")
    n_windows = int(n_windows)
    ratio = train / (1.0 - train)
    test_len = int(math.floor(n_bars / (n_windows + ratio)))
    train_len = n_bars - n_windows * test_len
    if test_len < 2 or train_len < 2:
        raise ConfigError(f"walk_forward {n_windows}: {n_bars} bars are too few "
                          f"(train {train_len}, test {test_len} bars per window; need >= 2)")
    windows = []
    for k in range(n_windows):
        test_start = train_len + k * test_len
        test_end = n_bars if k == n_windows - 1 else test_start + test_len
        windows.append(Window(k, test_start - train_len, test_start, test_start, test_end))
    return windows


# --- job execution ------------------------------------------------------------------


def _check_some_candidate_fits(name: str, candidates: list, spans: dict, mode: str) -> None:
    """ConfigError when the shortest span a pick is selected on (or, walking forward, judged on) is
    shorter than every grid candidate's indicator warm-up: the pick would be meaningless."""
    from raybt.config.params import min_bars

    selection = {k: v for k, v in spans.items() if k in ("full", "is") or k.startswith("train")}
    label, (start, end) = min(selection.items(), key=lambda item: item[1][1] - item[1][0])
    need = min(min_bars(c) for c in candidates)
    if end - start < need:
        span = {"full": "the asset's", "is": "the in-sample"}.get(label, f"walk-forward window {label[5:]}'s train")
        raise ConfigError(f"{name}: {span} span holds {end - start} bars, fewer than any grid candidate needs "
                          f"({need}: max(bb_period, atr_period) + 1): no candidate could trade there"
                          + ("" if mode == "full" else "; raise --train or lower --walk-forward"))
    tests = [end - start for k, (start, end) in spans.items() if k.startswith("test")]
    if tests and min(tests) < need:
        raise ConfigError(f"{name}: walk-forward test windows of {min(tests)} bars, shorter than any grid "
                          f"candidate's indicator window ({need} bars): too short to judge a pick; lower "
                          f"--walk-forward")


# --- the optimisation ------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedAsset:
    """One asset ready to optimise: its candidates, bars and the spans they are evaluated on."""

    base: dict  # the asset's configured parameters
    params: list  # candidate parameter dicts (the configured ones last)
    records: object  # their PARAM_DT records
    ohlc: object  # 4 x bars float64
    ns: object  # UTC ns timestamps of the bars
    index: object  # the bars' DatetimeIndex
    spans: dict  # label ("full", "is"/"oos", "train<k>"/"test<k>") -> (start, end) bar positions
    windows: list  # walk-forward windows (empty otherwise)


@dataclass
class Choice:
    """The parameters chosen for one asset under one preference."""

    candidate: int | None  # grid candidate id; None = configured parameters (fallback)
    params: dict  # full validated parameter dict
    qualified: bool
    metrics: dict  # report metrics (prefixed is_/oos_ with --train; stitched OOS (oos_) with walk-forward)


@dataclass
class OptimizeResult:
    """Everything ``raybt optimize`` reports (see :func:`write_outputs`)."""

    mode: str  # "full", "train" or "walk_forward"
    grid: GridSpec
    candidates: pd.DataFrame  # one row per asset x candidate (x window)
    choices: dict  # preference -> asset -> Choice
    walk_forward: pd.DataFrame | None = None
    windows: dict = field(default_factory=dict)  # asset -> [Window]
    spans: dict = field(default_factory=dict)  # asset -> {label: (start, end)}
    settings: dict = field(default_factory=dict)
    indexes: dict = field(default_factory=dict)  # asset -> DatetimeIndex of its bars (spans index into it)
    equity: pd.DataFrame | None = None  # walk-forward: stitched out-of-sample equity (long format)
    window_picks: dict = field(default_factory=dict)  # walk-forward: (asset, pref) -> [(candidate, grid params)]
    n_candidates: int = 0


def _metric_dict(cols: dict, i: int, prefix: str = "") -> dict:
    return {f"{prefix}{k}": cols[k][i].item() for k in METRIC_COLUMNS}


def _report(metrics: dict, prefixes=("",)) -> dict:
    return {f"{p}{k}": metrics.get(f"{p}{k}") for p in prefixes for k in REPORT_METRICS}


def run_optimization(assets: Mapping, grid: GridSpec, *, train: float | None = None,
                     walk_forward: int | None = None, engine: str = "ray", batch: int = DEFAULT_BATCH,
                     address: str | None = None, progress: bool = False,
                     max_in_flight: int | None = None) -> OptimizeResult:
    """Optimise every asset of ``assets`` (``{name: (validated params, bars DataFrame)}``) over ``grid``."""
    if not assets:
        raise ConfigError("no assets to optimise")
    candidates = grid.candidates()
    n_cand = len(candidates)
    names = list(grid.values)
    mode = "walk_forward" if walk_forward else ("train" if train is not None else "full")
    run_kw = dict(engine=engine, batch=batch, address=address, progress=progress, max_in_flight=max_in_flight)

    prepared = {}
    for name, (base, bars) in assets.items():
        params = candidate_params(candidates, base, f"{grid.path or 'grid'} ({name})") + [dict(base)]
        ohlc = np.vstack([bars[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close")])
        ns = bars.index.as_unit("ns").asi8
        n_bars = len(bars)
        if mode == "full":
            if n_bars < 2:
                raise ConfigError(f"{name}: only {n_bars} bar(s)")
            spans = {"full": (0, n_bars)}
            windows = []
        elif mode == "train":
            split = train_split(n_bars, train)
            spans = {"is": (0, split), "oos": (split, n_bars)}
            windows = []
        else:
            windows = walk_forward_windows(n_bars, walk_forward, 0.7 if train is None else train)
            spans = {}
            for w in windows:
                spans[f"train{w.index}"] = (w.train_start, w.train_end)
                spans[f"test{w.index}"] = (w.test_start, w.test_end)
        _check_some_candidate_fits(name, params[:-1], spans, mode)
        prepared[name] = PreparedAsset(dict(base), params, param_records(params), ohlc, ns, bars.index, spans,
                                       windows)

    # round 1: every candidate (and the configured params) on the selection spans;
    # the configured params also on the test spans (fallback metrics)
    def selection_spans(p):
        if mode == "walk_forward":
            return [k for k in p.spans if k.startswith("train")]
        return list(p.spans)

    jobs, layout = [], {}
    for name, p in prepared.items():
        idx, st, en, keys = [], [], [], []
        for label in selection_spans(p):
            s, e = p.spans[label]
            for c in range(n_cand + 1):
                idx.append(c), st.append(s), en.append(e), keys.append((label, c))
        if mode == "walk_forward":
            for label in (k for k in p.spans if k.startswith("test")):
                s, e = p.spans[label]
                idx.append(n_cand), st.append(s), en.append(e), keys.append((label, n_cand))
        jobs.append(AssetJobs(name, p.ohlc, p.records[np.asarray(idx, dtype=np.int64)],
                              np.asarray(st, dtype=np.int64), np.asarray(en, dtype=np.int64)))
        layout[name] = keys
    raw = run_jobs(jobs, label=f"optimize ({len(prepared)} assets x {n_cand} candidates)", **run_kw)

    # metrics[name][(label, c)] = metric dict (unprefixed)
    metrics: dict[str, dict] = {}
    for name, p in prepared.items():
        keys = layout[name]
        ppy = np.array([span_periods_per_year(p.ns, *p.spans[label]) for label, _ in keys])
        cols = metrics_from_raw(raw[name], ppy)
        metrics[name] = {key: _metric_dict(cols, i) for i, key in enumerate(keys)}

    if mode == "walk_forward":
        return _walk_forward(prepared, metrics, candidates, names, grid, run_kw, mode, train, walk_forward)

    # candidates table
    prefixes = {"full": {"full": ""}, "train": {"is": "is_", "oos": "oos_"}}[mode]
    select_prefix = "" if mode == "full" else "is_"
    rows = []
    for name, p in prepared.items():
        for c in range(n_cand):
            row = {"asset": name, "candidate": c, **candidates[c]}
            for label, prefix in prefixes.items():
                row.update({f"{prefix}{k}": v for k, v in metrics[name][(label, c)].items()})
            rows.append(row)
    table = _frame(rows, names)
    choices = {pref: {} for pref in PREFERENCES}
    for name, p in prepared.items():
        sub = table[table["asset"] == name]
        for pref in PREFERENCES:
            label_idx = select_candidate(sub, pref, grid.selection, select_prefix)
            c = None if label_idx is None else int(sub.at[label_idx, "candidate"])
            m = {}
            for label, prefix in prefixes.items():
                m.update({f"{prefix}{k}": v for k, v in metrics[name][(label, n_cand if c is None else c)].items()})
            choices[pref][name] = Choice(c, p.params[n_cand if c is None else c], c is not None,
                                         _report(m, tuple(prefixes.values())))
    spans = {name: p.spans for name, p in prepared.items()}
    settings = {"mode": mode, "train": train, "walk_forward": walk_forward, "engine": engine, "batch": batch,
                "n_candidates": n_cand, "grid": grid.values, "max_candidates": grid.max_candidates,
                "seed": grid.seed, "selection": vars(grid.selection)}
    return OptimizeResult(mode, grid, table, choices, None, {}, spans, settings,
                          indexes={name: p.index for name, p in prepared.items()}, n_candidates=n_cand)


def _frame(rows, names) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    for col in table.columns:
        if col.split("_", 1)[-1] in ("n_bars", "n_trades", "wins") or col in ("n_bars", "n_trades", "wins"):
            table[col] = table[col].astype(np.int64)
    return table.reset_index(drop=True)


def _walk_forward(prepared, metrics, candidates, names, grid, run_kw, mode, train, walk_forward):
    n_cand = len(candidates)
    rows = []
    for name, p in prepared.items():
        for w in p.windows:
            for c in range(n_cand):
                row = {"asset": name, "window": w.index, "candidate": c, **candidates[c]}
                row.update({f"is_{k}": v for k, v in metrics[name][(f"train{w.index}", c)].items()})
                rows.append(row)
    table = _frame(rows, names)

    # select per window, then evaluate the chosen candidates on the test spans (round 2)
    picks = {}  # (name, pref, window) -> candidate index (n_cand = configured)
    jobs, layout = [], {}
    for name, p in prepared.items():
        wanted = set()
        for w in p.windows:
            sub = table[(table["asset"] == name) & (table["window"] == w.index)]
            for pref in PREFERENCES:
                label_idx = select_candidate(sub, pref, grid.selection, "is_")
                c = n_cand if label_idx is None else int(sub.at[label_idx, "candidate"])
                picks[(name, pref, w.index)] = c
                if c != n_cand:
                    wanted.add((f"test{w.index}", c))
        keys = sorted(wanted, key=lambda k: (int(k[0][4:]), k[1]))
        layout[name] = keys
        if keys:
            jobs.append(AssetJobs(name, p.ohlc, p.records[np.array([c for _, c in keys], dtype=np.int64)],
                                  np.array([p.spans[lab][0] for lab, _ in keys], dtype=np.int64),
                                  np.array([p.spans[lab][1] for lab, _ in keys], dtype=np.int64)))
    if jobs:
        raw = run_jobs(jobs, label="walk-forward test spans", **run_kw)
        for name, keys in layout.items():
            if not keys:
                continue
            p = prepared[name]
            ppy = np.array([span_periods_per_year(p.ns, *p.spans[lab]) for lab, _ in keys])
            cols = metrics_from_raw(raw[name], ppy)
            for i, key in enumerate(keys):
                metrics[name][key] = _metric_dict(cols, i)

    wf_rows, choices = [], {pref: {} for pref in PREFERENCES}
    stitched_equity = []
    for name, p in prepared.items():
        idx = p.index
        runs: dict = {}  # (window, candidate) -> (equity values, trades frame) of that test span
        for pref in PREFERENCES:
            parts, window_picks = [], []
            for w in p.windows:
                c = picks[(name, pref, w.index)]
                test = metrics[name][(f"test{w.index}", c)]
                train_m = metrics[name][(f"train{w.index}", c)]
                chosen = {k: p.params[c][k] for k in names}
                parts.append(chosen)
                window_picks.append((w, c))
                wf_rows.append({
                    "asset": name, "preference": pref, "window": str(w.index),
                    "train_start": idx[w.train_start], "train_end": idx[w.train_end - 1],
                    "test_start": idx[w.test_start], "test_end": idx[w.test_end - 1],
                    "train_bars": w.train_end - w.train_start, "test_bars": w.test_end - w.test_start,
                    "candidate": -1 if c == n_cand else c, "qualified": c != n_cand,
                    **chosen,
                    "is_pnl": train_m["pnl"], "is_sharpe": train_m["sharpe"],
                    "is_max_drawdown": train_m["max_drawdown"], "is_n_trades": train_m["n_trades"],
                    "oos_pnl": test["pnl"], "oos_total_return": test["total_return"],
                    "oos_sharpe": test["sharpe"], "oos_max_drawdown": test["max_drawdown"],
                    "oos_n_trades": test["n_trades"], "oos_win_rate": test["win_rate"],
                })
            equity, stitched_m = stitch_test_spans(name, p, window_picks, runs)
            stitched_equity.append(pd.DataFrame({"asset": name, "preference": pref,
                                                 "window": equity["window"].to_numpy(),
                                                 "timestamp": equity.index, "equity": equity["equity"].to_numpy()}))
            first, last = p.windows[0], p.windows[-1]
            wf_rows.append({
                "asset": name, "preference": pref, "window": "stitched",
                "train_start": idx[first.train_start], "train_end": idx[last.train_end - 1],
                "test_start": idx[first.test_start], "test_end": idx[last.test_end - 1],
                "train_bars": None, "test_bars": last.test_end - first.test_start,
                "candidate": None, "qualified": all(picks[(name, pref, w.index)] != n_cand for w in p.windows),
                "chosen_params": json.dumps(parts),
                **{f"oos_{k}": stitched_m[k] for k in STITCHED_COLUMNS},
            })
            c_last = picks[(name, pref, last.index)]
            report = {f"oos_{k}": stitched_m[k] for k in REPORT_METRICS}
            report["windows"] = len(p.windows)
            choices[pref][name] = Choice(None if c_last == n_cand else c_last, p.params[c_last],
                                         c_last != n_cand, report)
    wf = pd.DataFrame(wf_rows)
    integer_params = [k for k in names if all(isinstance(r[k], (int, np.integer)) and not isinstance(r[k], bool)
                                              for r in wf_rows if k in r)]
    for col in ("train_bars", "test_bars", "candidate", "is_n_trades", "oos_n_trades", "oos_n_bars",
                *integer_params):
        if col in wf:
            wf[col] = wf[col].astype("Int64")
    spans = {name: p.spans for name, p in prepared.items()}
    windows = {name: p.windows for name, p in prepared.items()}
    settings = {"mode": mode, "train": 0.7 if train is None else train, "walk_forward": walk_forward,
                "engine": run_kw["engine"], "batch": run_kw["batch"], "n_candidates": n_cand,
                "grid": grid.values, "max_candidates": grid.max_candidates, "seed": grid.seed,
                "selection": vars(grid.selection), "windows": "rolling"}
    picked = {(name, pref): [(picks[(name, pref, w.index)],
                              {k: prepared[name].params[picks[(name, pref, w.index)]][k] for k in names})
                             for w in prepared[name].windows]
              for name in prepared for pref in PREFERENCES}
    return OptimizeResult(mode, grid, table, choices, wf, windows, spans, settings,
                          indexes={name: p.index for name, p in prepared.items()},
                          equity=pd.concat(stitched_equity, ignore_index=True),
                          window_picks=picked, n_candidates=n_cand)


#: stitched out-of-sample metrics written to walk_forward.csv (prefixed ``oos_``)
STITCHED_COLUMNS = ("pnl", "total_return", "sharpe", "max_drawdown", "n_trades", "win_rate", "profit_factor",
                    "initial_equity", "final_equity", "n_bars")


def stitch_test_spans(name: str, p: PreparedAsset, window_picks, runs: dict) -> tuple[pd.DataFrame, dict]:
    """The stitched out-of-sample equity of one asset under one preference, and its metrics.

    ``window_picks``: ``[(Window, candidate index)]`` in time order; ``runs``
    caches each (window, candidate) test-span backtest across preferences.
    Window k's equity (its own backtest, flat at the start) is multiplied by
    ``level_{k-1} / E_k[0]`` (``level_{-1} = E_0[0]``), ``level_{k-1}`` the
    stitched equity at the end of window k-1; its trades' PnL and commission
    by the same factor. Once the stitched equity is at or below zero the
    later windows stay flat at that level with no trades (nothing left to
    trade with). Returns (frame indexed by timestamp with ``equity`` and
    ``window``, :func:`raybt.metrics.compute_metrics` of it).
    """
    from raybt.backtest import simulate_bars
    from raybt.metrics import compute_metrics
    from raybt.records import trades_frame

    idx = p.index
    values, window_ids, stamps, trades = [], [], [], []
    level = None
    for w, c in window_picks:
        key = (w.index, c)
        if key not in runs:
            sl = slice(w.test_start, w.test_end)
            bars = pd.DataFrame({col: p.ohlc[i, sl] for i, col in enumerate(("open", "high", "low", "close"))},
                                index=idx[sl])
            records, eq = simulate_bars(bars, p.params[c])
            runs[key] = (eq, trades_frame(records, [name], [bars.index]))
        eq, tr = runs[key]
        if level is not None and not level > 0:  # ruined: no capital left to trade the later windows
            eq, tr, factor = np.full(len(eq), level), tr.iloc[:0], 1.0
        else:
            factor = 1.0 if level is None else level / eq[0]
        scaled = eq * factor
        level = scaled[-1]
        values.append(scaled)
        window_ids.append(np.full(len(eq), w.index, dtype=np.int64))
        stamps.append(idx[w.test_start:w.test_end])
        if len(tr):
            tr = tr.copy()
            tr["pnl"] = tr["pnl"] * factor
            tr["commission"] = tr["commission"] * factor
            trades.append(tr)
    index = stamps[0].append(stamps[1:]) if len(stamps) > 1 else stamps[0]
    equity = pd.DataFrame({"equity": np.concatenate(values), "window": np.concatenate(window_ids)},
                          index=index.rename("timestamp"))
    trade_frame = pd.concat(trades, ignore_index=True) if trades else None
    return equity, compute_metrics(equity["equity"], trade_frame)


__all__ = ["AssetJobs", "Choice", "OptimizeResult", "Window", "run_jobs", "run_optimization", "train_split",
           "walk_forward_windows"]
