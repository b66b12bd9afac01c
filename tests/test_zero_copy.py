"""Bars used without copies: per-asset column views, compact union positions,
object-store views in the driver, and the equity matrix in shared memory."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raybt.asset import AssetGroup, compact_positions, shard_bars
from raybt.broker import initial_state, param_records
from raybt.config.params import validate_params
from raybt.kernels import advance_shard_nb
from raybt.shared_memory import SharedHandle, attach_shared, create_shared
from raybt.timeline import asset_positions, union_positions, union_timeline
from raybt.types import TRADE_DT, neutral_instructions


def _prices(rng, n):
    close = 100 * np.exp(np.cumsum(rng.normal(0, 2e-3, n)))
    open_ = np.r_[close[0], close[:-1]]
    return open_, np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999, close


# --- union positions ---------------------------------------------------------------------

def test_consecutive_positions_are_not_stored():
    stored, base = compact_positions(np.arange(7, 12))
    assert len(stored) == 0 and base == 7
    stored, base = compact_positions(np.array([3, 4, 6]))
    assert list(stored) == [3, 4, 6] and base == 0


def test_asset_positions_dense_and_with_gaps():
    timeline = pd.date_range("2024-01-01", periods=50, freq="5min", tz="UTC")
    stored, base = asset_positions(timeline[10:30], timeline)
    assert len(stored) == 0 and base == 10
    gappy = timeline[10:30].delete(5)
    stored, base = asset_positions(gappy, timeline)
    assert np.array_equal(stored, union_positions(gappy, timeline)) and base == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 400), min_size=1, max_size=60), min_size=1, max_size=6),
       st.booleans())
def test_union_timeline_equals_sorted_unique(minute_lists, repeat_first):
    """The distinct-calendar merge gives exactly the sorted unique timestamps."""
    start = pd.Timestamp("2024-01-01", tz="UTC")
    indexes = [pd.DatetimeIndex(sorted({start + pd.Timedelta(minutes=m) for m in ms})) for ms in minute_lists]
    if repeat_first:
        indexes.append(indexes[0].copy())
    expected = np.unique(np.concatenate([i.as_unit("ns").asi8 for i in indexes]))
    assert np.array_equal(union_timeline(indexes).asi8, expected)


def test_stored_and_implicit_positions_give_identical_results():
    """An asset on consecutive union positions: the kernel with the positions stored
    equals the kernel with only the base (nothing stored)."""
    from numba.typed import List

    from raybt.asset import BAR_ARRAY, POS_ARRAY, read_only

    rng = np.random.default_rng(5)
    n, base, width = 3000, 40, 3100
    o, h, lo, c = (read_only(x) for x in _prices(rng, n))
    params = param_records([validate_params({"bb_period": 15})])
    outputs = []
    for positions, start in ((read_only(np.arange(base, base + n), np.int64), 0),
                             (read_only(np.zeros(0, np.int64), np.int64), base)):
        lists = [List.empty_list(BAR_ARRAY) for _ in range(4)]
        for lst, x in zip(lists, (o, h, lo, c)):
            lst.append(x)
        pos = List.empty_list(POS_ARRAY)
        pos.append(positions)
        state = initial_state(params)
        equity = np.empty((1, 100))
        trades = np.zeros((1, 100), dtype=TRADE_DT)
        counts = np.zeros(1, dtype=np.int64)
        eq_parts, tr_parts = [], []
        for t in range(0, width, 100):
            advance_shard_nb(*lists, pos, np.array([start]), params, state, neutral_instructions(1),
                             t, min(width, t + 100), equity, trades, counts)
            eq_parts.append(equity[0, : min(width, t + 100) - t].copy())
            tr_parts.append(trades[0, : counts[0]].copy())
        outputs.append((np.concatenate(eq_parts), np.concatenate(tr_parts)))
    assert np.array_equal(outputs[0][0], outputs[1][0])
    assert outputs[0][1].tobytes() == outputs[1][1].tobytes()
    assert len(outputs[0][1]) > 5


def test_shard_uses_the_callers_columns_without_copy():
    rng = np.random.default_rng(2)
    o, h, lo, c = _prices(rng, 500)
    frame = pd.DataFrame({"open": o, "high": h, "low": lo, "close": c})
    bars = shard_bars([frame["open"].to_numpy()], [frame["high"].to_numpy()], [frame["low"].to_numpy()],
                      [frame["close"].to_numpy()], [np.arange(500)])
    assert np.shares_memory(bars.arrays[0][3], frame["close"].to_numpy())
    group = AssetGroup(bars, param_records([validate_params({})]))
    report = group.step(0, 500, neutral_instructions(1))
    assert np.isfinite(report.equity).all()


# --- shared memory ----------------------------------------------------------------------

def _shared(shape):
    shared = create_shared(shape)
    assert (shared is not None) == sys.platform.startswith("linux")  # elsewhere: None, and callers copy
    return shared


def test_shared_array_maps_the_same_memory():
    shared = _shared((3, 5))
    if shared is None:
        return
    shared.array[:] = np.arange(15.0).reshape(3, 5)
    mapped = attach_shared(shared.handle)
    assert mapped is not None and np.array_equal(mapped, shared.array)
    mapped[1, 2] = -1.0
    assert shared.array[1, 2] == -1.0


def _rss_shmem_kb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssShmem:"):
            return int(line.split()[1])
    return -1


def test_rows_populated_for_writing_are_mapped_now_and_keep_their_values():
    """A shard faults its rows of the shared equity in once (not page by page inside the chunks)."""
    from raybt.shared_memory import populate_for_writing

    shared = _shared((64, 8192))
    if shared is None or _rss_shmem_kb() < 0:
        return
    mapped = attach_shared(shared.handle)  # the writer's own mapping, as a shard's
    shared.array[10, 5] = 7.0
    rows = mapped[8:40]
    before = _rss_shmem_kb()
    assert populate_for_writing(rows)
    grown = _rss_shmem_kb() - before
    assert grown >= rows.nbytes // 1024 - 8, (grown, rows.nbytes // 1024)  # every page of the rows, now
    assert grown <= rows.nbytes // 1024 + 8  # and only those
    assert mapped[10, 5] == 7.0 and np.count_nonzero(mapped) == 1  # contents unchanged
    rows[:] = 1.5
    assert shared.array[8:40].min() == 1.5 and shared.array[40:].max() == 0.0
    assert not populate_for_writing(mapped[:, ::2])  # not one contiguous range: left alone


def test_attach_refuses_a_descriptor_that_is_not_ours():
    shared = _shared((2, 2))
    if shared is None:
        return
    forged = SharedHandle(shared.handle.pid, shared.handle.fd, "0" * 16, (2, 2), "<f8")
    assert attach_shared(forged) is None
    gone = SharedHandle(2 ** 22 + 12345, 3, shared.handle.token, (2, 2), "<f8")
    assert attach_shared(gone) is None
    assert attach_shared(None) is None


# --- Ray: the driver keeps views of the object store --------------------------------------

def test_ray_driver_frames_view_the_object_store(ray_session):
    import ray

    from raybt.config.universe import AssetConfig
    from raybt.engine import PortfolioBacktester
    from raybt.config.portfolio import portfolio_config_from_dict

    rng = np.random.default_rng(9)
    index = pd.date_range("2024-01-01", periods=400, freq="5min", tz="UTC")
    assets = {}
    for name in ("A", "B"):
        o, h, lo, c = _prices(rng, 400)
        frame = pd.DataFrame({"open": o, "high": h, "low": lo, "close": c, "volume": 1.0}, index=index)
        assets[name] = (AssetConfig(name=name, data=None, timeframe="5m", params=validate_params({})), frame)
    config = portfolio_config_from_dict({"name": "t", "engine": {"chunk": "1D"}}, "t")
    bt = PortfolioBacktester(assets, config, engine="ray")
    for ref, frame, (_, original) in zip(bt.intake.refs, bt.bars, assets.values()):
        stored = ray.get(ref)
        assert np.shares_memory(frame["close"].to_numpy(), stored[3])
        assert np.array_equal(frame["close"].to_numpy(), original["close"].to_numpy())
        assert frame.index.equals(original.index)
    local = PortfolioBacktester(assets, config, engine="local").run()
    remote = bt.run()
    assert np.array_equal(local.equity.to_numpy(), remote.equity.to_numpy())
    pd.testing.assert_frame_equal(local.trades, remote.trades)


def test_a_shard_actor_on_this_node_posts_its_digests_to_the_shared_mailbox(ray_session):
    """A shard actor given the receiver's shared equity rows and mailbox (as the coordinator gives them
    on its node) writes its equity there and answers a chunk with the digest's length only; the
    mailbox then holds the digest a plain group computes for the same chunk."""
    import ray

    from raybt.chunk_digest import ChunkDigest, DigestingGroup, chunk_request, read_reply
    from raybt.ray.shard import StoredBars, start_shards

    rng = np.random.default_rng(3)
    n_bars, n_assets = 300, 3
    columns = [_prices(rng, n_bars) for _ in range(n_assets)]
    stored = [StoredBars(ray.put(tuple(np.ascontiguousarray(c) for c in cols)), 0, np.zeros(0, np.int64), 0)
              for cols in columns]
    params = param_records([validate_params({})] * n_assets)
    shard = start_shards(["mailbox test"], {"num_cpus": 0})[0]
    try:
        assert ray.get(shard.load.remote(stored, params))
        equity, mailbox = create_shared((n_assets, n_bars)), create_shared((ChunkDigest.wire_size(0, n_assets, 200, 12),))
        node = ray.get_runtime_context().get_node_id()
        assert ray.get(shard.share_equity.remote(node, equity.handle, 0, mailbox.handle))
        extras = np.r_[[0, -1, 12], np.full(n_assets, 1e5), np.zeros(n_assets)]
        request = chunk_request(0, 200, neutral_instructions(n_assets), extras)
        reply = ray.get(shard.step_bytes.remote(request))
        assert len(reply) == 8  # the length only: the digest is in the mailbox
        plain = DigestingGroup(AssetGroup(shard_bars(*[[c[k] for c in columns] for k in range(4)],
                                                     [(np.zeros(0, np.int64), 0)] * n_assets), params))
        expected = plain.step_digest(0, 200, neutral_instructions(n_assets), extras.copy())
        assert read_reply(reply, mailbox.array).tobytes() == expected.tobytes()
        assert np.array_equal(equity.array[:, :200], plain.collect()[1])  # the equity in the shared rows
    finally:
        ray.kill(shard)


@pytest.mark.parametrize("broken, needle", [("no_close", "no column 'close'"), ("int_index", "a RangeIndex, not a DatetimeIndex")])
def test_api_bars_without_prices_or_timestamps_one_clear_error(broken, needle):
    """Frames handed to the Python API are checked before any use: a DataError naming the asset."""
    from raybt.config.universe import AssetConfig
    from raybt.engine import PortfolioBacktester
    from raybt.errors import DataError
    from raybt.config.portfolio import portfolio_config_from_dict

    rng = np.random.default_rng(4)
    o, h, lo, c = _prices(rng, 200)
    frame = pd.DataFrame({"open": o, "high": h, "low": lo, "close": c},
                         index=pd.date_range("2024-01-01", periods=200, freq="5min", tz="UTC"))
    frame = frame.drop(columns="close") if broken == "no_close" else frame.reset_index(drop=True)
    assets = {"EURUSD": (AssetConfig(name="EURUSD", data=None, timeframe="5m", params=validate_params({})), frame)}
    config = portfolio_config_from_dict({"name": "t"}, "t")
    with pytest.raises(DataError, match=rf"asset EURUSD: bars have {needle}"):
        PortfolioBacktester(assets, config, engine="local")
