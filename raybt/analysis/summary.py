"""Bundle a run's analysis (:func:`analyse_run`) and render it as plain text.

Units in the returned dicts are those of :mod:`raybt.metrics`: returns,
weights, shares, win rates and drawdowns are *fractions* (drawdowns
positive: 0.25 = 25 % below the peak), PnL in account currency, volatility
and Sharpe annualised by ``sqrt(periods_per_year)`` with risk-free 0.  Only
the text report shows percentages (columns marked ``%``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np
import pandas as pd

from raybt import metrics as _m
from raybt.analysis.attribution import (
    Flows,
    SleeveStats,
    _as_flows,
    _flows_from_multipliers,
    _returns_frame,
    _risk_shares,
    as_weight_series,
    asset_columns,
    portfolio_equity,
    sleeve_pass,
)
from raybt.analysis.diversification import (
    _asset_vol_sharpe,
    _benefits,
    _correlation,
    _diversification_ratio,
    annualised_volatility,
)
from raybt.analysis.frontier import _frontier, _point
from raybt.analysis.moments import ReturnMoments, return_moments
from raybt.analysis.tearsheet import tearsheet as _tearsheet
from raybt.phases import PhaseTimer, phase

__all__ = ["analyse_run", "analysis_to_json", "asset_table",
           "portfolio_summary_text", "write_portfolio_summary"]


def _asset_codes(column: pd.Series, names: list) -> np.ndarray:
    """Position of each row's asset in ``names`` (-1 when absent): the column
    is factorised once (a dictionary encoding for Arrow strings, the codes of
    a categorical), then only its distinct names are looked up."""
    codes, uniques = pd.factorize(column)
    lookup = np.append(pd.Index(names).get_indexer(uniques), -1)  # code -1 (missing) -> -1
    return lookup[codes]


def _trade_counts(trades: pd.DataFrame | None, names: list) -> tuple[np.ndarray, np.ndarray]:
    """Per asset: number of trades and win rate (fraction with pnl > 0; NaN
    without trades), in one grouped pass over the trades table."""
    n = len(names)
    if trades is None or len(trades) == 0:
        return np.zeros(n, dtype=np.int64), np.full(n, math.nan)
    codes = _asset_codes(trades["asset"], names)
    mine = codes >= 0
    codes = codes[mine]
    wins = trades["pnl"].to_numpy(dtype=np.float64)[mine] > 0
    count = np.bincount(codes, minlength=n)
    won = np.bincount(codes, weights=wins, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(count > 0, won / count, math.nan)
    return count.astype(np.int64), rate


def _portfolio_trade_stats(trades: pd.DataFrame | None) -> dict:
    """``n_trades``, ``win_rate`` and ``profit_factor`` of all trades, as
    :func:`raybt.metrics.trade_stats` defines them (the only trade statistics
    the portfolio totals show; its exit-reason counts are not needed here)."""
    if trades is None or len(trades) == 0:
        return {"n_trades": 0, "win_rate": math.nan, "profit_factor": math.nan}
    pnl = trades["pnl"].to_numpy(dtype=np.float64)
    gains, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    if losses > 0:
        profit_factor = float(gains / losses)
    else:
        profit_factor = math.inf if gains > 0 else math.nan
    return {"n_trades": int(len(pnl)), "win_rate": float((pnl > 0).mean()),
            "profit_factor": profit_factor}


class _Prepared(NamedTuple):
    """What every per-asset and cross-asset number of a run is computed from."""

    names: list
    flows: Flows | None
    port: pd.Series
    ppy: float
    sleeves: SleeveStats
    moments: ReturnMoments


def _prepare(equity: pd.DataFrame, names: list, flows, timer: PhaseTimer | None = None) -> _Prepared:
    with phase(timer, "analysis.returns"):
        f = _as_flows(flows, equity.index, names)
        port = portfolio_equity(equity, names)
        ppy = _m.periods_per_year(port)
        sleeves = sleeve_pass(equity, names, f)
    with phase(timer, "analysis.covariance"):
        mom = return_moments(sleeves.returns, names)
    return _Prepared(names, f, port, ppy, sleeves, mom)


def _asset_table(prep: _Prepared, trades, weights, metrics, timer=None) -> pd.DataFrame:
    names, st, mom = prep.names, prep.sleeves, prep.moments
    with phase(timer, "analysis.attribution"):
        avg_w = st.share / st.share.sum()
        w = avg_w if weights is None else as_weight_series(weights, names).to_numpy(dtype=np.float64)
        pnl = st.last - st.first - st.flow_total
        contribution = pnl / float(prep.port.iloc[0])
    with phase(timer, "analysis.risk_attribution"):
        risk = _risk_shares(mom, avg_w)
    with phase(timer, "analysis.asset_stats"):
        vol, sharpe = _asset_vol_sharpe(st.returns, mom, prep.ppy)
    with phase(timer, "analysis.trades"):
        if trades is not None:
            n_trades, win = _trade_counts(trades, names)
        else:
            am = (metrics or {}).get("assets", {}) if metrics else {}
            n_trades = np.array([int(am.get(a, {}).get("n_trades", 0) or 0) for a in names], dtype=np.int64)
            win = np.array([math.nan if am.get(a, {}).get("win_rate") is None
                            else float(am[a]["win_rate"]) for a in names])
    with phase(timer, "analysis.asset_table"):
        table = pd.DataFrame({
            "weight": w, "avg_weight": avg_w, "pnl": pnl, "return": st.total_return,
            "contribution": contribution, "win_rate": win, "sharpe": sharpe,
            "max_drawdown": st.max_drawdown, "annual_volatility": vol,
            "n_trades": n_trades, "risk_share": risk,
        }, index=pd.Index(names, name="asset"))
    return table


def asset_table(equity: pd.DataFrame, trades: pd.DataFrame | None = None, weights=None,
                metrics: dict | None = None, flows: pd.DataFrame | None = None,
                assets: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per asset (index = asset name). Columns:

    ``weight`` (the given target weight, else the average equity share),
    ``avg_weight`` (average share of portfolio equity), ``pnl`` (currency,
    flows excluded), ``return`` (the sleeve's total return: last / first - 1
    without flows, the time-weighted ``prod(1 + r) - 1`` of the flow-adjusted
    returns with them),
    ``contribution`` (pnl / initial portfolio equity), ``win_rate``,
    ``sharpe`` (annualised, on the sleeve's returns), ``max_drawdown``
    (positive fraction), ``annual_volatility``, ``n_trades``, ``risk_share``
    (share of portfolio variance at the average weights).

    Trade stats come from ``trades`` when given, else ``metrics["assets"]``.
    Without ``flows`` Sharpe and max drawdown equal :func:`raybt.metrics.
    compute_metrics` of the sleeve equity; with flows they are computed on the
    flow-adjusted (time-weighted) returns.
    """
    names = asset_columns(equity) if assets is None else list(assets)
    return _asset_table(_prepare(equity, names, flows), trades, weights, metrics)


def analyse_run(equity: pd.DataFrame, trades: pd.DataFrame | None = None, weights=None,
                metrics: dict | None = None, *, flows: pd.DataFrame | None = None,
                multipliers: pd.DataFrame | None = None, n_frontier: int = 40,
                max_weight: float = 1.0, include_frontier: bool = True,
                events: pd.DataFrame | None = None, asset_params: dict | None = None,
                weights_history: pd.DataFrame | None = None, tearsheet: bool = True,
                timer: PhaseTimer | None = None) -> dict:
    """Everything in :mod:`raybt.analysis` for one run, for report writers.

    Arguments are the loaded run files: the ``portfolio_equity`` frame,
    ``trades`` (optional), ``weights`` (Series asset -> weight, or the
    ``weights.csv`` frame; optional) and ``metrics`` (``metrics.json`` as a
    dict; its ``"portfolio"`` part is used for the totals when given, else
    they are computed).  Capital flows: pass ``flows`` (see
    :func:`capital_flows`) or the ``multipliers.csv`` frame as
    ``multipliers``; without either, sleeve equity is taken at face value.
    ``timer`` (a :class:`raybt.phases.PhaseTimer`) receives the seconds of
    each step as ``analysis.<step>``: ``returns`` (flows, sleeve returns and
    per-sleeve equity statistics), ``covariance`` (the means and covariance
    every cross-asset number shares), ``attribution``, ``risk_attribution``,
    ``asset_stats``, ``trades``, ``asset_table``, ``correlation``,
    ``diversification``, ``portfolio``, ``frontier`` and, with ``tearsheet``,
    those of :func:`raybt.analysis.tearsheet.tearsheet` (which also reads
    ``events``, ``asset_params``: ``run_info.json``'s per-asset parameters,
    and ``weights_history``).

    Work and memory grow linearly in bars x assets (one pass over the
    sleeve equity, one blocked pass over the returns; the only full-size
    array made is the returns matrix, kept in ``frames["returns"]``), plus
    assets² for the covariance and the critical line of the frontier.

    Returns a dict; every key except ``"frames"`` holds plain floats, ints,
    strings, lists or dicts of them (NaN possible; :func:`analysis_to_json`
    makes it strict JSON):

    * ``assets``, ``periods_per_year``, ``flows_adjusted`` (bool);
    * ``portfolio``: totals (``initial_equity``, ``final_equity``, ``pnl``,
      ``total_return``, ``cagr``, ``annual_volatility``, ``sharpe``,
      ``sortino``, ``max_drawdown``, ``calmar``, ``n_trades``, ``win_rate``,
      ``profit_factor``, ``diversification_ratio``);
    * ``per_asset``: ``{asset: row of`` :func:`asset_table` ``}``;
    * ``pnl_attribution``, ``return_contribution``, ``risk_attribution``,
      ``average_weights``, ``weights``: ``{asset: float}``;
    * ``correlation``: ``{"assets": [...], "matrix": [[...]]}``;
    * ``diversification``: :func:`diversification_benefits`;
    * ``points``: ``{name: [volatility, return]}`` annualised, for
      ``portfolio`` (the actual equity curve), ``average_weights``,
      ``weights`` and ``equal_weight`` (fixed-weight mixes);
    * ``asset_points``: ``{asset: [volatility, return]}``, each sleeve on the
      frontier's axes (annualised std and mean over the clean rows);
    * ``frontier``: ``{"volatility": [...], "return": [...]}`` (empty lists
      when it cannot be built);
    * with ``tearsheet`` (default): ``monthly_returns``, ``yearly_returns``,
      ``drawdowns``, ``breaker``, ``trade_analysis``, ``costs``, ``exposure``,
      ``turnover``, ``weights_history`` (:func:`raybt.analysis.tearsheet.tearsheet`);
    * ``frames``: DataFrames ``returns`` (sleeve returns), ``correlation``,
      ``frontier`` (None when it cannot be built or ``include_frontier`` is
      False), ``asset_table``, and the tear sheet's frames.
    """
    assets = asset_columns(equity)
    if flows is None and multipliers is not None:
        flows = _flows_from_multipliers(multipliers, equity.index, assets)
    prep = _prepare(equity, assets, flows, timer)
    mom, ppy, port = prep.moments, prep.ppy, prep.port
    rets = _returns_frame(prep.sleeves.returns, equity.index, assets)
    table = _asset_table(prep, trades, weights, metrics, timer)
    avg_w = table["avg_weight"].to_numpy()
    w = table["weight"].to_numpy()
    with phase(timer, "analysis.correlation"):
        corr = pd.DataFrame(_correlation(mom), index=assets, columns=assets)
        corr_lists = corr.to_numpy().tolist()
    with phase(timer, "analysis.diversification"):
        vol, sharpe = table["annual_volatility"].to_numpy(), table["sharpe"].to_numpy()
        benefits = _benefits(port, vol, sharpe, _diversification_ratio(mom, avg_w), ppy)

    with phase(timer, "analysis.portfolio"):
        if metrics and metrics.get("portfolio"):
            pm = dict(metrics["portfolio"])
        else:
            pm = _m.compute_metrics(port, trades)
        if trades is not None:
            pm.update(_portfolio_trade_stats(trades))
        keys = ["initial_equity", "final_equity", "pnl", "total_return", "cagr",
                "annual_volatility", "sharpe", "sortino", "max_drawdown", "calmar",
                "n_trades", "win_rate", "profit_factor"]
        portfolio = {k: _num(pm.get(k)) for k in keys}
        portfolio["n_trades"] = int(pm.get("n_trades") or 0)
        portfolio["diversification_ratio"] = benefits["diversification_ratio"]

        r_port = _m.returns_from_equity(port)
        points = {"portfolio": [annualised_volatility(r_port, ppy), float(np.mean(r_port) * ppy)]}
        points["average_weights"] = list(_point(mom, avg_w, ppy))
        points["weights"] = list(_point(mom, w, ppy))
        points["equal_weight"] = list(_point(mom, np.ones(len(assets)), ppy))
        sd = np.sqrt(np.maximum(np.diag(mom.cov), 0.0)) * math.sqrt(ppy)
        asset_points = {a: [float(v), float(m)] for a, v, m in zip(assets, sd, mom.mean * ppy)}
        columns = {c: table[c].tolist() for c in table.columns}  # Python floats / ints
        per_asset = {str(a): {c: values[i] for c, values in columns.items()}
                     for i, a in enumerate(assets)}

    frontier = None
    if include_frontier:
        with phase(timer, "analysis.frontier"):
            try:
                frontier = _frontier(mom, n_frontier, max_weight, ppy)
            except ValueError:  # too few clean rows, or max_weight * n < 1
                frontier = None

    sheet, sheet_frames = {}, {}
    if tearsheet:
        sheet, sheet_frames = _tearsheet(equity, port, rets, assets, trades=trades, multipliers=multipliers,
                                         events=events, asset_params=asset_params,
                                         weights_history=weights_history, timer=timer)
    return {
        "assets": assets,
        "periods_per_year": float(ppy),
        "flows_adjusted": prep.flows is not None,
        "portfolio": portfolio,
        "per_asset": per_asset,
        "pnl_attribution": _floats(table["pnl"]),
        "return_contribution": _floats(table["contribution"]),
        "risk_attribution": _floats(table["risk_share"]),
        "average_weights": _floats(table["avg_weight"]),
        "weights": _floats(table["weight"]),
        "correlation": {"assets": list(assets), "matrix": corr_lists},
        "diversification": benefits,
        "points": points,
        "asset_points": asset_points,
        "frontier": ({"volatility": frontier["volatility"].tolist(),
                      "return": frontier["return"].tolist()} if frontier is not None
                     else {"volatility": [], "return": []}),
        **sheet,
        "frames": {"returns": rets, "correlation": corr, "frontier": frontier,
                   "asset_table": table, **sheet_frames},
    }


def _num(v):
    if v is None:
        return math.nan
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def _floats(s: pd.Series) -> dict:
    return {str(k): float(v) for k, v in s.items()}


def _clean_float_list(x: list):
    """A list (or list of equal-length lists) of Python floats with NaN/inf as
    None, through one array; None when ``x`` is not such a list."""
    first = x[0]
    if not (type(first) is float or (type(first) is list and first and type(first[0]) is float)):
        return None
    try:
        arr = np.array(x)
    except ValueError:  # ragged
        return None
    if arr.dtype != np.float64 or arr.ndim > 2:
        return None
    finite = np.isfinite(arr)
    if finite.all():
        return arr.tolist()
    return np.where(finite, arr, None).tolist()


def analysis_to_json(result: dict) -> dict:
    """:func:`analyse_run`'s dict without ``frames``, NaN/inf -> None (strict JSON).

    Every value becomes a plain ``dict``/``list``/``str``/``int``/``float``/
    ``bool``/``None`` (numpy scalars converted, timestamps as ISO strings);
    float lists and matrices (the correlation matrix: assets² values) are
    converted as one array.
    """
    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items() if k != "frames"}
        if isinstance(x, (list, tuple)):
            fast = _clean_float_list(x) if isinstance(x, list) and x else None
            return fast if fast is not None else [clean(v) for v in x]
        if isinstance(x, (bool, np.bool_)):
            return bool(x)
        if isinstance(x, (int, np.integer)):
            return int(x)
        if isinstance(x, (float, np.floating)):
            return float(x) if math.isfinite(x) else None
        if isinstance(x, pd.Timestamp):
            return x.isoformat()
        return x
    return clean(result)


# ---------------------------------------------------------------- text report

def _fmt(v, spec: str, width: int) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return f"{'n/a':>{width}}"
    if spec.endswith("d"):
        v = int(round(v))
    return f"{format(v, spec):>{width}}"


def _pct(v) -> float:
    return math.nan if v is None or not math.isfinite(v) else 100.0 * v


def portfolio_summary_text(equity: pd.DataFrame, trades: pd.DataFrame | None = None,
                           metrics: dict | None = None, weights=None, *,
                           flows: pd.DataFrame | None = None,
                           multipliers: pd.DataFrame | None = None,
                           analysis: dict | None = None,
                           title: str = "Portfolio summary",
                           timer: PhaseTimer | None = None) -> str:
    """A plain-text report: header, per-asset table and portfolio totals.

    Per-asset columns: asset, weight %, PnL (currency), return % (the
    sleeve's total return, time-weighted when flows are given; see
    :func:`asset_table`), contribution % (PnL / initial portfolio
    equity), win rate %, Sharpe (annualised), max DD % (positive), trades.
    A ``TOTAL`` row closes the table; a ``Portfolio totals`` block follows
    with PnL, return, CAGR, Sharpe, max drawdown, trades, win rate and the
    diversification ratio.  Columns are fixed width and right-aligned (the
    asset column left-aligned); undefined values print as ``n/a``.

    ``analysis`` (:func:`analyse_run`'s result for the same files) is used as
    is; without it the analysis (less the frontier) is computed, its steps
    timed into ``timer``.  Rendering itself is timed as ``analysis.summary``.
    """
    assets = asset_columns(equity)
    if analysis is not None:  # already computed for these files (the frontier, if any, is not used here)
        res = analysis
    else:
        res = analyse_run(equity, trades, weights, metrics, flows=flows, multipliers=multipliers,
                          include_frontier=False, tearsheet=False, timer=timer)
    with phase(timer, "analysis.summary"):
        return _summary_text(equity, assets, res, title)


def _summary_text(equity: pd.DataFrame, assets: list, res: dict, title: str) -> str:
    table: pd.DataFrame = res["frames"]["asset_table"]
    p = res["portfolio"]
    port = portfolio_equity(equity, assets)
    years = _m.years_spanned(port)

    name_w = max(5, max(len(a) for a in assets))
    cols = [("Weight %", 9, "weight", ".2f", True), ("PnL", 15, "pnl", ",.2f", False),
            ("Return %", 9, "return", ".2f", True), ("Contrib %", 10, "contribution", ".2f", True),
            ("Win %", 7, "win_rate", ".1f", True), ("Sharpe", 8, "sharpe", ".2f", False),
            ("Max DD %", 9, "max_drawdown", ".2f", True), ("Trades", 8, "n_trades", "d", False)]
    header = f"{'Asset':<{name_w}}" + "".join(f" {h:>{w}}" for h, w, *_ in cols)
    rule = "-" * name_w + "".join(" " + "-" * w for _, w, *_ in cols)

    def line(label, values: dict) -> str:
        out = f"{label:<{name_w}}"
        for _, width, key, spec, pct in cols:
            v = values.get(key)
            if pct and v is not None:
                v = _pct(float(v))
            out += " " + _fmt(v, spec, width)
        return out

    start, end = port.index[0], port.index[-1]
    lines = [title, "=" * len(title),
             f"Period            : {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M %Z}"
             f" ({len(port)} bars, {years:.2f} years)" if len(port) > 1 else "Period: n/a",
             f"Assets            : {len(assets)}",
             f"Initial equity    : {p['initial_equity']:,.2f}",
             f"Final equity      : {p['final_equity']:,.2f}",
             f"Capital flows     : {'excluded from asset PnL' if res['flows_adjusted'] else 'not adjusted'}",
             "", header, rule]
    for a, row in table.to_dict("index").items():
        lines.append(line(a, row))
    lines.append(rule)
    lines.append(line("TOTAL", {
        "weight": float(table["weight"].sum()), "pnl": p["pnl"],
        "return": p["total_return"], "contribution": float(table["contribution"].sum()),
        "win_rate": p["win_rate"], "sharpe": p["sharpe"],
        "max_drawdown": p["max_drawdown"], "n_trades": p["n_trades"]}))
    lines += ["", "Portfolio totals", "----------------"]
    totals = [("PnL", p["pnl"], ",.2f", ""), ("Total return", _pct(p["total_return"]), ".2f", " %"),
              ("CAGR", _pct(p["cagr"]), ".2f", " %"), ("Sharpe", p["sharpe"], ".3f", ""),
              ("Max drawdown", _pct(p["max_drawdown"]), ".2f", " %"),
              ("Trades", p["n_trades"], "d", ""), ("Win rate", _pct(p["win_rate"]), ".2f", " %"),
              ("Diversification ratio", p["diversification_ratio"], ".3f", "")]
    for label, v, spec, unit in totals:
        shown = _fmt(v, spec, 16)
        lines.append(f"  {label:<22}{shown}{unit if shown.strip() != 'n/a' else ''}")
    return "\n".join(lines) + "\n"


def write_portfolio_summary(path, equity: pd.DataFrame, trades: pd.DataFrame | None = None,
                            metrics: dict | None = None, weights=None, *,
                            timer: PhaseTimer | None = None, **kwargs) -> Path:
    """Write :func:`portfolio_summary_text` to ``path`` (UTF-8); returns the path.

    ``kwargs`` go to :func:`portfolio_summary_text` (``flows``,
    ``multipliers``, ``analysis``, ``title``).  Pass ``analysis`` (the
    report's :func:`analyse_run` result) to render without recomputing;
    ``timer`` gets ``analysis.summary`` (and the analysis steps when it has
    to run them)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(portfolio_summary_text(equity, trades, metrics, weights, timer=timer, **kwargs),
                    encoding="utf-8")
    return path
