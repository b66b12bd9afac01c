"""The report's tables: key metrics, per-asset results, diversification,
events, and the tear sheet's tables (returns by month and year, top
drawdowns, the breaker, trades, exposure, turnover, costs).  Each function
takes :func:`raybt.analysis.analyse_run`'s result (or a loaded table) and
returns an HTML fragment."""

from __future__ import annotations

import pandas as pd

from raybt.plots.html import _e, _finite, _int, _num, _pct, _signed_cls, _table, _td

MAX_EVENT_ROWS = 50

def _kpis(portfolio: dict, pm: dict) -> str:
    items = [
        ("Initial equity", _num(portfolio.get("initial_equity")), ""),
        ("Final equity", _num(portfolio.get("final_equity")), ""),
        ("PnL", _num(portfolio.get("pnl")), _signed_cls(portfolio.get("pnl"))),
        ("Total return", _pct(portfolio.get("total_return")),
         _signed_cls(portfolio.get("total_return"))),
        ("CAGR", _pct(portfolio.get("cagr")), _signed_cls(portfolio.get("cagr"))),
        ("Annual volatility", _pct(portfolio.get("annual_volatility")), ""),
        ("Sharpe", _num(portfolio.get("sharpe"), 3), _signed_cls(portfolio.get("sharpe"))),
        ("Sortino", _num(portfolio.get("sortino"), 3), _signed_cls(portfolio.get("sortino"))),
        ("Max drawdown", _pct(portfolio.get("max_drawdown")), ""),
        ("Max DD duration", (f"{float(pm['max_drawdown_duration_days']):.1f} days"
                             if _finite(pm.get("max_drawdown_duration_days")) else "n/a"), ""),
        ("Calmar", _num(portfolio.get("calmar"), 3), _signed_cls(portfolio.get("calmar"))),
        ("Trades", _int(portfolio.get("n_trades")), ""),
        ("Win rate", _pct(portfolio.get("win_rate")), ""),
        ("Profit factor", _num(portfolio.get("profit_factor"), 3), ""),
        ("Exposure", _pct(pm.get("exposure")), ""),
        ("Commission", _num(pm.get("total_commission")), ""),
        ("Diversification ratio", _num(portfolio.get("diversification_ratio"), 3), ""),
    ]
    cells = "".join(f'<div class="kpi"><div class="k">{_e(k)}</div>'
                    f'<div class="v {c}">{_e(v)}</div></div>' for k, v, c in items)
    return f'<div class="kpis">{cells}</div>'


def _asset_rows(analysis: dict) -> str:
    per = analysis.get("per_asset") or {}
    p = analysis.get("portfolio") or {}
    headers = ["Asset", "Weight", "Avg weight", "PnL", "Return", "Contribution", "Sharpe",
               "Ann. vol", "Max DD", "Trades", "Win rate", "Risk share"]
    rows = []
    for a, r in per.items():
        rows.append("<tr>" + f'<td class="l">{_e(a)}</td>' + "".join([
            _td(_pct(r.get("weight"))), _td(_pct(r.get("avg_weight"))),
            _td(_num(r.get("pnl")), _signed_cls(r.get("pnl"))),
            _td(_pct(r.get("return")), _signed_cls(r.get("return"))),
            _td(_pct(r.get("contribution")), _signed_cls(r.get("contribution"))),
            _td(_num(r.get("sharpe"))), _td(_pct(r.get("annual_volatility"))),
            _td(_pct(r.get("max_drawdown"))), _td(_int(r.get("n_trades"))),
            _td(_pct(r.get("win_rate"), 1)), _td(_pct(r.get("risk_share"), 1)),
        ]) + "</tr>")
    wsum = sum(float(r.get("weight")) for r in per.values() if _finite(r.get("weight")))
    csum = sum(float(r.get("contribution")) for r in per.values()
               if _finite(r.get("contribution")))
    rows.append('<tr class="total"><td class="l">Portfolio</td>' + "".join([
        _td(_pct(wsum)), _td(""), _td(_num(p.get("pnl")), _signed_cls(p.get("pnl"))),
        _td(_pct(p.get("total_return")), _signed_cls(p.get("total_return"))),
        _td(_pct(csum), _signed_cls(csum)), _td(_num(p.get("sharpe"))),
        _td(_pct(p.get("annual_volatility"))), _td(_pct(p.get("max_drawdown"))),
        _td(_int(p.get("n_trades"))), _td(_pct(p.get("win_rate"), 1)), _td(""),
    ]) + "</tr>")
    return _table(headers, rows)


_DIV_LABELS = [
    ("avg_asset_volatility", "Average asset volatility (annualised)", "pct"),
    ("portfolio_volatility", "Portfolio volatility (annualised)", "pct"),
    ("volatility_reduction", "Volatility reduction", "pct"),
    ("avg_asset_sharpe", "Average asset Sharpe", "num"),
    ("portfolio_sharpe", "Portfolio Sharpe", "num"),
    ("sharpe_improvement", "Sharpe improvement", "num"),
    ("diversification_ratio", "Diversification ratio", "num"),
]


def _diversification(analysis: dict) -> str:
    d = analysis.get("diversification") or {}
    rows, seen = [], set()
    for key, label, kind in _DIV_LABELS:
        if key in d:
            seen.add(key)
            v = d[key]
            rows.append(f'<tr><td class="l">{_e(label)}</td>'
                        f"{_td(_pct(v) if kind == 'pct' else _num(v, 3))}</tr>")
    for key, v in d.items():
        if key not in seen and key != "periods_per_year":
            rows.append(f'<tr><td class="l">{_e(key)}</td>'
                        f"{_td(_num(v, 4) if _finite(v) else str(v))}</tr>")
    return _table(["Measure", "Value"], rows)


def _events(events: pd.DataFrame | None) -> str:
    if events is None or len(events) == 0:
        return '<p class="note">No breaker or rebalance events were recorded.</p>'
    kinds = events["event"].astype(str).value_counts()
    counts = ", ".join(f"{n} {k}" for k, n in kinds.items())
    shown = events.head(MAX_EVENT_ROWS)
    rows = []
    for _, r in shown.iterrows():
        dd, eq = r.get("drawdown"), r.get("equity")
        chunk = r.get("chunk")
        when = r.get("decided_at")
        try:
            ts = pd.Timestamp(when)
            when = f"{ts.tz_convert('UTC') if ts.tzinfo else ts:%Y-%m-%d %H:%M}"
        except (ValueError, TypeError):
            pass
        kind = str(r.get("event"))
        cls = ' class="neg"' if "trip" in kind else ' class="pos"' if "resume" in kind else ""
        rows.append(f"<tr{cls}>" + "".join([
            _td(_int(chunk) if _finite(chunk) else str(chunk)),
            f'<td class="l">{_e(when)}</td>',
            f'<td class="l">{_e(kind)}</td>',
            _td(_pct(dd) if _finite(dd) else "n/a"),
            _td(_num(eq) if _finite(eq) else "n/a")]) + "</tr>")
    more = (f" Showing the first {MAX_EVENT_ROWS}." if len(events) > MAX_EVENT_ROWS else "")
    return (f'<p>{_e(len(events))} events ({_e(counts)}).{_e(more)}</p>'
            + _table(["Chunk", "Decided at (UTC)", "Event", "Drawdown", "Equity"], rows,
                     left={1, 2}))


# ------------------------------------------------------------------ the tear sheet's tables

#: rows at each end of a per-asset table beyond MANY_ROWS assets
EDGE_ROWS = 10
MANY_ROWS = 30


def _when(t) -> str:
    if t is None or (not isinstance(t, str) and pd.isna(t)):
        return ""
    ts = pd.Timestamp(t)
    return f"{ts.tz_convert('UTC') if ts.tzinfo else ts:%Y-%m-%d %H:%M}"


def _days(v) -> str:
    return f"{float(v):,.1f}" if _finite(v) else "n/a"


def _duration(days) -> str:
    """A length of time given in days: days from one day up, else hours, else minutes."""
    if not _finite(days):
        return "n/a"
    d = float(days)
    if d >= 1:
        return f"{d:,.1f} days"
    if d * 24 >= 1:
        return f"{d * 24:.1f} h"
    return f"{d * 1440:.0f} min"


def _edges(frame: pd.DataFrame, key: str, what: str) -> tuple[pd.DataFrame, str]:
    """The frame sorted by ``key`` (largest first); beyond :data:`MANY_ROWS`
    rows its :data:`EDGE_ROWS` top and bottom rows, with a note saying so."""
    ordered = frame.sort_values(key, ascending=False, kind="stable", na_position="last")
    if len(ordered) <= MANY_ROWS:
        return ordered, ""
    note = (f'<p class="note">The {EDGE_ROWS} highest and {EDGE_ROWS} lowest of {len(frame):,} '
            f"sleeves by {what}; every sleeve is in analysis.json.</p>")
    return pd.concat([ordered.head(EDGE_ROWS), ordered.tail(EDGE_ROWS)]), note


def monthly_tables(analysis: dict) -> str:
    frames = analysis.get("frames") or {}
    table = frames.get("monthly_table")
    if table is None or len(table) == 0:
        return '<p class="note">No monthly returns (fewer than two bars).</p>'
    rows = []
    for year, r in table.iterrows():
        rows.append(f'<tr><td class="l">{_e(year)}</td>' + "".join(
            _td(_pct(v, 1) if _finite(v) else "", _signed_cls(v)) for v in r.to_numpy()) + "</tr>")
    return ("<h3>Portfolio: return per month and year (%)</h3>"
            + _table(["Year", *table.columns], rows))


def asset_year_table(analysis: dict) -> str:
    frames = analysis.get("frames") or {}
    yearly, assets = frames.get("yearly_assets"), frames.get("asset_table")
    if yearly is None or len(yearly) == 0 or assets is None:
        return ""
    frame = yearly.T.copy()
    frame.columns = [str(c) for c in frame.columns]
    frame["Total"] = assets["return"].reindex(frame.index)
    shown, note = _edges(frame, "Total", "total return")
    rows = [f'<tr><td class="l">{_e(a)}</td>'
            + "".join(_td(_pct(v, 1), _signed_cls(v)) for v in r.to_numpy()) + "</tr>"
            for a, r in shown.iterrows()]
    return ("<h3>Sleeves: time-weighted return per year (%)</h3>" + note
            + _table(["Asset", *frame.columns], rows))


def drawdown_tables(analysis: dict) -> str:
    dd = analysis.get("drawdowns") or {}
    top = dd.get("top") or []
    out = ""
    if top:
        rows = []
        for k, r in enumerate(top, 1):
            rows.append("<tr>" + "".join([
                _td(str(k)), f'<td class="l">{_e(_when(r.get("peak")))}</td>',
                f'<td class="l">{_e(_when(r.get("trough")))}</td>',
                f'<td class="l">{_e(_when(r.get("recovery")) if r.get("recovered") else "not recovered")}</td>',
                _td(_pct(r.get("depth")), "neg"), _td(_duration(r.get("length_days"))),
                _td(_duration(r.get("decline_days"))),
                _td(_duration(r.get("recovery_days")) if r.get("recovered") else "n/a"),
            ]) + "</tr>")
        out += (f"<h3>Top {len(top)} drawdowns (of {_int(dd.get('count'))})</h3>"
                + _table(["#", "Peak (UTC)", "Trough", "Recovery", "Depth", "Length",
                          "Peak to trough", "Trough to recovery"], rows,
                         left={1, 2, 3})
                + '<p class="note">Depth: 1 - trough / peak equity. Length: peak to recovery '
                "(the first bar back at the peak), or to the last bar when not recovered.</p>")
    br = analysis.get("breaker") or {}
    marks = [("trip", r) for r in br.get("trips") or []] + [("resume", r) for r in br.get("resumes") or []]
    if marks:
        marks.sort(key=lambda m: m[1]["time"])
        rows = [f'<tr class="{"neg" if k == "trip" else "pos"}">'
                f'<td class="l">{_e(_when(r["time"]))}</td><td class="l">{k}</td>'
                + _td(_pct(r.get("breaker_drawdown"))) + _td(_pct(r.get("drawdown"))) + "</tr>"
                for k, r in marks]
        out += ("<h3>The breaker: what it measured at each trip and resume</h3>"
                + _table(["Decided at (UTC)", "Event", "Breaker's drawdown (from its own peak)",
                          "Drawdown from the all-time peak"], rows, left={0, 1})
                + f'<p class="note">The breaker compares its level with its own drawdown: from '
                "the running peak since the start, reset to the equity at each resume. "
                f"Halted {_days(br.get('halted_days'))} days in {_int(br.get('halted_periods'))} "
                "period(s).</p>")
    return out


def _group_rows(table: pd.DataFrame, labels: dict | None = None) -> list[str]:
    total = max(int(table["count"].sum()), 1)
    rows = []
    for key, r in table.iterrows():
        n = int(r["count"])
        rows.append(f'<tr><td class="l">{_e((labels or {}).get(key, key))}</td>' + "".join([
            _td(_int(n)), _td(_pct(n / total, 1)), _td(_pct(r["win_rate"], 1)),
            _td(_num(r["avg_pnl"]), _signed_cls(r["avg_pnl"])),
            _td(_num(r["total_pnl"], 0), _signed_cls(r["total_pnl"])),
            _td(_num(r["avg_win"])), _td(_num(r["avg_loss"])),
            _td(_num(r["avg_holding_hours"]))]) + "</tr>")
    return rows


def trade_tables(analysis: dict) -> str:
    from raybt.analysis.trades import EXIT_REASONS, REASON_LABELS, SIDES

    frames = analysis.get("frames") or {}
    ta = analysis.get("trade_analysis") or {}
    if not ta.get("n_trades"):
        return '<p class="note">No trades.</p>'
    head = ["", "Trades", "Share", "Win rate", "Avg PnL", "Total PnL", "Avg win", "Avg loss",
            "Avg hold (h)"]
    out = ""
    reasons = frames.get("by_exit_reason")
    if reasons is not None:
        out += ("<h3>By exit reason</h3>"
                + _table(["Exit reason"] + head[1:], _group_rows(reasons.reindex(EXIT_REASONS),
                                                                 REASON_LABELS))
                + '<p class="note">Max-hold exits are recorded as signal exits (they fill like '
                "one, at the next open).</p>")
    sides = frames.get("by_side")
    if sides is not None:
        out += "<h3>Long and short</h3>" + _table(["Side"] + head[1:], _group_rows(sides.reindex(SIDES)))
    p, h = ta.get("pnl") or {}, ta.get("holding_hours") or {}
    stats = ("mean", "median", "std", "q05", "q95", "min", "max")
    rows = [f'<tr><td class="l">{_e(name)}</td>' + "".join(_td(_num(d.get(k))) for k in stats) + "</tr>"
            for name, d in (("PnL per trade", p), ("Holding time (hours)", h))]
    out += ("<h3>Distributions</h3>"
            + _table(["", "Mean", "Median", "Std", "5 %", "95 %", "Min", "Max"], rows)
            + f'<p class="note">Expectancy (mean PnL per trade) {_num(ta.get("expectancy"))}; '
            f"payoff ratio (average win / average loss) {_num(ta.get('payoff_ratio'), 3)}.</p>")
    return out


def exposure_table(analysis: dict) -> str:
    ex = analysis.get("exposure") or {}
    if not ex.get("available"):
        return f'<p class="note">Exposure {_e(ex.get("note") or "unavailable")}.</p>'
    items = [("Gross exposure", _num(ex.get("mean_gross"), 0), _num(ex.get("max_gross"), 0),
              ex.get("max_gross_at")),
             ("Net exposure (largest either way)", _num(ex.get("mean_net"), 0),
              _num(ex.get("max_abs_net"), 0), ex.get("max_abs_net_at")),
             ("Leverage (gross / equity)", f"{_num(ex.get('mean_leverage'), 3)}x",
              f"{_num(ex.get('max_leverage'), 3)}x", ex.get("max_leverage_at")),
             ("Margin in use", _num(ex.get("mean_margin"), 0), _num(ex.get("max_margin"), 0),
              ex.get("max_margin_at")),
             ("Margin / equity", _pct(ex.get("mean_margin_to_equity")),
              _pct(ex.get("max_margin_to_equity")), ex.get("max_margin_to_equity_at"))]
    rows = [f'<tr><td class="l">{_e(k)}</td>{_td(a)}{_td(b)}<td class="l">{_e(_when(t))}</td></tr>'
            for k, a, b, t in items]
    return (_table(["", "Mean over bars", "Maximum", "At (UTC)"], rows, left={0, 3})
            + f'<p class="note">Time in market (a trade open at the close): '
            f"{_pct(ex.get('time_in_market'), 1)}. Notional at entry prices, in account currency.</p>")


def turnover_table(analysis: dict) -> str:
    tv = analysis.get("turnover") or {}
    wh = (analysis.get("weights_history") or {}).get("n_estimates", 0)
    rows = [f'<tr><td class="l">{_e(k)}</td>{_td(v)}</tr>' for k, v in (
        ("Rebalances that moved cash", _int(tv.get("n_rebalances"))),
        ("Cash moved in all", _num(tv.get("total_moved"), 0)),
        ("Turnover in all (one way, % of equity)", _pct(tv.get("total_turnover"))),
        ("Mean turnover per rebalance", _pct(tv.get("mean_turnover"), 3)),
        ("Annualised turnover", _pct(tv.get("annualised_turnover"))),
        ("Target weight sets (start and re-estimates)", _int(wh)))]
    return _table(["", "Value"], rows)


def cost_tables(analysis: dict) -> str:
    c = analysis.get("costs") or {}
    p = c.get("portfolio") or {}
    if not c.get("available"):
        return (f'<p class="note">Spread and slippage {_e(c.get("note") or "unavailable")}. '
                f"Commission paid: {_num(p.get('commission'))}.</p>")
    keys = [("gross_pnl", "Gross PnL"), ("commission", "Commission"), ("spread", "Spread"),
            ("slippage", "Slippage"), ("total_costs", "Total costs"), ("net_pnl", "Net PnL")]
    signed = ("gross_pnl", "net_pnl")
    rows = [f'<tr><td class="l">{_e(label)}</td>'
            f'{_td(_num(p.get(k)), _signed_cls(p.get(k)) if k in signed else "")}</tr>' for k, label in keys]
    rows.append(f'<tr><td class="l">Costs / |gross PnL|</td>{_td(_pct(p.get("costs_to_gross"), 1))}</tr>')
    out = "<h3>Portfolio</h3>" + _table(["", "Account currency"], rows)
    frame = (analysis.get("frames") or {}).get("costs")
    if frame is not None and len(frame):
        shown, note = _edges(frame, "total_costs", "total costs")
        rows = [f'<tr><td class="l">{_e(a)}</td>' + "".join([
            _td(_int(r["n_trades"])), _td(_num(r["gross_pnl"], 0), _signed_cls(r["gross_pnl"])),
            _td(_num(r["commission"], 0)), _td(_num(r["spread"], 0)), _td(_num(r["slippage"], 0)),
            _td(_num(r["total_costs"], 0)), _td(_num(r["net_pnl"], 0), _signed_cls(r["net_pnl"])),
            _td(_pct(r["costs_to_gross"], 1))]) + "</tr>" for a, r in shown.iterrows()]
        rows.append('<tr class="total"><td class="l">Portfolio</td>' + "".join([
            _td(_int(p.get("n_trades"))), _td(_num(p.get("gross_pnl"), 0)),
            _td(_num(p.get("commission"), 0)), _td(_num(p.get("spread"), 0)),
            _td(_num(p.get("slippage"), 0)), _td(_num(p.get("total_costs"), 0)),
            _td(_num(p.get("net_pnl"), 0)), _td(_pct(p.get("costs_to_gross"), 1))]) + "</tr>")
        out += ("<h3>Per sleeve</h3>" + note
                + _table(["Asset", "Trades", "Gross PnL", "Commission", "Spread", "Slippage",
                          "Total costs", "Net PnL", "Costs / |gross|"], rows)
                + '<p class="note">Gross PnL = net PnL + commission + spread + slippage, so the '
                "costs are exactly gross minus net. Net PnL is the trades' PnL (net of "
                "commission): each sleeve's PnL net of rebalancing transfers, as every trade is "
                "closed by the last bar.</p>")
    return out


def figure_tables(analysis: dict) -> dict[str, str]:
    """``{figure file: HTML}``: the tables shown under each tear-sheet figure."""
    return {"drawdown.png": drawdown_tables(analysis),
            "monthly_returns.png": monthly_tables(analysis),
            "asset_monthly_returns.png": asset_year_table(analysis),
            "trades.png": trade_tables(analysis), "costs.png": cost_tables(analysis),
            "exposure.png": exposure_table(analysis), "weights.png": turnover_table(analysis)}
