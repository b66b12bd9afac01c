"""Chunk digests: what shard actors send per chunk instead of their equity, and the lean coordinator.

The portfolio path summed on the fixed tree is the same bit for bit however
the assets are split; a coordinator over groups that keep their outputs
(sending digests, collected at checkpoints, re-estimates and the end) gives
exactly the outputs of one over whole chunk reports, also when a group is
lost mid-run (its kept outputs with it) and the run replays. No Ray here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raybt.allocation.estimator import WeightEstimator
from raybt.asset import AssetGroup
from raybt.chunk_digest import (ChunkDigest, DigestingGroup, canonical_blocks, chunk_request, digest_chunk,
                                path_extremes, portfolio_path)
from raybt.config.params import validate_params
from raybt.config.portfolio import portfolio_config_from_dict
from raybt.config.universe import AssetConfig
from raybt.coordinator import Coordinator, LocalGroupSet, WorkerLost
from raybt.data.synth import generate_universe
from raybt.engine import pack_assets, shard_layout
from raybt.engine.intake import take_bars
from raybt.engine.plan import make_plan


@given(st.integers(0, 300), st.integers(1, 300))
def test_canonical_blocks_tile_the_range_with_aligned_blocks(lo, n):
    blocks = canonical_blocks(lo, lo + n)
    covered = []
    for level, index in blocks:
        start = index << level
        assert start % (1 << level) == 0
        covered.extend(range(start, start + (1 << level)))
    assert covered == list(range(lo, lo + n))
    assert len(blocks) <= 2 * max(n.bit_length(), 1)


def _split(n, cuts):
    edges = sorted({0, n, *[c % n for c in cuts]})
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 70), st.integers(1, 40), st.lists(st.integers(0, 10_000), max_size=8), st.integers(0, 2**32 - 1))
def test_path_is_the_same_bit_for_bit_however_the_assets_are_split(n, width, cuts, seed):
    rng = np.random.default_rng(seed)
    equity = rng.lognormal(11, 2, size=(n, width))
    equity[rng.random(size=equity.shape) < 0.05] = 0.0
    previous, partial = rng.lognormal(11, 1, size=n), np.zeros(n)
    whole = digest_chunk(equity, np.zeros(n), 0, 5, previous, partial, -1, 12)
    path = portfolio_path([whole], n)
    parts = [digest_chunk(np.ascontiguousarray(equity[a:b]), np.zeros(b - a), a, 5, previous[a:b], partial[a:b],
                          -1, 12) for a, b in _split(n, cuts)]
    assert np.array_equal(portfolio_path(parts, n), path)
    assert np.array_equal(np.concatenate([p.returns for p in parts], axis=1), whole.returns)
    assert np.allclose(path, equity.sum(axis=0), rtol=1e-12)
    assert path_extremes(path) == (path.max(), path[-1])


def test_digest_is_small_and_survives_the_wire():
    """A 25-asset shard over a day of 5-minute bars sends its block sums, not its 25 x 288 equities."""
    rng = np.random.default_rng(1)
    equity = rng.lognormal(11, 1, size=(25, 288))
    digest = digest_chunk(equity, rng.random(25), 25, 288 * 3, rng.random(25) + 1e5, rng.random(25), 287, 12)
    wire = digest.to_wire()
    assert wire.size < equity.size / 2 and len(digest.blocks) <= 2 * 5
    back = ChunkDigest.from_wire(wire)
    for name in ("blocks", "block_path", "last", "margins", "returns"):
        assert np.array_equal(getattr(back, name), getattr(digest, name)), name
    assert (back.t_start, back.t_end, back.first_block) == (digest.t_start, digest.t_end, digest.first_block)


# --- the lean coordinator ------------------------------------------------------------------

def _plan(n_assets=7):
    universe = generate_universe(n_assets=n_assets, n_bars=5 * 288, timeframe="5m", seed=11,
                                 shocks=[(0.55, -0.2, 24)])
    params = validate_params({"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.0, "leverage": 10,
                              "bb_period": 20, "entry_z": 1.8})
    assets = {name: (AssetConfig(name=name, data=None, timeframe="5m", params=params), bars)
              for name, bars in universe.items()}
    config = portfolio_config_from_dict({
        "name": "lean", "initial_capital": 1_000_000, "rebalance": "daily",
        "allocation": {"model": "inverse_volatility", "lookback": "1D"}, "engine": {"chunk": "4h"},
        "risk": {"max_portfolio_drawdown": 0.02, "dd_scale_start": 0.005, "cluster_correlation": 0.3,
                 "correlation_window": 200, "resume": "cooldown", "cooldown_chunks": 2,
                 "max_entry_margin": 0.5}}, "lean")
    estimator = WeightEstimator.from_config(config.allocation)
    return make_plan(take_bars(assets), config, estimator=estimator), config


def _group(plan, idx):
    return AssetGroup(pack_assets(plan.intake.bars, plan.timeline, idx), plan.params[idx])


class LeanGroups:
    """Groups that keep their outputs, as the shard actors do; ``lose_at``: (chunk start, group) of a loss."""

    keeps_outputs = True

    def __init__(self, plan, shards, lose_at=(), lose_on_collect=None):
        self.plan, self.shards = plan, shards
        self.groups = [DigestingGroup(_group(plan, idx)) for idx in shards]
        self.lose_at, self.lose_on_collect = set(lose_at), lose_on_collect  # (collect call number, group)
        self.lost, self.collects = [], 0

    def _lose(self, g):
        self.lost.append(g)
        raise WorkerLost(f"group {g} lost")

    def step_digest(self, t_start, t_end, instructions, extras):
        wires = []
        for g, (group, ins, ext) in enumerate(zip(self.groups, instructions, extras)):
            if (t_start, g) in self.lose_at:
                self.lose_at.discard((t_start, g))
                self._lose(g)
            wires.append(group.step_bytes(chunk_request(t_start, t_end, ins, ext)))  # as the shard actors get them
        return [ChunkDigest.from_wire(np.frombuffer(w, dtype=np.float64)) for w in wires]

    def collect(self, by_reference=False):  # always by value: the references are Ray's
        self.collects += 1
        if self.lose_on_collect is not None and self.collects == self.lose_on_collect[0]:
            self._lose(self.lose_on_collect[1])
        return [g.collect() for g in self.groups]

    def get_states(self):
        return [g.get_state() for g in self.groups]

    def set_states(self, states):
        for g, s in zip(self.groups, states):
            g.set_state(s)

    def recover(self):
        """The lost group starts again from its bars: no state, nothing kept."""
        g = self.lost[-1]
        self.groups[g] = DigestingGroup(_group(self.plan, self.shards[g]))


def _run(plan, config, groups, shards, checkpoint_every=0):
    coordinator = Coordinator(groups, list(shards), plan.timeline.as_unit("ns").asi8, plan.bounds,
                              plan.initial_sleeves, plan.target, config.risk, rebalance=config.rebalance,
                              **plan.reweighing)
    coordinator.set_checkpoint_every(checkpoint_every)
    while coordinator.advance(16):
        pass
    return coordinator


def _assert_same(a, b):
    oa, ob = a.output(), b.output()
    assert np.array_equal(oa.equity, ob.equity)
    assert np.array_equal(oa.portfolio, ob.portfolio)  # the path the rules saw, recoveries included
    assert np.concatenate(oa.trades).tobytes() == np.concatenate(ob.trades).tobytes()
    ta, tb = oa.multipliers, ob.multipliers
    assert ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)
    pd.testing.assert_frame_equal(pd.DataFrame(oa.events), pd.DataFrame(ob.events), check_exact=True)
    assert [s.tobytes() for s in np.concatenate(oa.states)] == [s.tobytes() for s in np.concatenate(ob.states)]


@pytest.fixture(scope="module")
def reference():
    plan, config = _plan()
    whole = shard_layout(len(plan.names), 1)
    full = _run(plan, config, LocalGroupSet([_group(plan, whole[0])]), whole)
    events = {e["event"] for e in full.events}
    assert {"trip", "rebalance"} <= events and len(full.weight_history) > 1, events  # the rules acted
    return plan, config, full


@pytest.mark.parametrize("n_shards", [1, 2, 3, 7])
def test_lean_groups_equal_whole_reports(reference, n_shards):
    plan, config, full = reference
    shards = shard_layout(len(plan.names), n_shards)
    _assert_same(full, _run(plan, config, LeanGroups(plan, shards), shards, checkpoint_every=4))


def test_lost_group_replays_from_the_checkpoint_to_the_same_results(reference):
    """A group lost mid-chunk, and one lost while handing its outputs over: restart, restore, replay."""
    plan, config, full = reference
    shards = shard_layout(len(plan.names), 3)
    lose_at = [(int(plan.bounds[9]), 1), (int(plan.bounds[22]), 2)]
    groups = LeanGroups(plan, shards, lose_at=lose_at, lose_on_collect=(4, 0))
    lean = _run(plan, config, groups, shards, checkpoint_every=5)
    assert lean.recoveries == 3 and sorted(groups.lost) == [0, 1, 2]
    _assert_same(full, lean)


def test_portfolio_equity_is_the_coordinators_path_bar_for_bar(reference):
    """The equity table's portfolio column is summed as the coordinator summed the path it acted on."""
    from raybt.chunk_digest import portfolio_equity

    plan, config, full = reference
    out = full.output()
    table = portfolio_equity(out.equity, columns=100)  # column blocks do not change any sum
    assert np.array_equal(table, portfolio_equity(out.equity))
    assert np.array_equal(out.portfolio, table)  # the output's own path, as the run's table writes it
    for k in range(full.n_chunks):
        t0, t1 = int(plan.bounds[k]), int(plan.bounds[k + 1])
        chunk = np.ascontiguousarray(out.equity[:, t0:t1])
        digest = digest_chunk(chunk, np.zeros(len(chunk)), 0, t0, chunk[:, 0], np.zeros(len(chunk)), -1, 12)
        assert np.array_equal(portfolio_path([digest], len(chunk)), table[t0:t1])


class PostingGroups(LeanGroups):
    """Lean groups that post their digests to mailboxes, as shard actors on the coordinator's node do;
    ``short``: the groups whose mailbox is too small for a chunk (their digests come in the reply)."""

    def __init__(self, plan, shards, short=()):
        super().__init__(plan, shards)
        widest = int(np.diff(plan.bounds).max())
        block = 12  # RollingBlockMoments' block for the test's window
        self.mailboxes = []
        for g, (group, idx) in enumerate(zip(self.groups, shards)):
            size = ChunkDigest.wire_size(int(idx[0]), int(idx[-1]) + 1, widest, block)
            box = np.full(size // 2 if g in short else size, np.nan)
            group.reply_through(box)
            self.mailboxes.append(box)
        self.posted = 0

    def step_digest(self, t_start, t_end, instructions, extras):
        from raybt.chunk_digest import read_reply

        replies = [group.step_bytes(chunk_request(t_start, t_end, ins, ext))
                   for group, ins, ext in zip(self.groups, instructions, extras)]
        self.posted += sum(len(r) == 8 for r in replies)
        digests = [ChunkDigest.from_wire(read_reply(r, box)) for r, box in zip(replies, self.mailboxes)]
        for box in self.mailboxes:  # the next chunk overwrites them: nothing may still read them
            box[:] = np.nan
        return digests


def test_digests_posted_to_mailboxes_give_the_same_results(reference):
    """Digests through a mailbox (and in the reply where the mailbox is too small) change nothing."""
    from raybt.risk import RollingBlockMoments

    plan, config, full = reference
    assert RollingBlockMoments(max(int(config.risk.correlation_window), 2), 1).block == 12
    shards = shard_layout(len(plan.names), 3)
    groups = PostingGroups(plan, shards, short={1})
    lean = _run(plan, config, groups, shards, checkpoint_every=4)
    n_steps = groups.posted
    assert n_steps > 0 and n_steps >= 2 * full.n_chunks  # groups 0 and 2 posted every chunk
    _assert_same(full, lean)


class _Held:
    """A stand-in for a Ray object reference: the trades handed over unread."""

    def __init__(self, raw):
        self.raw = raw


class ReferencingGroups(LeanGroups):
    """Lean groups whose final collect hands the trades over by reference, as the shard actors do."""

    def collect(self, by_reference=False):
        if not by_reference:
            return super().collect()
        self.collects += 1
        return [(*head, _Held(trades)) for head, trades in (g.collect_apart() for g in self.groups)]


def test_trades_handed_over_by_reference_give_the_same_trades_table(reference):
    """The end's trades, one reference per group to its chunks' trades: the same table row for row
    (each asset's trades stay in time order), with the parts kept at checkpoints before them."""
    from raybt.records import trades_frame
    from raybt.types import TRADE_DT

    plan, config, full = reference
    shards = shard_layout(len(plan.names), 3)
    lean = _run(plan, config, ReferencingGroups(plan, shards), shards, checkpoint_every=7)
    parts = lean.output().trades
    held = [p for p in parts if isinstance(p, _Held)]
    assert 1 <= len(held) <= 3 and len(held) < len(parts)  # by reference at the end only
    resolved = []  # as raybt.ray.actors.resolve_trades does with the Ray references
    for part in parts:
        resolved.extend(part.raw if isinstance(part, _Held) else [part])
    assert all(isinstance(part, np.ndarray) and part.dtype == TRADE_DT for part in resolved)
    expected = full.output().trades
    stamps = [plan.intake.bars[a].index for a in range(len(plan.names))]
    pd.testing.assert_frame_equal(trades_frame(resolved, plan.names, stamps),
                                  trades_frame(expected, plan.names, stamps), check_exact=True)
    assert len(np.concatenate(resolved)) == len(np.concatenate(expected))
