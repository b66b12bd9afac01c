"""Files read while Ray starts: :class:`raybt.engine.read_ahead.ReadAhead` and its use by the intake."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from raybt.engine.intake import take_bars
from raybt.engine.read_ahead import ReadAhead, read_files_ahead
from raybt.errors import DataError


def test_items_come_in_order_from_another_thread():
    threads = []

    def numbers():
        for k in range(20):
            threads.append(threading.current_thread().name)
            yield k

    assert list(ReadAhead(numbers(), limit=3)) == list(range(20))
    assert set(threads) == {"raybt-read-ahead"}


def test_it_reads_at_most_limit_ahead_and_close_stops_it():
    taken, closed = [], threading.Event()

    def numbers():
        try:
            for k in range(1000):
                taken.append(k)
                yield k
        finally:
            closed.set()

    ahead = ReadAhead(numbers(), limit=4)
    time.sleep(0.5)
    assert len(taken) <= 4 + 1  # the queue's 4 and the one waiting to go in
    assert next(ahead) == 0
    ahead.close()
    assert closed.wait(5), "the iterator was not closed"
    assert len(taken) < 1000


def test_an_error_comes_where_its_item_would_have():
    def frames():
        yield 1
        yield 2
        raise DataError("data/b.csv: row 7: high < low")

    ahead = ReadAhead(frames())
    assert next(ahead) == 1 and next(ahead) == 2
    with pytest.raises(DataError, match="row 7"):
        next(ahead)
    with pytest.raises(StopIteration):  # once raised, it is over
        next(ahead)


def test_the_intake_of_files_read_ahead_equals_the_plain_one(tmp_path):
    from raybt.config.params import validate_params
    from raybt.config.universe import AssetConfig
    from raybt.data.synth import write_universe

    paths = write_universe(tmp_path, n_assets=5, n_bars=3000, timeframe="5m", seed=3)
    configs = [AssetConfig(name=p.stem, data=p, timeframe="5m", params=validate_params({})) for p in paths]
    plain = take_bars(configs)
    ahead = take_bars(configs, frames=read_files_ahead(configs))
    assert ahead.names == plain.names
    for a, b in zip(ahead.bars, plain.bars):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert ahead.hashes() == plain.hashes()


def test_a_bad_file_read_ahead_is_the_same_one_line_error(tmp_path):
    from raybt.config.params import validate_params
    from raybt.config.universe import AssetConfig
    from raybt.data.synth import write_universe

    paths = write_universe(tmp_path, n_assets=3, n_bars=3000, timeframe="5m", seed=3)
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open,high,low,close\n2024-01-01 00:00,1,1,1,1\n2024-01-01 00:05,1,0.5,1,1\n")
    configs = [AssetConfig(name=p.stem, data=p, timeframe="5m", params=validate_params({}))
               for p in [paths[0], bad, paths[1]]]
    with pytest.raises(DataError) as plain:
        take_bars(configs)
    with pytest.raises(DataError) as ahead:
        take_bars(configs, frames=read_files_ahead(configs))
    assert str(ahead.value) == str(plain.value) and "bad.csv" in str(ahead.value)


def test_close_leaves_no_frame_behind():
    """The thread is usually inside a put when close() drains the queue: what it puts then goes too."""
    def frames():
        while True:
            yield bytearray(1 << 20)

    for _ in range(20):
        ahead = ReadAhead(frames(), limit=2)
        time.sleep(0.05)
        ahead.close()
        ahead._thread.join(5)
        assert not ahead._thread.is_alive() and ahead._queue.qsize() == 0


def test_a_sweep_reads_a_file_again_for_an_asset_config_stating_its_timeframe(tmp_path):
    """Bars cached for a config leaving the timeframe out are not reused for one stating a finer one."""
    import json

    from raybt.config.universe import load_asset_universe
    from raybt.data.synth import write_universe
    from raybt.errors import ConfigError
    from raybt.sweep.validate import bars_key

    (path,) = write_universe(tmp_path, n_assets=1, n_bars=600, timeframe="1h", seed=3)
    docs = {"left_out.json": {"assets": {"X": {"data": str(path)}}},
            "stated.json": {"assets": {"X": {"data": str(path), "timeframe": "5m"}}}}
    universes = {}
    for name, doc in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
        universes[name] = load_asset_universe(tmp_path / name)
    left_out, stated = universes["left_out.json"].get("X"), universes["stated.json"].get("X")
    assert left_out.timeframe == stated.timeframe == "5m"  # the default and the stated one alike
    assert bars_key(left_out) != bars_key(stated)
    from raybt.universe import load_asset_bars

    kept = load_asset_bars(left_out, universes["left_out.json"])  # left out: the hourly bars as they are
    assert kept.index.to_series().diff().min() == pd.Timedelta("1h")
    with pytest.raises(ConfigError, match=r"stated\.json: assets\.X\.timeframe\) is finer than the 1h bars"):
        load_asset_bars(stated, universes["stated.json"])


def _configs(tmp_path, n=3):
    from raybt.config.params import validate_params
    from raybt.config.universe import AssetConfig
    from raybt.data.synth import write_universe

    paths = write_universe(tmp_path, n_assets=n, n_bars=3000, timeframe="5m", seed=3)
    return [AssetConfig(name=p.stem, data=p, timeframe="5m", params=validate_params({})) for p in paths]


def test_files_read_ahead_are_refused_with_frames_of_the_caller(tmp_path):
    from raybt.data.loader import load_bars
    from raybt.errors import ConfigError

    configs = _configs(tmp_path)
    assets = {c.name: (c, load_bars(c.data)) for c in configs}
    with pytest.raises(ConfigError, match="^frames: "):
        take_bars(assets, frames=iter([]))
