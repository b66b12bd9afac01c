"""The breaker's resume policies and ``breaker_flatten`` through small PortfolioBacktester runs.

Two worlds, both in-process (``engine="local"``):

* a synthetic universe with a market shock: each policy's halted chunks and
  events must equal a plain replay of the rule over the run's own portfolio
  equity, no trade may enter in a halted chunk, and flattening must show in
  the trades;
* one hand-made asset whose long trade is caught in a V (a fall that trips
  the breaker, then a rise to new highs), to show ``recovery`` resuming and
  what flattening does to it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from raybt.config.params import validate_params
from raybt.config import AssetConfig
from raybt.data.synth import generate_universe
from raybt.engine import PortfolioBacktester
from raybt.config.portfolio import portfolio_config_from_dict

REPO = Path(__file__).resolve().parent.parent
LIMIT = 0.02


def _assets(universe, params):
    p = validate_params(params)
    return {name: (AssetConfig(name=name, data=None, timeframe="5m", params=p), bars)
            for name, bars in universe.items()}


@pytest.fixture(scope="module")
def shocked():
    """Six assets, six days of 5-minute bars (24/7), a -20 % market shock half way."""
    universe = generate_universe(n_assets=6, n_bars=6 * 288, timeframe="5m", seed=3, calendar="24x7",
                                 shocks=[(0.5, -0.2, 24)])
    return _assets(universe, {"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.0, "leverage": 10,
                              "bb_period": 20, "entry_z": 1.8})


def run(assets, capital=1_000_000, chunk="4h", **risk):
    config = portfolio_config_from_dict({
        "name": "breaker", "initial_capital": capital, "engine": {"chunk": chunk},
        "risk": {"max_portfolio_drawdown": LIMIT, "dd_scale_start": 0.005, "cluster_correlation": None,
                 **risk}}, "breaker")
    return PortfolioBacktester(assets, config, engine="local").run()


def chunks_of(result):
    """(chunk starts, first equity row of each chunk) of a run."""
    starts = result.multipliers.groupby("chunk")["chunk_start"].first()
    rows = result.equity.index.searchsorted(pd.DatetimeIndex(starts.to_numpy()))
    return pd.DatetimeIndex(starts.to_numpy()), np.r_[rows, len(result.equity)]


def replay_breaker(result, capital, *, limit=LIMIT, flatten=True, resume="cooldown", cooldown_chunks=5,
                   resume_drawdown=0.01):
    """The breaker as written in words, over the run's portfolio equity: per chunk (halted, flatten) and events.

    Drawdown at a chunk's end from the peak of the equity so far (the chunk's own bars included);
    beyond ``limit`` it trips: the next chunk is halted (and flattened); ``never`` stays halted,
    ``cooldown`` resumes after ``cooldown_chunks`` halted chunks, ``recovery`` once the drawdown is
    below ``resume_drawdown``; on resume the peak starts again from the equity at that moment.
    """
    equity = result.equity["equity"].to_numpy()
    _, rows = chunks_of(result)
    n_chunks = len(rows) - 1
    peak, tripped, halted_for = float(capital), False, 0
    halted, flat, events = [False], [False], []
    for k in range(n_chunks):
        path = equity[rows[k]:rows[k + 1]]
        peak = max(peak, float(path.max()))
        last = float(path[-1])
        drawdown = 1 - last / peak
        halt, flatten_now, event = tripped, False, ""
        if not tripped and drawdown > limit:
            tripped, halted_for, halt, flatten_now, event = True, 0, True, flatten, "trip"
        elif tripped:
            halted_for += 1
            if (resume == "cooldown" and halted_for >= cooldown_chunks) or (
                    resume == "recovery" and drawdown < resume_drawdown):
                tripped, halt, event, peak = False, False, "resume", last
        if event:
            events.append((k + 1, event))
        if k + 1 < n_chunks:
            halted.append(halt)
            flat.append(flatten_now)
    return halted, flat, events


def decided(result):
    m = result.multipliers.groupby("chunk")
    return m["halted"].first().tolist(), m["flatten"].first().tolist(), \
        [(int(c), e) for c, e in zip(result.events["chunk"], result.events["event"]) if e in ("trip", "resume")]


def assert_no_entry_while_halted(result):
    starts, _ = chunks_of(result)
    halted = result.multipliers.groupby("chunk")["halted"].first().to_numpy()
    chunk_of_entry = starts.searchsorted(pd.DatetimeIndex(result.trades["entry_time"]), side="right") - 1
    entered_halted = result.trades[halted[chunk_of_entry]]
    assert entered_halted.empty, entered_halted


POLICIES = {
    "never": dict(resume="never"),
    "cooldown 1": dict(resume="cooldown", cooldown_chunks=1),
    "cooldown 3": dict(resume="cooldown", cooldown_chunks=3),
    "cooldown 2 no flatten": dict(resume="cooldown", cooldown_chunks=2, breaker_flatten=False),
    "recovery no flatten": dict(resume="recovery", resume_drawdown=0.019, breaker_flatten=False),
}


@pytest.mark.parametrize("policy", list(POLICIES), ids=list(POLICIES))
def test_policy_decisions_equal_a_replay_of_the_rule_over_the_run(shocked, policy):
    risk = POLICIES[policy]
    result = run(shocked, **risk)
    want = replay_breaker(result, 1_000_000, flatten=risk.get("breaker_flatten", True),
                          **{k: v for k, v in risk.items() if k != "breaker_flatten"})
    got = decided(result)
    assert got[2] == want[2]  # events: (chunk, trip|resume)
    assert got[0] == want[0] and got[1] == want[1]
    assert any(event == "trip" for _, event in got[2])
    assert_no_entry_while_halted(result)


def test_never_halts_from_the_trip_to_the_end(shocked):
    never = run(shocked, resume="never")
    cooldown = run(shocked, resume="cooldown", cooldown_chunks=2)
    halted = never.multipliers.groupby("chunk")["halted"].first()
    trip = int(never.events.loc[never.events["event"] == "trip", "chunk"].iloc[0])
    assert halted.loc[trip:].all() and not halted.loc[:trip - 1].any()
    assert list(never.events["event"]) == ["trip"]
    start = never.multipliers.loc[never.multipliers["chunk"] == trip, "chunk_start"].iloc[0]
    assert (never.trades["entry_time"] < start).all()  # not one entry after the trip
    # the same run with a cooldown trades again after it
    assert (cooldown.trades["entry_time"] > start).sum() > 10
    pd.testing.assert_frame_equal(never.trades[never.trades["exit_time"] < start],
                                  cooldown.trades[cooldown.trades["exit_time"] < start])


@pytest.mark.parametrize("cooldown", [1, 3])
def test_cooldown_halts_exactly_cooldown_chunks_after_each_trip(shocked, cooldown):
    result = run(shocked, resume="cooldown", cooldown_chunks=cooldown)
    halted = result.multipliers.groupby("chunk")["halted"].first()
    events = result.events[result.events["event"].isin(["trip", "resume"])]
    trips = events.loc[events["event"] == "trip", "chunk"].tolist()
    resumes = events.loc[events["event"] == "resume", "chunk"].tolist()
    assert trips and resumes[:len(trips)] == [t + cooldown for t in trips][:len(resumes)]
    for t in trips:
        stretch = halted.loc[t:t + cooldown]
        assert stretch.iloc[:cooldown].all() and (len(stretch) == cooldown or not stretch.iloc[cooldown])


def test_flatten_closes_every_open_trade_at_the_trip_and_not_otherwise(shocked):
    flat = run(shocked, resume="cooldown", cooldown_chunks=2)
    kept = run(shocked, resume="cooldown", cooldown_chunks=2, breaker_flatten=False)
    trip = int(flat.events.loc[flat.events["event"] == "trip", "chunk"].iloc[0])
    start = flat.multipliers.loc[flat.multipliers["chunk"] == trip, "chunk_start"].iloc[0]

    def open_at_start(trades):
        return trades[(trades["entry_time"] < start) & (trades["exit_time"] >= start)]

    closed = open_at_start(flat.trades)
    assert len(closed) >= 1
    assert (closed["exit_time"] == start).all()  # every position open at the trip closes at the first open
    breaker = flat.trades[flat.trades["exit_reason"] == "breaker"]
    assert len(breaker) >= 1 and (breaker["exit_time"] == start).all()
    assert (breaker["exit_price"].to_numpy() == [flat_open(shocked, a, start) for a in breaker["asset"]]).all()
    # without flattening the breaker closes nothing: the same positions run on to their own exits
    assert not (kept.trades["exit_reason"] == "breaker").any()
    running = open_at_start(kept.trades)
    assert (running["exit_time"] > start).any()
    same = {(str(a), t) for a, t in zip(running["asset"], running["entry_time"])}
    assert same == {(str(a), t) for a, t in zip(closed["asset"], closed["entry_time"])}


def flat_open(assets, name, when):
    return float(assets[str(name)][1].loc[when, "open"])


# --- recovery on a hand-made V ---------------------------------------------------------------------

def v_asset():
    """One asset, 5-minute bars: calm near 100, a fall to 93 in hour 4, calm, a rise to 105, calm.

    With size 5000, leverage 10, entry_z 2 and exits and stops out of reach, a long entered in the
    calm (at about 99.9) is still open through the fall and the rise (it closes at the end).
    """
    rng = np.random.default_rng(1)
    close = np.concatenate([100 + rng.normal(0, 0.03, 48), np.linspace(99, 93, 12), 93 + rng.normal(0, 0.02, 24),
                            np.linspace(93.5, 105, 36), 105 + rng.normal(0, 0.03, 36)])
    open_ = np.r_[close[0], close[:-1]]
    index = pd.date_range("2024-01-01", periods=len(close), freq="5min", tz="UTC")
    bars = pd.DataFrame({"open": open_, "high": np.maximum(open_, close) + 0.01,
                         "low": np.minimum(open_, close) - 0.01, "close": close}, index=index)
    params = validate_params({"sizing": "fixed", "size": 5000, "leverage": 10, "lot_size": 1, "entry_z": 2.0,
                              "exit_z": 10.0, "sl_atr": 1000, "tp_atr": 1000, "allow_short": False})
    return {"V": (AssetConfig(name="V", data=None, timeframe="5m", params=params), bars)}


def test_recovery_resumes_once_the_open_trade_has_recovered():
    risk = dict(max_portfolio_drawdown=0.1, resume="recovery", resume_drawdown=0.05, breaker_flatten=False)
    result = run(v_asset(), capital=100_000, chunk="1h", **risk)
    assert decided(result) == replay_breaker(result, 100_000, limit=0.1, flatten=False, resume="recovery",
                                             resume_drawdown=0.05)
    events = result.events.set_index("event")
    assert events.loc["trip", "chunk"] == 5 and events.loc["trip", "drawdown"] > 0.3
    assert events.loc["resume", "chunk"] == 9 and events.loc["resume", "drawdown"] < 0.05
    halted = result.multipliers.groupby("chunk")["halted"].first()
    assert halted.loc[5:8].all() and not halted.loc[9:].any() and not halted.loc[:4].any()
    assert list(result.trades["exit_reason"]) == ["end"]  # the trade rode the V


def test_flatten_closes_the_trade_at_the_trip_and_the_halted_sleeve_stands_still():
    """With breaker_flatten the V's trade is closed at the first open after the trip; while halted the
    sleeve holds no position and takes none, so its equity does not move though the price rises."""
    risk = dict(max_portfolio_drawdown=0.1, resume="cooldown", cooldown_chunks=3, breaker_flatten=True)
    result = run(v_asset(), capital=100_000, chunk="1h", **risk)
    trade = result.trades.iloc[0]
    assert list(result.trades["exit_reason"][:1]) == ["breaker"]
    trip = result.events.loc[result.events["event"] == "trip"].iloc[0]
    m = result.multipliers
    assert trade["exit_time"] == m.loc[m["chunk"] == trip["chunk"], "chunk_start"].iloc[0]
    assert trade["exit_price"] == v_asset()["V"][1].loc[trade["exit_time"], "open"]  # no spread, the open
    halted = m.loc[m["halted"], "chunk_start"]
    last_halted = result.equity.index[result.equity.index.searchsorted(halted.iloc[-1]) + 11]
    frozen = result.equity.loc[trade["exit_time"]:last_halted, "equity"]
    assert len(frozen) >= 12 and frozen.nunique() == 1


def test_recovery_with_a_flattening_breaker_is_refused():
    """A flattened portfolio holds nothing, so its drawdown cannot recover: ``resume: recovery`` with
    ``breaker_flatten: true`` would halt trading to the end of the run after the first trip."""
    from raybt.errors import ConfigError

    with pytest.raises(ConfigError, match=r"risk\.resume: recovery cannot resume a breaker that flattens"):
        portfolio_config_from_dict({"name": "x", "risk": {"resume": "recovery", "breaker_flatten": True}}, "x")
    config = portfolio_config_from_dict({"name": "x", "risk": {"resume": "recovery", "breaker_flatten": False}}, "x")
    assert config.risk.resume == "recovery"


@pytest.mark.parametrize("name", ["balanced", "aggressive", "conservative"])
def test_shipped_config_breaker_resumes_after_the_market_recovers(name):
    """Each shipped config's breaker trips on the V's fall and trades again once the market has
    recovered to new highs. (Its comment: conservative "waits for recovery before trading again".)"""
    risk = yaml.safe_load((REPO / "configs" / f"portfolio_{name}.yaml").read_text())["risk"]
    risk["max_entry_margin"] = None  # the V's one trade is half the capital in margin: the breaker is under test
    config = portfolio_config_from_dict({"name": name, "initial_capital": 100_000, "engine": {"chunk": "1h"},
                                         "risk": risk}, name)
    result = PortfolioBacktester(v_asset(), config, engine="local").run()
    events = list(result.events["event"])
    assert events[:1] == ["trip"]
    assert "resume" in events, (
        f"{name}: resume={risk['resume']}, breaker_flatten={risk['breaker_flatten']}: halted from chunk "
        f"{int(result.events['chunk'].iloc[0])} to the end of the run; equity after the trip: "
        f"{sorted(set(result.equity['equity'].iloc[-60:].round(2)))[:3]}")
