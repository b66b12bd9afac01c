"""Checkpoints of an unfinished run on disk, and resuming from them. No pickle anywhere.

A ``raybt run`` writes into ``.<run>.partial/`` (see :mod:`raybt.results`)
from its first chunk: ``INCOMPLETE`` (why it is not finished),
``run_request.json`` (what was asked: config, preference, engine, chunk, ...)
and ``checkpoint/``:

* ``run.json``: the format and the config and data hashes of the run,
  written once;
* ``outputs.log``: the outputs produced between one checkpoint and the next
  (equity columns, trades, decisions, events, weights, transfers), appended
  as one record each, so a checkpoint costs the work since the previous
  one, not the whole history;
* ``state-a.rec``, ``state-b.rec``: the coordinator's state at a
  checkpoint's chunk boundary (portfolio, breaker, correlation window,
  every asset's kernel state), with how many records of ``outputs.log``
  (and bytes) it continues; written in turn, the newest whole one is the
  checkpoint.

Records are :mod:`raybt.array_records` (a JSON header and raw array bytes
with their SHA-256): reading a checkpoint cannot execute code, and every
digest is checked before a byte of it is used. The state is written last
and is the commit point: a kill at any moment leaves the previous
checkpoint whole, and output records appended after it are dropped on
resume. ``raybt run --resume results/<run>`` checks the config and data
hashes and the digests, restores the coordinator and continues; the
finished results are bit-identical to an uninterrupted run. A checkpoint
costs the chunk loop a fraction of a millisecond (:class:`CheckpointWriter`),
so even one every few chunks is cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import blake3
import numpy as np
import pandas as pd

from raybt.array_records import RecordError, pack, unpack
from raybt.errors import ConfigError, RaybtError
from raybt.types import INSTR_DT, STATE_DT, TRADE_DT

FOLDER = "checkpoint"
RUN = "run.json"
STATES = ("state-a.rec", "state-b.rec")
OUTPUTS = "outputs.log"
REQUEST = "run_request.json"
FORMAT = 3  # 3: data hashes are BLAKE3 (``blake3:<hex>``); 2 had SHA-256

#: the record types a checkpoint holds, by the name its records give them; every other array is a
#: plain number or text array
RECORD_DTYPES = {"instruction": INSTR_DT, "trade": TRADE_DT, "kernel_state": STATE_DT}
#: arrays that must be of a record type, by key (group states too: ``group_state.<g>``)
_EXPECTED_RECORDS = {"instructions": INSTR_DT, "decision.instructions": INSTR_DT, "trades": TRADE_DT}
_SEGMENT_KEYS = ("equity", "trades", "decision.chunk", "decision.decided_at", "decision.chunk_start",
                 "decision.instructions", "decision.factors", "decision.reason", "event.chunk", "event.decided_at",
                 "event.kind", "event.drawdown", "event.breaker_drawdown", "event.equity", "weights.chunk", "weights.decided_at",
                 "weights.values", "adjust.chunk", "adjust.amount")


def partial_dir(final: Path) -> Path:
    from raybt.results import partial_path

    return partial_path(Path(final))


def start_run_dir(final: Path, request: dict, *, overwrite: bool = False) -> Path:
    """Create the ``.partial`` folder of a new run with its marker and request, locked by this process.

    An unfinished run already there is an error unless ``overwrite`` (and
    never while another process is writing it). The request's config path is
    stored absolute (:func:`raybt.run_request.request_to_store`).
    """
    from raybt.results import check_output_dir, lock_partial, os_error_text, unlock_partial
    from raybt.run_request import request_to_store

    check_output_dir(final)
    tmp = partial_dir(final)
    try:
        if tmp.exists() and overwrite:
            lock_partial(tmp)  # refuses while another process writes it
            unlock_partial(tmp)
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True, exist_ok=False)
        lock_partial(tmp)
        (tmp / "INCOMPLETE").write_text("run in progress (or interrupted): resume with raybt run --resume\n")
        (tmp / REQUEST).write_text(json.dumps(request_to_store(request), indent=2, default=str) + "\n")
    except FileExistsError:
        raise ConfigError(f"{final}: an unfinished run is already there ({tmp}); "
                          f"resume it with --resume {final}, delete it, or pass --overwrite") from None
    except OSError as exc:
        raise ConfigError(f"{final}: output folder not writable ({os_error_text(exc)})") from None
    return tmp


def has_checkpoint(tmp: Path) -> bool:
    """Whether a run's ``.partial`` folder holds a checkpoint state (whole or not)."""
    return bool(_written_slots(Path(tmp) / FOLDER))


@contextlib.contextmanager
def discarded_on_user_error(tmp: Path):
    """A new run's ``.partial`` folder (made by :func:`start_run_dir`) goes again when a user
    error (:class:`~raybt.errors.RaybtError`) stops the run before its first checkpoint:
    there is nothing to resume, and it would block the corrected command. An
    interrupt, or an error after a checkpoint, leaves it for ``--resume``."""
    from raybt.results import unlock_partial

    try:
        yield
    except RaybtError:
        if not has_checkpoint(tmp):
            unlock_partial(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def find_resumable(path: Path) -> tuple[Path, Path, dict]:
    """``(final, partial, request)`` for ``--resume PATH`` (the run's final name or its .partial folder);
    the request validated (:func:`raybt.run_request.check_request`), its problems naming run_request.json."""
    path = Path(path)
    if path.name.startswith(".") and path.name.endswith(".partial"):
        final, tmp = path.parent / path.name[1:-len(".partial")], path
    else:
        final, tmp = path, partial_dir(path)
    if final.is_dir() and not tmp.exists():
        if (final / "metrics.json").is_file() and (final / REQUEST).is_file():
            raise ConfigError(f"{final}: this run is complete; nothing to resume")
        raise ConfigError(f"{final}: not a run folder (no run_request.json, no unfinished {tmp.name}): "
                          f"nothing to resume")
    if not (tmp / REQUEST).is_file():
        raise ConfigError(f"{path}: no unfinished run here (expected {tmp / REQUEST})")
    from raybt.config.common import load_document
    from raybt.results import lock_partial
    from raybt.run_request import check_request

    request = load_document(tmp / REQUEST)  # ConfigError naming the file: unreadable, syntax, duplicate key
    if not isinstance(request, dict):
        raise ConfigError(f"{tmp / REQUEST}: expected a JSON object, got {type(request).__name__}")
    request = check_request(request, tmp / REQUEST)  # each key as the flag would be checked

    lock_partial(tmp)  # a run still going (or another --resume) keeps its folder
    return final, tmp, request


# --- writing ------------------------------------------------------------------------------

def _replace(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` durably (temporary file, fsync, rename)."""
    part = path.with_name(path.name + ".tmp")
    with open(part, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(part, path)


class CheckpointWriter:
    """The checkpoint folder of one run, written in order: each :meth:`save` appends the outputs since
    the previous checkpoint to ``outputs.log``, then writes the state naming them over the older of the
    two state slots (the commit point).

    Two slots written in turn, the newest whole one winning on resume (as
    LMDB's two meta pages): a kill while a state is written leaves the
    other slot, the previous checkpoint, whole, and no file is created or
    renamed per checkpoint. A checkpoint costs the interpreter a fraction of
    a millisecond: records are packed without a zip container and go to the
    page cache, which outlives the process. They reach the disk (fsync) at
    most every ``sync_seconds`` and at :meth:`close`: after a crash of the
    machine itself the checkpoint is at most that much older, and whatever
    the disk lost shows as a digest mismatch, never as numbers. (A
    background thread for the disk work was slower: every hand-over of the
    interpreter between it and the chunk loop costs a context switch.)

    Opening it on a resumed run drops output records written after the
    newest state (a kill between the two writes) and appends after the rest.
    """

    def __init__(self, tmp: Path, hashes: dict, *, sync_seconds: float = 1.0):
        from raybt.results import fsync_path

        self.folder = Path(tmp) / FOLDER
        self.sync_seconds = sync_seconds
        self.records, self.log_bytes, self.chunk, newest = 0, 0, -1, None
        try:
            self.folder.mkdir(exist_ok=True)
            _refuse_links(self.folder, [RUN, OUTPUTS, *STATES])
            found = _newest_state(self.folder)
            if found is not None:
                newest, meta, _ = found
                self.records, self.log_bytes, self.chunk = meta["records"], meta["log_bytes"], meta["chunk"]
            else:  # a new run, or one stopped before its first checkpoint was whole: from the start
                _replace(self.folder / RUN, json.dumps({"format": FORMAT, "hashes": hashes}).encode())
            self._log = os.fdopen(os.open(self.folder / OUTPUTS, _WRITE_FLAGS | os.O_APPEND, 0o644), "ab")
            self._log.truncate(self.log_bytes)
            self._slots = [os.open(self.folder / name, _WRITE_FLAGS, 0o644) for name in STATES]
            if found is None:
                for slot in self._slots:  # a torn first state must not be read as the second one later
                    os.ftruncate(slot, 0)
            fsync_path(self.folder)
        except OSError as exc:
            raise self._error(exc) from None
        self._next = 0 if newest != 0 else 1  # the slot not holding the newest state
        self._synced_at = time.monotonic()

    def _error(self, exc: OSError) -> ConfigError:
        from raybt.results import os_error_text

        return ConfigError(f"{self.folder}: cannot write the checkpoint ({os_error_text(exc)})")

    def save(self, delta) -> None:
        """Append one :class:`~raybt.coordinator.CheckpointDelta` (outputs, then the state naming them)."""
        if delta.chunk < self.chunk:
            raise ValueError("checkpoints must move forward")
        record = pack({"chunk": int(delta.chunk), "equity_from": int(delta.equity_from)}, delta.outputs,
                      RECORD_DTYPES)
        meta = {"format": FORMAT, "chunk": int(delta.chunk), "records": self.records + 1,
                "log_bytes": self.log_bytes + len(record)}
        state = pack(meta, delta.state, RECORD_DTYPES)
        slot = self._slots[self._next]
        sync = time.monotonic() - self._synced_at >= self.sync_seconds
        try:
            self._log.write(record)
            self._log.flush()
            if sync:
                os.fsync(self._log.fileno())  # the outputs reach the disk before the state naming them
            os.pwrite(slot, state, 0)  # (bytes after the record, from a longer earlier one, are ignored)
            if sync:
                os.fsync(slot)
        except OSError as exc:
            raise self._error(exc) from None
        if sync:
            self._synced_at = time.monotonic()
        self._next = 1 - self._next
        self.records, self.log_bytes, self.chunk = meta["records"], meta["log_bytes"], meta["chunk"]

    def close(self) -> None:
        """Put every checkpoint saved on disk (fsync) and close the files."""
        if self._log.closed:
            return
        try:
            self._log.flush()
            os.fsync(self._log.fileno())
            for slot in self._slots:
                os.fsync(slot)
        except OSError as exc:
            raise self._error(exc) from None
        finally:
            try:
                self._log.close()  # flushes what a failed write left in its buffer: that fails again
            except OSError:
                pass
            for slot in self._slots:
                os.close(slot)


# --- reading ------------------------------------------------------------------------------

#: opening a checkpoint file to write: never through a symbolic link (it would write outside the run)
_WRITE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW


def _refuse_links(folder: Path, names=()) -> None:
    """ConfigError when ``folder`` or one of its files ``names`` is a symbolic link: a run folder's
    files are its own, and writing or reading through a link would reach outside it."""
    for path in (folder, *(folder / name for name in names)):
        if path.is_symlink():
            raise ConfigError(f"{path}: a symbolic link in a run folder; raybt neither reads nor writes "
                              f"through one (replace it with the file, or start the run again with --overwrite)")


def _read(path: Path, limit: int | None = None) -> bytearray:
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as fh:
            return bytearray(fh.read() if limit is None else fh.read(limit))
    except OSError as exc:
        raise ConfigError(f"{path}: unreadable checkpoint file ({exc.strerror or exc})") from None


def _record(path: Path, buffer: bytearray, offset: int, what: str) -> tuple[dict, dict, int]:
    try:
        return unpack(buffer, offset, RECORD_DTYPES)
    except RecordError as exc:
        raise ConfigError(f"{path}: {what} of the checkpoint cannot be read ({exc})") from None


def _read_state(path: Path) -> tuple[dict, dict]:
    """``(meta, arrays)`` of one state slot, checked whole (digest, format, record types, chunk)."""
    meta, arrays, _ = _record(path, _read(path), 0, "the state")
    ok = (meta.get("format") == FORMAT
          and all(isinstance(meta.get(k), int) and meta[k] >= 0 for k in ("chunk", "records", "log_bytes")))
    if not ok:
        raise ConfigError(f"{path}: not a raybt checkpoint state (format {FORMAT})")
    _check_kinds(path, arrays)
    if "chunk" not in arrays or arrays["chunk"].shape != () or int(arrays["chunk"]) != meta["chunk"]:
        raise ConfigError(f"{path}: the state is not at the chunk it names")
    return meta, arrays


def _written_slots(folder: Path) -> list[int]:
    """The state slots written at least once (the writer creates both; the second stays empty until the
    second checkpoint)."""
    return [slot for slot, name in enumerate(STATES)
            if (folder / name).is_file() and (folder / name).stat().st_size]


def _newest_state(folder: Path) -> tuple[int, dict, dict] | None:
    """``(slot, meta, arrays)`` of the newest whole state; None when there is none to resume: no slot
    written, or only the first checkpoint's, torn by a kill while it was written (nothing is lost by
    starting over); an error naming every slot when written states exist and none is whole."""
    found, errors = [], []
    written = _written_slots(folder)
    for slot in written:
        path = folder / STATES[slot]
        try:
            found.append((slot, *_read_state(path)))
        except ConfigError as exc:
            errors.append(str(exc))
    if not found:
        if len(written) <= 1:
            return None
        raise ConfigError("; ".join(errors))
    return max(found, key=lambda entry: entry[1]["chunk"])


def _read_run(folder: Path) -> dict:
    path = folder / RUN
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from None
    if isinstance(doc, dict) and type(doc.get("format")) is int and 1 <= doc["format"] < FORMAT:
        raise ConfigError(f"{path}: a checkpoint of an earlier raybt (format {doc['format']}, this raybt reads "
                          f"{FORMAT}); start the run again with --overwrite")
    if not (isinstance(doc, dict) and doc.get("format") == FORMAT and isinstance(doc.get("hashes"), dict)):
        raise ConfigError(f"{path}: not a raybt checkpoint (format {FORMAT})")
    return doc["hashes"]


def _check_kinds(path: Path, arrays: dict) -> None:
    """Every array has the type its key calls for (record types only where records belong)."""
    for key, value in arrays.items():
        expected = _EXPECTED_RECORDS.get(key) or (STATE_DT if key.startswith("group_state.") else None)
        if (value.dtype != expected) if expected is not None else value.dtype.names is not None:
            raise ConfigError(f"{path}: {key}: unexpected record layout (written by another raybt version?)")


def _read_outputs(folder: Path, meta: dict) -> dict:
    """Every output record the state continues, appended in order (each record's digest checked)."""
    path = folder / OUTPUTS
    buffer = _read(path, meta["log_bytes"])
    if len(buffer) < meta["log_bytes"]:
        raise ConfigError(f"{path}: the outputs of the checkpoint are missing (shorter than the state says)")
    segments, offset, equity_from = [], 0, 0
    while offset < len(buffer):
        seg_meta, arrays, offset = _record(path, buffer, offset, f"output record {len(segments) + 1}")
        if set(arrays) != set(_SEGMENT_KEYS) or seg_meta.get("equity_from") != equity_from:
            raise ConfigError(f"{path}: output record {len(segments) + 1} of the checkpoint does not follow "
                              f"the one before it")
        _check_kinds(path, arrays)
        equity_from += arrays["equity"].shape[1]
        segments.append(arrays)
    if not segments or len(segments) != meta["records"]:
        raise ConfigError(f"{path}: the checkpoint's state continues {meta['records']} output records, "
                          f"the log holds {len(segments)}")
    return {key: np.concatenate([seg[key] for seg in segments], axis=1 if key == "equity" else 0)
            for key in _SEGMENT_KEYS}


def load_checkpoint(tmp: Path, hashes: dict) -> tuple[dict, dict] | None:
    """``(state, outputs)`` of the checkpoint in ``tmp`` (None if the run stopped before its first one).

    Refuses a checkpoint whose config or data hashes differ from ``hashes``,
    or whose records do not match their digests, before using any array.
    ``outputs`` has every output record appended in order.
    """
    folder = Path(tmp) / FOLDER
    _refuse_links(Path(tmp), [FOLDER, REQUEST])
    _refuse_links(folder, [RUN, OUTPUTS, *STATES])
    if not has_checkpoint(tmp):
        for old in (Path(tmp) / "checkpoint.pkl", folder / "checkpoint.pkl"):
            if old.exists():  # an earlier raybt's pickle: never read (it could run code), never ignored
                raise ConfigError(f"{old}: a checkpoint of an earlier raybt, as a pickle, which raybt no "
                                  f"longer reads (a pickle can run code); start the run again with --overwrite")
        if (folder / "manifest.json").exists():
            raise ConfigError(f"{folder / 'manifest.json'}: a checkpoint in an earlier raybt's format; "
                              f"start the run again with --overwrite")
        return None
    saved = _read_run(folder)
    if "kernels" in hashes and saved.get("kernels") != hashes["kernels"]:
        raise ConfigError(f"{folder / RUN}: written by a raybt whose strategy kernels differ from this one's "
                          f"(upgraded or edited since): continuing would mix two kernels' results; start the "
                          f"run again with --overwrite")
    if saved.get("config") != hashes.get("config"):
        raise ConfigError(f"{folder / RUN}: the configuration changed since the checkpoint (config hash differs; "
                          f"a raybt upgrade that changed a default changes it too)")
    for name, digest in hashes.get("data", {}).items():
        if saved.get("data", {}).get(name) != digest:
            raise ConfigError(f"{folder / RUN}: the data of asset {name} changed since the checkpoint")
    found = _newest_state(folder)
    if found is None:  # only the first checkpoint, torn: the run starts over
        return None
    _, meta, state = found
    return state, _read_outputs(folder, meta)


def check_fits(tmp: Path, state: dict, outputs: dict, n_assets: int, bounds) -> None:
    """ConfigError (one line naming the checkpoint) unless the state and outputs have the shapes and
    ranges of this run (``n_assets`` simulated assets, chunk ``bounds``): a checkpoint whose digests
    were recomputed after an edit would otherwise fail deep in the restore with a traceback.

    The digests catch damage, not a deliberate edit: values of the right shape and range are used as
    they are, as any file a user gives raybt."""
    folder = Path(tmp) / FOLDER

    def refuse(what: str):
        raise ConfigError(f"{folder}: the checkpoint does not fit this run ({what}); "
                          f"start the run again with --overwrite")

    n = n_assets
    shapes = {"chunk": (), "sleeves": (n,), "initial_sleeves": (n,), "margins": (n,), "target_weights": (n,),
              "instructions": (n,), "scalars": (3,), "breaker": (2,), "bounds_sha256": (32,),
              "returns.counters": (6,), "returns.partial": (n,), "returns.s": (n,), "returns.S": (n, n)}
    for key, shape in shapes.items():
        if key not in state:
            refuse(f"no {key}")
        if state[key].shape != shape:
            refuse(f"{key} has shape {state[key].shape}, expected {shape}")
    for key in ("sleeves", "initial_sleeves", "margins", "target_weights", "scalars", "returns.s", "returns.S"):
        if state[key].dtype.kind != "f" or not np.isfinite(state[key]).all():
            refuse(f"{key} is not all finite numbers")
    chunk = int(state["chunk"])
    if not 0 <= chunk < len(bounds) - 1:
        refuse(f"chunk {chunk} is not one of its {len(bounds) - 1} chunks")
    tripped, since_trip = (int(v) for v in state["breaker"])
    if tripped not in (0, 1) or since_trip < 0:
        refuse(f"breaker state {tripped, since_trip}")
    block, capacity, assets, count, _, _ = (int(v) for v in state["returns.counters"])
    ring = state.get("returns.ring")
    if assets != n or block < 1 or capacity < 2 or count < 0 or ring is None or ring.shape != (capacity, n):
        refuse("the correlation state")
    groups = sorted(k for k in state if k.startswith("group_state."))
    if sum(len(state[k]) for k in groups) != n:
        refuse(f"kernel states for {sum(len(state[k]) for k in groups)} assets, the run has {n}")
    if outputs["equity"].shape != (n, int(bounds[chunk])):
        refuse("its equity does not cover the run up to its chunk")


# --- hashes ---------------------------------------------------------------------------------

def bars_hash(bars: pd.DataFrame) -> str:
    """``blake3:<hex>``: BLAKE3 of a bars frame's timestamps (int64 ns) and OHLC values (float64 bytes).

    BLAKE3 rather than SHA-256: at 200,000 bars an asset's 8 MB are hashed in
    about 1.5 ms instead of 6, and the prefix says which hash a saved value is.
    """
    digest = blake3.blake3()
    digest.update(np.ascontiguousarray(bars.index.as_unit("ns").asi8).view(np.uint8))
    for column in ("open", "high", "low", "close"):
        digest.update(np.ascontiguousarray(bars[column].to_numpy(np.float64)).view(np.uint8))
    return "blake3:" + digest.hexdigest()


def config_hash(config: dict) -> str:
    """SHA-256 of the resolved configuration (canonical JSON)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
