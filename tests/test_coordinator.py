"""The Coordinator stepped as a plain object over a scripted group set (no kernel, no Ray).

:class:`ScriptedGroups` has the group-set protocol (``step``, ``get_states``,
``set_states``, ``recover``) and returns scripted sleeve equity paths, so each
portfolio rule can be driven to an exact chunk and an exact drawdown. It
records every instruction it is sent and applies what a real group would:
capital adjustments are added to the sleeve (kept in the state's ``cash``, so
a restored state rewinds them) and it insists on being stepped in order from
its state (a replay without a restore would fail). It can lose a worker on
request, after some groups have already advanced.

Portfolio paths are chosen so that drawdowns are exact in binary floating
point (peak 128, last 96 is exactly 25 %).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raybt.asset import ChunkReport
from raybt.coordinator import Coordinator, WorkerLost
from raybt.config.portfolio import RiskConfig
from raybt.types import STATE_DT, TRADE_DT

START = "2024-01-01 00:00"  # a Monday


class ScriptedGroups:
    """Group set over scripted sleeve equity paths ``paths[asset, union position]``."""

    def __init__(self, paths, layout, lose_at=(), trade_every=0):
        self.paths = np.asarray(paths, dtype=np.float64)
        self.layout = [np.asarray(idx, dtype=np.int64) for idx in layout]
        self.states = [np.zeros(len(idx), dtype=STATE_DT) for idx in self.layout]
        self.lose_at = set(lose_at)  # chunk starts whose first attempt loses the last group's worker
        self.trade_every = trade_every  # each asset closes a trade in every trade_every-th chunk (0: never)
        self.calls = []  # (t_start, t_end, instructions per group) for every step, lost ones included
        self.recovered = 0
        self.restored = 0

    def step(self, t_start, t_end, instructions):
        self.calls.append((t_start, t_end, [ins.copy() for ins in instructions]))
        reports = []
        for g, (idx, ins) in enumerate(zip(self.layout, instructions)):
            if t_start in self.lose_at and g == len(self.layout) - 1:
                self.lose_at.discard(t_start)
                raise WorkerLost("scripted: the last group's worker died")  # earlier groups have advanced
            state = self.states[g]
            assert (state["next_bar"] == t_start).all(), "stepped out of order (not restored?)"
            state["cash"] += ins["capital_adjustment"]
            equity = self.paths[idx, t_start:t_end] + state["cash"][:, None]
            state["next_bar"] = t_end
            state["margin"] = 0.01 * equity[:, -1]
            state["last_equity"] = equity[:, -1]
            reports.append(ChunkReport(t_start, t_end, equity, self._trades(idx, t_start, t_end), state.copy()))
        return reports

    def _trades(self, idx, t_start, t_end):
        if not self.trade_every or (t_start // max(t_end - t_start, 1)) % self.trade_every:
            return np.zeros(0, dtype=TRADE_DT)
        trades = np.zeros(len(idx), dtype=TRADE_DT)
        trades["asset"] = np.arange(len(idx))  # within the group
        trades["side"] = 1
        trades["units"] = 1.0 + idx
        trades["entry_bar"] = t_start
        trades["exit_bar"] = t_end - 1
        trades["pnl"] = self.paths[idx, t_end - 1] - self.paths[idx, t_start]
        return trades

    def get_states(self):
        return [s.copy() for s in self.states]

    def set_states(self, states):
        self.restored += 1
        self.states = [s.copy() for s in states]

    def recover(self):
        self.recovered += 1

    # --- what was sent --------------------------------------------------------------------

    def sent(self):
        """The instructions of each *completed* step, assembled over assets: {t_start: INSTR_DT (n_assets,)}."""
        out = {}
        n = sum(len(idx) for idx in self.layout)
        for t_start, _, per_group in self.calls:
            whole = np.zeros(n, dtype=per_group[0].dtype)
            for idx, ins in zip(self.layout, per_group):
                whole[idx] = ins
            out[t_start] = whole  # a replayed chunk overwrites its lost attempt
        return out


def settings(**kw) -> RiskConfig:
    base = dict(enabled=True, portfolio_risk=1.0, dd_scale_start=0.05, dd_scale_floor=0.5,
                max_portfolio_drawdown=0.25, breaker_flatten=True, resume="never", cooldown_chunks=2,
                resume_drawdown=0.125, cluster_correlation=None, correlation_window=120,
                max_entry_margin=None)
    base.update(kw)
    return RiskConfig(**base)


def timeline(n_bars, freq="1h", start=START):
    return pd.date_range(start, periods=n_bars, freq=freq, tz="UTC").as_unit("ns").asi8


def build(paths, risk_settings, *, width=4, layout=None, freq="1h", rebalance="none", target=None,
          base_size=None, lose_at=(), trade_every=0):
    paths = np.asarray(paths, dtype=np.float64)
    n_assets, n_bars = paths.shape
    layout = layout or [np.arange(n_assets)]
    groups = ScriptedGroups(paths, layout, lose_at=lose_at, trade_every=trade_every)
    bounds = np.r_[np.arange(0, n_bars, width), n_bars]
    target = np.full(n_assets, 1.0 / n_assets) if target is None else np.asarray(target, dtype=np.float64)
    coordinator = Coordinator(groups, layout, timeline(n_bars, freq), bounds, paths[:, 0], target, risk_settings,
                              rebalance=rebalance, base_size=base_size)
    return coordinator, groups


def halves(portfolio_chunks):
    """Two equal sleeves whose sum is the portfolio path (halving is exact)."""
    total = np.concatenate([np.asarray(c, dtype=np.float64) for c in portfolio_chunks])
    return np.vstack([total / 2, total / 2])


def table(coordinator) -> pd.DataFrame:
    return pd.DataFrame(coordinator.multiplier_table())


def per_chunk(frame: pd.DataFrame, column: str) -> list:
    """``column`` per chunk; "mixed" where the assets of a chunk differ (then no list compares equal)."""
    values = frame.groupby("chunk")[column].agg(lambda s: s.iloc[0] if s.nunique() == 1 else "mixed")
    return values.tolist()


# A 25 % breaker: chunk 1 peaks at 128 inside the chunk, chunk 2 ends exactly 25 % below it (no trip),
# chunk 3 ends at 95.5, beyond 25 % (trip), then the path stays at 95.5.
FALL = [[100, 100, 100, 100], [110, 128, 120, 112], [100, 97, 96, 96], [96, 95, 95, 95.5]]
FLAT = [[95.5] * 4] * 4


# --- the breaker --------------------------------------------------------------------------------

def test_breaker_trips_after_the_first_chunk_beyond_the_limit_and_halts_the_next_chunks():
    coordinator, groups = build(halves(FALL + FLAT), settings(resume="never"))
    summaries = coordinator.advance(100)
    assert coordinator.done and len(summaries) == 8
    assert 1 - 96 / 128 == 0.25  # chunk 2 ends exactly at the limit: no trip
    assert [s.event for s in summaries] == ["", "", "", "trip", "", "", "", ""]
    assert [s.halted for s in summaries] == [False, False, False, True, True, True, True, True]
    assert [s.drawdown for s in summaries[:4]] == [0.0, 1 - 112 / 128, 0.25, 1 - 95.5 / 128]
    assert coordinator.events == [{"chunk": 4, "decided_at": int(coordinator.timeline_ns[15]), "event": "trip",
                                   "drawdown": 1 - 95.5 / 128, "breaker_drawdown": 1 - 95.5 / 128,
                                   "equity": 95.5}]
    sent = groups.sent()
    halted = [bool(sent[t]["halted"].all()) for t in range(0, 32, 4)]
    flatten = [bool(sent[t]["flatten"].all()) for t in range(0, 32, 4)]
    assert halted == [False, False, False, False, True, True, True, True]
    assert flatten == [False, False, False, False, True, False, False, False]  # flatten once, on the trip
    assert not any(sent[t]["halted"].any() != sent[t]["halted"].all() for t in sent)  # every asset alike
    m = table(coordinator)
    assert per_chunk(m, "reason") == ["start", "", "", "", "breaker", "breaker", "breaker", "breaker"]


def test_cooldown_resumes_after_cooldown_chunks_with_the_breaker_peak_reset():
    # after the trip at 95.5 (chunk 3) and two halted chunks, trading resumes at chunk 6; the breaker then
    # measures from 95.5: chunk 7 ending at 80 is 37.5 % below 128 but only 16 % below 95.5 (no trip);
    # chunk 8 ending at 71 is 25.7 % below 95.5 (trips again)
    later = [[95.5] * 4, [90, 85, 82, 80], [80, 75, 72, 71], [71] * 4]
    coordinator, groups = build(halves(FALL + [[95.5] * 4] * 2 + later), settings(resume="cooldown",
                                                                                  cooldown_chunks=2))
    summaries = coordinator.advance(100)
    assert [s.event for s in summaries] == ["", "", "", "trip", "", "resume", "", "", "trip", ""]
    assert [e["chunk"] for e in coordinator.events] == [4, 6, 9]
    resume = coordinator.events[1]
    assert resume["event"] == "resume" and resume["drawdown"] == 1 - 95.5 / 128
    m = table(coordinator)
    assert per_chunk(m, "halted") == [False, False, False, False, True, True, False, False, False, True]
    assert per_chunk(m, "flatten") == [False, False, False, False, True, False, False, False, False, True]
    assert coordinator.events[2]["breaker_drawdown"] == pytest.approx(1 - 71 / 95.5)  # the breaker's own peak
    assert coordinator.events[2]["drawdown"] == pytest.approx(1 - 71 / 128)  # the all-time peak
    # drawdown *scaling* keeps the portfolio's all-time peak (only the breaker re-arms): 37.5 % below 128
    # is beyond the 25 % limit, so chunk 8 gets the floor, not the factor of 16 % below 95.5
    assert summaries[7].drawdown == 1 - 80 / 128
    assert per_chunk(m, "drawdown")[8] == 0.5


def test_recovery_resumes_only_once_drawdown_is_below_resume_drawdown():
    up = [[96, 98, 99, 100], [105, 110, 111, 112], [112, 113, 113, 113], [113] * 4]
    coordinator, groups = build(halves(FALL + up), settings(resume="recovery", resume_drawdown=0.125,
                                                            cooldown_chunks=1))
    summaries = coordinator.advance(100)
    # chunk 4 ends 21.9 % down, chunk 5 exactly 12.5 % down (not below), chunk 6 at 113: resume for chunk 7
    assert [s.event for s in summaries] == ["", "", "", "trip", "", "", "resume", ""]
    assert per_chunk(table(coordinator), "halted") == [False, False, False, False, True, True, True, False]
    assert coordinator.breaker.peak == 113.0 and not coordinator.breaker.tripped


def test_breaker_without_flatten_halts_but_never_flattens():
    coordinator, groups = build(halves(FALL + FLAT), settings(breaker_flatten=False))
    coordinator.advance(100)
    sent = groups.sent()
    assert [bool(sent[t]["halted"].all()) for t in range(0, 32, 4)] == [False] * 4 + [True] * 4
    assert not any(ins["flatten"].any() for ins in sent.values())
    assert [e["event"] for e in coordinator.events] == ["trip"]


def test_rules_disabled_send_neutral_instructions_whatever_the_drawdown():
    crash = [[100] * 4, [50] * 4, [10] * 4]
    coordinator, groups = build(halves(crash), settings(enabled=False, max_entry_margin=0.35,
                                                        portfolio_risk=3.0), base_size=[2.0, 0.5])
    coordinator.advance(100)
    for ins in groups.sent().values():
        assert (ins["size_multiplier"] == 1).all() and not ins["halted"].any() and not ins["flatten"].any()
        assert np.isinf(ins["max_margin"]).all()
    assert coordinator.events == []


# --- sizing factors ------------------------------------------------------------------------------

def test_drawdown_scaling_and_multipliers_sent_for_the_next_chunk():
    coordinator, groups = build(halves(FALL + FLAT), settings(portfolio_risk=0.5, dd_scale_start=0.05,
                                                              dd_scale_floor=0.4),
                                base_size=[1.0, 2.0])
    coordinator.advance(100)
    m = table(coordinator)
    # drawdown at the end of the previous chunk: 0, 0.125, 0.25 (the limit: floor), beyond
    expected_dd = [1.0, 1.0, 1 - (0.125 - 0.05) / (0.25 - 0.05) * 0.6, 0.4, 0.4, 0.4, 0.4, 0.4]
    assert per_chunk(m, "drawdown") == pytest.approx(expected_dd, abs=1e-15)
    assert per_chunk(m, "portfolio_risk") == [0.5] * 8
    assert per_chunk(m, "correlation") == [1.0] * 8
    sent = groups.sent()
    for k, t in enumerate(range(0, 32, 4)):
        want = np.array([1.0, 2.0]) * 0.5 * expected_dd[k]
        np.testing.assert_allclose(sent[t]["size_multiplier"], want, rtol=1e-15)
        rows = m[m["chunk"] == k]
        assert np.array_equal(rows["multiplier"].to_numpy(), sent[t]["size_multiplier"])


def test_correlation_factors_share_a_budget_once_three_blocks_are_complete():
    rng = np.random.default_rng(4)
    n = 12 * 8  # 8 correlation blocks of 12 bars, chunks of 12 bars
    walk = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    paths = np.vstack([
        walk,  # 0 and 1: the same returns
        2 * walk,
        200.0 * (walk[0] / walk),  # 2: opposite returns (correlation about -1)
        np.full(n, 100.0),  # 3 and 4: no returns at all, correlated with nothing (not with each other)
        np.full(n, 100.0),
    ])
    coordinator, groups = build(paths, settings(cluster_correlation=0.8, correlation_window=120), width=12)
    coordinator.advance(100)
    m = table(coordinator)
    factors = m.pivot(index="chunk", columns="asset", values="correlation").to_numpy()
    assert (factors[:3] == 1.0).all()  # fewer than 3 complete blocks seen
    assert (factors[3:] == [0.5, 0.5, 1.0, 1.0, 1.0]).all()
    sent = groups.sent()
    assert np.array_equal(sent[36]["size_multiplier"], [0.5, 0.5, 1.0, 1.0, 1.0])


def test_correlation_blocks_wait_for_a_block_to_complete_across_chunks():
    # 10-bar chunks: the third 12-bar block completes inside chunk 3 (bars 30-39): factors from chunk 4
    rng = np.random.default_rng(5)
    walk = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 80)))
    coordinator, _ = build(np.vstack([walk, 3 * walk]), settings(cluster_correlation=0.8), width=10)
    coordinator.advance(100)
    factors = table(coordinator).pivot(index="chunk", columns="asset", values="correlation").to_numpy()
    assert (factors[:4] == 1.0).all() and (factors[4:] == 0.5).all()


def test_rebalancing_transfers_are_not_returns_for_the_correlation_estimate():
    # constant sleeves (no trading at all): one daily rebalance moves 100 into sleeves 0 and 1 and 200 out
    # of sleeve 2; seen as returns, the transfer would make 0 and 1 perfectly correlated
    paths = np.array([[100.0] * 96, [100.0] * 96, [400.0] * 96])
    coordinator, groups = build(paths, settings(cluster_correlation=0.8, correlation_window=120), width=12,
                                rebalance="daily", target=[1 / 3, 1 / 3, 1 / 3])
    coordinator.advance(100)
    assert [e["chunk"] for e in coordinator.events if e["event"] == "rebalance"] == [2, 4, 6]
    np.testing.assert_allclose(groups.sent()[24]["capital_adjustment"], [100.0, 100.0, -200.0], rtol=1e-12)
    assert coordinator.returns.n_blocks >= 3
    assert (table(coordinator)["correlation"] == 1.0).all()


def test_exposure_cap_sends_max_margin_as_a_share_of_the_portfolio_equity():
    path = [[100, 100, 100, 100], [110, 128, 120, 112], [100, 97, 96, 96]]
    coordinator, groups = build(halves(path), settings(max_entry_margin=0.35))
    coordinator.advance(100)
    sent = groups.sent()
    assert np.isinf(sent[0]["max_margin"]).all()  # nothing decided yet
    assert (sent[4]["max_margin"] == 0.35 * 100.0).all()  # the portfolio equity at the end of chunk 0
    assert (sent[8]["max_margin"] == 0.35 * 112.0).all()  # the end of the chunk, not its peak
    assert np.array_equal(table(coordinator)["max_margin"].to_numpy(),
                          np.concatenate([sent[t]["max_margin"] for t in (0, 4, 8)]))
    off, groups_off = build(halves(path), settings(max_entry_margin=None))
    off.advance(100)
    assert all(np.isinf(ins["max_margin"]).all() for ins in groups_off.sent().values())


# --- rebalancing ----------------------------------------------------------------------------------

def _period_starts(starts_ns, frequency):
    """Chunks (k >= 1) whose first bar opens a new UTC day / ISO week / month, by pandas periods."""
    code = {"daily": "D", "weekly": "W-SUN", "monthly": "M"}[frequency]
    periods = pd.DatetimeIndex(starts_ns, tz="UTC").tz_localize(None).to_period(code)
    return [k for k in range(1, len(periods)) if periods[k] != periods[k - 1]]


@pytest.mark.parametrize("frequency", ["daily", "weekly", "monthly"])
def test_rebalancing_transfers_at_period_boundaries(frequency):
    # 5-hour bars, 3-bar (15 h) chunks: chunk starts drift through the day; 80 days from Monday 1 January
    n = 80 * 24 // 5
    t = np.arange(n)
    paths = np.vstack([1000 + 2.0 * t + 30 * np.sin(t / 7), 3000 - 1.5 * t + 20 * np.cos(t / 5)])
    target = np.array([0.25, 0.75])
    coordinator, groups = build(paths, settings(cluster_correlation=None), width=3, freq="5h",
                                rebalance=frequency, target=target)
    coordinator.advance(10_000)
    bounds = coordinator.bounds
    expected = _period_starts(coordinator.timeline_ns[bounds[:-1]], frequency)
    assert len(expected) >= 2
    rebalances = [e["chunk"] for e in coordinator.events if e["event"] == "rebalance"]
    assert rebalances == expected
    sent = groups.sent()
    output = coordinator.output()
    for k in range(1, coordinator.n_chunks):
        moved = sent[int(bounds[k])]["capital_adjustment"]
        if k not in expected:
            assert (moved == 0).all(), k
            continue
        sleeves = output.equity[:, bounds[k] - 1]  # at the decision: the last bar of chunk k-1
        assert moved.sum() == 0.0
        np.testing.assert_allclose(sleeves + moved, target * sleeves.sum(), rtol=1e-12)
        # the sleeves start chunk k with the transfer (the scripted groups add it to their cash)
        assert np.array_equal(output.equity[:, bounds[k]],
                              paths[:, bounds[k]] + np.sum([sent[int(bounds[j])]["capital_adjustment"]
                                                            for j in range(1, k + 1)], axis=0))
        assert np.array_equal(coordinator.adjustments[k], moved)
    m = table(coordinator)
    for k in range(coordinator.n_chunks):
        rows = m[m["chunk"] == k]
        assert np.array_equal(rows["capital_adjustment"].to_numpy(), sent[int(bounds[k])]["capital_adjustment"])


# --- the decision record ----------------------------------------------------------------------------

def test_multiplier_table_is_exactly_what_was_sent_and_when_it_was_decided():
    rng = np.random.default_rng(9)
    n = 4 * 30
    walk = 50 * np.exp(np.cumsum(rng.normal(-0.002, 0.01, (3, n)), axis=1))
    coordinator, groups = build(walk, settings(cluster_correlation=0.5, correlation_window=60,
                                               max_entry_margin=0.3, resume="cooldown",
                                               max_portfolio_drawdown=0.1, portfolio_risk=0.8),
                                layout=[np.array([0, 1]), np.array([2])], rebalance="daily",
                                target=[0.2, 0.3, 0.5], base_size=[1.0, 1.5, 0.5])
    coordinator.advance(1000)
    m = table(coordinator)
    n_chunks, ts, bounds = coordinator.n_chunks, coordinator.timeline_ns, coordinator.bounds
    assert len(m) == 3 * n_chunks and list(m["asset"][:3]) == [0, 1, 2]
    sent = groups.sent()
    for k in range(n_chunks):
        rows = m[m["chunk"] == k]
        ins = sent[int(bounds[k])]
        for column, field in (("multiplier", "size_multiplier"), ("max_margin", "max_margin"),
                              ("capital_adjustment", "capital_adjustment")):
            assert np.array_equal(rows[column].to_numpy(), ins[field]), (k, column)
        assert np.array_equal(rows["halted"].to_numpy(), ins["halted"].astype(bool))
        assert np.array_equal(rows["flatten"].to_numpy(), ins["flatten"].astype(bool))
        product = rows["base"] * rows["portfolio_risk"] * rows["correlation"] * rows["drawdown"]
        assert np.array_equal(product.to_numpy(), rows["multiplier"].to_numpy())
        assert (rows["chunk_start"] == ts[bounds[k]]).all()
        assert (rows["decided_at"] == (ts[0] if k == 0 else ts[bounds[k] - 1])).all()
        assert (rows["reason"] == ("start" if k == 0 else "breaker" if ins["halted"].any() else "")).all()
    assert (m["correlation"] < 1).any() and (m["drawdown"] < 1).any() and m["halted"].any()
    assert (m["capital_adjustment"] != 0).any()


# --- a lost worker ---------------------------------------------------------------------------------

def assert_same_events(a: list, b: list):
    """Event rows equal field by field, NaN equal to NaN (rebalance rows have no ``breaker_drawdown``)."""
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b), check_exact=True)


def _outputs_equal(a, b):
    assert np.array_equal(a.equity, b.equity)
    ta = np.concatenate(a.trades) if a.trades else np.zeros(0, TRADE_DT)
    tb = np.concatenate(b.trades) if b.trades else np.zeros(0, TRADE_DT)
    assert ta.tobytes() == tb.tobytes()
    assert a.multipliers.keys() == b.multipliers.keys()
    for key in a.multipliers:
        assert np.array_equal(a.multipliers[key], b.multipliers[key]), key
    assert_same_events(a.events, b.events)
    assert [s.tobytes() for s in a.states] == [s.tobytes() for s in b.states]
    assert len(a.weight_history) == len(b.weight_history)


RUN = dict(width=4, layout=[np.array([0]), np.array([1])], rebalance="daily", target=[0.5, 0.5], trade_every=2)


@pytest.mark.parametrize("every, replay_from", [(0, 0), (2, 4), (1, 5)])
def test_lost_worker_is_recovered_and_the_chunks_replayed_from_the_last_checkpoint(every, replay_from):
    paths = halves(FALL + [[95.5] * 4] * 4)
    rules = settings(resume="cooldown", cooldown_chunks=2)
    clean, _ = build(paths, rules, **RUN)
    clean.set_checkpoint_every(every)
    clean.advance(100)
    # the worker of group 1 dies in chunk 5 (group 0 already stepped it), just after the trip of chunk 4
    lossy, groups = build(paths, rules, lose_at=[20], **RUN)
    lossy.set_checkpoint_every(every)
    lossy.advance(100)
    assert lossy.recoveries == 1 and groups.recovered == 1 and groups.restored == 1
    starts = [c[0] // 4 for c in groups.calls]
    assert starts == [0, 1, 2, 3, 4, 5, *range(replay_from, 8)]
    _outputs_equal(clean.output(), lossy.output())
    assert [e["event"] for e in lossy.events].count("trip") == 1


# --- checkpoints on disk -----------------------------------------------------------------------------

def _save_and_load(delta, folder, name):
    """Through .npz files without pickle: the delta must be plain arrays."""
    np.savez(folder / f"{name}-state.npz", **delta.state)
    np.savez(folder / f"{name}-outputs.npz", **delta.outputs)
    with np.load(folder / f"{name}-state.npz", allow_pickle=False) as s, \
            np.load(folder / f"{name}-outputs.npz", allow_pickle=False) as o:
        return {k: s[k] for k in s.files}, {k: o[k] for k in o.files}


@pytest.mark.parametrize("stops, since_trip", [((5, 9, 14), 1), ((5, 9, 14, 17), None)])
def test_checkpoint_deltas_restore_a_coordinator_that_continues_bit_identically(tmp_path, stops, since_trip):
    """Restored inside the breaker's cooldown, and after its resume (breaker peak below the all-time peak)."""
    from raybt.types import INSTR_DT

    rng = np.random.default_rng(11)
    n = 4 * 24
    fall = np.interp(np.arange(n), [0, 44, 52, n], [1, 1, 0.85, 0.85])  # trips the breaker at the end of chunk 12
    paths = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, (3, n)), axis=1)) * fall
    rules = settings(cluster_correlation=0.6, correlation_window=48, resume="cooldown", cooldown_chunks=3,
                     max_portfolio_drawdown=0.08, max_entry_margin=0.4)
    kw = dict(width=4, freq="5h", layout=[np.array([0, 1]), np.array([2])], rebalance="daily",
              target=[0.5, 0.3, 0.2], trade_every=3)
    whole, _ = build(paths, rules, **kw)
    whole.advance(1000)

    first, _ = build(paths, rules, **kw)
    saved = []
    for stop in stops:
        first.advance(stop - first.chunk)
        saved.append(_save_and_load(first.checkpoint_delta(), tmp_path, f"c{stop}"))
    if since_trip is not None:  # inside the cooldown
        assert first.breaker.tripped and first.breaker.chunks_since_trip == since_trip
    else:  # resumed: the breaker measures from the equity at the resume
        assert not first.breaker.tripped and first.breaker.peak < first.peak
        assert first.peak * (1 - 0.08) > first.sleeves.sum()  # the all-time peak would re-trip it at once
    assert first.returns.n_blocks >= 3 and first.adjustments
    last = stops[-1]
    outputs = {key: np.concatenate([o[key] for _, o in saved], axis=1 if key == "equity" else 0)
               for key in saved[0][1]}
    assert outputs["trades"].dtype == TRADE_DT and outputs["decision.instructions"].dtype == INSTR_DT
    assert outputs["equity"].shape == (3, last * 4)

    resumed, groups = build(paths, rules, **kw)  # a fresh coordinator over fresh groups
    resumed.restore_checkpoint(saved[-1][0], outputs)
    assert resumed.chunk == last and groups.restored == 1
    resumed.advance(1000)
    assert [c[0] // 4 for c in groups.calls] == list(range(last, 24))  # nothing before the checkpoint re-run
    _outputs_equal(whole.output(), resumed.output())
    trades = np.concatenate(resumed.output().trades)
    assert set(trades["asset"]) == {0, 1, 2}  # global asset indices, not the index within the group
    assert np.array_equal(trades["units"], 1.0 + trades["asset"])
    assert_same_events(resumed.events, whole.events)
    assert resumed.adjustments.keys() == whole.adjustments.keys()
    for k in whole.adjustments:
        assert np.array_equal(resumed.adjustments[k], whole.adjustments[k])


def test_restore_checkpoint_refuses_another_runs_checkpoint(tmp_path):
    paths = halves(FALL + FLAT)
    a, _ = build(paths, settings())
    a.advance(3)
    state, outputs = _save_and_load(a.checkpoint_delta(), tmp_path, "a")
    other, _ = build(paths, settings(), width=2)  # other chunk bounds
    with pytest.raises(ValueError, match="other assets or chunks"):
        other.restore_checkpoint(state, outputs)
