"""Build a run folder's report: the PNG figures, ``portfolio_summary.txt``,
``analysis.json`` and one self-contained ``report.html``.

:func:`build_report` reads the run folder written by
:func:`raybt.report_files.write_portfolio_run` (``portfolio_equity.csv`` is
required; every other file is optional), runs
:func:`raybt.analysis.analyse_run` (always with ``multipliers=`` so
rebalancing cash transfers are not counted as sleeve PnL) and writes
everything back into the folder.  The HTML embeds the figures as base64
``data:`` URIs and uses inline CSS only: no scripts, no external links.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from raybt import metrics as _m
from raybt.analysis import analyse_run, analysis_to_json, write_portfolio_summary
from raybt.phases import PhaseTimer, phase
from raybt.plots import figures as F
from raybt.run_folder import ReportError, _read_equity, load_run, run_from_result  # noqa: F401

__all__ = ["FIGURES", "build_report", "load_run", "write_figures", "render_html"]


#: figure file -> (title, one-line caption)
FIGURES: dict[str, tuple[str, str]] = {
    "equity.png": ("Equity", "Portfolio equity (thick) and each asset's sleeve (thin), "
                   "normalised to 1.0 at the start; sleeves net of rebalancing transfers. "
                   f"Beyond {F.MANY_ASSETS} sleeves: the 5-95 % and 25-75 % bands across "
                   "sleeves, their median and the best and worst three sleeves by name; "
                   "a log scale when the curves span more than a factor of ten."),
    "drawdown.png": ("Drawdown", "Portfolio drawdown from its running peak; breaker trips "
                     "(red), resumes (green, dashed) and halted periods (grey)."),
    "correlation.png": ("Correlation", "Pearson correlation of the sleeves' per-bar returns "
                        "(colour scale fixed to -1..1), assets ordered by hierarchical "
                        f"clustering; values written below the diagonal up to {F.MANY_ASSETS} "
                        "assets, only every k-th asset labelled when they do not all fit."),
    "attribution.png": ("Attribution", "PnL per asset (excluding rebalancing transfers) and "
                        "each asset's share of portfolio variance at its average weight. "
                        f"Beyond {F.MAX_BARS} assets: the {F.MAX_BARS - 5} largest by |PnL|, "
                        "the rest summed as 'others'."),
    "frontier.png": ("Efficient frontier", "Long-only mean-variance frontier of the sleeves, "
                     "each asset, the actual portfolio and the equal-weight mix (annualised). "
                     f"Beyond {F.MAX_BARS} assets only the five best and five worst by "
                     "return / volatility are labelled."),
    "rolling_sharpe.png": ("Rolling Sharpe", "Annualised Sharpe ratio of the portfolio over a "
                           "rolling ~30-day window of bars."),
    "multipliers.png": ("Risk multipliers", "Per-chunk mean size multiplier with its drawdown "
                        "and correlation factors, halted chunks shaded, rebalances marked."),
}

MAX_EVENT_ROWS = 50


# ------------------------------------------------------------------ figures

def _point(points: dict | None, key: str):
    v = (points or {}).get(key)
    if v is None or len(v) != 2:
        return None
    return (float(v[0]), float(v[1]))


def _breaker_level(config: dict | None) -> float | None:
    risk = (config or {}).get("risk") or {}
    if not isinstance(risk, dict) or risk.get("enabled") is False:
        return None
    v = risk.get("max_portfolio_drawdown")
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and 0 < v < 1 else None


def write_figures(run_dir, analysis: dict, *, equity: pd.DataFrame | None = None,
                  events: pd.DataFrame | None = None,
                  multipliers: pd.DataFrame | None = None,
                  config: dict | None = None, frontier: bool = True,
                  window_days: float = 30.0, timer=None) -> dict[str, Path]:
    """Write the seven PNGs of :data:`FIGURES` into ``run_dir``.

    ``analysis`` is :func:`raybt.analysis.analyse_run`'s result for the run;
    ``equity`` the ``portfolio_equity`` frame (read from ``run_dir`` when
    None); ``events``/``multipliers`` the loaded CSVs (optional);
    ``config`` the run's config dict (for the breaker level).  With
    ``frontier=False`` the frontier figure shows the points only.  Each
    figure, with the data it alone needs, is timed as the phase
    ``figure.<file name>`` of ``timer`` (a :class:`raybt.phases.PhaseTimer`,
    optional).  Returns ``{file name: path}`` in :data:`FIGURES` order.
    """
    from raybt.phases import phase

    run_dir = Path(run_dir)
    if equity is None:
        equity = _read_equity(run_dir)
    frames = analysis.get("frames", {})
    assets = list(analysis.get("assets") or [c for c in equity.columns
                                              if c not in ("equity", "drawdown")])
    returns = frames.get("returns")
    port = F._portfolio_series(equity)

    out = {}
    with phase(timer, "figure.equity.png"):
        out["equity.png"] = F.plot_equity(equity, run_dir / "equity.png", returns=returns,
                                          assets=assets)
    with phase(timer, "figure.drawdown.png"):
        if "drawdown" in equity.columns:
            dd = equity["drawdown"].astype(float)
        else:
            dd = _m.drawdown_series(port)
        out["drawdown.png"] = F.plot_drawdown(dd, run_dir / "drawdown.png", events=events,
                                              breaker_level=_breaker_level(config))
    with phase(timer, "figure.correlation.png"):
        corr = frames.get("correlation")
        if corr is None:
            c = analysis.get("correlation") or {}
            corr = pd.DataFrame(c.get("matrix") or [], index=c.get("assets") or [],
                                columns=c.get("assets") or [])
        out["correlation.png"] = F.plot_correlation(corr, run_dir / "correlation.png")
    with phase(timer, "figure.attribution.png"):
        pnl = pd.Series(analysis.get("pnl_attribution") or {}, dtype=float).reindex(assets)
        risk = pd.Series(analysis.get("risk_attribution") or {}, dtype=float).reindex(assets)
        out["attribution.png"] = F.plot_attribution(pnl, risk, run_dir / "attribution.png")
    with phase(timer, "figure.frontier.png"):
        ppy = analysis.get("periods_per_year", math.nan)
        if analysis.get("asset_points"):  # each sleeve on the frontier's axes, from the analysis' own moments
            apts = pd.DataFrame.from_dict(analysis["asset_points"], orient="index",
                                          columns=["volatility", "return"], dtype=float)
        elif returns is not None and ppy and math.isfinite(ppy):
            apts = F.asset_frontier_points(returns, ppy)
        else:
            apts = pd.DataFrame(columns=["volatility", "return"], dtype=float)
        points = analysis.get("points") or {}
        out["frontier.png"] = F.plot_frontier(
            frames.get("frontier") if frontier else None, apts, run_dir / "frontier.png",
            portfolio=_point(points, "portfolio"), equal_weight=_point(points, "equal_weight"),
            target_weights=_point(points, "weights"))
    with phase(timer, "figure.rolling_sharpe.png"):
        out["rolling_sharpe.png"] = F.plot_rolling_sharpe(
            port, run_dir / "rolling_sharpe.png", window_days=window_days)
    with phase(timer, "figure.multipliers.png"):
        out["multipliers.png"] = F.plot_multipliers(multipliers, run_dir / "multipliers.png",
                                                    events=events)
    return out


# ------------------------------------------------------------------ HTML

_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;
background:#f4f5f7;color:#1d2330;font-size:14px;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
header.top{background:#1f3b73;color:#fff;padding:22px 28px}
header.top h1{margin:0 0 6px;font-size:24px}
header.top p{margin:2px 0;opacity:.92}
h2{font-size:18px;margin:32px 0 10px;border-bottom:2px solid #d5dbe6;padding-bottom:4px}
section{background:#fff;border-radius:6px;padding:14px 18px 18px;margin-top:18px;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
section h2{margin-top:4px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #e3e7ee;text-align:right;white-space:nowrap}
th{background:#eef1f6;font-weight:600}
td.l,th.l{text-align:left}
tr.total td{font-weight:600;border-top:2px solid #9aa5b8}
.pos{color:#1e7b45}.neg{color:#b3261e}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
.kpi{background:#f7f9fc;border:1px solid #e3e7ee;border-radius:5px;padding:8px 10px}
.kpi .v{font-size:18px;font-weight:600}
.kpi .k{font-size:12px;color:#5a6477}
figure{margin:8px 0 0}
figure img{max-width:100%;height:auto;border:1px solid #e3e7ee}
figcaption{font-size:13px;color:#4a5468;margin-top:4px}
pre{background:#f7f9fc;border:1px solid #e3e7ee;padding:10px;overflow-x:auto;font-size:12.5px}
.note{font-size:12.5px;color:#5a6477}
.scroll{overflow-x:auto}
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _finite(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and math.isfinite(float(v))


def _pct(v, digits: int = 2) -> str:
    return f"{100.0 * float(v):.{digits}f} %" if _finite(v) else "n/a"


def _num(v, digits: int = 2) -> str:
    return f"{float(v):,.{digits}f}" if _finite(v) else "n/a"


def _int(v) -> str:
    return f"{int(v):,d}" if _finite(v) else "n/a"


def _signed_cls(v) -> str:
    if not _finite(v) or float(v) == 0:
        return ""
    return "pos" if float(v) > 0 else "neg"


def _td(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{_e(text)}</td>' if cls else f"<td>{_e(text)}</td>"


def _table(headers: list[str], rows: list[str], left=1) -> str:
    """A table; ``left`` = number of leading left-aligned columns, or a set
    of column indexes to left-align."""
    lefts = set(range(left)) if isinstance(left, int) else set(left)
    head = "".join(f'<th class="l">{_e(h)}</th>' if i in lefts else f"<th>{_e(h)}</th>"
                   for i, h in enumerate(headers))
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


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


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def _period(equity: pd.DataFrame) -> tuple[str, str, float]:
    idx = equity.index
    years = _m.years_spanned(equity.iloc[:, 0]) if len(idx) > 1 else math.nan
    return (f"{idx[0]:%Y-%m-%d %H:%M}", f"{idx[-1]:%Y-%m-%d %H:%M} UTC", years)


def render_html(run: dict, analysis: dict, figures: dict[str, Path]) -> str:
    """The report page as a string (see :func:`build_report`)."""
    run_dir: Path = run.get("final_dir") or run["run_dir"]  # the name the run has once finished
    cfg = run.get("config") or {}
    info = run.get("run_info") or {}
    equity = run["equity"]
    name = str(cfg.get("name") or run_dir.name)
    start, end, years = _period(equity)
    engine = cfg.get("engine_used") or info.get("engine") or (
        (cfg.get("engine") or {}).get("name") if isinstance(cfg.get("engine"), dict) else None)
    assets = list(analysis.get("assets") or [])
    pm = dict((run.get("metrics") or {}).get("portfolio") or {})
    desc = cfg.get("description")

    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_e(name)}: raybt portfolio report</title>",
             f"<style>{_CSS}</style></head><body>"]
    meta = [f"Period: {start} .. {end}"
            + (f" ({years:.2f} years, {len(equity):,} bars)" if _finite(years) else ""),
            f"Engine: {engine or 'n/a'}"
            + (f" · raybt {info['raybt_version']}" if info.get("raybt_version") else "")
            + (f" · {(info.get('timings') or info)['n_chunks']} chunks"
               if (info.get("timings") or info).get("n_chunks") else "")
            + (f" · config {info['config_hash'][:12]}" if info.get("config_hash") else ""),
            f"Assets ({len(assets)}): {', '.join(assets)}"]
    if cfg.get("allocation") and isinstance(cfg["allocation"], dict):
        meta.append(f"Allocation: {cfg['allocation'].get('model', 'n/a')}"
                    f" · rebalance: {cfg.get('rebalance', 'n/a')}")
    parts.append('<header class="top">'
                 f"<h1>{_e(name)}</h1>"
                 + (f"<p>{_e(desc)}</p>" if desc else "")
                 + "".join(f"<p>{_e(m)}</p>" for m in meta)
                 + f"<p>Run folder: {_e(run_dir)}</p></header><main>")

    parts.append('<section id="metrics"><h2>Key portfolio metrics</h2>'
                 + _kpis(analysis.get("portfolio") or {}, pm) + "</section>")
    flows_note = ("Asset PnL and returns exclude the cash moved between sleeves at "
                  "rebalances." if analysis.get("flows_adjusted") else
                  "Sleeve equity taken at face value (no multipliers.csv: rebalancing "
                  "transfers are not separated).")
    parts.append('<section id="assets"><h2>Per-asset results</h2>' + _asset_rows(analysis)
                 + f'<p class="note">{_e(flows_note)} Returns, drawdowns, weights and win '
                 "rates in percent; Sharpe annualised (risk-free 0); risk share = share of "
                 "portfolio variance at the average weights.</p></section>")
    parts.append('<section id="diversification"><h2>Diversification benefits</h2>'
                 + _diversification(analysis) + "</section>")
    for fname, (title, caption) in FIGURES.items():
        path = figures.get(fname)
        if path is None or not Path(path).is_file():
            continue
        parts.append(f'<section id="{_e(fname.removesuffix(".png"))}"><h2>{_e(title)}</h2>'
                     "<figure>"
                     f'<img src="{_img(path)}" alt="{_e(title)}">'
                     f"<figcaption>{_e(caption)}</figcaption></figure></section>")
    parts.append('<section id="events"><h2>Breaker and rebalance events</h2>'
                 + _events(run.get("events")) + "</section>")
    config_text = run.get("config_text")
    parts.append('<section id="config"><h2>Configuration</h2>'
                 + (f"<pre>{_e(config_text)}</pre>" if config_text
                    else '<p class="note">No config.yaml in the run folder.</p>')
                 + "</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------ entry point

def build_report(run_dir, *, frontier: bool = True, run: dict | None = None,
                 timer: PhaseTimer | None = None, out_dir=None) -> Path:
    """Write the figures, ``portfolio_summary.txt``, ``analysis.json`` and
    ``report.html`` of the run in ``run_dir``; returns the path of ``report.html``.

    ``run``: the run's tables already in memory (:func:`run_from_result`, as
    ``raybt run`` passes them); otherwise they are read from ``run_dir``
    (:func:`load_run`). ``out_dir``: where the files go (default
    ``run_dir``; ``raybt report`` writes into a temporary folder and moves
    each finished file into place). ``timer`` gets one phase per step
    (``report.load``, the analysis steps, each figure, ``report.summary``,
    ``report.html``).

    Raises :data:`ReportError` (``raybt.errors.ConfigError`` unless raybt
    defines a ``ReportError``) naming the file when the folder or its
    ``portfolio_equity`` table is missing or unusable.  Missing optional files
    (trades, weights, metrics, multipliers, events, config) are tolerated.
    """
    if run is None:
        with phase(timer, "report.load"):
            run = load_run(run_dir)
    out_dir = Path(out_dir or run["run_dir"])
    analysis = analyse_run(run["equity"], run["trades"], run["weights"], run["metrics"],
                           multipliers=run["multipliers"], include_frontier=frontier, timer=timer)
    figures = write_figures(out_dir, analysis, equity=run["equity"], events=run["events"],
                            multipliers=run["multipliers"], config=run["config"],
                            frontier=frontier, timer=timer)
    title = run["config"].get("name") or Path(run.get("final_dir") or run["run_dir"]).name
    summary = out_dir / "portfolio_summary.txt"
    write_portfolio_summary(summary, run["equity"], run["trades"], run["metrics"], run["weights"],
                            multipliers=run["multipliers"], analysis=analysis, title=f"Portfolio summary: {title}",
                            timer=timer)
    with phase(timer, "report.json"):
        warnings = (run.get("run_info") or {}).get("warnings") or []
        if warnings:  # degenerate data or results: said first, not buried
            summary.write_text("Warnings\n" + "".join(f"  - {w}\n" for w in warnings) + "\n" + summary.read_text())
        # compact: at 1,000 assets the correlation matrix alone is a million numbers
        (out_dir / "analysis.json").write_text(
            json.dumps(analysis_to_json(analysis), separators=(",", ":")) + "\n", encoding="utf-8")
    with phase(timer, "report.html"):
        out = out_dir / "report.html"
        out.write_text(render_html(run, analysis, figures), encoding="utf-8")
    return Path(run["run_dir"]) / "report.html"
