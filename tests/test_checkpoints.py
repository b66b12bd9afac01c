"""Checkpoints on disk: no pickle, digests checked before use, cost proportional to the work since the
last one, and a resumed run bit-identical to an uninterrupted one (at 1-hour chunks too)."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from raybt.config.params import validate_params
from raybt.array_records import MAGIC, PREFIX, unpack
from raybt.checkpoints import FOLDER, OUTPUTS, RECORD_DTYPES, RUN, STATES, load_checkpoint
from raybt.config.universe import AssetConfig
from raybt.data.synth import generate_universe
from raybt.engine import PortfolioBacktester
from raybt.errors import ConfigError
from raybt.config.portfolio import portfolio_config_from_dict

EVERY = 5


@pytest.fixture(scope="module")
def assets():
    universe = generate_universe(n_assets=4, n_bars=12 * 288, timeframe="5m", seed=11, shocks=[(0.4, -0.15, 24)])
    params = validate_params({"sizing": "risk", "risk_per_trade": 0.01, "lot_size": 0.0, "leverage": 10,
                              "bb_period": 20, "entry_z": 1.8, "commission": 2e-5})
    return {n: (AssetConfig(name=n, data=None, timeframe="5m", params=params), b) for n, b in universe.items()}


def _config(**engine):
    return portfolio_config_from_dict({
        "name": "ckpt", "rebalance": "daily", "allocation": {"model": "risk_parity", "lookback": "2D"},
        "engine": {"chunk": "1h", "checkpoint_every": EVERY, "checkpoint_seconds": 0, **engine},
        "risk": {"max_portfolio_drawdown": 0.03, "dd_scale_start": 0.01, "cluster_correlation": 0.4,
                 "correlation_window": 300, "cooldown_chunks": 3}}, "test")


@pytest.fixture(scope="module")
def reference(assets):
    return PortfolioBacktester(assets, _config(), engine="local").run()


class Stop(KeyboardInterrupt):
    pass


def _interrupt_after(batches: int):
    calls = []

    def progress(summaries):
        calls.append(summaries[-1].chunk)
        if len(calls) == batches:
            raise Stop()
    return progress


@pytest.fixture
def interrupted(assets, tmp_path):
    """A run stopped (like Ctrl-C) after 20 batches of 5 one-hour chunks; its checkpoint folder."""
    with pytest.raises(Stop):
        PortfolioBacktester(assets, _config(), engine="local", progress=_interrupt_after(20)).run(
            checkpoint_dir=tmp_path)
    assert (tmp_path / FOLDER / STATES[0]).is_file()
    return tmp_path


def _same(a, b):
    pd.testing.assert_frame_equal(a.equity, b.equity, check_exact=True)
    pd.testing.assert_frame_equal(a.trades, b.trades, check_exact=True)
    pd.testing.assert_frame_equal(a.multipliers, b.multipliers, check_exact=True)
    pd.testing.assert_frame_equal(a.events, b.events, check_exact=True)
    pd.testing.assert_frame_equal(a.weight_history, b.weight_history, check_exact=True)


def test_resume_at_one_hour_chunks_is_bit_identical(assets, reference, interrupted):
    assert (reference.multipliers["capital_adjustment"] != 0).any() and len(reference.events) > 5
    resumed = PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=interrupted, resume=True)
    _same(reference, resumed)
    assert resumed.metrics["portfolio"] == reference.metrics["portfolio"]


def test_a_resumed_run_can_be_interrupted_and_resumed_again(assets, reference, interrupted):
    with pytest.raises(Stop):
        PortfolioBacktester(assets, _config(), engine="local", progress=_interrupt_after(8)).run(
            checkpoint_dir=interrupted, resume=True)
    resumed = PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=interrupted, resume=True)
    _same(reference, resumed)


def _records(path):
    """(meta, arrays) of every record in a file, in order."""
    buffer, offset, out = bytearray(path.read_bytes()), 0, []
    while offset < len(buffer):
        meta, arrays, offset = unpack(buffer, offset, RECORD_DTYPES)
        out.append((meta, arrays))
    return out


def _hashes(folder):
    return json.loads((folder / FOLDER / RUN).read_text())["hashes"]


def test_each_record_holds_only_the_work_since_the_previous_checkpoint(interrupted):
    """Every bar's equity is written once, in order: the checkpoints cost the work, not its square."""
    records = _records(interrupted / FOLDER / OUTPUTS)
    assert 1 <= len(records) <= 19  # one per batch of 5 chunks, merged when the disk lags behind
    widths = [arrays["equity"].shape[1] for _, arrays in records]
    assert [meta["equity_from"] for meta, _ in records] == list(np.cumsum([0] + widths[:-1]))
    state, outputs = load_checkpoint(interrupted, _hashes(interrupted))
    assert outputs["equity"].shape[1] == sum(widths)
    assert len(outputs["trades"]) == sum(len(arrays["trades"]) for _, arrays in records)
    newest = max((_records(interrupted / FOLDER / name)[0][0] for name in STATES), key=lambda m: m["chunk"])
    assert newest["chunk"] == 19 * EVERY == int(state["chunk"]) and newest["records"] == len(records)
    assert sorted(os.listdir(interrupted / FOLDER)) == sorted([RUN, *STATES, OUTPUTS])  # no temporary files left


class Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _forged(meta, entries, payload):
    """A record with a valid digest (a forger can compute it too) around any header and payload."""
    import hashlib

    header = json.dumps({"meta": meta, "arrays": entries}).encode()
    body = header + payload
    return PREFIX.pack(MAGIC, len(header), len(payload), hashlib.sha256(body).digest()) + body


def _forge_states(folder, entries, payload):
    """Both state slots replaced by a forged record (one forged slot alone loses to the other, whole one)."""
    for name in STATES:
        [(meta, _)] = _records(folder / FOLDER / name)
        (folder / FOLDER / name).write_bytes(_forged(meta, entries, payload))


def test_a_crafted_checkpoint_cannot_execute_code(assets, interrupted, tmp_path_factory):
    """A state record claiming an object array over a pickle's bytes is refused before anything is read."""
    import pickle

    marker = tmp_path_factory.mktemp("payload") / "pwned"
    _forge_states(interrupted, [["sleeves", "|O", [1]]], pickle.dumps(np.array([Payload(marker)], dtype=object)))
    with pytest.raises(ConfigError, match=r"state-a.rec: the state of the checkpoint cannot be read "
                                          r"\(sleeves: unexpected data type '\|O'\)"):
        PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=interrupted, resume=True)
    assert not marker.exists()


def test_an_old_npz_checkpoint_is_refused_by_name(assets, tmp_path):
    (tmp_path / FOLDER).mkdir()
    (tmp_path / FOLDER / "manifest.json").write_text("{}")
    with pytest.raises(ConfigError, match="manifest.json: a checkpoint in an earlier raybt's format"):
        PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=tmp_path, resume=True)


@pytest.mark.parametrize("where", [".", FOLDER])
def test_an_old_pickle_checkpoint_is_never_read(assets, tmp_path, tmp_path_factory, where):
    """A checkpoint.pkl (where an earlier raybt wrote it, or in checkpoint/) is refused by name, never
    unpickled, and not silently ignored either (the run would restart from its beginning unsaid)."""
    import pickle

    marker = tmp_path_factory.mktemp("payload") / "pwned"
    (tmp_path / where).mkdir(exist_ok=True)
    (tmp_path / where / "checkpoint.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ConfigError, match=r"checkpoint.pkl: a checkpoint of an earlier raybt, as a pickle, "
                                          r"which raybt no longer reads \(a pickle can run code\)"):
        PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=tmp_path, resume=True)
    assert not marker.exists()


def test_digests_are_checked_before_anything_is_loaded(assets, interrupted):
    log = interrupted / FOLDER / OUTPUTS
    k = len(_records(log))  # the last one (merged checkpoints make fewer records on a busy machine)
    data = bytearray(log.read_bytes())
    data[-100] ^= 0xFF
    log.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=rf"outputs.log: output record {k} of the checkpoint cannot be read \(damaged "
                                          r"\(SHA-256 differs\)"):
        PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=interrupted, resume=True)


def test_an_array_running_past_its_record_is_refused(interrupted):
    """A forged header whose arrays claim more bytes than the record holds is caught before any is read."""
    _forge_states(interrupted, [["sleeves", "<f8", [10 ** 9]]], b"\0" * 64)
    with pytest.raises(ConfigError, match="sleeves: the array runs past the record"):
        load_checkpoint(interrupted, _hashes(interrupted))


def test_a_log_shorter_than_the_state_says_is_refused(interrupted):
    log = interrupted / FOLDER / OUTPUTS
    log.write_bytes(log.read_bytes()[:-10])
    with pytest.raises(ConfigError, match="outputs.log: the outputs of the checkpoint are missing"):
        load_checkpoint(interrupted, _hashes(interrupted))


def test_a_state_torn_while_written_gives_way_to_the_other_slot(assets, reference, interrupted):
    """A kill while a state slot is written leaves it damaged: the resume continues from the other slot's
    (earlier) checkpoint, bit-identical, and drops the output records after it."""
    newest = max(STATES, key=lambda name: _records(interrupted / FOLDER / name)[0][0]["chunk"])
    data = bytearray((interrupted / FOLDER / newest).read_bytes())
    data[len(data) // 2:] = bytes(len(data) - len(data) // 2)
    (interrupted / FOLDER / newest).write_bytes(bytes(data))
    state, _ = load_checkpoint(interrupted, _hashes(interrupted))
    assert int(state["chunk"]) < 19 * EVERY
    resumed = PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=interrupted, resume=True)
    _same(reference, resumed)


def test_outputs_appended_after_the_last_state_are_dropped_on_resume(assets, reference, interrupted):
    """A kill between appending a record and replacing the state leaves a tail the state does not name
    (here a whole record and a torn one): the resume continues from the state, bit-identical."""
    log = interrupted / FOLDER / OUTPUTS
    data = log.read_bytes()
    last = _records(log)[-1]
    tail = _forged(last[0], [], b"")
    log.write_bytes(data + tail + tail[:20])
    resumed = PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=interrupted, resume=True)
    _same(reference, resumed)


def test_a_changed_config_is_refused(assets, interrupted):
    with pytest.raises(ConfigError, match="configuration changed"):
        PortfolioBacktester(assets, _config(chunk="2h"), engine="local").run(checkpoint_dir=interrupted,
                                                                             resume=True)


def test_a_checkpoint_written_by_other_kernels_is_refused(assets, interrupted, monkeypatch):
    """An upgrade (or an edit) that changed the strategy kernels: the rest of the run would follow other
    rules than its start (the rolled-z fix of 2026-12-03 changed trades in rare windows)."""
    import raybt.engine.backtester as backtester

    monkeypatch.setattr(backtester, "kernels_fingerprint", lambda: "another raybt's kernels")
    with pytest.raises(ConfigError, match="strategy kernels differ from this one's"):
        PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=interrupted, resume=True)


def test_a_checkpoint_of_an_earlier_format_is_refused_by_name(assets, interrupted):
    """A format-2 run.json (SHA-256 data hashes) says it is from an earlier raybt, not that the data changed."""
    path = interrupted / FOLDER / RUN
    doc = json.loads(path.read_text())
    doc["format"] = 2
    doc["hashes"]["data"] = {name: "0" * 64 for name in doc["hashes"]["data"]}
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"run.json: a checkpoint of an earlier raybt \(format 2, this raybt "
                                          r"reads 3\); start the run again with --overwrite"):
        PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=interrupted, resume=True)


def test_the_data_hash_is_blake3_of_times_and_prices(assets):
    """``blake3:`` + BLAKE3 of the int64 ns times and the four float64 price columns; any bit of them counts."""
    import blake3

    from raybt.checkpoints import bars_hash

    bars = next(iter(assets.values()))[1]
    plain = blake3.blake3(bars.index.as_unit("ns").asi8.tobytes()
                          + b"".join(bars[c].to_numpy(np.float64).tobytes() for c in ("open", "high", "low", "close")))
    assert bars_hash(bars) == "blake3:" + plain.hexdigest()
    nudged = bars.copy()
    nudged.iloc[-1, nudged.columns.get_loc("close")] = np.nextafter(nudged["close"].iloc[-1], np.inf)
    assert bars_hash(nudged) != bars_hash(bars)
    assert bars_hash(bars.assign(volume=bars["volume"] + 1.0)) == bars_hash(bars)  # volume is not traded on


# --- found by a review (stop 23) ------------------------------------------------------------------

def _stopped_before_the_first_checkpoint(assets, folder):
    """A run stopped (like Ctrl-C) in its first batch, before any checkpoint: the writer has made its
    files, the state slots are empty."""
    config = _config(checkpoint_every=10**6)
    with pytest.raises(Stop):
        PortfolioBacktester(assets, config, engine="local", progress=_interrupt_after(1)).run(checkpoint_dir=folder)
    assert (folder / FOLDER / STATES[0]).is_file() and (folder / FOLDER / STATES[0]).stat().st_size == 0
    return config


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_the_start(assets, tmp_path):
    """--resume of such a run failed every time ("no checkpoint state"), right after the run said to resume."""
    config = _stopped_before_the_first_checkpoint(assets, tmp_path)
    reference = PortfolioBacktester(assets, config, engine="local").run()
    _same(reference, PortfolioBacktester(assets, config, engine="local").run(checkpoint_dir=tmp_path, resume=True))


def test_a_torn_first_checkpoint_starts_over(assets, reference, interrupted):
    """Killed while the first state was written (only one slot written, and it is torn): nothing to resume,
    the run starts over, bit-identical; with both slots written and torn it is an error, as before."""
    slots = [interrupted / FOLDER / name for name in STATES]
    slots[1].write_bytes(b"")
    slots[0].write_bytes(slots[0].read_bytes()[:40])
    assert load_checkpoint(interrupted, _hashes(interrupted)) is None
    _same(reference, PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=interrupted,
                                                                                 resume=True))


def test_both_slots_torn_is_refused(interrupted):
    for name in STATES:
        path = interrupted / FOLDER / name
        path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ConfigError, match="state-a.rec: .*; .*state-b.rec"):
        load_checkpoint(interrupted, _hashes(interrupted))


@pytest.mark.parametrize("name", [STATES[0], OUTPUTS, RUN])
def test_a_symbolic_link_in_the_checkpoint_is_neither_read_nor_written(assets, interrupted, tmp_path_factory, name):
    """A linked state slot or log was written through on resume (pwrite into the link's target)."""
    victim = tmp_path_factory.mktemp("victim") / "precious.txt"
    victim.write_text("precious")
    path = interrupted / FOLDER / name
    path.unlink()
    path.symlink_to(victim)
    with pytest.raises(ConfigError, match=rf"{name}: a symbolic link in a run folder"):
        PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=interrupted, resume=True)
    assert victim.read_text() == "precious"


def test_a_linked_lock_file_is_not_written_through(tmp_path):
    from raybt.results import LOCK, lock_partial

    victim = tmp_path / "precious.txt"
    victim.write_text("precious")
    run = tmp_path / ".run.partial"
    run.mkdir()
    (run / LOCK).symlink_to(victim)
    with pytest.raises(ConfigError, match=r"\.lock: a symbolic link in a run folder"):
        lock_partial(run)
    assert victim.read_text() == "precious"


def _edit_states(folder, edit):
    """Both state slots rewritten with ``edit(arrays)`` applied and their digests recomputed."""
    from raybt.array_records import pack

    for name in STATES:
        [(meta, arrays)] = _records(folder / FOLDER / name)
        arrays = {k: np.array(v) for k, v in arrays.items()}
        edit(meta, arrays)
        (folder / FOLDER / name).write_bytes(pack(meta, arrays, RECORD_DTYPES))


@pytest.mark.parametrize("edit, said", [
    (lambda m, a: a.pop("returns.ring"), "the correlation state"),
    (lambda m, a: a.update(sleeves=a["sleeves"][:2]), "sleeves has shape (2,), expected (4,)"),
    (lambda m, a: a.update(sleeves=a["sleeves"] * np.nan), "sleeves is not all finite numbers"),
    (lambda m, a: (a.update(chunk=np.int64(10**6)), m.update(chunk=10**6)), "chunk 1000000 is not one of its"),
    (lambda m, a: a.update(breaker=np.array([7, 0], dtype=np.int64)), "breaker state (7, 0)"),
    (lambda m, a: a.pop("scalars"), "no scalars"),
])
def test_an_edited_state_that_does_not_fit_the_run_is_one_error(assets, interrupted, edit, said):
    """Digests recomputed after the edit: the restore failed with a KeyError, ValueError or IndexError."""
    _edit_states(interrupted, edit)
    with pytest.raises(ConfigError) as err:
        PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=interrupted, resume=True)
    assert str(err.value).startswith(f"{interrupted / FOLDER}: the checkpoint does not fit this run (")
    assert said in str(err.value)
