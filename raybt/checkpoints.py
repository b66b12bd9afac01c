"""Checkpoints of an unfinished run on disk, and resuming from them. No pickle anywhere.

A ``raybt run`` writes into ``.<run>.partial/`` (see :mod:`raybt.results`)
from its first chunk: ``INCOMPLETE`` (why it is not finished),
``run_request.json`` (what was asked: config, preference, engine, chunk, ...)
and ``checkpoint/``:

* ``manifest.json``: the chunk the checkpoint continues from, the config
  and data hashes of the run, and every file below with its SHA-256;
* ``state-<chunk>.npz``: the coordinator's state at that chunk boundary
  (portfolio, breaker, correlation window, every asset's kernel state);
* ``segment-<k>.npz``: the outputs produced between checkpoint k-1 and k
  (equity columns, trades, decisions, events, weights, transfers), so a
  checkpoint costs the work since the previous one, not the whole history.

Files are plain NumPy arrays (``.npz`` read with ``allow_pickle=False``) and
JSON: reading a checkpoint cannot execute code. The manifest is written last
(temporary file, fsync, rename): a kill at any moment leaves the previous
checkpoint whole. ``raybt run --resume results/<run>`` reads the manifest,
checks the config and data hashes and every file's digest *before* loading
anything, restores the coordinator and continues; the finished results are
bit-identical to an uninterrupted run. Writing happens on a background
thread (:class:`CheckpointWriter`), so the chunk loop does not wait for the disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from raybt.errors import ConfigError
from raybt.types import INSTR_DT, STATE_DT, TRADE_DT

FOLDER = "checkpoint"
MANIFEST = "manifest.json"
REQUEST = "run_request.json"
FORMAT = 1

#: structured arrays a checkpoint may hold, by key; everything else must be a plain number array
_RECORD_DTYPES = {"instructions": INSTR_DT, "decision.instructions": INSTR_DT, "trades": TRADE_DT}
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
    never while another process is writing it).
    """
    import shutil

    from raybt.results import check_output_dir, lock_partial, os_error_text, unlock_partial

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
        (tmp / REQUEST).write_text(json.dumps(request, indent=2, default=str) + "\n")
    except FileExistsError:
        raise ConfigError(f"{final}: an unfinished run is already there ({tmp}); "
                          f"resume it with --resume {final}, delete it, or pass --overwrite") from None
    except OSError as exc:
        raise ConfigError(f"{final}: output folder not writable ({os_error_text(exc)})") from None
    return tmp


def find_resumable(path: Path) -> tuple[Path, Path, dict]:
    """``(final, partial, request)`` for ``--resume PATH`` (the run's final name or its .partial folder)."""
    path = Path(path)
    if path.name.startswith(".") and path.name.endswith(".partial"):
        final, tmp = path.parent / path.name[1:-len(".partial")], path
    else:
        final, tmp = path, partial_dir(path)
    if final.is_dir() and not tmp.exists():
        raise ConfigError(f"{final}: this run is complete; nothing to resume")
    if not (tmp / REQUEST).is_file():
        raise ConfigError(f"{path}: no unfinished run here (expected {tmp / REQUEST})")
    try:
        request = json.loads((tmp / REQUEST).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{tmp / REQUEST}: unreadable ({exc})") from None
    if not isinstance(request, dict):
        raise ConfigError(f"{tmp / REQUEST}: expected a JSON object")
    from raybt.results import lock_partial

    lock_partial(tmp)  # a run still going (or another --resume) keeps its folder
    return final, tmp, request


# --- writing ------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_npz(path: Path, arrays: dict) -> str:
    """Write ``arrays`` to ``path`` durably (temporary file, fsync, rename); return its SHA-256."""
    part = path.with_name(path.name + ".tmp")
    with open(part, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(part, path)
    return _sha256(path)


def _write_json(path: Path, doc: dict) -> None:
    part = path.with_name(path.name + ".tmp")
    with open(part, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, separators=(",", ":"))  # no indent: the C encoder
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(part, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the renames are on disk too
    finally:
        os.close(fd)


def save_checkpoint(tmp: Path, delta, hashes: dict) -> None:
    """Append one :class:`~raybt.coordinator.CheckpointDelta` to the run's checkpoint in ``tmp``.

    The segment and the state go first, the manifest naming them last; the
    previous state file is removed once the new manifest is in place.
    """
    folder = Path(tmp) / FOLDER
    folder.mkdir(exist_ok=True)
    manifest = _read_manifest(folder) if (folder / MANIFEST).is_file() else None
    segments = list(manifest["segments"]) if manifest else []
    if manifest and manifest["chunk"] > delta.chunk:
        raise ValueError("checkpoints must move forward")
    segment = f"segment-{len(segments) + 1:06d}.npz"
    segments.append({"file": segment, "sha256": _write_npz(folder / segment, delta.outputs),
                     "chunk": int(delta.chunk), "equity_from": int(delta.equity_from)})
    state = f"state-{delta.chunk:09d}.npz"
    state_digest = _write_npz(folder / state, delta.state)
    _write_json(folder / MANIFEST, {"format": FORMAT, "chunk": int(delta.chunk), "hashes": hashes,
                                    "state": {"file": state, "sha256": state_digest}, "segments": segments})
    if manifest and manifest["state"]["file"] != state:
        (folder / manifest["state"]["file"]).unlink(missing_ok=True)


def merge_deltas(first, second):
    """One delta equal to ``first`` then ``second``: the later state, both outputs appended."""
    from raybt.coordinator import CheckpointDelta

    outputs = {key: np.concatenate([first.outputs[key], second.outputs[key]], axis=1 if key == "equity" else 0)
               for key in first.outputs}
    return CheckpointDelta(second.chunk, first.equity_from, second.state, outputs)


class CheckpointWriter:
    """Writes checkpoints on a background thread, in order; errors surface at the next call or at close.

    The chunk loop hands over a delta (plain arrays, already copied) and goes
    on; the disk work (compression-free ``.npz``, SHA-256, fsync) overlaps
    the simulation. When the loop hands over checkpoints faster than the disk
    takes them, the queued ones are merged and written as one.
    """

    def __init__(self, tmp: Path, hashes: dict):
        self.tmp, self.hashes = Path(tmp), hashes
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="raybt-checkpoint", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            delta = self._queue.get()
            if delta is None:
                return
            stop = False
            while not self._queue.empty():  # behind the chunk loop: write what is queued as one checkpoint
                later = self._queue.get()
                if later is None:
                    stop = True
                    break
                delta = merge_deltas(delta, later)
            if self._error is None:
                try:
                    save_checkpoint(self.tmp, delta, self.hashes)
                except BaseException as exc:  # noqa: BLE001 - reported to the chunk loop
                    self._error = exc
            if stop:
                return

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            if isinstance(error, OSError):
                from raybt.results import os_error_text

                raise ConfigError(f"{self.tmp / FOLDER}: cannot write the checkpoint ({os_error_text(error)})") from None
            raise error

    def submit(self, delta) -> None:
        self._raise()
        self._queue.put(delta)

    def close(self) -> None:
        """Wait until every submitted checkpoint is on disk."""
        self._queue.put(None)
        self._thread.join()
        self._raise()


# --- reading ------------------------------------------------------------------------------

def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable checkpoint manifest ({exc})") from None
    ok = (isinstance(doc, dict) and doc.get("format") == FORMAT and isinstance(doc.get("chunk"), int)
          and isinstance(doc.get("hashes"), dict) and isinstance(doc.get("state"), dict)
          and isinstance(doc.get("segments"), list))
    if not ok:
        raise ConfigError(f"{path}: not a raybt checkpoint manifest (format {FORMAT})")
    return doc


def _checked_file(folder: Path, entry, what: str) -> Path:
    """The file an entry of the manifest names, inside the folder, with the digest it records."""
    name = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".npz"):
        raise ConfigError(f"{folder / MANIFEST}: {what}: bad file name {name!r}")
    path = folder / name
    if not path.is_file():
        raise ConfigError(f"{path}: {what} of the checkpoint is missing")
    if _sha256(path) != entry.get("sha256"):
        raise ConfigError(f"{path}: {what} of the checkpoint is damaged (SHA-256 differs from the manifest)")
    return path


def _load_npz(path: Path) -> dict:
    """Every array of an ``.npz``, refusing object arrays (pickle) and unexpected record types."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ConfigError(f"{path}: unreadable checkpoint file ({exc})") from None
    for key, value in arrays.items():
        expected = _RECORD_DTYPES.get(key) or (STATE_DT if key.startswith("group_state.") else None)
        if expected is not None and value.dtype != expected:
            raise ConfigError(f"{path}: {key}: unexpected record layout (written by another raybt version?)")
        if expected is None and value.dtype.kind not in "biufU":
            raise ConfigError(f"{path}: {key}: unexpected data type {value.dtype}")
    return arrays


def load_checkpoint(tmp: Path, hashes: dict) -> tuple[dict, dict] | None:
    """``(state, outputs)`` of the checkpoint in ``tmp`` (None if the run stopped before its first one).

    Refuses a checkpoint whose config or data hashes differ from ``hashes``,
    or whose files do not match the manifest's digests, before reading any
    array. ``outputs`` has every segment appended in order.
    """
    folder = Path(tmp) / FOLDER
    if not (folder / MANIFEST).is_file():
        for old in (Path(tmp) / "checkpoint.pkl", folder / "checkpoint.pkl"):
            if old.exists():  # an earlier raybt's pickle: never read (it could run code), never ignored
                raise ConfigError(f"{old}: a checkpoint of an earlier raybt, as a pickle, which raybt no "
                                  f"longer reads (a pickle can run code); start the run again with --overwrite")
        return None
    manifest = _read_manifest(folder)
    saved = manifest["hashes"]
    if saved.get("config") != hashes.get("config"):
        raise ConfigError(f"{folder / MANIFEST}: the configuration changed since the checkpoint (config hash differs)")
    for name, digest in hashes.get("data", {}).items():
        if saved.get("data", {}).get(name) != digest:
            raise ConfigError(f"{folder / MANIFEST}: the data of asset {name} changed since the checkpoint")
    files = [_checked_file(folder, manifest["state"], "state")]
    files += [_checked_file(folder, entry, f"segment {k + 1}") for k, entry in enumerate(manifest["segments"])]
    state = _load_npz(files[0])
    segments = [_load_npz(path) for path in files[1:]]
    if not segments or any(set(seg) != set(_SEGMENT_KEYS) for seg in segments):
        raise ConfigError(f"{folder / MANIFEST}: a segment of the checkpoint lacks some outputs")
    outputs = {key: np.concatenate([seg[key] for seg in segments], axis=1 if key == "equity" else 0)
               for key in _SEGMENT_KEYS}
    if "chunk" not in state or int(state["chunk"]) != manifest["chunk"]:
        raise ConfigError(f"{files[0]}: the state is not at the manifest's chunk")
    return state, outputs


# --- hashes ---------------------------------------------------------------------------------

def bars_hash(bars: pd.DataFrame) -> str:
    """SHA-256 of a bars frame's timestamps and OHLC values (float64 bytes)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(bars.index.as_unit("ns").asi8).view(np.uint8))
    for column in ("open", "high", "low", "close"):
        digest.update(np.ascontiguousarray(bars[column].to_numpy(np.float64)).view(np.uint8))
    return digest.hexdigest()


def config_hash(config: dict) -> str:
    """SHA-256 of the resolved configuration (canonical JSON)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
