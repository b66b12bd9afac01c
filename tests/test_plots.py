"""Figures and HTML report of a portfolio run folder (raybt.plots).

A small synthetic run folder (3 assets, ~2,000 five-minute bars, one breaker
trip/resume, one rebalance with capital transfers) is written in a tmp dir
and turned into a report; the PNGs, the HTML and the error paths are checked.
"""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from raybt import errors
from raybt import metrics as M
from raybt.plots import FIGURES, build_report
from raybt.plots import figures as F

ASSETS = ["AAA_5m", "BBB_5m", "CCC_5m"]
N_BARS = 2016  # 7 days of 5-minute bars
PNGS = ["equity.png", "drawdown.png", "monthly_returns.png", "asset_monthly_returns.png",
        "trades.png", "costs.png", "exposure.png", "weights.png", "rolling_sharpe.png",
        "correlation.png", "attribution.png", "frontier.png", "multipliers.png"]


def _write_run(run_dir, name="synthetic <demo> & co"):
    """Write a complete, internally consistent portfolio run folder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    idx = pd.date_range("2024-03-01", periods=N_BARS, freq="5min", tz="UTC")
    start = 100_000.0 / 3
    drift = np.array([4e-5, -3e-5, 1e-5])
    vol = np.array([1.5e-3, 2.0e-3, 1.0e-3])
    common = rng.normal(0, 6e-4, N_BARS)
    r = drift + vol * rng.normal(size=(N_BARS, 3)) + common[:, None] * np.array([1, 0.5, -0.3])
    r[0] = 0.0
    sleeves = start * np.cumprod(1 + r, axis=0)
    # rebalance after day 3: cash moved between sleeves (sums to 0)
    chunk_starts = pd.date_range(idx[0], periods=7, freq="1D")
    reb_chunk = 3
    reb_bar = idx.searchsorted(chunk_starts[reb_chunk])
    transfer = np.array([-800.0, 500.0, 300.0])
    sleeves[reb_bar:] += transfer * (sleeves[reb_bar:] / sleeves[reb_bar])
    eq = pd.DataFrame(sleeves, index=idx, columns=ASSETS)
    port = eq.sum(axis=1)
    frame = pd.concat([port.rename("equity"), M.drawdown_series(port).rename("drawdown"), eq],
                      axis=1)
    frame.to_csv(run_dir / "portfolio_equity.csv", index_label="timestamp")

    trades = []
    for k, a in enumerate(ASSETS):
        for j in range(12):
            t0 = idx[50 + 150 * j + 7 * k]
            pnl = float(rng.normal(5, 60))
            trades.append({"asset": a, "side": "long" if j % 2 else "short", "units": 1.0,
                           "entry_time": t0, "entry_price": 100.0,
                           "exit_time": t0 + pd.Timedelta("45min"), "exit_price": 100.5,
                           "exit_reason": ["tp", "sl", "signal"][j % 3], "pnl": pnl,
                           "commission": 1.5})
    trades = pd.DataFrame(trades)
    trades.to_csv(run_dir / "trades.csv", index=False)
    pd.Series(1 / 3, index=pd.Index(ASSETS, name="asset"), name="weight").to_csv(
        run_dir / "weights.csv")

    mrows = []
    trip, resume = 4, 5
    for c, cs in enumerate(chunk_starts):
        decided = cs - pd.Timedelta("5min") if c else cs
        halted = c == trip  # halted for the chunk after the trip decision
        for k, a in enumerate(ASSETS):
            dd_factor = 0.5 if halted else (1.0 if c < 2 else 0.8)
            corr = 0.9 if (c == 2 and k == 0) else 1.0
            mrows.append({
                "chunk": c, "decided_at": decided, "chunk_start": cs, "asset": a,
                "multiplier": dd_factor * corr, "base": 1.0, "portfolio_risk": 1.0,
                "correlation": corr, "drawdown": dd_factor, "halted": halted,
                "flatten": halted, "max_margin": float("inf"),
                "capital_adjustment": float(transfer[k]) if c == reb_chunk else 0.0,
                "reason": "start" if c == 0 else ("breaker" if halted else "")})
    pd.DataFrame(mrows).to_csv(run_dir / "multipliers.csv", index=False)
    ev = pd.DataFrame([
        {"chunk": reb_chunk, "decided_at": chunk_starts[reb_chunk] - pd.Timedelta("5min"),
         "event": "rebalance", "drawdown": 0.01, "equity": 99_000.0},
        {"chunk": trip, "decided_at": chunk_starts[trip] - pd.Timedelta("5min"),
         "event": "trip", "drawdown": 0.031, "equity": 97_000.0},
        {"chunk": resume, "decided_at": chunk_starts[resume] - pd.Timedelta("5min"),
         "event": "resume", "drawdown": 0.02, "equity": 98_000.0},
    ])
    ev.to_csv(run_dir / "events.csv", index=False)

    metrics = {"portfolio": M.json_safe(M.compute_metrics(port, trades)),
               "assets": {a: M.json_safe(M.compute_metrics(eq[a], trades[trades["asset"] == a]))
                          for a in ASSETS}}
    (run_dir / "metrics.json").write_text(json.dumps(metrics, default=str))
    config = {"name": name, "description": "test run", "assets": ASSETS,
              "initial_capital": 100_000.0, "allocation": {"model": "equal_weight"},
              "rebalance": "weekly",
              "risk": {"enabled": True, "max_portfolio_drawdown": 0.03},
              "engine": {"chunk": "1D"}, "engine_used": "local"}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    params = {a: {"contract_size": cs, "leverage": 10.0, "spread": 0.02, "slippage": 0.01}
              for a, cs in zip(ASSETS, (1.0, 10.0, 100.0))}
    (run_dir / "run_info.json").write_text(json.dumps({"raybt_version": "0.1.0", "n_chunks": 7,
                                                       "asset_params": params}))
    pd.DataFrame([[0, idx[0], *[1 / 3] * 3]], columns=["chunk", "decided_at", *ASSETS]).to_csv(
        run_dir / "weights_history.csv", index=False)
    return run_dir


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run_dir = _write_run(tmp_path_factory.mktemp("plots") / "run")
    out = build_report(run_dir)
    return run_dir, out


def test_every_png_is_a_real_image(report):
    import matplotlib.image as mpimg

    run_dir, _ = report
    assert sorted(PNGS) == sorted(FIGURES)
    for name in PNGS:
        path = run_dir / name
        assert path.is_file(), name
        assert path.stat().st_size > 10_000, name
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 250 and img.shape[1] > 400, name
        rgb = img[..., :3].reshape(-1, 3)
        assert float(np.ptp(rgb)) > 0.5, f"{name} is (nearly) one colour"
        assert len(np.unique(rgb[:: max(1, len(rgb) // 50_000)], axis=0)) > 20, name


def test_html_is_self_contained_and_embeds_every_figure(report):
    run_dir, out = report
    assert out == run_dir / "report.html"
    text = out.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == len(PNGS)
    for name in PNGS:
        b64 = base64.b64encode((run_dir / name).read_bytes()).decode("ascii")
        assert f"data:image/png;base64,{b64}" in text, name
    # outside the base64 payloads (which may contain any 4 letters by chance)
    # nothing refers to another resource
    markup = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text).lower()
    assert "http" not in markup
    assert "<script" not in markup
    assert "href" not in markup
    assert "url(" not in markup and "@import" not in markup
    assert all(src.startswith("data:image/png;base64,")
               for src in re.findall(r'src="([^"]*)"', text))


def test_html_sections_tables_and_escaping(report):
    run_dir, out = report
    text = out.read_text(encoding="utf-8")
    assets_section = text[text.index('id="assets"'):text.index('id="diversification"')]
    for a in ASSETS:
        assert f">{a}<" in assets_section
    for word in ("Key portfolio metrics", "Diversification benefits",
                 "Breaker and rebalance events", "Configuration", "Sharpe", "Win rate",
                 "Portfolio: return per month and year (%)",
                 "Sleeves: time-weighted return per year (%)", "By exit reason", "Long and short",
                 "Per sleeve", "Gross PnL", "Margin / equity", "Rebalances that moved cash",
                 "The breaker: what it measured at each trip and resume"):
        assert word in text, word
    n = json.loads((run_dir / "analysis.json").read_text())["drawdowns"]["count"]
    assert f"Top {min(n, 10)} drawdowns (of {n})" in text
    sections = re.findall(r'<section id="([^"]+)"', text)
    assert sections == ["metrics", "assets", "diversification",
                        *[f.removesuffix(".png") for f in FIGURES], "events", "config"]
    events = text[text.index('id="events"'):text.index('id="config"')]
    assert "3 events" in events and ">trip<" in events and ">rebalance<" in events
    # the run name is escaped, never raw markup
    assert "synthetic &lt;demo&gt; &amp; co" in text
    assert "<demo>" not in text
    for fname, (_title, caption) in FIGURES.items():
        assert caption.replace("'", "&#x27;") in text, fname


def test_side_files_written(report):
    run_dir, _ = report
    summary = (run_dir / "portfolio_summary.txt").read_text()
    assert all(a in summary for a in ASSETS)
    analysis = json.loads((run_dir / "analysis.json").read_text())
    assert analysis["assets"] == ASSETS
    assert analysis["flows_adjusted"] is True  # multipliers were passed
    # flow-adjusted PnL adds up to the portfolio PnL (transfers net out)
    total = sum(analysis["pnl_attribution"].values())
    assert total == pytest.approx(analysis["portfolio"]["pnl"], rel=1e-9, abs=1e-6)


def test_report_summary_equals_a_standalone_summary(report):
    """build_report reuses its analysis for portfolio_summary.txt: same text as computing it afresh."""
    from raybt.analysis import write_portfolio_summary
    from raybt.plots.report import load_run

    run_dir, _ = report
    run = load_run(run_dir)
    fresh = write_portfolio_summary(run_dir / "fresh_summary.txt", run["equity"], run["trades"], run["metrics"],
                                    run["weights"], multipliers=run["multipliers"],
                                    title=f"Portfolio summary: {run['config'].get('name') or run_dir.name}")
    assert fresh.read_text() == (run_dir / "portfolio_summary.txt").read_text()
    assert "excluded from asset PnL" in fresh.read_text()


def test_no_pyplot_figures_leak(report):
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_missing_equity_file_raises_naming_it(tmp_path):
    run_dir = _write_run(tmp_path / "run")
    (run_dir / "portfolio_equity.csv").unlink()
    cls = getattr(errors, "ReportError", errors.ConfigError)
    with pytest.raises(cls, match="portfolio_equity.csv"):
        build_report(run_dir)
    with pytest.raises(errors.RaybtError, match="run folder not found"):
        build_report(tmp_path / "nope")


def test_missing_optional_files_do_not_crash(tmp_path):
    run_dir = _write_run(tmp_path / "run")
    for f in ("trades.csv", "multipliers.csv", "weights.csv", "metrics.json",
              "config.yaml", "run_info.json"):
        (run_dir / f).unlink()
    (run_dir / "events.csv").write_text("chunk,decided_at,event,drawdown,equity\n")
    out = build_report(run_dir, frontier=False)
    text = out.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == len(PNGS)
    assert "No breaker or rebalance events" in text
    assert "No config.yaml" in text
    for name in PNGS:
        assert (run_dir / name).stat().st_size > 5_000


def test_empty_trades_and_events_files(tmp_path):
    run_dir = _write_run(tmp_path / "run")
    (run_dir / "trades.csv").write_text("")
    (run_dir / "events.csv").write_text("")
    out = build_report(run_dir)
    assert out.is_file()


def test_downsample_keeps_first_row_and_limits_points():
    idx = pd.date_range("2024-01-01", periods=105_120, freq="5min", tz="UTC")
    s = pd.Series(np.arange(len(idx), dtype=float), index=idx)
    d = F.downsample(s)
    assert len(d) <= F.MAX_POINTS
    assert d.index[0] == idx[0] and d.iloc[0] == 0.0
    assert d.iloc[-1] == s.iloc[-1]
    short = s.iloc[:100]
    assert F.downsample(short) is short


def test_plot_functions_handle_empty_inputs(tmp_path):
    empty = pd.DataFrame(columns=["volatility", "return"], dtype=float)
    F.plot_frontier(None, empty, tmp_path / "f.png")
    F.plot_multipliers(None, tmp_path / "m.png")
    F.plot_correlation(pd.DataFrame(), tmp_path / "c.png")
    F.plot_attribution(pd.Series(dtype=float), pd.Series(dtype=float), tmp_path / "a.png")
    F.plot_drawdown(pd.Series(dtype=float), tmp_path / "d.png")
    for f in ("f", "m", "c", "a", "d"):
        assert (tmp_path / f"{f}.png").is_file()


def test_many_assets_correlation_and_attribution(tmp_path):
    names = [f"ASSET{i:02d}_5m" for i in range(18)]
    rng = np.random.default_rng(1)
    corr = pd.DataFrame(np.corrcoef(rng.normal(size=(18, 200))), index=names, columns=names)
    F.plot_correlation(corr, tmp_path / "c.png")
    F.plot_attribution(pd.Series(rng.normal(0, 1e4, 18), index=names),
                       pd.Series(rng.dirichlet(np.ones(18)), index=names), tmp_path / "a.png")
    assert (tmp_path / "c.png").stat().st_size > 10_000
    assert (tmp_path / "a.png").stat().st_size > 10_000

