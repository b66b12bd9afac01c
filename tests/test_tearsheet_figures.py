"""What the tear-sheet figures show, checked on the drawn figure and its PNG.

The fixes of issue 15 (frontier legend and robust axes, the breaker's own
drawdown and visible halts, distinguishable legend entries) and the new
views (monthly returns, trades, costs, exposure, weights) at a few and at
1,000 assets.
"""

from __future__ import annotations

import itertools
import math

import matplotlib.colors as mcolors
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sleeves import random_sleeves
from raybt.analysis.tearsheet import tearsheet
from raybt.plots import figures as F
from raybt.plots.base import _HALT, _MIN_SPAN, _money




# ------------------------------------------------------------------ legend entries

def _lab(color) -> np.ndarray:
    """CIELAB (D65) of an sRGB colour, from the standard formulas."""
    rgb = np.array(mcolors.to_rgb(color))
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _entry(handle) -> tuple[str, object, str]:
    """(kind, colour, style) of a legend handle as a reader tells entries apart."""
    if isinstance(handle, Line2D):
        marker = str(handle.get_marker())
        kind = "marker" if handle.get_linestyle() in ("None", "none", "") else "line"
        return kind, handle.get_color() if kind == "line" else handle.get_markerfacecolor(), \
            f"{handle._unscaled_dash_pattern}|{marker}"
    if isinstance(handle, PathCollection):
        face = handle.get_facecolor()
        color = face[0] if len(face) else handle.get_edgecolor()[0]
        verts = np.round(handle.get_paths()[0].vertices, 2).tobytes()
        return "marker", color, f"{hash(verts)}|{'hollow' if not len(face) else 'filled'}"
    if isinstance(handle, LineCollection):
        return "line", handle.get_color()[0], str(handle.get_linestyle()[0])
    if isinstance(handle, (Patch, PolyCollection)):
        face = handle.get_facecolor()
        face = face[0] if np.ndim(face) == 2 else face
        hatch = handle.get_hatch() or ""
        return "patch", face, hatch
    return type(handle).__name__, None, ""


def _legend_pairs(fig):
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    for legend in legends:
        entries = [(t.get_text(), _entry(h)) for t, h in zip(legend.get_texts(), legend.legend_handles)]
        yield from itertools.combinations(entries, 2)


def _assert_distinguishable(fig, min_delta_e: float = 20.0) -> int:
    """Every two entries of a legend differ in kind, in line style / marker /
    hatch, or in colour by at least ``min_delta_e`` (CIE76)."""
    checked = 0
    for (ta, (ka, ca, sa)), (tb, (kb, cb, sb)) in _legend_pairs(fig):
        checked += 1
        if ka != kb or sa != sb:
            continue
        de = float(np.linalg.norm(_lab(ca) - _lab(cb)))
        assert de >= min_delta_e, f"legend entries {ta!r} and {tb!r}: colour distance {de:.1f}"
    return checked


def _walk(n_assets: int, n_bars: int, seed: int = 1):
    return random_sleeves(n_assets, n_bars, seed, suffix='_5m')


def test_legend_entries_are_distinguishable_at_fifteen_sleeves(tmp_path, drawn):
    equity, returns, names = _walk(15, 6000)
    F.plot_equity(equity, tmp_path / "e.png", returns=returns, assets=names)
    assert _assert_distinguishable(drawn[-1]) >= 100
    styles = F.asset_styles(names)
    # colours repeat past ten only with another dash and marker
    assert styles[names[0]]["color"] == styles[names[10]]["color"]
    assert styles[names[0]]["ls"] != styles[names[10]]["ls"]
    F.plot_weights(equity, names, None, tmp_path / "w.png",
                   weights_history=pd.DataFrame([[0, equity.index[0], *[1 / 15] * 15]],
                                                columns=["chunk", "decided_at", *names]))
    assert _assert_distinguishable(drawn[-1]) >= 100
    pts = pd.DataFrame({"volatility": np.linspace(0.1, 0.3, 15), "return": np.linspace(-0.2, 0.3, 15)},
                       index=names)
    F.plot_frontier(None, pts, tmp_path / "f.png", portfolio=(0.05, 0.0), equal_weight=(0.06, 0.01),
                    target_weights=(0.07, 0.02))
    _assert_distinguishable(drawn[-1])


def test_legend_entries_of_the_breaker_figures_are_distinguishable(tmp_path, drawn):
    days = pd.date_range("2024-01-01", periods=60, freq="1D", tz="UTC")
    rows = [{"chunk": c, "chunk_start": d, "asset": a, "multiplier": 0.8, "drawdown": 0.9,
             "correlation": 0.85, "halted": c in (20, 21)} for c, d in enumerate(days)
            for a in ("A", "B")]
    events = pd.DataFrame({"decided_at": [days[7], days[19], days[21]], "event":
                           ["rebalance", "trip", "resume"], "drawdown": [0.01, 0.1, 0.1]})
    F.plot_multipliers(pd.DataFrame(rows), tmp_path / "m.png", events=events)
    assert _assert_distinguishable(drawn[-1]) >= 10
    dd = pd.Series(np.linspace(0, 0.2, 60 * 288), index=pd.date_range(days[0], periods=60 * 288,
                                                                        freq="5min", tz="UTC"))
    F.plot_drawdown(dd, tmp_path / "d.png", events=events, breaker_level=0.1,
                    breaker_drawdown=dd * 0.5)
    assert _assert_distinguishable(drawn[-1]) >= 10


# ------------------------------------------------------------------ frontier

def test_frontier_keeps_an_outlier_off_the_axes_and_names_the_annualised_mean(tmp_path, drawn):
    rng = np.random.default_rng(3)
    names = [f"A{i}_5m" for i in range(15)]
    pts = pd.DataFrame({"volatility": rng.uniform(0.06, 0.22, 15),
                        "return": rng.uniform(-1.2, 0.75, 15)}, index=names)
    pts.loc["A7_5m", "return"] = -2.776  # one asset far below the rest (SILVER in the default run)
    frontier = pd.DataFrame({"volatility": np.linspace(0.03, 0.19, 30),
                             "return": -0.45 + 1.19 * np.sqrt(np.linspace(0, 1, 30))})
    F.plot_frontier(frontier, pts, tmp_path / "f.png", portfolio=(0.045, -0.327),
                    equal_weight=(0.045, -0.333), total_return=-0.279, periods_per_year=105_192)
    fig = drawn[-1]
    ax = fig.axes[0]
    y0, y1 = ax.get_ylim()
    assert y0 > -2.0  # the outlier does not stretch the axis ...
    span = frontier["return"].max() - frontier["return"].min()
    assert span / (y1 - y0) > 0.4  # ... so the frontier fills a good part of it
    inner = pts.drop("A7_5m")["return"]
    assert y0 < inner.min() and y1 > inner.max()
    # drawn at the bottom edge, pointing down, its value in its label
    edge = [c for c in ax.collections if isinstance(c, PathCollection)
            and len(c.get_offsets()) == 1 and np.isclose(c.get_offsets()[0][1], y0, atol=0.03 * (y1 - y0))]
    assert edge, "no marker at the bottom edge"
    label = [t.get_text() for t in ax.texts if t.get_text().startswith("A7_5m")]
    assert label == ["A7_5m (-278%)"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("1 asset beyond the axes" in t for t in legend)
    assert any(t.startswith("Portfolio (actual): 4.5% vol, -32.7% annualised mean") for t in legend)
    assert not any(t.endswith(" return") for t in legend)
    title = ax.get_title()
    assert "not compounded" in title and "the run's total return was -27.9%" in title
    assert ax.get_ylabel() == "Annualised mean return (arithmetic, %)"


# ------------------------------------------------------------------ drawdown and the breaker

def _breaker_case():
    idx = pd.date_range("2024-01-01", periods=365 * 288, freq="5min", tz="UTC")
    t = np.arange(len(idx)) / len(idx)
    equity = pd.Series(1e6 * (1 - 0.3 * t) * (1 + 0.01 * np.sin(t * 300)), index=idx)
    from raybt.analysis.periods import breaker_drawdown

    trips = [idx[40_000 - 1], idx[80_000 - 1]]
    resumes = [idx[40_000 + 575], idx[80_000 + 575]]  # two days later each
    b = breaker_drawdown(equity, resumes)
    events = pd.DataFrame({"decided_at": [trips[0], resumes[0], trips[1], resumes[1]],
                           "event": ["trip", "resume", "trip", "resume"]})
    alltime = 1 - equity / equity.cummax()
    events["drawdown"] = alltime.loc[events["decided_at"]].to_numpy()
    events["breaker_drawdown"] = b.loc[events["decided_at"]].to_numpy()
    return equity, alltime, b, events


def test_drawdown_draws_what_the_breaker_measures(tmp_path, drawn):
    equity, alltime, b, events = _breaker_case()
    path = F.plot_drawdown(alltime, tmp_path / "d.png", events=events, breaker_level=0.12,
                           breaker_drawdown=b)
    fig = drawn[-1]
    ax = fig.axes[0]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "Drawdown from the all-time peak" in legend
    assert "Breaker's drawdown (from its own peak, reset at each resume)" in legend
    assert "Breaker level 12% (compared with the breaker's drawdown)" in legend
    assert any(t.startswith("Breaker halted (2 periods, 4.0 days in all") for t in legend)
    # the trips sit at the breaker's drawdown, not at the all-time one
    trips = events[events["event"] == "trip"]
    marks = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_label().startswith("Breaker trip")]
    np.testing.assert_allclose(marks[0].get_offsets()[:, 1], -trips["breaker_drawdown"])
    assert (trips["drawdown"] - trips["breaker_drawdown"]).iloc[1] > 0.05  # they differ there
    texts = [t.get_text() for t in ax.texts]
    second = trips.iloc[1]
    assert f"{second['breaker_drawdown']:.1%} (all-time {second['drawdown']:.1%})" in texts
    assert "its level applies to the blue line" in ax.get_title()
    # each two-day halt is wide enough to see: count its columns in the PNG
    img = mpimg.imread(path)[..., :3]
    halt = np.array(mcolors.to_rgb(_HALT))
    bb = ax.bbox
    top, bottom = int(img.shape[0] - bb.y1) + 2, int(img.shape[0] - bb.y0) - 2
    band = img[bottom - 6:bottom]  # the bottom rows of the axes, below the deepest drawdown
    close = np.abs(band - (0.75 * halt + 0.25)).max(axis=2) < 0.08
    columns = close.any(axis=0).sum()
    assert bottom > top
    assert columns >= 2 * _MIN_SPAN * bb.width * 0.8, columns


def test_drawdown_without_a_resume_has_no_second_line(tmp_path, drawn):
    equity, alltime, b, events = _breaker_case()
    only_trip = events.iloc[:1]
    F.plot_drawdown(alltime, tmp_path / "d.png", events=only_trip, breaker_level=0.12,
                    breaker_drawdown=alltime)
    legend = [t.get_text() for t in drawn[-1].legends[0].get_texts()]
    assert "Breaker level 12% (compared with the drawdown from its peak)" in legend
    assert not any(t.startswith("Breaker's drawdown") for t in legend)


# ------------------------------------------------------------------ the new views

def _sheet(n_assets: int, n_bars: int, n_trades: int, seed: int = 5):
    equity, returns, names = _walk(n_assets, n_bars, seed)
    rng = np.random.default_rng(seed)
    idx = equity.index
    entry = rng.integers(0, n_bars - 60, n_trades)
    hold = rng.integers(0, 50, n_trades)
    trades = pd.DataFrame({
        "asset": pd.Categorical.from_codes(rng.integers(0, n_assets, n_trades), categories=names),
        "side": np.where(rng.random(n_trades) < 0.5, "long", "short"),
        "units": rng.uniform(0.1, 2.0, n_trades), "entry_time": idx[entry],
        "entry_price": rng.uniform(0.9, 1.1, n_trades), "exit_time": idx[entry + hold],
        "exit_price": 1.0, "exit_reason": rng.choice(["sl", "tp", "signal", "breaker"], n_trades),
        "pnl": rng.normal(1, 30, n_trades), "commission": rng.uniform(0.1, 1, n_trades)})
    params = {a: {"contract_size": 1000.0, "leverage": 20.0, "spread": 1e-3, "slippage": 2e-4}
              for a in names}
    chunks = pd.date_range(idx[0], idx[-1], freq="1D")
    adj = rng.normal(0, 10, (len(chunks), n_assets))
    adj -= adj.mean(axis=1, keepdims=True)
    mult = pd.DataFrame({"chunk": np.repeat(np.arange(len(chunks)), n_assets),
                         "chunk_start": np.repeat(chunks, n_assets), "asset": np.tile(names, len(chunks)),
                         "capital_adjustment": adj.ravel()})
    keys, frames = tearsheet(equity, equity["equity"], returns, names, trades=trades, multipliers=mult,
                             asset_params=params)
    return equity, names, keys, frames


@pytest.mark.parametrize("n_assets", [15, 1000])
def test_new_views_at_fifteen_and_a_thousand_assets(tmp_path, drawn, n_assets):
    equity, names, keys, frames = _sheet(n_assets, 4 * 288 * 35, 20_000)
    many = n_assets > F.MANY_ASSETS

    F.plot_asset_monthly_returns(frames["monthly_assets"], tmp_path / "am.png")
    fig = drawn[-1]
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    total = (1 + frames["monthly_assets"]).prod() - 1
    order = list(total.sort_values(ascending=False, kind="stable").index)
    assert rows == (order[:15] + order[-15:] if many else order)
    title = fig._suptitle.get_text()
    assert ("the 15 best and 15 worst of 1,000 sleeves" in title) == many
    if not many:  # every cell written, in percent
        cells = [t.get_text() for t in fig.axes[0].texts]
        assert len(cells) == frames["monthly_assets"].size
        assert f"{100 * frames['monthly_assets'][order[0]].iloc[0]:.1f}" == cells[0]

    F.plot_costs(frames["costs"], keys["costs"]["portfolio"], tmp_path / "c.png")
    fig = drawn[-1]
    ax_w, ax_a = fig.axes
    heights = [p.get_height() for p in ax_w.patches]
    p = keys["costs"]["portfolio"]
    np.testing.assert_allclose(heights, [p["gross_pnl"], -p["commission"], -p["spread"],
                                         -p["slippage"], p["net_pnl"]], rtol=1e-12)
    labels = [t.get_text() for t in ax_a.get_yticklabels()]
    by_cost = list(frames["costs"]["total_costs"].sort_values(ascending=False, kind="stable").index)
    if many:  # the ten largest costs, top down; the rest summed in the title
        assert labels[::-1] == by_cost[:10]
        rest = frames["costs"].loc[by_cost[10:]]
        assert "the 10 with the largest costs of 1,000; the other 990: gross" in ax_a.get_title()
        assert f"costs {_money(rest['total_costs'].sum())}" in ax_a.get_title()
    else:
        assert labels[::-1] == by_cost

    F.plot_weights(equity, names, frames["turnover"], tmp_path / "w.png")
    fig = drawn[-1]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    if many:  # bands and the largest and smallest three by mean share, named
        rows = np.unique(np.r_[np.arange(0, len(equity), -(-len(equity) // 2000)), len(equity) - 1])
        v = equity[names].to_numpy()[rows]
        mean_share = pd.Series((v / v.sum(axis=1, keepdims=True)).mean(axis=0), index=names)
        order = mean_share.sort_values(ascending=False, kind="stable").index
        assert legend[:3] == ["5-95 % of sleeves", "25-75 % of sleeves", "Median sleeve"]
        assert [t.split(" ")[1] for t in legend[3:6]] == list(order[:3])
        assert [t.split(" ")[1] for t in legend[6:9]] == list(order[::-1][:3])
        assert "1,000 sleeves: percentile bands" in fig.axes[0].get_title()
    else:
        assert sorted(legend) == sorted(names)
    turnover = fig.axes[1]
    np.testing.assert_allclose(sorted(p.get_height() for p in turnover.patches),
                               sorted(frames["turnover"]["turnover"]), rtol=1e-12)

    F.plot_trades(frames["trade_analysis"], tmp_path / "t.png")
    fig = drawn[-1]
    reasons = fig.axes[2]
    bars = sorted(reasons.patches, key=lambda p: -p.get_y())  # top to bottom
    by = frames["by_exit_reason"]
    np.testing.assert_allclose([p.get_width() for p in bars], by["total_pnl"].to_numpy(), rtol=1e-12)
    ticks = sorted(reasons.get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in ticks][:3] == ["signal (z exit or max hold)", "stop-loss", "take-profit"]

    F.plot_exposure(frames["exposure"], tmp_path / "x.png")
    fig = drawn[-1]
    assert "Leverage (mean" in fig.axes[1].get_title()
    lev = frames["exposure"]["leverage"]
    assert f"max {lev.max():.2f}x" in fig.axes[1].get_title()

    F.plot_monthly_returns(frames["monthly_table"], tmp_path / "m.png")
    cells = [t.get_text() for ax in drawn[-1].axes for t in ax.texts]
    table = frames["monthly_table"]
    assert len(cells) == int(np.isfinite(table.to_numpy()).sum())


def test_exposure_buckets_keep_the_extremes():
    from raybt.plots.activity import bucket_stats

    v = np.random.default_rng(1).normal(size=100_003)
    v[77_777] = 50.0
    v[5] = np.nan
    starts, lo, mean, hi = bucket_stats(v, 300)
    assert len(starts) == 300 and starts[0] == 0
    assert np.nanmax(hi) == 50.0 and np.nanmin(lo) == np.nanmin(v)
    k = np.searchsorted(starts, 77_777, side="right") - 1
    seg = v[starts[k]:starts[k + 1]]
    assert hi[k] == 50.0 and mean[k] == pytest.approx(np.nanmean(seg))


def test_unavailable_views_say_why(tmp_path, drawn):
    note = "unavailable: run_info.json has no asset_params"
    F.plot_exposure(None, tmp_path / "x.png", note=note)
    assert any(note in t.get_text() for t in drawn[-1].axes[0].texts)
    F.plot_costs(None, None, tmp_path / "c.png", available=False, note=note)
    assert any(note in t.get_text() for t in drawn[-1].axes[0].texts)
    F.plot_trades(None, tmp_path / "t.png")
    assert any(t.get_text() == "no trades" for t in drawn[-1].axes[0].texts)
    assert math.isfinite(_MIN_SPAN)
