"""The tear sheet's quantities (raybt.analysis.tearsheet and its modules).

Checked on a real local-engine run (tests/tearsheet_run.py: five assets with
their own contract sizes, leverages, spreads, slippages and commissions, a
breaker that trips and resumes five times, daily rebalancing) saved as a run
folder and read back, and on synthetic equity: monthly and yearly returns
and the drawdown periods against quantstats on the same equity; trade
statistics against pandas on trades.parquet; gross PnL against the bars'
opens; the exposure's margin against the margins the coordinator held; the
breaker's own drawdown against what the breaker recorded.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from raybt.analysis import analyse_run, capital_flows, sleeve_returns
from raybt.analysis.exposure import bar_positions
from raybt.analysis.periods import drawdown_periods, period_returns
from raybt.analysis.trades import EXIT_REASONS, SIDES, holding_hours
from raybt.plots.report import load_run


@pytest.fixture(scope="module")
def engine_run():
    from tearsheet_run import run_engine

    margins: dict = {}
    result, bars = run_engine(margins)
    return result, bars, margins


@pytest.fixture(scope="module")
def folder(engine_run, tmp_path_factory):
    result, _bars, _m = engine_run
    return result.save(tmp_path_factory.mktemp("tearsheet") / "run")


@pytest.fixture(scope="module")
def run(folder):
    return load_run(folder)


@pytest.fixture(scope="module")
def analysis(run):
    return analyse_run(run["equity"], run["trades"], run["weights"], run["metrics"],
                       multipliers=run["multipliers"], events=run["events"],
                       asset_params=run["asset_params"], weights_history=run["weights_history"])


def _quantstats():
    warnings.filterwarnings("ignore", module="quantstats")
    import quantstats as qs

    return qs


def _walk_equity(n_years: float = 2.3, freq: str = "1h", seed: int = 4) -> pd.Series:
    idx = pd.date_range("2021-03-17 05:00", periods=int(n_years * 365 * 24), freq=freq, tz="UTC")
    r = np.random.default_rng(seed).normal(2e-5, 2e-3, len(idx))
    r[0] = 0.0
    return pd.Series(1e6 * np.cumprod(1 + r), index=idx)


# ------------------------------------------------------------------ returns by period

@pytest.mark.parametrize("source", ["walk", "run"])
def test_monthly_and_yearly_returns_equal_quantstats(source, run):
    qs = _quantstats()
    eq = _walk_equity() if source == "walk" else run["equity"]["equity"]
    returns = eq.pct_change().iloc[1:]
    expected = qs.stats.monthly_returns(returns)  # years x JAN..DEC + EOY, compounded
    from raybt.analysis.periods import MONTHS, monthly_table

    mine = monthly_table(period_returns(eq, "M"), period_returns(eq, "Y"))
    assert list(mine.index) == list(expected.index)
    for year in mine.index:
        for k, month in enumerate(MONTHS):
            got = mine.loc[year, month]
            if np.isnan(got):  # a month outside the run: quantstats writes 0
                assert expected.loc[year, month.upper()] == 0
                continue
            assert got == pytest.approx(expected.loc[year, month.upper()], rel=1e-10, abs=1e-13)
        assert mine.loc[year, "Year"] == pytest.approx(expected.loc[year, "EOY"], rel=1e-10,
                                                       abs=1e-13)
    total = float(eq.iloc[-1] / eq.iloc[0] - 1)
    assert (1 + mine["Year"]).prod() - 1 == pytest.approx(total, rel=1e-10)


def test_sleeve_months_are_time_weighted_net_of_transfers(run, analysis):
    """Each sleeve's months: the flow-adjusted returns compounded per month
    (pandas groupby here), compounding to the per-asset table's return."""
    eq, names = run["equity"], analysis["assets"]
    flows = capital_flows(run["multipliers"], eq.index, names)
    assert (flows.to_numpy() != 0).any()  # the run rebalanced: transfers to take out
    r = sleeve_returns(eq, names, flows)
    months = r.index.strftime("%Y-%m")
    expected = (1 + r.where(np.isfinite(r), 0.0)).groupby(months).prod() - 1
    got = pd.DataFrame(analysis["monthly_returns"]["assets"])
    pd.testing.assert_frame_equal(got.loc[expected.index, names], expected[names], rtol=1e-11,
                                  check_names=False)
    total = (1 + got).prod() - 1
    table = analysis["frames"]["asset_table"]["return"]
    np.testing.assert_allclose(total[names].to_numpy(), table[names].to_numpy(), rtol=1e-10)
    yearly = pd.DataFrame(analysis["yearly_returns"]["assets"])
    np.testing.assert_allclose(((1 + yearly).prod() - 1)[names], table[names], rtol=1e-10)


# ------------------------------------------------------------------ drawdown periods

@pytest.mark.parametrize("source", ["walk", "run"])
def test_top_drawdowns_equal_quantstats_drawdown_details(source, run):
    qs = _quantstats()
    eq = _walk_equity(seed=9) if source == "walk" else run["equity"]["equity"]
    details = qs.stats.drawdown_details(qs.stats.to_drawdown_series(eq.pct_change().iloc[1:]))
    mine = drawdown_periods(eq)
    assert len(mine) == len(details)
    top = mine.head(5)
    # quantstats: start = first bar below the peak, valley, end = last bar below it (or the
    # last bar), max drawdown in percent; dates as YYYY-MM-DD
    by_depth = details.sort_values("max drawdown").head(5).reset_index(drop=True)
    for (_, m), (_, q) in zip(top.iterrows(), by_depth.iterrows()):
        assert -100 * m["depth"] == pytest.approx(q["max drawdown"], rel=1e-9)
        assert f"{m['start']:%Y-%m-%d}" == q["start"]
        assert f"{m['trough']:%Y-%m-%d}" == q["valley"]
        last_under = eq.index[eq.index.get_loc(m["recovery"]) - 1] if m["recovered"] else eq.index[-1]
        assert f"{last_under:%Y-%m-%d}" == q["end"]
    assert mine["depth"].iloc[0] == pytest.approx(float((1 - eq / eq.cummax()).max()), rel=1e-12)


def test_drawdown_periods_by_hand():
    idx = pd.date_range("2024-01-01", periods=9, freq="1D", tz="UTC")
    eq = pd.Series([100, 110, 99, 88, 110, 120, 108, 114, 115.0], index=idx)
    dd = drawdown_periods(eq)
    assert list(dd["depth"].round(6)) == [0.2, 0.1]
    first, second = dd.iloc[0], dd.iloc[1]
    assert (first["peak"], first["start"], first["trough"], first["recovery"]) == \
        (idx[1], idx[2], idx[3], idx[4])
    assert first["recovered"] and first["length_days"] == 3 and first["decline_days"] == 2
    assert first["recovery_days"] == 1 and first["bars"] == 2
    assert (second["peak"], second["trough"], second["recovered"]) == (idx[5], idx[6], False)
    assert pd.isna(second["recovery"]) and second["length_days"] == 3
    assert math.isnan(second["recovery_days"])


# ------------------------------------------------------------------ the breaker's drawdown

def test_breaker_drawdown_rebuilt_equals_what_the_breaker_recorded(analysis):
    br = analysis["breaker"]
    assert len(br["trips"]) >= 3 and len(br["resumes"]) >= 3
    marks = br["trips"] + br["resumes"]
    for m in marks:  # the per-bar series rebuilt from the equity matches the breaker's own numbers
        assert m["breaker_drawdown_rebuilt"] == pytest.approx(m["breaker_drawdown"], abs=1e-12)
    # after the first resume the breaker measures from its own peak: not the all-time drawdown
    later = [m for m in br["trips"][1:]]
    assert any(m["drawdown"] - m["breaker_drawdown"] > 1e-3 for m in later)
    assert br["halted_periods"] == len(br["trips"]) and br["halted_days"] > 0
    series = analysis["frames"]["breaker_drawdown"]
    first = pd.Timestamp(br["resumes"][0]["time"])
    assert series.loc[first] == 0.0  # the peak reset at the resume bar


def test_breaker_drawdown_column_of_events_is_used_when_present(run):
    """events.csv has ``drawdown`` from the all-time peak on every row and ``breaker_drawdown`` on
    trip/resume rows (issue 15): the breaker's numbers come from that column. A run folder of the
    earlier format (the breaker's measure in ``drawdown`` on those rows) gives the same numbers."""
    from raybt.analysis.tearsheet import breaker_summary

    ev = run["events"]
    port = run["equity"]["equity"]
    marks = ev["event"].isin(["trip", "resume"]).to_numpy()
    assert marks.any() and ev.loc[marks, "breaker_drawdown"].notna().all()
    new, _ = breaker_summary(ev, port)
    recorded = ev.loc[marks, "breaker_drawdown"].tolist()
    assert sorted(m["breaker_drawdown"] for m in new["trips"] + new["resumes"]) == sorted(recorded)
    for m in new["trips"] + new["resumes"]:
        assert m["breaker_drawdown"] == pytest.approx(m["breaker_drawdown_rebuilt"], abs=1e-12)
    earlier = ev.drop(columns="breaker_drawdown")
    earlier.loc[marks, "drawdown"] = ev.loc[marks, "breaker_drawdown"]
    old, _ = breaker_summary(earlier, port)
    for a, b in zip(new["trips"] + new["resumes"], old["trips"] + old["resumes"]):
        assert a["breaker_drawdown"] == b["breaker_drawdown"]


# ------------------------------------------------------------------ trades

def test_trade_statistics_equal_pandas_on_the_trades_table(run, analysis):
    t = run["trades"].copy()
    t["hours"] = (t["exit_time"] - t["entry_time"]).dt.total_seconds() / 3600
    t["win"] = t["pnl"] > 0
    frames = analysis["frames"]
    for key, table, labels in (("exit_reason", frames["by_exit_reason"], EXIT_REASONS),
                               ("side", frames["by_side"], SIDES)):
        g = t.groupby(t[key].astype(str)).agg(count=("pnl", "size"), win_rate=("win", "mean"),
                                              avg_pnl=("pnl", "mean"), total_pnl=("pnl", "sum"),
                                              hold=("hours", "mean"))
        g = g.reindex(labels)
        assert list(table["count"]) == list(g["count"].fillna(0).astype(int))
        seen = g["count"].notna()
        for col, mine in (("win_rate", "win_rate"), ("avg_pnl", "avg_pnl"),
                          ("total_pnl", "total_pnl"), ("hold", "avg_holding_hours")):
            np.testing.assert_allclose(table.loc[seen, mine], g.loc[seen, col], rtol=1e-10,
                                       atol=1e-9)
        assert table.loc[~seen, "win_rate"].isna().all()
    assert frames["by_exit_reason"].loc["signal", "count"] > 0  # max-hold exits land here
    ta = analysis["trade_analysis"]
    for name, values in (("pnl", t["pnl"]), ("holding_hours", t["hours"])):
        d = ta[name]
        assert d["n"] == len(t)
        assert d["mean"] == pytest.approx(values.mean(), rel=1e-10)
        assert d["std"] == pytest.approx(values.std(ddof=1), rel=1e-9)
        for q in (1, 5, 25, 50, 75, 95, 99):
            assert d[f"q{q:02d}"] == pytest.approx(np.quantile(values, q / 100), rel=1e-10,
                                                   abs=1e-9)
    hist = ta["pnl_histogram"]
    lo, hi = np.quantile(t["pnl"], [0.005, 0.995])
    counts, edges = np.histogram(t["pnl"], bins=len(hist["counts"]), range=(lo, hi))
    assert list(hist["counts"]) == list(counts) and np.allclose(hist["edges"], edges)
    assert hist["beyond"] == len(t) - counts.sum()
    hold = ta["holding_histogram"]
    counts, _ = np.histogram(t["hours"][t["hours"] > 0], bins=hold["edges"])
    assert list(hold["counts"]) == list(counts) and hold["same_bar"] == int((t["hours"] == 0).sum())
    assert ta["expectancy"] == pytest.approx(t["pnl"].mean(), rel=1e-10)


def test_holding_quantiles_without_whole_bars_sort(tmp_path):
    from raybt.analysis.trades import holding_distribution

    ns = np.array([0, 300, 450, 900, 1_000, 7_200], dtype=np.int64) * 10**9  # not multiples of one unit
    stats, hist = holding_distribution(ns)
    hours = ns / 3.6e12
    for q in (1, 25, 50, 99):
        assert stats[f"q{q:02d}"] == pytest.approx(np.quantile(hours, q / 100), rel=1e-12)
    assert hist["same_bar"] == 1 and hist["counts"].sum() == 5


# ------------------------------------------------------------------ costs

def test_costs_sum_to_gross_minus_net_and_gross_follows_from_the_bars(run, analysis, engine_run):
    """Gross PnL rebuilt from the bars' opens (entries and signal exits fill at
    the open plus or minus spread / 2 and slippage; other exits at their own
    price, no spread): per asset it equals the analysis' gross PnL, whose costs
    are exactly gross minus net."""
    _result, bars, _m = engine_run
    t = run["trades"]
    params = run["asset_params"]
    costs = analysis["frames"]["costs"]
    gross_from_bars = {}
    for asset, g in t.groupby(t["asset"].astype(str)):
        b = bars[asset]
        opens = b["open"]
        cs = params[asset]["contract_size"]
        entry_mid = opens.reindex(g["entry_time"]).to_numpy()
        signal = (g["exit_reason"].astype(str) == "signal").to_numpy()
        exit_mid = np.where(signal, opens.reindex(g["exit_time"]).to_numpy(), g["exit_price"])
        sign = np.where(g["side"].astype(str) == "long", 1.0, -1.0)
        gross_from_bars[asset] = float((sign * (exit_mid - entry_mid) * g["units"] * cs).sum())
    for asset, gross in gross_from_bars.items():
        row = costs.loc[asset]
        assert row["gross_pnl"] == pytest.approx(gross, rel=1e-9, abs=1e-6), asset
        assert row["gross_pnl"] - row["commission"] - row["spread"] - row["slippage"] == \
            pytest.approx(row["net_pnl"], rel=1e-12, abs=1e-6)
        assert row["net_pnl"] == pytest.approx(float(t.loc[t["asset"] == asset, "pnl"].sum()),
                                               rel=1e-12)
        assert row["commission"] == pytest.approx(
            float(t.loc[t["asset"] == asset, "commission"].sum()), rel=1e-12)
    p = analysis["costs"]["portfolio"]
    assert analysis["costs"]["available"]
    assert p["gross_pnl"] - p["total_costs"] == pytest.approx(p["net_pnl"], rel=1e-12, abs=1e-6)
    assert p["spread"] > 0 and p["slippage"] > 0 and p["commission"] > 0
    # all trades are closed by the last bar: the trades' PnL is the portfolio's
    assert p["net_pnl"] == pytest.approx(analysis["portfolio"]["pnl"], rel=1e-9)
    # an asset without spread pays none, one without slippage none
    assert costs.loc[costs.index[4], "spread"] == 0 and costs.loc[costs.index[1], "slippage"] == 0


# ------------------------------------------------------------------ exposure

def test_exposure_equals_the_open_trades_and_the_coordinators_margins(run, analysis, engine_run):
    _result, _bars, margins = engine_run
    ex = analysis["frames"]["exposure"]
    params = run["asset_params"]
    assert len(margins) > 20 and sum(v.any() for v in margins.values()) > 10
    times = pd.to_datetime(pd.Series(list(margins)), utc=True)
    got = ex["margin"].reindex(times).to_numpy()
    held = np.array([v.sum() for v in margins.values()])
    np.testing.assert_allclose(got, held, rtol=1e-9, atol=1e-6)
    # gross and net at sampled bars, from the trades directly
    t = run["trades"]
    cs = t["asset"].astype(str).map(lambda a: params[a]["contract_size"]).to_numpy(float)
    notional = (t["units"] * t["entry_price"]).to_numpy() * cs
    long_ = (t["side"].astype(str) == "long").to_numpy()
    rng = np.random.default_rng(3)
    for when in ex.index[rng.choice(len(ex), 60, replace=False)]:
        open_ = ((t["entry_time"] <= when) & (t["exit_time"] > when)).to_numpy()
        assert ex.loc[when, "gross"] == pytest.approx(notional[open_].sum(), rel=1e-9, abs=1e-6)
        net = notional[open_ & long_].sum() - notional[open_ & ~long_].sum()
        assert ex.loc[when, "net"] == pytest.approx(net, rel=1e-9, abs=1e-6)
    eq = run["equity"]["equity"]
    np.testing.assert_allclose(ex["leverage"], ex["gross"] / eq, rtol=1e-12)
    np.testing.assert_allclose(ex["margin_to_equity"], ex["margin"] / eq, rtol=1e-12)
    s = analysis["exposure"]
    assert s["max_leverage"] == pytest.approx(float((ex["gross"] / eq).max()), rel=1e-12)
    assert 0 < s["time_in_market"] <= 1


def test_bar_positions_equal_searchsorted():
    rng = np.random.default_rng(2)
    # a calendar with weekend gaps: the lookup table path
    idx = pd.date_range("2024-01-01", periods=30_000, freq="5min", tz="UTC")
    idx = idx[idx.day_of_week < 5]
    ns = idx.as_unit("ns").asi8
    members = ns[rng.integers(0, len(ns), 5000)]
    others = rng.integers(ns[0] - 10**12, ns[-1] + 10**12, 3000)  # between bars and outside
    times = np.r_[members, others, ns[0], ns[-1]]
    np.testing.assert_array_equal(bar_positions(ns, times), np.searchsorted(ns, times))
    # an irregular index: searched
    irregular = np.sort(rng.choice(10**15, 5000, replace=False)).astype(np.int64)
    q = np.r_[irregular[rng.integers(0, 5000, 2000)], rng.integers(0, 10**15, 2000)]
    np.testing.assert_array_equal(bar_positions(irregular, q), np.searchsorted(irregular, q))


# ------------------------------------------------------------------ turnover and weights

def test_turnover_equals_the_multipliers_transfers(run, analysis):
    m = run["multipliers"]
    eq = run["equity"]["equity"]
    moved = m[m["capital_adjustment"] != 0]
    g = moved.groupby("chunk").agg(t=("chunk_start", "first"),
                                   moved=("capital_adjustment", lambda x: x.abs().sum() / 2))
    before = eq.index.searchsorted(pd.to_datetime(g["t"], utc=True)) - 1
    expected = g["moved"].to_numpy() / eq.to_numpy()[before]
    tv = analysis["frames"]["turnover"]
    assert len(tv) == len(g) > 5
    np.testing.assert_allclose(tv["moved"], g["moved"], rtol=1e-12)
    np.testing.assert_allclose(tv["turnover"], expected, rtol=1e-12)
    assert analysis["turnover"]["total_turnover"] == pytest.approx(expected.sum(), rel=1e-12)
    # each rebalance moves out of some sleeves exactly what it moves into others
    assert moved.groupby("chunk")["capital_adjustment"].sum().abs().max() < 1e-6
    assert analysis["weights_history"]["n_estimates"] == len(run["weights_history"]) >= 1


# ------------------------------------------------------------------ the files

def test_analysis_json_has_every_tear_sheet_key_as_strict_json(folder):
    text = (folder / "analysis.json").read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    for key in ("monthly_returns", "yearly_returns", "drawdowns", "breaker", "trade_analysis",
                "costs", "exposure", "turnover", "weights_history"):
        assert key in data, key
    assert data["costs"]["available"] and data["exposure"]["available"]
    assert set(data["monthly_returns"]["assets"]) == set(data["assets"])
    assert len(data["drawdowns"]["top"]) == min(10, data["drawdowns"]["count"])
    assert data["trade_analysis"]["by_exit_reason"]["signal"]["count"] > 0
    assert len(data["trade_analysis"]["pnl_histogram"]["counts"]) == 60


def test_without_asset_params_costs_and_exposure_say_why(run, tmp_path):
    from raybt.plots.report import build_report

    folder = tmp_path / "old"
    folder.mkdir()
    src = run["run_dir"]
    for f in src.iterdir():
        if f.is_file():
            (folder / f.name).write_bytes(f.read_bytes())
    info = json.loads((folder / "run_info.json").read_text())
    info.pop("asset_params")
    (folder / "run_info.json").write_text(json.dumps(info))
    out = build_report(folder)
    data = json.loads((folder / "analysis.json").read_text())
    assert data["costs"]["available"] is False and "asset_params" in data["costs"]["note"]
    assert data["exposure"]["available"] is False
    assert data["costs"]["portfolio"]["commission"] > 0  # known from the trades all the same
    html = out.read_text()
    assert "Exposure unavailable: run_info.json has no asset_params" in html
    assert (folder / "exposure.png").stat().st_size > 5_000


def test_trades_without_some_columns_still_give_what_they_can(run, analysis):
    """A trades table without ``side`` and ``units`` (an older or hand-made file): the
    exit-reason table and the PnL distribution stand, the sides are empty, and costs and
    exposure say which column they lack."""
    trades = run["trades"].drop(columns=["side", "units"])
    res = analyse_run(run["equity"], trades, run["weights"], run["metrics"],
                      multipliers=run["multipliers"], events=run["events"],
                      asset_params=run["asset_params"], include_frontier=False)
    pd.testing.assert_frame_equal(res["frames"]["by_exit_reason"], analysis["frames"]["by_exit_reason"])
    assert res["frames"]["by_side"]["count"].sum() == 0
    assert res["trade_analysis"]["pnl"] == analysis["trade_analysis"]["pnl"]
    assert res["exposure"] == {"available": False,
                               "note": "unavailable: the trades table has no side, units column"}
    assert res["costs"]["available"] is False and "no units column" in res["costs"]["note"]
