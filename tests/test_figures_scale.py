"""The report figures at many bars and many assets (raybt.plots.figures).

Downsampling keeps every bucket's extremes, summaries replace per-asset
artists beyond a few dozen assets (short legends, top-N bars, a few labelled
points, a clustered heatmap with thinned labels), and what is drawn is
checked on the rendered figure (artists, label boxes, PNG pixels).
"""

from __future__ import annotations

import math
import re
import warnings

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from sleeves import random_sleeves
from raybt.phases import PhaseTimer
from raybt.plots import FIGURES
from raybt.plots import figures as F
from raybt.plots.report import write_figures




def _buckets(n: int, max_points: int) -> list[tuple[int, int]]:
    """The buckets :func:`F.minmax_rows` documents: ceil(n / b) rows each, b = (max_points - 2) // 2."""
    size = math.ceil(n / ((max_points - 2) // 2))
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def _walk(n: int, seed: int, assets: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 1, (n, assets)), axis=0).squeeze()


# ------------------------------------------------------------------ downsampling

@pytest.mark.parametrize("n, max_points", [(200_003, 4000), (10_007, 500), (4001, 4000)])
def test_minmax_rows_keep_each_buckets_min_and_max(n, max_points):
    v = _walk(n, seed=n)
    v[n // 3] -= 500.0  # one-bar trough and peak, far outside the walk
    v[2 * n // 3] += 500.0
    rows = F.minmax_rows(v, max_points)
    assert len(rows) <= max_points
    assert np.all(np.diff(rows) > 0)  # sorted, no repeats
    assert rows[0] == 0 and rows[-1] == n - 1
    kept = set(rows.tolist())
    for a, b in _buckets(n, max_points):
        chunk = v[a:b]
        assert a + int(np.argmin(chunk)) in kept
        assert a + int(np.argmax(chunk)) in kept
    assert v[rows].min() == v.min() and v[rows].max() == v.max()


def test_downsample_is_a_subset_keeping_troughs_peaks_and_ends():
    idx = pd.date_range("2024-01-01", periods=150_000, freq="5min", tz="UTC")
    s = pd.Series(_walk(len(idx), seed=3), index=idx)
    s.iloc[77_777] = s.min() - 40.0
    s.iloc[12_345] = np.nan
    d = F.downsample(s, max_points=1500)
    assert len(d) <= 1500
    clean = s.dropna()
    assert d.index.isin(clean.index).all()
    np.testing.assert_array_equal(d.to_numpy(), clean.reindex(d.index).to_numpy())
    assert d.index[0] == clean.index[0] and d.index[-1] == clean.index[-1]
    assert d.min() == clean.min() and d.idxmin() == idx[77_777]
    assert d.max() == clean.max()
    short = s.iloc[:100]
    assert F.downsample(short) is short


def test_sleeve_growth_samples_equal_the_full_cumulative_product():
    n, m = 25_013, 7
    idx = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")
    rng = np.random.default_rng(5)
    r = rng.normal(0, 2e-3, (n - 1, m))
    r[100, 2], r[200, 4] = np.nan, np.inf  # a sleeve at zero equity: counted as no return
    names = [f"S{i}" for i in range(m)]
    returns = pd.DataFrame(r, index=idx[1:], columns=names)
    equity = pd.DataFrame(100.0 * np.cumprod(1 + np.nan_to_num(r, posinf=0.0), axis=0)
                          .clip(1e-9), index=idx[1:], columns=names)
    equity = pd.concat([pd.DataFrame(100.0, index=idx[:1], columns=names), equity])
    equity.iloc[:50, 6] = 0.0  # a sleeve that starts late
    # from returns
    sl = F._Sleeves(equity, returns, names[::-1])  # column order differs from the frame
    rows, grid = sl.samples()
    full = np.vstack([np.ones(m), np.cumprod(1 + np.where(np.isfinite(r), r, 0.0), axis=0)])
    np.testing.assert_allclose(grid, full[rows][:, ::-1], rtol=1e-12)
    assert rows[0] == 0 and rows[-1] == n - 1 and len(rows) <= F.MAX_POINTS // 2 + 1
    np.testing.assert_allclose(sl.column("S3"), full[:, 3], rtol=1e-12)
    # from equity: divided by the first non-zero value
    sl = F._Sleeves(equity, None, names)
    rows, grid = sl.samples()
    e = equity.to_numpy()
    np.testing.assert_allclose(grid[:, :6], e[rows, :6] / e[0, :6], rtol=1e-12)
    np.testing.assert_allclose(grid[:, 6], e[rows, 6] / e[50, 6], rtol=1e-12)


def test_asset_frontier_points_match_pandas_on_the_finite_rows():
    rng = np.random.default_rng(9)
    r = pd.DataFrame(rng.normal(2e-5, 1e-3, (30_000, 12)), columns=[f"A{i}" for i in range(12)])
    r.iloc[10, 3] = np.inf
    r.iloc[20, 5] = np.nan
    got = F.asset_frontier_points(r, 105_120)
    ok = r.replace([np.inf, -np.inf], np.nan).dropna()
    np.testing.assert_allclose(got["volatility"], ok.std(ddof=1) * math.sqrt(105_120), rtol=1e-9)
    np.testing.assert_allclose(got["return"], ok.mean() * 105_120, rtol=1e-9)
    assert list(got.index) == list(r.columns)


# ------------------------------------------------------------------ what is drawn

def _run(n_assets: int, n_bars: int, seed: int = 1):
    return random_sleeves(n_assets, n_bars, seed)


def test_equity_at_many_sleeves_bands_and_six_named_lines(tmp_path, drawn):
    equity, returns, names = _run(300, 20_000)
    F.plot_equity(equity, tmp_path / "e.png", returns=returns, assets=names)
    fig = drawn[-1]
    ax = fig.axes[0]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(labels) == 10
    final = (1 + returns).prod()
    best = final.sort_values(ascending=False).index[:3]
    worst = final.sort_values().index[:3]
    for a in best:
        assert any(lab.startswith("Best: " + a) for lab in labels), (a, labels)
    for a in worst:
        assert any(lab.startswith("Worst: " + a) for lab in labels), (a, labels)
    assert {"Portfolio", "Median sleeve", "5-95 % of sleeves", "25-75 % of sleeves"} <= set(labels)
    assert "300 sleeves" in ax.get_title()
    assert len(ax.lines) == 9  # six named sleeves, the median, the portfolio, the 1.0 line
    assert all(len(line.get_xdata()) <= F.MAX_POINTS for line in ax.lines)


def test_equity_many_sleeves_from_equity_skips_sleeves_that_never_held_any(tmp_path, drawn):
    equity, _returns, names = _run(40, 8000, seed=7)
    equity = equity.copy()
    equity[names[:4]] = 0.0  # never funded
    equity.iloc[:100, equity.columns.get_loc(names[4])] = 0.0  # funded late
    equity["equity"] = equity[names].sum(axis=1)
    F.plot_equity(equity, tmp_path / "e.png", assets=names)
    labels = [t.get_text() for t in drawn[-1].legends[0].get_texts()]
    live = equity[names[4:]]
    first = live.apply(lambda c: c[c != 0].iloc[0])
    final = live.iloc[-1] / first
    best = final.sort_values(ascending=False).index[:3]
    worst = final.sort_values().index[:3]
    assert [lab.split(" ")[1] for lab in labels if lab.startswith("Best")] == list(best)
    # the legend runs from the highest final value down
    assert [lab.split(" ")[1] for lab in labels if lab.startswith("Worst")] == list(worst)[::-1]
    assert not any(a in " ".join(labels) for a in names[:4])
    assert "net of rebalancing" not in drawn[-1].axes[0].get_title()


def test_equity_few_sleeves_one_line_each_and_ordered_legend(tmp_path, drawn):
    equity, returns, names = _run(6, 30_000, seed=2)
    F.plot_equity(equity, tmp_path / "e.png", returns=returns, assets=names)
    fig = drawn[-1]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    final = (1 + returns).prod()
    final["Portfolio"] = equity["equity"].iloc[-1] / equity["equity"].iloc[0]
    assert labels == list(final.sort_values(ascending=False).index)
    assert all(len(line.get_xdata()) <= F.MAX_POINTS for line in fig.axes[0].lines)


def test_a_one_bar_equity_peak_is_visible_in_the_png(tmp_path, drawn):
    """A spike lasting one bar of 200,000 reaches its height in the image."""
    equity, returns, names = _run(3, 200_000, seed=4)
    equity = equity.copy()
    spike = 123_457
    equity.iloc[spike, 0] = equity["equity"].iloc[spike] * 1.6
    path = F.plot_equity(equity, tmp_path / "e.png", returns=returns, assets=names)
    fig = drawn[-1]
    ax = fig.axes[0]
    img = mpimg.imread(path)
    height = img.shape[0]
    x = F._dates(equity.index[[spike]])[0]
    y = equity["equity"].iloc[spike] / equity["equity"].iloc[0]
    px, py = ax.transData.transform((x, y))
    row, col = int(round(height - py)), int(round(px))
    window = img[row - 2:row + 3, col - 3:col + 4, :3]
    assert (window.max(axis=2) < 0.25).any(), "the portfolio (black) line misses its one-bar peak"
    # and nothing black above it inside the axes: the peak is where the data says
    top = int(math.ceil(height - ax.bbox.y1)) + 3
    assert row - 6 - top > 10
    above = img[top:row - 6, col - 3:col + 4, :3]
    assert not (above.max(axis=2) < 0.25).any()


def test_a_one_bar_drawdown_trough_is_visible_in_the_png(tmp_path, drawn):
    idx = pd.date_range("2024-01-01", periods=200_000, freq="5min", tz="UTC")
    dd = pd.Series(np.abs(np.sin(np.arange(len(idx)) / 9000.0)) * 0.05, index=idx)
    dd.iloc[150_001] = 0.30
    path = F.plot_drawdown(dd, tmp_path / "d.png")
    ax = drawn[-1].axes[0]
    img = mpimg.imread(path)
    x = F._dates(idx[[150_001]])[0]
    px, py = ax.transData.transform((x, -0.30))
    row, col = int(round(img.shape[0] - py)), int(round(px))
    window = img[row - 3:row + 3, col - 3:col + 4, :3]
    red = (window[..., 0] > 0.4) & (window[..., 1] < 0.3) & (window[..., 2] < 0.3)
    assert red.any(), "the 30 % trough is not drawn"
    assert "max 30.00%" in ax.get_title()


def _blocks_corr(n: int, groups: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.permutation(np.arange(n) % groups)
    factors = rng.normal(size=(groups, 400))
    x = factors[label] + 0.8 * rng.normal(size=(n, 400))
    names = [f"G{g}_{i:04d}" for i, g in enumerate(label)]
    return pd.DataFrame(np.corrcoef(x), index=names, columns=names)


def _overlapping(texts, renderer) -> int:
    boxes = [t.get_window_extent(renderer) for t in texts if t.get_text()]
    return sum(boxes[i].overlaps(boxes[j]) for i in range(len(boxes))
               for j in range(i + 1, len(boxes)))


@pytest.mark.parametrize("n", [60, 1000])
def test_correlation_many_assets_clustered_thinned_fixed_scale(tmp_path, drawn, n):
    corr = _blocks_corr(n, groups=5)
    F.plot_correlation(corr, tmp_path / "c.png")
    fig = drawn[-1]
    ax = fig.axes[0]
    im = ax.images[0]
    assert im.get_clim() == (-1.0, 1.0)
    order = F.cluster_order(corr)
    np.testing.assert_array_equal(np.asarray(im.get_array()),
                                  corr.to_numpy()[np.ix_(order, order)])
    groups = [corr.index[i].split("_")[0] for i in order]
    assert sum(a != b for a, b in zip(groups, groups[1:])) == 4  # each group contiguous
    assert len(ax.texts) == 0  # no cell values at many assets
    renderer = fig.canvas.get_renderer()
    xt, yt = ax.get_xticklabels(), ax.get_yticklabels()
    assert 0 < len(yt) <= 40
    step = int(re.search(r"every (\d+)(st|nd|rd|th) asset labelled", ax.get_title()).group(1))
    assert [t.get_text() for t in yt] == [corr.index[i] for i in order[::step]]
    assert [t.get_text() for t in xt] == [corr.columns[i] for i in order[::step]]
    assert _overlapping(xt, renderer) == 0 and _overlapping(yt, renderer) == 0
    assert f"{n:,} assets" in ax.get_title() and "ordered by cluster" in ax.get_title()


def test_correlation_few_assets_values_below_the_diagonal(tmp_path, drawn):
    corr = _blocks_corr(8, groups=2, seed=3)
    corr.iloc[1, 2] = corr.iloc[2, 1] = np.nan
    F.plot_correlation(corr, tmp_path / "c.png")
    ax = drawn[-1].axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 8 * 7 // 2
    assert texts.count("n/a") == 1
    order = F.cluster_order(corr)
    shown = corr.to_numpy()[np.ix_(order, order)]
    expect = [f"{shown[i, j]:.2f}" if math.isfinite(shown[i, j]) else "n/a"
              for i in range(8) for j in range(i)]
    assert texts == expect
    assert [t.get_text() for t in ax.get_yticklabels()] == [corr.index[i] for i in order]


def test_attribution_many_assets_top_pnl_plus_others(tmp_path, drawn):
    rng = np.random.default_rng(8)
    names = [f"A{i:04d}" for i in range(400)]
    pnl = pd.Series(rng.normal(0, 1000, 400), index=names)
    risk = pd.Series(rng.dirichlet(np.ones(400)), index=names)
    F.plot_attribution(pnl, risk, tmp_path / "a.png")
    fig = drawn[-1]
    ax1, ax2 = fig.axes
    labels = [t.get_text() for t in ax1.get_yticklabels()]
    shown = F.MAX_BARS - 5
    assert len(labels) == shown + 1
    assert labels[0] == f"others ({400 - shown} assets)"  # the bottom bar
    top = pnl.abs().sort_values(ascending=False).index[:shown]
    assert labels[1:] == list(pnl[top].sort_values().index)
    widths = [p.get_width() for p in ax1.patches]
    rest = pnl.drop(top)
    assert widths[0] == pytest.approx(rest.sum())
    assert [p.get_width() for p in ax2.patches][0] == pytest.approx(risk.drop(top).sum())
    assert sum(p.get_width() for p in ax2.patches) == pytest.approx(1.0)
    assert '"others"' in fig._suptitle.get_text() and "400" in fig._suptitle.get_text()


def test_frontier_many_assets_labels_the_best_and_worst_few(tmp_path, drawn):
    rng = np.random.default_rng(6)
    names = [f"A{i:04d}" for i in range(500)]
    pts = pd.DataFrame({"volatility": rng.uniform(0.1, 0.6, 500),
                        "return": rng.normal(0.05, 0.3, 500)}, index=names)
    frontier = pd.DataFrame({"volatility": np.linspace(0.08, 0.6, 40),
                             "return": np.linspace(-0.1, 1.0, 40)})
    F.plot_frontier(frontier, pts, tmp_path / "f.png", portfolio=(0.12, 0.08),
                    equal_weight=(0.11, 0.05))
    fig = drawn[-1]
    ax = fig.axes[0]
    labelled = [t.get_text().split(" (")[0] for t in ax.texts
                if t.get_text() != "frontier not computed"]
    ratio = (pts["return"] / pts["volatility"]).sort_values()
    assert sorted(labelled) == sorted(list(ratio.index[:5]) + list(ratio.index[-5:]))
    assert "500 assets" in ax.get_title()
    assert _overlapping(ax.texts, fig.canvas.get_renderer()) == 0
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    (y0, y1), (x0, x1) = ax.get_ylim(), ax.get_xlim()
    beyond = int(((pts["return"] < y0) | (pts["return"] > y1) | (pts["volatility"] > x1)).sum())
    assert len(legend) == 4 + (beyond > 0)
    if beyond:
        assert any(t.startswith(f"{beyond} asset") and "beyond the axes" in t for t in legend)


def test_multipliers_chunk_table_from_csv_text_equals_typed_input():
    days = pd.date_range("2024-01-01", periods=30, freq="1D", tz="UTC")
    rows = [{"chunk": c, "chunk_start": d, "asset": a, "multiplier": 0.5 + 0.01 * c + 0.1 * k,
             "drawdown": 1.0, "correlation": 0.9, "halted": c in (10, 11)}
            for c, d in enumerate(days) for k, a in enumerate(["A", "B", "C"])]
    typed = pd.DataFrame(rows)
    text = typed.assign(chunk_start=typed["chunk_start"].astype(str),
                        halted=typed["halted"].map({True: "True", False: "False"}))
    a, b = F._chunk_table(typed), F._chunk_table(text)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.index[a["halted"]]) == [10, 11]
    assert a["mult_max"].iloc[5] == pytest.approx(0.5 + 0.05 + 0.2)
    assert a["t"].iloc[0] == days[0]


# ------------------------------------------------------------------ write_figures

def test_write_figures_times_each_figure(tmp_path):
    equity, returns, names = _run(40, 5000, seed=12)
    corr = returns.corr()
    analysis = {"assets": names, "periods_per_year": 105_120.0,
                "pnl_attribution": (equity[names].iloc[-1] - equity[names].iloc[0]).to_dict(),
                "risk_attribution": {a: 1 / 40 for a in names},
                "points": {"portfolio": [0.1, 0.05]},
                "frames": {"returns": returns, "correlation": corr, "frontier": None}}
    timer = PhaseTimer()
    out = write_figures(tmp_path, analysis, equity=equity, timer=timer)
    assert list(out) == list(FIGURES)
    assert list(timer.seconds) == [f"figure.{name}" for name in FIGURES]
    assert all(s > 0 for s in timer.seconds.values())
    assert all(p.stat().st_size > 5_000 for p in out.values())


# ------------------------------------------------------------------ layout

def _drawn_texts(ax) -> list:
    """The texts an axes draws around its box: the drawn ticks' labels, axis
    labels, offset texts and titles."""
    out = []
    for axis in (ax.xaxis, ax.yaxis):
        if not axis.get_visible():
            continue
        for tick in axis._update_ticks():  # the ticks inside the view: those the draw showed
            out += [t for t in (tick.label1, tick.label2) if t.get_visible() and t.get_text()]
        out += [t for t in (axis.label, axis.offsetText) if t.get_visible() and t.get_text()]
    out += [t for t in (ax.title, ax._left_title, ax._right_title) if t.get_visible() and t.get_text()]
    return out


def _layout_faults(fig, tol: float = 1.0) -> list[str]:
    """What is wrong with a drawn figure's layout: a text (tick label, axis
    label, title, text in the axes), a legend or the suptitle reaching off
    the canvas; two axes (colorbars included) overlapping; a text of one
    axes on another axes or on its texts; a figure legend or the suptitle on
    an axes or its texts.  In display pixels, ``tol`` allowed."""
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    faults = []

    def meet(a, b):
        return (min(a.x1, b.x1) - max(a.x0, b.x0) > tol) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tol)

    def on_canvas(bb, what):
        if bb.x0 < -tol or bb.y0 < -tol or bb.x1 > width + tol or bb.y1 > height + tol:
            faults.append(f"{what} off the canvas: {tuple(round(v) for v in bb.extents)}")

    axes = [a for a in fig.axes if a.get_visible()]
    box = {a: a.get_window_extent(renderer) for a in axes}
    texts = {a: _drawn_texts(a) for a in axes}
    ext = {t: t.get_window_extent(renderer) for a in axes for t in texts[a]}
    for a in axes:
        for t in texts[a] + [t for t in a.texts if t.get_visible() and t.get_text()]:
            on_canvas(ext.get(t) or t.get_window_extent(renderer), f"text {t.get_text()[:40]!r}")
    for i, a in enumerate(axes):
        for b in axes[i + 1:]:
            if meet(box[a], box[b]):
                faults.append(f"axes overlap: {box[a].extents.round()} and {box[b].extents.round()}")
        for b in axes:
            if b is a:
                continue
            for t in texts[a]:
                if meet(ext[t], box[b]):
                    faults.append(f"text {t.get_text()[:40]!r} on another axes")
                faults += [f"texts {t.get_text()[:40]!r} and {u.get_text()[:40]!r} overlap"
                           for u in texts[b] if id(t) < id(u) and meet(ext[t], ext[u])]
    outside = [("legend", legend.get_window_extent(renderer)) for legend in fig.legends]
    if fig._suptitle is not None and fig._suptitle.get_text():
        outside.append(("suptitle", fig._suptitle.get_window_extent(renderer)))
    for what, bb in outside:
        on_canvas(bb, what)
        for a in axes:
            if meet(bb, box[a]):
                faults.append(f"{what} on an axes")
            faults += [f"{what} on text {t.get_text()[:40]!r}" for t in texts[a] if meet(bb, ext[t])]
    return faults


def _engine_run(tmp_path, n_assets: int, days: int, capital: float, suffix: str):
    """A small real run (local engine): ``n_assets`` synthetic sleeves named
    ``<name><suffix>`` cut to 30 characters, a breaker that trips, daily
    rebalancing; returns ``(run, analysis)`` as the report has them."""
    from raybt.analysis import analyse_run
    from raybt.config import AssetConfig
    from raybt.config.params import validate_params
    from raybt.config.portfolio import portfolio_config_from_dict
    from raybt.data.synth import generate_universe
    from raybt.engine import PortfolioBacktester
    from raybt.run_folder import run_from_result

    universe = generate_universe(n_assets=n_assets, n_bars=days * 288, timeframe="5m", seed=7,
                                 shocks=[(0.45, -0.15, 48)])
    params = validate_params({"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.0,
                              "leverage": 20.0, "contract_size": 1000.0, "spread": 1e-4,
                              "slippage": 1e-5, "commission": 2e-5, "bb_period": 20,
                              "entry_z": 1.8, "max_hold_bars": 48})
    assets = {}
    for name, bars in universe.items():
        name = (name + suffix)[:30]
        assets[name] = (AssetConfig(name=name, data=None, timeframe="5m", params=params), bars)
    config = portfolio_config_from_dict({
        "name": "layout", "rebalance": "daily", "engine": {"chunk": "4h"}, "initial_capital": capital,
        "risk": {"max_portfolio_drawdown": 0.02, "dd_scale_start": 0.005, "resume": "cooldown",
                 "cooldown_chunks": 3, "breaker_flatten": True}}, "test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a sleeve without trades, a NaN Sharpe: not what is tested here
        result = PortfolioBacktester(assets, config, engine="local").run()
    run = run_from_result(result, tmp_path)
    analysis = analyse_run(run["equity"], run["trades"], run["weights"], run["metrics"],
                           multipliers=run["multipliers"], events=run["events"],
                           asset_params=run.get("asset_params"),
                           weights_history=run.get("weights_history"))
    return run, analysis


# 8 sleeves (every one drawn and named) in the billions; 40 (summarised) in the hundreds
@pytest.mark.parametrize("n_assets, days, capital", [(8, 12, 2.5e9), (40, 3, 900.0)])
def test_every_figure_fits_its_canvas_with_long_asset_names(tmp_path, drawn, n_assets, days, capital):
    """Every figure of the report, with 30-character asset names, at a few
    and at many sleeves: no text, legend or colorbar off the canvas, no
    axes on another, no text on another axes or its texts
    (:func:`_layout_faults`)."""
    run, analysis = _engine_run(tmp_path, n_assets, days, capital, "_VERY_LONG_INSTRUMENT_NAME_X")
    assert all(len(a) == 30 for a in analysis["assets"])
    out = write_figures(tmp_path, analysis, equity=run["equity"], events=run["events"],
                        multipliers=run["multipliers"], config=run["config"])
    assert len(drawn) == len(out) == len(FIGURES)
    faults = {name: _layout_faults(fig) for name, fig in zip(out, drawn)}
    assert not {k: v for k, v in faults.items() if v}
    # the names are drawn whole (the attribution's bars: every sleeve, or the largest plus "others")
    fig = drawn[list(out).index("attribution.png")]
    shown = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(shown) == min(n_assets, F.MAX_BARS - 4)
    assert set(shown) - set(analysis["assets"]) <= {f"others ({n_assets - F.MAX_BARS + 5} assets)"}


@pytest.mark.parametrize("n", [1, 3, 15, 120])
def test_heatmaps_and_summaries_fit_their_canvas(tmp_path, drawn, n):
    """The figures drawn from sleeves alone (no trades: their figures say so)
    at 1 to 120 sleeves with long names and values from 1e-3 to 1e9: no
    layout fault (:func:`_layout_faults`)."""
    from raybt.analysis import analyse_run

    equity, returns, names = random_sleeves(n, 3000, seed=n, suffix="_" + "W" * 25)
    scale = 1e6 if n % 2 else 1e-3  # money ticks like 1.25B, or fractions of a unit
    equity = equity * scale
    analysis = analyse_run(equity)
    out = write_figures(tmp_path, analysis, equity=equity)
    faults = {name: _layout_faults(fig) for name, fig in zip(out, drawn)}
    assert not {k: v for k, v in faults.items() if v}


def test_a_matplotlib_without_the_private_helpers_falls_back_to_constrained_layout(tmp_path, monkeypatch):
    """The fitted layout reads matplotlib internals (``Axis._update_ticks``, the text-metrics cache);
    where a matplotlib has moved one (an AttributeError while measuring), the figure is laid out by
    matplotlib's constrained layout instead of the run failing."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    import raybt.plots.layout as layout

    equity, _, _ = random_sleeves(3, 2000, seed=3)
    called = []
    real = ConstrainedLayoutEngine.execute
    monkeypatch.setattr(ConstrainedLayoutEngine, "execute", lambda self, fig: called.append(1) or real(self, fig))

    def moved(*args, **kwargs):
        raise AttributeError("'XAxis' object has no attribute '_update_ticks'")

    monkeypatch.setattr(layout, "_axes_room", moved)
    out = F.plot_equity(equity, tmp_path / "equity.png", assets=list(equity.columns[:-2]))
    assert called and mpimg.imread(out).shape[0] > 100
    corr = equity.iloc[:, :3].pct_change().corr()  # a colorbar of the fitted layout's own, placed all the same
    F.plot_correlation(corr, tmp_path / "correlation.png")
    assert len(called) == 2 and mpimg.imread(tmp_path / "correlation.png").shape[0] > 100
