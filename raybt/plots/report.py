"""Build a run folder's report: the PNG figures, ``portfolio_summary.txt``,
``analysis.json`` and one self-contained ``report.html``.

:func:`build_report` reads the run folder written by
:func:`raybt.report_files.write_portfolio_run` (``portfolio_equity.csv`` is
required; every other file is optional), runs
:func:`raybt.analysis.analyse_run` (always with ``multipliers=`` so
rebalancing cash transfers are not counted as sleeve PnL, and with the
events, asset parameters and target weight history for the tear sheet) and
writes everything back into the folder.  The HTML embeds the figures as
base64 ``data:`` URIs and uses inline CSS only: no scripts, no external links.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from raybt import metrics as _m
from raybt.analysis import analyse_run, analysis_to_json, write_portfolio_summary
from raybt.phases import PhaseTimer, phase
from raybt.plots import figures as F
from raybt.analysis.periods import MONTHS
from raybt.plots import sections as S
from raybt.plots.activity import TOP_N
from raybt.plots.pool import FigureJob, FigurePool, draw_figures
from raybt.plots.html import _CSS, _e, _finite, _img
from raybt.plots.sheet import TOP_ASSETS
from raybt.run_folder import ReportError, _read_equity, load_run, run_from_result  # noqa: F401

__all__ = ["FIGURES", "build_report", "load_run", "write_figures", "render_html"]


#: figure file -> (title, one-line caption), in the order of the report
FIGURES: dict[str, tuple[str, str]] = {
    "equity.png": ("Equity", "Portfolio equity (thick) and each asset's sleeve (thin), "
                   "normalised to 1.0 at the start; sleeves net of rebalancing transfers. "
                   "Beyond ten sleeves the colours repeat with another dash. "
                   f"Beyond {F.MANY_ASSETS} sleeves: the 5-95 % and 25-75 % bands across "
                   "sleeves, their median and the best and worst three sleeves by name; "
                   "a log scale when the curves span more than a factor of ten."),
    "drawdown.png": ("Drawdown", "Portfolio drawdown from its all-time peak (filled) and, "
                     "once the breaker has resumed, the drawdown the breaker measures: from "
                     "its own peak, reset at each resume (blue line). The breaker level "
                     "applies to the breaker's drawdown; trips (down triangles) and resumes "
                     "(up triangles) sit at the drawdown the breaker measured, halted periods "
                     "shaded (widened to stay visible). The table lists the deepest drawdown "
                     "periods: peak, trough, recovery."),
    "monthly_returns.png": ("Monthly returns", "The portfolio's compounded return in each "
                            "UTC month and year (percent); the table gives the same numbers."),
    "asset_monthly_returns.png": ("Monthly returns per sleeve", "Each sleeve's compounded "
                                  "time-weighted return per month (net of rebalancing "
                                  "transfers) and in total, best on top. Beyond "
                                  f"{F.MANY_ASSETS} sleeves: the {TOP_ASSETS} best and worst. "
                                  "The table gives each sleeve's return per year."),
    "trades.png": ("Trades", "Distribution of trade PnL (net of commission) and of holding "
                   "time; total PnL by exit reason (max-hold exits are recorded as signal) "
                   "and by side, with counts, win rates and averages in the tables."),
    "costs.png": ("Costs", "Gross PnL of the trades, then commission, spread and slippage "
                  "(entries and signal exits pay spread / 2 + slippage per unit; stop, "
                  "take-profit, end, stop-out and breaker exits pay none), giving the net PnL; "
                  f"per sleeve, the largest costs on top; beyond {F.MANY_ASSETS} sleeves the "
                  f"{TOP_N} with the largest costs, the rest summed in the panel's title."),
    "exposure.png": ("Exposure and leverage", "Gross and net notional of the open trades "
                     "(units x entry price x contract size), leverage (gross exposure / "
                     "portfolio equity) and margin in use (notional / leverage) against "
                     "equity, at each bar's close."),
    "weights.png": ("Weights and turnover", "Each sleeve's share of portfolio equity over "
                    "time (stacked) against the target weights (dashed), and the one-way "
                    "turnover of each rebalance (cash moved between sleeves / portfolio "
                    f"equity). Beyond {F.MANY_ASSETS} sleeves: percentile bands of the shares "
                    "across sleeves, the three largest and three smallest named."),
    "rolling_sharpe.png": ("Rolling Sharpe", "Annualised Sharpe ratio of the portfolio over a "
                           "rolling ~30-day window of bars."),
    "correlation.png": ("Correlation", "Pearson correlation of the sleeves' per-bar returns "
                        "(colour scale fixed to -1..1), assets ordered by hierarchical "
                        f"clustering; values written below the diagonal up to {F.MANY_ASSETS} "
                        "assets, only every k-th asset labelled when they do not all fit."),
    "attribution.png": ("Attribution", "PnL per asset (excluding rebalancing transfers) and "
                        "each asset's share of portfolio variance at its average weight. "
                        f"Beyond {F.MAX_BARS} assets: the {F.MAX_BARS - 5} largest by |PnL|, "
                        "the rest summed as 'others'."),
    "frontier.png": ("Efficient frontier", "Long-only mean-variance frontier of the sleeves, "
                     "each asset, the actual portfolio and the equal-weight mix, as annualised "
                     "volatility and annualised arithmetic mean return (mean per-bar return "
                     "x bars per year: not the compounded total return). Assets beyond the "
                     "robust axis range are drawn at its edge with their values. "
                     f"Beyond {F.MAX_BARS} assets only the five best and five worst by "
                     "return / volatility are labelled."),
    "multipliers.png": ("Risk multipliers", "Per-chunk mean size multiplier with its drawdown "
                        "and correlation factors, halted chunks shaded, rebalances marked."),
}

MAX_EVENT_ROWS = S.MAX_EVENT_ROWS


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


#: relative drawing time of each figure (median CPU seconds of nine passes over the default run's
#: figures, drawn one by one, with FittedLayout, 2026-12-02), for the order in which a FigurePool
#: starts them (longest first)
FIGURE_COST = {"asset_monthly_returns.png": 0.51, "correlation.png": 0.46, "weights.png": 0.35,
               "trades.png": 0.35, "costs.png": 0.33, "equity.png": 0.31, "frontier.png": 0.31, "exposure.png": 0.30,
               "attribution.png": 0.24, "drawdown.png": 0.21, "multipliers.png": 0.16,
               "rolling_sharpe.png": 0.15, "monthly_returns.png": 0.14}


def write_figures(run_dir, analysis: dict, *, equity: pd.DataFrame | None = None,
                  events: pd.DataFrame | None = None,
                  multipliers: pd.DataFrame | None = None,
                  config: dict | None = None, frontier: bool = True,
                  window_days: float = 30.0, timer=None, pool: FigurePool | None = None) -> dict[str, Path]:
    """Write the PNGs of :data:`FIGURES` into ``run_dir``.

    ``analysis`` is :func:`raybt.analysis.analyse_run`'s result for the run
    (the tear-sheet figures read its tear-sheet keys and frames and say
    "no data" or why a view is unavailable when they are missing);
    ``equity`` the ``portfolio_equity`` frame (read from ``run_dir`` when
    None); ``events``/``multipliers`` the loaded tables (optional); ``config``
    the run's config dict (for the breaker level).  With ``frontier=False``
    the frontier figure shows the points only.  ``pool``: a
    :class:`raybt.plots.pool.FigurePool` drawing them in parallel (timed as
    ``figure.parallel``); without one each figure is drawn here and timed as
    the phase ``figure.<file name>`` of ``timer`` (a
    :class:`raybt.phases.PhaseTimer`, optional).  Returns ``{file name:
    path}`` in :data:`FIGURES` order.
    """
    run_dir = Path(run_dir)
    if equity is None:
        equity = _read_equity(run_dir)
    jobs = figure_jobs(run_dir, analysis, equity, events=events, multipliers=multipliers, config=config,
                       frontier=frontier, window_days=window_days)
    return draw_figures(jobs, timer, pool)


def figure_jobs(run_dir: Path, analysis: dict, equity: pd.DataFrame, *, events=None, multipliers=None,
                config: dict | None = None, frontier: bool = True, window_days: float = 30.0) -> list[FigureJob]:
    """What each figure of :data:`FIGURES` draws: its ``plot_*`` function and inputs."""
    frames = analysis.get("frames", {})
    assets = list(analysis.get("assets") or [c for c in equity.columns
                                              if c not in ("equity", "drawdown")])
    returns = frames.get("returns")
    port = F._portfolio_series(equity)
    dd = equity["drawdown"].astype(float) if "drawdown" in equity.columns else _m.drawdown_series(port)
    table = frames.get("monthly_table")
    if table is None:
        table = pd.DataFrame(columns=[*MONTHS, "Year"], dtype=float)
    monthly = frames.get("monthly_assets")
    total = frames["asset_table"]["return"] if frames.get("asset_table") is not None else None
    c = analysis.get("costs") or {}
    corr = frames.get("correlation")
    if corr is None:
        cm = analysis.get("correlation") or {}
        corr = pd.DataFrame(cm.get("matrix") or [], index=cm.get("assets") or [], columns=cm.get("assets") or [])
    pnl = pd.Series(analysis.get("pnl_attribution") or {}, dtype=float).reindex(assets)
    risk = pd.Series(analysis.get("risk_attribution") or {}, dtype=float).reindex(assets)
    ppy = analysis.get("periods_per_year", math.nan)
    if analysis.get("asset_points"):  # each sleeve on the frontier's axes, from the analysis' own moments
        apts = pd.DataFrame.from_dict(analysis["asset_points"], orient="index",
                                      columns=["volatility", "return"], dtype=float)
    elif returns is not None and ppy and math.isfinite(ppy):
        apts = F.asset_frontier_points(returns, ppy)
    else:
        apts = pd.DataFrame(columns=["volatility", "return"], dtype=float)
    points = analysis.get("points") or {}
    total_return = (analysis.get("portfolio") or {}).get("total_return")

    def job(name, function, *args, **kwargs):  # every plot_* takes its output path after its data
        return FigureJob(name, function, (*args, run_dir / name), kwargs, FIGURE_COST.get(name, 1.0))

    return [
        job("equity.png", F.plot_equity, equity, returns=returns, assets=assets),
        job("drawdown.png", F.plot_drawdown, dd, events=events, breaker_level=_breaker_level(config),
            breaker_drawdown=frames.get("breaker_drawdown")),
        job("monthly_returns.png", F.plot_monthly_returns, table),
        job("asset_monthly_returns.png", F.plot_asset_monthly_returns,
            monthly if monthly is not None else pd.DataFrame(columns=assets, dtype=float), total=total),
        job("trades.png", F.plot_trades, frames.get("trade_analysis")),
        job("costs.png", F.plot_costs, frames.get("costs"), c.get("portfolio"), available=bool(c.get("available")),
            note=c.get("note")),
        job("exposure.png", F.plot_exposure, frames.get("exposure"),
            note=(analysis.get("exposure") or {}).get("note")),
        job("weights.png", F.plot_weights, equity, assets, frames.get("turnover"),
            weights_history=frames.get("weights_history")),
        job("rolling_sharpe.png", F.plot_rolling_sharpe, port, window_days=window_days),
        job("correlation.png", F.plot_correlation, corr),
        job("attribution.png", F.plot_attribution, pnl, risk),
        job("frontier.png", F.plot_frontier, frames.get("frontier") if frontier else None, apts,
            portfolio=_point(points, "portfolio"), equal_weight=_point(points, "equal_weight"),
            target_weights=_point(points, "weights"),
            total_return=float(total_return) if _finite(total_return) else None,
            periods_per_year=float(ppy) if _finite(ppy) else None),
        job("multipliers.png", F.plot_multipliers, multipliers, events=events),
    ]


# ------------------------------------------------------------------ HTML

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
                 + S._kpis(analysis.get("portfolio") or {}, pm) + "</section>")
    flows_note = ("Asset PnL and returns exclude the cash moved between sleeves at "
                  "rebalances." if analysis.get("flows_adjusted") else
                  "Sleeve equity taken at face value (no multipliers.csv: rebalancing "
                  "transfers are not separated).")
    parts.append('<section id="assets"><h2>Per-asset results</h2>' + S._asset_rows(analysis)
                 + f'<p class="note">{_e(flows_note)} Returns, drawdowns, weights and win '
                 "rates in percent; Sharpe annualised (risk-free 0); risk share = share of "
                 "portfolio variance at the average weights.</p></section>")
    parts.append('<section id="diversification"><h2>Diversification benefits</h2>'
                 + S._diversification(analysis) + "</section>")
    tables = S.figure_tables(analysis)  # the tear sheet's tables, under their figures
    for fname, (title, caption) in FIGURES.items():
        path = figures.get(fname)
        if path is None or not Path(path).is_file():
            continue
        parts.append(f'<section id="{_e(fname.removesuffix(".png"))}"><h2>{_e(title)}</h2>'
                     "<figure>"
                     f'<img src="{_img(path)}" alt="{_e(title)}">'
                     f"<figcaption>{_e(caption)}</figcaption></figure>"
                     + tables.get(fname, "") + "</section>")
    parts.append('<section id="events"><h2>Breaker and rebalance events</h2>'
                 + S._events(run.get("events")) + "</section>")
    config_text = run.get("config_text")
    parts.append('<section id="config"><h2>Configuration</h2>'
                 + (f"<pre>{_e(config_text)}</pre>" if config_text
                    else '<p class="note">No config.yaml in the run folder.</p>')
                 + "</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------ entry point

def build_report(run_dir, *, frontier: bool = True, run: dict | None = None,
                 timer: PhaseTimer | None = None, out_dir=None, pool: FigurePool | None = None) -> Path:
    """Write the figures, ``portfolio_summary.txt``, ``analysis.json`` and
    ``report.html`` of the run in ``run_dir``; returns the path of ``report.html``.

    ``run``: the run's tables already in memory (:func:`run_from_result`, as
    ``raybt run`` passes them); otherwise they are read from ``run_dir``
    (:func:`load_run`). ``out_dir``: where the files go (default
    ``run_dir``; ``raybt report`` writes into a temporary folder and moves
    each finished file into place). ``timer`` gets one phase per step
    (``report.load``, the analysis steps, each figure, ``report.summary``,
    ``report.html``). ``pool``: draws the figures in parallel
    (:class:`raybt.plots.pool.FigurePool`).

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
                           multipliers=run["multipliers"], include_frontier=frontier,
                           events=run["events"], asset_params=run.get("asset_params"),
                           weights_history=run.get("weights_history"), timer=timer)
    figures = write_figures(out_dir, analysis, equity=run["equity"], events=run["events"],
                            multipliers=run["multipliers"], config=run["config"],
                            frontier=frontier, timer=timer, pool=pool)
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
