"""Checkpoints on disk: no pickle, digests checked before use, cost proportional to the work since the
last one, and a resumed run bit-identical to an uninterrupted one (at 1-hour chunks too)."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from raybt.config.params import validate_params
from raybt.checkpoints import FOLDER, MANIFEST, load_checkpoint
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
    assert (tmp_path / FOLDER / MANIFEST).is_file()
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


def test_each_segment_holds_only_the_work_since_the_previous_checkpoint(interrupted):
    """Every bar's equity is written once, in order: the checkpoints cost the work, not its square."""
    manifest = json.loads((interrupted / FOLDER / MANIFEST).read_text())
    segments = manifest["segments"]
    assert 1 <= len(segments) <= 19  # one per batch of 5 chunks, merged when the disk lags behind
    widths, trades = [], 0
    for entry in segments:
        with np.load(interrupted / FOLDER / entry["file"], allow_pickle=False) as npz:
            widths.append(npz["equity"].shape[1])
            trades += len(npz["trades"])
    assert [e["equity_from"] for e in segments] == list(np.cumsum([0] + widths[:-1]))
    state, outputs = load_checkpoint(interrupted, manifest["hashes"])
    assert sum(widths) == outputs["equity"].shape[1] and trades == len(outputs["trades"])
    assert manifest["chunk"] == 19 * EVERY and int(state["chunk"]) == manifest["chunk"]
    states = [f for f in os.listdir(interrupted / FOLDER) if f.startswith("state-")]
    assert states == [manifest["state"]["file"]]  # the previous state files are gone


class Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _sha256(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_crafted_checkpoint_cannot_execute_code(assets, interrupted, tmp_path_factory):
    marker = tmp_path_factory.mktemp("payload") / "pwned"
    folder = interrupted / FOLDER
    manifest = json.loads((folder / MANIFEST).read_text())
    state = folder / manifest["state"]["file"]
    with np.load(state, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["sleeves"] = np.array([Payload(marker)], dtype=object)
    with open(state, "wb") as fh:
        np.savez(fh, **arrays)  # object array: stored as a pickle
    manifest["state"]["sha256"] = _sha256(state)  # a forger can fix the digest too
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"state-\d+\.npz"):
        PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=interrupted, resume=True)
    assert not marker.exists()


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
    folder = interrupted / FOLDER
    manifest = json.loads((folder / MANIFEST).read_text())
    k = len(manifest["segments"])  # the last one (merged checkpoints make fewer segments on a busy machine)
    segment = folder / manifest["segments"][k - 1]["file"]
    data = bytearray(segment.read_bytes())
    data[-100] ^= 0xFF
    segment.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=f"segment {k} of the checkpoint is damaged"):
        PortfolioBacktester(assets, _config(), engine="local").run(checkpoint_dir=interrupted, resume=True)


def test_a_manifest_naming_a_file_outside_its_folder_is_refused(interrupted):
    folder = interrupted / FOLDER
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["segments"][0]["file"] = "../../etc/passwd.npz"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="bad file name"):
        load_checkpoint(interrupted, manifest["hashes"])


def test_a_changed_config_is_refused(assets, interrupted):
    with pytest.raises(ConfigError, match="configuration changed"):
        PortfolioBacktester(assets, _config(chunk="2h"), engine="local").run(checkpoint_dir=interrupted,
                                                                             resume=True)
