#!/usr/bin/env python
"""Issue 12's tally: bad and edge-case inputs through every entry point, each classified automatically.

    PYTHONPATH=. python scripts/trust_tally.py [--jobs 2] [--only SUBSTRING] [--keep DIR]

Entry points: the CLI (``raybt run/backtest/optimize/sweep/report/data synth``),
the Python API (``PortfolioBacktester`` with DataFrames, ``validate_params``) and
``raybt.allocation.compute_weights``. Every case runs in a child process of its
own (a fork of this process, which imported raybt once but runs nothing itself:
no threads, no numba, no Arrow pools are started here), so a segfault or a hang
is counted, not fatal. A few cases run the real ``python -m raybt.cli`` in a
subprocess (checkpoints, two writers, size limits), as a user would.

Outcomes:

* ``clear error``: exit code != 0 (API: a ``RaybtError`` subclass, printed as
  ``error: <message>``) with exactly one non-empty stderr line starting with
  ``error:``, no ``Traceback``, and no complete-looking results folder left (a
  folder holding ``metrics.json`` without its ``.partial``);
* ``unclear error``: exit code != 0 without a traceback, but the message is
  not one ``error:`` line, or a complete-looking folder was left behind;
* ``correct result``: success, and the numbers equal what the same data gives
  through a clean path (a fixed-up file, the reference run) or the
  documented behaviour (each case states its expectation);
* ``silently wrong``: success but the result differs from the expectation, or
  the input should have been refused (or warned about) and was not, or an
  error exit that nevertheless did damage (a payload ran, a folder changed);
* ``crash``: a traceback, a non-RaybtError exception, a signal, or a process
  killed (timeout).

A case whose expectation is a result but which gave a clear error is still
counted as ``clear error`` and marked ``UNEXPECTED`` in its message.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

# imported once here so each forked child starts warm; nothing is *run* in this process
import raybt.cli  # noqa: E402,F401
import raybt.engine  # noqa: E402,F401
import raybt.allocation  # noqa: E402,F401
import raybt.data.synth  # noqa: E402,F401
from raybt.errors import RaybtError  # noqa: E402

N_BARS = 3000
TIMEOUT = 240
ENV = {**os.environ, "PYTHONPATH": str(REPO), "RAY_ADDRESS": ""}
CLASSES = {
    "1": "API bars", "2": "checkpoint", "3": "names/paths", "4": "reserved names", "5": "dates",
    "6": "writes", "7": "unwritable", "8": "resume args", "9": "asset weight", "10": "allocation",
    "11": "degenerate", "k": "config keys", "p": "param values", "f": "missing files", "m": "alloc model",
    "c": "chunk", "g": "optimize grid", "s": "sweep file",
}

W: Path = Path()  # work folder, set in main()
CASES: list["Case"] = []


class Case:
    def __init__(self, name, entry, cls, expect, fn, out="out", after=None, timeout=TIMEOUT):
        self.name, self.entry, self.cls, self.expect, self.fn = name, entry, cls, expect, fn
        self.out, self.after, self.timeout = out, after, timeout


def case(name, entry, cls, expect, out="out", after=None, timeout=TIMEOUT):
    """Register ``fn(casedir) -> dict(rc=..., check=(ok, note) | None, note=...)``; runs in a child, cwd=casedir.

    ``expect``: "error" (must be refused), "ok" (must give the expected result), "either" (a clear error or a
    result that passes the check). ``after(casedir) -> (ok, note)`` runs in the parent after the child, for
    side effects (a payload's file, a folder that must not change)."""
    def register(fn):
        CASES.append(Case(name, entry, cls, expect, fn, out, after, timeout))
        return fn
    return register


# ============================================================================================
# shared inputs
# ============================================================================================

def P(*parts) -> Path:
    return W.joinpath(*parts)


def cli(args) -> int:
    """``raybt <args>`` in this (child) process, as ``python -m raybt.cli`` would run it."""
    from raybt.cli import main
    try:
        return main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        return exc.code if isinstance(exc.code, int) else 1


def spawn(args, timeout=TIMEOUT, preexec=None, cwd=None) -> int:
    """The real ``python -m raybt.cli <args>``; its output goes to this child's stdout/stderr."""
    done = subprocess.run([sys.executable, "-m", "raybt.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=ENV, cwd=cwd, preexec_fn=preexec)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


def assets_doc(files=None, edit=None, **defaults) -> dict:
    files = files or {p.stem: p for p in sorted(P("u").glob("*.parquet"))}
    doc = {"defaults": {"timeframe": "5m", "strategy": {"bb_period": 20}, **defaults},
           "assets": {n: {"data": str(p), "timeframe": "5m"} for n, p in files.items()}}
    if edit:
        edit(doc)
    return doc


def write_assets(folder: Path, doc=None, name="assets.json", text=None) -> Path:
    path = Path(folder) / name
    path.write_text(text if text is not None else json.dumps(doc or assets_doc(), indent=1))
    return path


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def portfolio_doc(assets_path: Path | None = None, **extra) -> dict:
    base = {"name": "t", "asset_config": str(assets_path or P("assets.json")), "allocation": {"lookback": "2D"},
            "engine": {"chunk": "1D"}}
    return merge(base, extra)


def write_portfolio(folder: Path, doc=None, name="p.yaml", text=None) -> Path:
    path = Path(folder) / name
    path.write_text(text if text is not None else yaml.safe_dump(doc or portfolio_doc(), sort_keys=False))
    return path


def run_local(config, out="out", *extra) -> int:
    return cli(["run", config, "--engine", "local", "--no-progress", "--out", out, *extra])


def same_equity(folder: Path, ref: Path = None) -> tuple[bool, str]:
    """The run folder's portfolio equity equals the reference run's, value for value."""
    ref = ref or P("ref_run")
    a = pd.read_parquet(Path(folder) / "portfolio_equity.parquet")
    b = pd.read_parquet(Path(ref) / "portfolio_equity.parquet")
    if a.shape != b.shape or list(a.columns) != list(b.columns) or not a.index.equals(b.index):
        return False, f"equity table differs in shape/columns/index: {a.shape} {list(a.columns)} vs {b.shape}"
    if not np.array_equal(a.to_numpy(), b.to_numpy()):
        d = np.nanmax(np.abs(a.to_numpy() - b.to_numpy()))
        return False, f"equity differs from the clean path (max abs diff {d:.6g}, final {a['equity'].iloc[-1]:.2f}"\
                      f" vs {b['equity'].iloc[-1]:.2f})"
    return True, f"equity equals the clean path ({len(a)} bars, final {a['equity'].iloc[-1]:.2f})"


def same_backtest(folder: Path, ref: Path) -> tuple[bool, str]:
    a = (Path(folder) / "equity.csv").read_text()
    b = (Path(ref) / "equity.csv").read_text()
    # trades compared without their asset column (the asset is named after the file or config entry)
    ta = pd.read_csv(Path(folder) / "trades.csv").drop(columns="asset").to_csv(index=False)
    tb = pd.read_csv(Path(ref) / "trades.csv").drop(columns="asset").to_csv(index=False)
    if a != b or ta != tb:
        ea, eb = pd.read_csv(Path(folder) / "equity.csv"), pd.read_csv(Path(ref) / "equity.csv")
        return False, (f"differs from the clean file: {len(ea)} vs {len(eb)} bars, first {ea['timestamp'].iloc[0]} "
                       f"vs {eb['timestamp'].iloc[0]}, final equity {ea['equity'].iloc[-1]} vs {eb['equity'].iloc[-1]}")
    return True, f"equals the clean file ({a.count(chr(10)) - 1} bars, {tb.count(chr(10)) - 1} trades)"


def tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


# ============================================================================================
# setup (real subprocesses, before any case)
# ============================================================================================

def setup() -> None:
    def raybt_(*args, cwd=W, check=True):
        done = subprocess.run([sys.executable, "-m", "raybt.cli", *map(str, args)], capture_output=True, text=True,
                              env=ENV, cwd=cwd, timeout=600)
        if check and done.returncode != 0:
            raise SystemExit(f"setup failed: raybt {' '.join(map(str, args))}\n{done.stderr}")
        return done

    t0 = time.time()
    raybt_("data", "synth", "--out", P("u"), "--assets", 3, "--bars", N_BARS, "--calendar", "24x7", "--seed", 1)
    raybt_("data", "synth", "--out", P("ucsv"), "--assets", 3, "--bars", N_BARS, "--calendar", "24x7", "--seed", 1,
           "--format", "csv")
    write_assets(W, assets_doc())
    write_portfolio(W, portfolio_doc())
    raybt_("run", P("p.yaml"), "--engine", "local", "--no-progress", "--out", P("ref_run"))
    raybt_("backtest", "--data", P("u", "EURUSDX_5m.parquet"), "--out", P("ref_bt"))
    # an interrupted run with a real checkpoint (SIGTERM after the first state), and its uninterrupted twin
    write_portfolio(W, portfolio_doc(engine={"chunk": "15min", "checkpoint_every": 10, "checkpoint_seconds": 0}),
                    name="pckpt.yaml")
    raybt_("run", P("pckpt.yaml"), "--engine", "local", "--no-progress", "--out", P("ckpt_ref"))
    folder = P("ckpt_src")
    folder.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "raybt.cli", "run", P("pckpt.yaml"), "--engine", "local",
                             "--no-progress", "--out", folder / "out"], env=ENV, cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = folder / ".out.partial" / "checkpoint" / "state-b.rec"  # (two checkpoints: both slots written)
    deadline = time.time() + 300
    while not (state.exists() and state.stat().st_size) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=120)
    if not state.exists() or rc != 143:
        raise SystemExit(f"setup: could not interrupt a run with a checkpoint (rc {rc}, state {state.exists()})")
    # a small grid and a sweep base
    P("grid.yaml").write_text(yaml.safe_dump({"grid": {"bb_period": [20, 30], "entry_z": [1.8, 2.4]},
                                              "selection": {"max_drawdown": 0.5, "min_trades": 3}}))
    write_portfolio(W, portfolio_doc(engine={"chunk": "1D"}), name="base.yaml")
    print(f"setup: {time.time() - t0:.1f} s (universe, reference run, reference backtest, interrupted run)",
          flush=True)


def copy_partial(cd: Path) -> Path:
    """A copy of the interrupted run in ``cd``: ``cd/.out.partial``; resume with ``--resume cd/out``."""
    shutil.copytree(P("ckpt_src", ".out.partial"), cd / ".out.partial")
    (cd / ".out.partial" / "checkpoint.lock").unlink(missing_ok=True)
    return cd / ".out.partial"


# ============================================================================================
# class 1: DataFrames through the Python API
# ============================================================================================

def api_base() -> dict:
    from raybt.data.synth import generate_universe
    return generate_universe(n_assets=3, n_bars=N_BARS, timeframe="5m", seed=1)


def api_config(**extra):
    from raybt.config.portfolio import portfolio_config_from_dict
    return portfolio_config_from_dict(merge({"name": "t", "allocation": {"lookback": "2D"},
                                             "engine": {"chunk": "1D"}}, extra), "tally")


def api_assets(frames: dict, params=None):
    from raybt.config.params import validate_params
    from raybt.config.universe import AssetConfig
    p = validate_params(params or {"bb_period": 20})
    return {n: (AssetConfig(name=n, data=None, timeframe="5m", params=p), f) for n, f in frames.items()}


def api_run(frames: dict, params=None):
    from raybt.engine import PortfolioBacktester
    return PortfolioBacktester(api_assets(frames, params), api_config(), engine="local").run()


def api_files(frames: dict, cd: Path, params=None):
    """The clean path: each frame written to Parquet, run from its file."""
    from raybt.config.params import validate_params
    from raybt.config.universe import AssetConfig
    from raybt.engine import PortfolioBacktester
    p = validate_params(params or {"bb_period": 20})
    assets = []
    for n, f in frames.items():
        path = cd / f"clean_{n}.parquet"
        f.to_parquet(path)
        assets.append(AssetConfig(name=n, data=path, timeframe="5m", params=p))
    return PortfolioBacktester(assets, api_config(), engine="local").run()


def compare_results(a, b) -> tuple[bool, str]:
    ea, eb = a.equity, b.equity
    if ea.shape != eb.shape or not ea.index.equals(eb.index) or list(ea.columns) != list(eb.columns):
        return False, f"equity shape/index differ from the clean file path: {ea.shape} vs {eb.shape}"
    if not np.array_equal(ea.to_numpy(), eb.to_numpy()):
        return False, "equity differs from the clean file path"
    try:
        pd.testing.assert_frame_equal(a.trades.reset_index(drop=True), b.trades.reset_index(drop=True),
                                      check_exact=True)
    except AssertionError:
        return False, f"trades differ from the clean file path ({len(a.trades)} vs {len(b.trades)})"
    return True, f"equals the clean file path ({len(a.trades)} trades, final equity {ea['equity'].iloc[-1]:.2f})"


def summary(result) -> str:
    eq = result.equity["equity"]
    return f"ran: {len(result.trades)} trades, {len(eq)} bars, final equity {eq.iloc[-1]:.6g}"


def api_error(exc: RaybtError) -> dict:
    print(f"error: {exc}", file=sys.stderr)
    return {"rc": 2}


def api_frame_case(name, mutate, fixed=None, expect="error", target=0, cls="1", params=None):
    """``mutate(frame) -> bad frame`` for asset ``target``; ``fixed(frame) -> the clean frame`` it should equal."""
    @case(name, "api PortfolioBacktester", cls, expect)
    def fn(cd):
        base = api_base()
        key = sorted(base)[target]
        bad = dict(base)
        bad[key] = mutate(base[key].copy())
        try:
            result = api_run(bad, params)
        except RaybtError as exc:
            return api_error(exc)
        if fixed is None:
            return {"rc": 0, "check": None, "note": summary(result)}
        clean = dict(base)
        clean[key] = fixed(base[key].copy())
        return {"rc": 0, "check": compare_results(result, api_files(clean, cd, params))}


def _set(i, col, value):
    def f(frame):
        frame.iloc[i, list(frame.columns).index(col)] = value
        return frame
    return f


def _index(fn):
    def f(frame):
        frame.index = fn(frame.index)
        return frame
    return f


def _naive(frame):
    frame.index = frame.index.tz_localize(None)
    return frame


def _dup_index(frame):
    idx = frame.index.to_numpy().copy()
    idx[100] = idx[99]
    frame.index = pd.DatetimeIndex(idx, tz=frame.index.tz, name=frame.index.name)
    return frame


def _high_lt_low(frame):
    frame.iloc[200, 1] = frame.iloc[200, 2] * 0.99
    return frame


def _object_numbers(frame):
    return frame.astype(object)


def _object_strings(frame):
    return frame.astype(str)


def _object_bad(frame):
    frame["close"] = frame["close"].astype(object)
    frame.iloc[300, 3] = "abc"
    return frame


API_ERRORS = [
    ("descending index", lambda f: f.iloc[::-1]),
    ("shuffled two rows", lambda f: f.iloc[[0, 2, 1] + list(range(3, len(f)))]),
    ("duplicate timestamp", _dup_index),
    ("NaT in index", _index(lambda i: i.where(np.arange(len(i)) != 7, pd.NaT))),
    ("NaN close", _set(500, "close", np.nan)),
    ("NaN open first bar", _set(0, "open", np.nan)),
    ("NaN high last bar", _set(-1, "high", np.nan)),
    ("+inf high", _set(40, "high", np.inf)),
    ("-inf low", _set(41, "low", -np.inf)),
    ("inf volume", _set(42, "volume", np.inf)),
    ("negative close", _set(60, "close", -1.1)),
    ("negative low", _set(61, "low", -0.5)),
    ("zero open", _set(62, "open", 0.0)),
    ("high < low", _high_lt_low),
    ("close above high", _set(70, "close", 5.0)),
    ("one-bar asset", lambda f: f.iloc[:1]),
    ("fewer bars than the windows", lambda f: f.iloc[:10]),
    ("empty frame", lambda f: f.iloc[:0]),
    ("missing close column", lambda f: f.drop(columns="close")),
    ("missing open column", lambda f: f.drop(columns="open")),
    ("misspelt column", lambda f: f.rename(columns={"high": "hgih"})),
    ("object column with 'abc'", _object_bad),
    ("bool volume column", lambda f: f.assign(volume=True)),
    ("RangeIndex", lambda f: f.reset_index(drop=True)),
    ("string index", _index(lambda i: i.astype(str))),
    ("a Series", lambda f: f["close"]),
    ("None", lambda f: None),
    ("numpy array", lambda f: f.to_numpy()),
    ("duplicate column label", lambda f: pd.concat([f, f[["close"]]], axis=1)),
    ("negative volume", _set(5, "volume", -3.0)),
    ("complex prices", lambda f: f.astype(complex)),
    ("nullable Float64 with NA", lambda f: _set(9, "close", pd.NA)(f.astype("Float64"))),
]
for _name, _mutate in API_ERRORS:
    api_frame_case(_name, _mutate)

API_VALID = [  # documented as accepted: must equal the clean frame through a file
    ("tz-naive index (read as UTC)", _naive, lambda f: f),
    ("another time zone", _index(lambda i: i.tz_convert("America/New_York")), lambda f: f),
    ("unnamed index", lambda f: f.rename_axis(None), lambda f: f),
    ("seconds-unit index", _index(lambda i: i.as_unit("s")), lambda f: f),
    ("capitalised columns, no volume", lambda f: f.drop(columns="volume").rename(columns=str.title),
     lambda f: f.drop(columns="volume")),
    ("extra columns", lambda f: f.assign(note="x", spread=0.1), lambda f: f),
    ("object dtype holding floats", _object_numbers, lambda f: f),
    ("numbers as strings", _object_strings, lambda f: f),
    ("nullable Float64 without NA", lambda f: f.astype("Float64"), lambda f: f),
    ("float32 prices", lambda f: f.astype("float32"), lambda f: f.astype("float32").astype("float64")),
    ("integer volume", lambda f: f.assign(volume=f["volume"].astype("int64")), lambda f: f),
    ("columns in another order", lambda f: f[["close", "volume", "low", "open", "high"]], lambda f: f),
]
for _name, _mutate, _fixed in API_VALID:
    api_frame_case(_name, _mutate, _fixed, expect="ok")


@case("two assets share one frame object", "api PortfolioBacktester", "1", "ok")
def _(cd):
    base = api_base()
    k = sorted(base)
    frames = {k[0]: base[k[0]], k[1]: base[k[0]], k[2]: base[k[2]]}
    try:
        result = api_run(frames)
    except RaybtError as exc:
        return api_error(exc)
    clean = {k[0]: base[k[0]].copy(), k[1]: base[k[0]].copy(), k[2]: base[k[2]]}
    return {"rc": 0, "check": compare_results(result, api_files(clean, cd))}


@case("asset with a different bar grid (7min) beside 5m assets", "api PortfolioBacktester", "1", "ok")
def _(cd):
    base = api_base()
    k = sorted(base)
    f = base[k[0]].copy()
    f.index = pd.date_range(f.index[0], periods=len(f), freq="7min", tz="UTC", name=f.index.name)
    frames = {**base, k[0]: f}
    try:
        result = api_run(frames)
    except RaybtError as exc:
        return api_error(exc)
    return {"rc": 0, "check": compare_results(result, api_files({**base, k[0]: f.copy()}, cd))}


# class 11 (degenerate data): must run and say so
def _degenerate(name, mutate, needle):
    @case(name, "api PortfolioBacktester", "11", "ok")
    def fn(cd):
        import warnings
        base = api_base()
        k = sorted(base)[0]
        frames = {**base, k: mutate(base[k].copy())}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = api_run(frames)
            except RaybtError as exc:
                return api_error(exc)
        kept = (getattr(result, "provenance", None) or {}).get("warnings") or []
        said = [str(w.message) for w in caught] + [str(x) for x in kept]
        hit = [s for s in said if k in s and needle in s]
        return {"rc": 0, "check": (bool(hit), f"warning present: {hit[0][:80]}" if hit else
                                   f"no warning naming {k} and '{needle}' ({summary(result)}; provenance warnings={kept!r})")}


def _scale(s):
    def f(frame):
        frame[["open", "high", "low", "close"]] *= s
        return frame
    return f


_degenerate("prices scaled 1e-12 (API)", _scale(1e-12), "prices scaled wrong")
_degenerate("constant prices (API)", lambda f: f.assign(open=1.25, high=1.25, low=1.25, close=1.25), "constant")


@case("prices scaled 1e-12 (raybt run)", "cli run", "11", "ok")
def _(cd):
    files = {}
    for p in sorted(P("u").glob("*.parquet")):
        frame = pd.read_parquet(p)
        if not files:
            frame[["open", "high", "low", "close"]] *= 1e-12
        frame.to_parquet(cd / p.name)
        files[p.stem] = cd / p.name
    rc = run_local(write_portfolio(cd, portfolio_doc(assets_path=write_assets(cd, assets_doc(files=files)))))
    check = None
    if rc == 0:
        first = sorted(files)[0]
        warned = [x for x in (cd / "stderr.txt").read_text().splitlines() if x.startswith("warning:") and first in x]
        check = (bool(warned), f"warning: {warned[0][:80]}" if warned else f"no warning line naming {first}")
    return {"rc": rc, "check": check}


# ============================================================================================
# class 2: crafted checkpoints
# ============================================================================================

class Payload:
    """Unpickling this creates the file ``target``."""
    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _pwned(cd: Path) -> Path:
    return cd / "PWNED"


def _not_pwned(cd):
    hit = _pwned(cd).exists()
    return (not hit, "payload file was CREATED: the checkpoint executed code" if hit else "payload not executed")


def _resume(cd, *extra):
    return spawn(["run", "--resume", cd / "out", "--engine", "local", "--no-progress", *extra], cwd=cd)


def _resume_result(cd, rc):
    check = same_equity(cd / "out", P("ckpt_ref")) if rc == 0 and (cd / "out").is_dir() else None
    return {"rc": rc, "check": check}


def ckpt_case(name, craft, expect="error"):
    @case(name, "cli run --resume", "2", expect, after=_not_pwned)
    def fn(cd):
        craft(cd, copy_partial(cd) / "checkpoint")
        return _resume_result(cd, _resume(cd))


STATE_SLOTS = ("state-a.rec", "state-b.rec")


def _forged(meta, entries, payload):
    """An array record with a valid digest (a forger can compute it too) around any header and payload."""
    from raybt.array_records import MAGIC, PREFIX

    header = json.dumps({"meta": meta, "arrays": entries}).encode()
    body = header + payload
    return PREFIX.pack(MAGIC, len(header), len(payload), hashlib.sha256(body).digest()) + body


def _slot_meta(path):
    from raybt.array_records import unpack
    from raybt.checkpoints import RECORD_DTYPES

    return unpack(bytearray(path.read_bytes()), 0, RECORD_DTYPES)[0]


def _flip(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def craft_pickle_only(cd, folder):
    """The old format: only checkpoint.pkl, whose unpickling runs code."""
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / "checkpoint.pkl").write_bytes(pickle.dumps(Payload(_pwned(cd))))


def craft_pickle_beside(cd, folder):
    (folder / "checkpoint.pkl").write_bytes(pickle.dumps(Payload(_pwned(cd))))
    (folder.parent / "checkpoint.pkl").write_bytes(pickle.dumps(Payload(_pwned(cd))))


def craft_old_manifest(cd, folder):
    """An earlier raybt's .npz checkpoint: refused by name."""
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"format": 1, "chunk": 3, "segments": []}))


def craft_bad_digest_both(cd, folder):
    for name in STATE_SLOTS:
        _flip(folder / name, -10)


def craft_newest_state_torn(cd, folder):
    newest = max(STATE_SLOTS, key=lambda name: _slot_meta(folder / name)["chunk"])
    data = (folder / newest).read_bytes()
    (folder / newest).write_bytes(data[:len(data) // 2] + bytes(len(data) - len(data) // 2))


def craft_state_is_pickle(cd, folder):
    for name in STATE_SLOTS:
        (folder / name).write_bytes(pickle.dumps(Payload(_pwned(cd))))


def _forge_states(folder, entries, payload):
    """Both state slots replaced by a forged record (a forged slot alone loses to the other, whole one)."""
    for name in STATE_SLOTS:
        (folder / name).write_bytes(_forged(_slot_meta(folder / name), entries, payload))


def craft_state_object_array(cd, folder):
    _forge_states(folder, [["chunk", "|O", [1]]], pickle.dumps(np.array([Payload(_pwned(cd))], dtype=object)))


def craft_state_record_dtype_forged(cd, folder):
    """A record-type name the reader does not know, digest fixed."""
    _forge_states(folder, [["chunk", "evil", [1]]], b"\0" * 8)


def craft_state_array_past_end(cd, folder):
    _forge_states(folder, [["sleeves", "<f8", [10 ** 9]]], b"\0" * 8)


def craft_output_edited(cd, folder):
    _flip(folder / "outputs.log", 200)  # inside the first record; its digest is stale


def craft_log_truncated(cd, folder):
    log = folder / "outputs.log"
    log.write_bytes(log.read_bytes()[:-16])


def craft_log_extra_tail(cd, folder):
    """Bytes after what the state names (a kill between the log append and the state): dropped."""
    with open(folder / "outputs.log", "ab") as log:
        log.write(b"RAYBTAR1" + bytes(100))


def craft_run_garbage(cd, folder):
    (folder / "run.json").write_text("{not json")


def craft_run_format(cd, folder):
    doc = json.loads((folder / "run.json").read_text())
    doc["format"] = 99
    (folder / "run.json").write_text(json.dumps(doc))


def craft_states_missing(cd, folder):
    """No state at all: as a run stopped before its first checkpoint, the resume starts from the beginning."""
    for name in STATE_SLOTS:
        (folder / name).unlink()


def craft_config_changed(cd, folder):
    # the same config file path, its content changed after the checkpoint (another bb_period)
    req = json.loads((folder.parent / "run_request.json").read_text())
    cfg = cd / "pckpt.yaml"
    doc = yaml.safe_load(Path(req["config"]).read_text())
    doc["allocation"]["lookback"] = "3D"
    cfg.write_text(yaml.safe_dump(doc))
    req["config"] = str(cfg)
    (folder.parent / "run_request.json").write_text(json.dumps(req))


def craft_data_changed(cd, folder):
    # the asset config now points one asset at a different file
    req = json.loads((folder.parent / "run_request.json").read_text())
    doc = yaml.safe_load(Path(req["config"]).read_text())
    adoc = assets_doc()
    name = sorted(adoc["assets"])[0]
    frame = pd.read_parquet(adoc["assets"][name]["data"])
    frame.iloc[-1, 3] = frame.iloc[-1, 3] * 1.0001
    frame.to_parquet(cd / "changed.parquet")
    adoc["assets"][name]["data"] = str(cd / "changed.parquet")
    doc["asset_config"] = str(write_assets(cd, adoc))
    cfg = cd / "pckpt.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    req["config"] = str(cfg)
    (folder.parent / "run_request.json").write_text(json.dumps(req))


def craft_request_garbage(cd, folder):
    (folder.parent / "run_request.json").write_text("[1, 2, 3]")


def craft_request_pickle(cd, folder):
    (folder.parent / "run_request.json").write_bytes(pickle.dumps(Payload(_pwned(cd))))


def craft_nothing(cd, folder):
    pass


ckpt_case("checkpoint.pkl only (old format, payload)", craft_pickle_only)
ckpt_case("checkpoint.pkl beside a valid checkpoint (payload)", craft_pickle_beside, expect="ok")
ckpt_case("an earlier raybt's manifest.json checkpoint", craft_old_manifest)
ckpt_case("both state slots damaged (digest differs)", craft_bad_digest_both)
ckpt_case("newest state slot torn, the other whole", craft_newest_state_torn, expect="ok")
ckpt_case("state slots replaced by a pickle (payload)", craft_state_is_pickle)
ckpt_case("state record: object array over a pickle, digest fixed", craft_state_object_array)
ckpt_case("state record: unknown record type, digest fixed", craft_state_record_dtype_forged)
ckpt_case("state record: array runs past the record, digest fixed", craft_state_array_past_end)
ckpt_case("output record edited, digest stale", craft_output_edited)
ckpt_case("outputs.log shorter than the state says", craft_log_truncated)
ckpt_case("outputs.log with a tail after the state", craft_log_extra_tail, expect="ok")
ckpt_case("run.json not JSON", craft_run_garbage)
ckpt_case("run.json format 99", craft_run_format)
ckpt_case("no state slot (log only)", craft_states_missing, expect="ok")
ckpt_case("config changed since the checkpoint", craft_config_changed)
ckpt_case("data changed since the checkpoint", craft_data_changed)
ckpt_case("run_request.json not an object", craft_request_garbage)
ckpt_case("run_request.json is a pickle (payload)", craft_request_pickle)
ckpt_case("genuine interrupted run resumes bit-identical", craft_nothing, expect="ok")


@case("--resume of a complete run", "cli run --resume", "2", "error", out=None)
def _(cd):
    shutil.copytree(P("ref_run"), cd / "done")
    return {"rc": spawn(["run", "--resume", cd / "done", "--engine", "local", "--no-progress"], cwd=cd)}


@case("--resume of a folder that does not exist", "cli run --resume", "2", "error")
def _(cd):
    return {"rc": cli(["run", "--resume", cd / "nowhere", "--engine", "local", "--no-progress"])}


# ============================================================================================
# class 3: names that would leave their folder; class 4: reserved asset names
# ============================================================================================

def _inside_results(cd, outside_names):
    runs = [p.parent for p in cd.rglob("metrics.json")]
    escaped = [n for n in outside_names if (cd.parent / n).exists() or (cd.parent.parent / n).exists()
               or Path("/", n).exists()]
    ok = len(runs) == 1 and runs[0].parent == cd / "results" and not escaped
    return ok, (f"written inside results/: {runs[0].name}" if ok else
                f"runs at {[str(r) for r in runs]}, escaped: {escaped}")


def name_case(name, pname):
    @case(f"portfolio name {pname!r}", "cli run", "3", "either", out=None)
    def fn(cd):
        cfg = write_portfolio(cd, portfolio_doc(name=pname))
        rc = cli(["run", cfg, "--engine", "local", "--no-progress"])
        return {"rc": rc, "check": _inside_results(cd, ["escaped_tally", "etc_tally"]) if rc == 0 else None}


name_case("name", "../../escaped_tally")
name_case("name", "/tmp/etc_tally")
name_case("name", "..")
name_case("name", "a/../../escaped_tally")
name_case("name", "")


@case("asset name '../../evil_tally' (backtest --asset)", "cli backtest", "3", "either", out=None)
def _(cd):
    doc = assets_doc()
    first = sorted(doc["assets"])[0]
    doc["assets"] = {"../../evil_tally": doc["assets"][first]}
    cfg = write_assets(cd, doc)
    rc = cli(["backtest", "--config", cfg, "--asset", "../../evil_tally"])
    runs = [p.parent for p in cd.rglob("metrics.json")]
    ok = len(runs) == 1 and runs[0].parent == cd / "results" and not (cd.parent.parent / "evil_tally").exists()
    return {"rc": rc, "check": (ok, f"runs at {[str(r.relative_to(cd)) for r in runs]}") if rc == 0 else None}


@case("asset name '../../evil_tally' in a portfolio", "cli run", "3", "either", out=None)
def _(cd):
    def edit(doc):
        first = sorted(doc["assets"])[0]
        doc["assets"]["../../evil_tally"] = doc["assets"].pop(first)
    cfg = write_portfolio(cd, portfolio_doc(assets_path=write_assets(cd, assets_doc(edit=edit))))
    rc = cli(["run", cfg, "--engine", "local", "--no-progress"])
    return {"rc": rc, "check": _inside_results(cd, ["evil_tally"]) if rc == 0 else None}


@case("sweep name '../../escaped_sweep'", "cli sweep", "3", "either", out=None)
def _(cd):
    spec = {"name": "../../escaped_sweep", "base": str(P("base.yaml")), "mode": "list",
            "points": [{"allocation.model": "equal_weight"}]}
    (cd / "s.yaml").write_text(yaml.safe_dump(spec))
    rc = cli(["sweep", cd / "s.yaml", "--engine", "local", "--no-progress"])
    escaped = (cd.parent.parent / "escaped_sweep").exists() or any(
        p.name.endswith("escaped_sweep") and p.parent != cd / "results" for p in cd.parent.parent.rglob("*escaped_sweep"))
    inside = list((cd / "results").glob("*escaped_sweep*")) if (cd / "results").is_dir() else []
    return {"rc": rc, "check": (not escaped and bool(inside), f"inside results: {[p.name for p in inside]}, "
                                                              f"escaped: {escaped}") if rc == 0 else None}


def reserved_case(rname, expect="error"):
    @case(f"asset named {rname!r} in a portfolio", "cli run", "4", expect)
    def fn(cd):
        def edit(doc):
            first = sorted(doc["assets"])[0]
            doc["assets"][rname] = doc["assets"].pop(first)
        cfg = write_portfolio(cd, portfolio_doc(assets_path=write_assets(cd, assets_doc(edit=edit))))
        rc = run_local(cfg)
        check = None
        if rc == 0:
            eq = pd.read_parquet(cd / "out" / "portfolio_equity.parquet")
            check = (rname in eq.columns and "equity" in eq.columns,
                     f"columns {list(eq.columns)}")
        return {"rc": rc, "check": check}


for _r in ("equity", "drawdown", "timestamp"):
    reserved_case(_r)
reserved_case("Equity", expect="either")


@case("asset named 'equity' via the API", "api PortfolioBacktester", "4", "error")
def _(cd):
    base = api_base()
    k = sorted(base)
    frames = {"equity": base[k[0]], k[1]: base[k[1]], k[2]: base[k[2]]}
    try:
        result = api_run(frames)
    except RaybtError as exc:
        return api_error(exc)
    return {"rc": 0, "check": None, "note": summary(result) + f"; columns {list(result.equity.columns)}"}


@case("asset named 'timestamp' via backtest --asset", "cli backtest", "4", "ok")
def _(cd):
    doc = assets_doc()
    doc["assets"] = {"timestamp": {"data": str(P("u", "EURUSDX_5m.parquet")), "timeframe": "5m"}}
    doc["defaults"] = {}
    rc = cli(["backtest", "--config", write_assets(cd, doc), "--asset", "timestamp", "--out", cd / "out"])
    return {"rc": rc, "check": same_backtest(cd / "out", P("ref_bt")) if rc == 0 else None}


# ============================================================================================
# class 5: dates
# ============================================================================================

def _bars(shift_days=0) -> pd.DataFrame:
    frame = pd.read_parquet(P("u", "EURUSDX_5m.parquet"))
    if shift_days:
        frame.index = frame.index + pd.Timedelta(days=shift_days)
    return frame


def _csv(path: Path, frame: pd.DataFrame, stamps, header="timestamp"):
    body = frame.reset_index(drop=True)
    body.insert(0, header, list(stamps))
    body.to_csv(path, index=False)
    return path


def date_case(name, make, extra=(), expect="ok", shift=0):
    """``make(frame) -> (stamps or None, csv text editor)``: the file; the clean path is the ISO file of the same bars."""
    @case(name, "cli backtest --data", "5", expect)
    def fn(cd):
        frame = _bars(shift)
        path = make(cd, frame)
        rc = cli(["backtest", "--data", path, "--out", cd / "out", *extra])
        check = None
        if rc == 0:
            clean = frame.copy()
            clean.index = clean.index.tz_convert("UTC")
            (cd / "clean").mkdir()
            clean_path = _csv(cd / "clean" / "bars.csv", clean, clean.index.strftime("%Y-%m-%d %H:%M:%S"))
            assert cli(["backtest", "--data", clean_path, "--out", cd / "clean_out"]) == 0
            check = same_backtest(cd / "out", cd / "clean_out")
        return {"rc": rc, "check": check}


def fmt(f, header="timestamp"):
    return lambda cd, frame: _csv(cd / "bars.csv", frame, frame.index.strftime(f), header)


def _edit_row(f, row, value):
    def make(cd, frame):
        stamps = list(frame.index.strftime(f))
        stamps[row] = value
        return _csv(cd / "bars.csv", frame, stamps)
    return make


def _date_time(dfmt, tfmt="%H:%M"):
    def make(cd, frame):
        body = frame.reset_index(drop=True)
        body.insert(0, "Time", frame.index.strftime(tfmt))
        body.insert(0, "Date", frame.index.strftime(dfmt))
        body.to_csv(cd / "bars.csv", index=False)
        return cd / "bars.csv"
    return make


def _mixed(cd, frame):
    stamps = list(frame.index.strftime("%Y-%m-%d %H:%M"))
    stamps[1000:] = frame.index[1000:].strftime("%d/%m/%Y %H:%M")
    return _csv(cd / "bars.csv", frame, stamps)


def _epoch(cd, frame):
    return _csv(cd / "bars.csv", frame, (frame.index.asi8 // 10**9).astype(str))


def _offset(cd, frame):
    local = frame.index.tz_convert("Etc/GMT-2")  # UTC+02:00
    return _csv(cd / "bars.csv", frame, [t.isoformat() for t in local])


date_case("day-first dates, all days <= 12 (ambiguous)", fmt("%d/%m/%Y %H:%M"), expect="error")
date_case("day-first dates with --date-format", fmt("%d/%m/%Y %H:%M"), ["--date-format", "%d/%m/%Y %H:%M"])
date_case("day-first dates settled by a day > 12", fmt("%d/%m/%Y %H:%M"), shift=12)
date_case("month-first dates settled by a day > 12", fmt("%m/%d/%Y %H:%M"), shift=12)
date_case("day-first two-digit year settled", fmt("%d/%m/%y %H:%M"), shift=12)
date_case("day-first with dots (Dukascopy style)", fmt("%d.%m.%Y %H:%M:%S.000", "Gmt time"), shift=12)
date_case("separate Date and Time columns (ISO date)", _date_time("%Y-%m-%d"))
date_case("separate Date and Time columns (MT4 yyyy.mm.dd)", _date_time("%Y.%m.%d", "%H:%M:%S"))
date_case("separate Date and Time, day-first ambiguous", _date_time("%d/%m/%Y"), expect="error")
date_case("separate Date and Time, day-first with --date-format", _date_time("%d/%m/%Y"),
          ["--date-format", "%d/%m/%Y %H:%M"])
date_case("unparseable date in row 50", _edit_row("%Y-%m-%d %H:%M:%S", 49, "2024-13-45 00:00:00"), expect="error")
date_case("a word as a date", _edit_row("%Y-%m-%d %H:%M:%S", 9, "yesterday"), expect="error")
date_case("empty date cell", _edit_row("%Y-%m-%d %H:%M:%S", 20, ""), expect="error")
date_case("ISO then day-first halfway", _mixed, expect="error")
date_case("epoch seconds", _epoch)
date_case("ISO 8601 with +02:00 offsets", _offset)
date_case("ISO 8601 with T and Z", fmt("%Y-%m-%dT%H:%M:%SZ"))
date_case("--date-format that does not match", fmt("%Y-%m-%d %H:%M:%S"), ["--date-format", "%d/%m/%Y"],
          expect="error")
date_case("--date-format not a format", fmt("%Y-%m-%d %H:%M:%S"), ["--date-format", "%d/%Q"], expect="error")


def _dayfirst_universe(cd, fmt_):
    files = {}
    for p in sorted(P("u").glob("*.parquet")):
        frame = pd.read_parquet(p)
        files[p.stem] = _csv(cd / f"{p.stem}.csv", frame, frame.index.strftime(fmt_))
    return files


@case("portfolio of day-first files with timestamp_format", "cli run", "5", "ok")
def _(cd):
    doc = assets_doc(files=_dayfirst_universe(cd, "%d/%m/%Y %H:%M"), timestamp_format="%d/%m/%Y %H:%M")
    rc = run_local(write_portfolio(cd, portfolio_doc(assets_path=write_assets(cd, doc))))
    return {"rc": rc, "check": same_equity(cd / "out") if rc == 0 else None}


@case("portfolio of day-first files without a format", "cli run", "5", "error")
def _(cd):
    doc = assets_doc(files=_dayfirst_universe(cd, "%d/%m/%Y %H:%M"))
    return {"rc": run_local(write_portfolio(cd, portfolio_doc(assets_path=write_assets(cd, doc))))}


@case("timestamp_format not a strptime format", "cli run", "5", "error")
def _(cd):
    doc = assets_doc(timestamp_format="dd/mm/yyyy")
    return {"rc": run_local(write_portfolio(cd, portfolio_doc(assets_path=write_assets(cd, doc))))}


# ============================================================================================
# class 6: writes
# ============================================================================================

def _unchanged(folder_name):
    def after(cd):
        before = (cd / f"{folder_name}.digest").read_text()
        now = tree_digest(cd / folder_name)
        return (before == now, "existing folder unchanged" if before == now else
                f"existing folder {folder_name}/ was CHANGED: {sorted(p.name for p in (cd / folder_name).iterdir())}")
    return after


def _snapshot(cd, name):
    (cd / f"{name}.digest").write_text(tree_digest(cd / name))


@case("run --out into an existing complete run folder", "cli run", "6", "error", out=None, after=_unchanged("out"))
def _(cd):
    shutil.copytree(P("ref_run"), cd / "out")
    _snapshot(cd, "out")
    return {"rc": run_local(P("p.yaml"), cd / "out")}


@case("run --out into an existing complete run folder --overwrite", "cli run", "6", "either", out=None)
def _(cd):
    shutil.copytree(P("ref_run"), cd / "out")
    (cd / "out" / "stale.txt").write_text("old")
    rc = run_local(P("p.yaml"), cd / "out", "--overwrite")
    check = None
    if rc == 0:
        ok, note = same_equity(cd / "out")
        stale = (cd / "out" / "stale.txt").exists()
        check = (ok and not stale, note + ("; a stale file of the old run is still there (mixed)" if stale else ""))
    return {"rc": rc, "check": check}


@case("backtest --out into an existing complete run folder", "cli backtest", "6", "error", out=None,
      after=_unchanged("out"))
def _(cd):
    shutil.copytree(P("ref_run"), cd / "out")
    _snapshot(cd, "out")
    return {"rc": cli(["backtest", "--data", P("u", "EURUSDX_5m.parquet"), "--out", cd / "out"])}


@case("backtest --out over its own earlier result", "cli backtest", "6", "error", out=None, after=_unchanged("out"))
def _(cd):
    shutil.copytree(P("ref_bt"), cd / "out")
    _snapshot(cd, "out")
    return {"rc": cli(["backtest", "--data", P("u", "GBPUSDX_5m.parquet"), "--out", cd / "out"])}


@case("sweep --out into an existing run folder", "cli sweep", "6", "error", out=None, after=_unchanged("out"))
def _(cd):
    shutil.copytree(P("ref_run"), cd / "out")
    _snapshot(cd, "out")
    (cd / "s.yaml").write_text(yaml.safe_dump({"name": "s", "base": str(P("base.yaml")), "mode": "list",
                                               "points": [{"allocation.model": "equal_weight"}]}))
    return {"rc": cli(["sweep", cd / "s.yaml", "--engine", "local", "--no-progress", "--out", cd / "out"])}


@case("optimize --out into an existing run folder", "cli optimize", "6", "error", out=None,
      after=_unchanged("out"))
def _(cd):
    shutil.copytree(P("ref_run"), cd / "out")
    _snapshot(cd, "out")
    return {"rc": cli(["optimize", "--config", P("assets.json"), "--grid", P("grid.yaml"), "--engine", "local",
                       "--no-progress", "--out", cd / "out", "--best-dir", cd / "best"])}


@case("data synth --out over an existing universe", "cli data synth", "6", "error", out=None,
      after=_unchanged("uu"))
def _(cd):
    shutil.copytree(P("u"), cd / "uu")
    _snapshot(cd, "uu")
    return {"rc": cli(["data", "synth", "--out", cd / "uu", "--assets", 2, "--bars", 500, "--seed", 9])}


@case("data synth --out over an existing universe --overwrite", "cli data synth", "6", "ok", out=None)
def _(cd):
    shutil.copytree(P("u"), cd / "uu")
    rc = cli(["data", "synth", "--out", cd / "uu", "--assets", 2, "--bars", 500, "--seed", 9, "--overwrite"])
    check = None
    if rc == 0:
        files = sorted(p.name for p in (cd / "uu").glob("*.parquet"))
        manifest = json.loads((cd / "uu" / "universe.json").read_text())
        ok = len(files) == 2 and manifest.get("n_assets") == 2
        check = (ok, f"files {files}, manifest n_assets {manifest.get('n_assets')}")
    return {"rc": rc, "check": check}


@case("data synth --out into a folder of other files", "cli data synth", "6", "either", out=None)
def _(cd):
    (cd / "uu").mkdir()
    (cd / "uu" / "notes.txt").write_text("mine")
    rc = cli(["data", "synth", "--out", cd / "uu", "--assets", 2, "--bars", 500, "--seed", 9])
    kept = (cd / "uu" / "notes.txt").read_text() == "mine" if (cd / "uu" / "notes.txt").exists() else False
    return {"rc": rc, "check": (kept, "user's file kept" if kept else "user's notes.txt was DELETED") if rc == 0
            else None}


@case("run --out over an interrupted run's .partial", "cli run", "6", "error", after=None)
def _(cd):
    partial = copy_partial(cd)
    rc = run_local(P("pckpt.yaml"), cd / "out")
    kept = (partial / "checkpoint" / "state-a.rec").is_file()
    if not kept:
        print("note: the interrupted run's checkpoint was deleted", file=sys.stdout)
    return {"rc": rc, "note": "checkpoint kept" if kept else "CHECKPOINT DELETED"}


@case("backtest --out over an unfinished .partial", "cli backtest", "6", "error")
def _(cd):
    (cd / ".out.partial" / "checkpoint").mkdir(parents=True)
    (cd / ".out.partial" / "INCOMPLETE").write_text("x\n")
    return {"rc": cli(["backtest", "--data", P("u", "EURUSDX_5m.parquet"), "--out", cd / "out"])}


@case("--out is an existing file", "cli run", "6", "error", out=None)
def _(cd):
    (cd / "out").write_text("a file")
    return {"rc": run_local(P("p.yaml"), cd / "out")}


def _two_writers(second_args):
    def fn(cd):
        cfg = write_portfolio(cd, portfolio_doc(engine={"chunk": "15min", "checkpoint_every": 10,
                                                        "checkpoint_seconds": 0}))
        first = subprocess.Popen([sys.executable, "-m", "raybt.cli", "run", cfg, "--engine", "local",
                                  "--no-progress", "--out", cd / "out"], env=ENV, cwd=cd,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        partial = cd / ".out.partial" / "INCOMPLETE"
        deadline = time.time() + 120
        while not partial.exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        if first.poll() is not None:
            print("setup: the first run ended before the second could start", file=sys.stderr)
            return {"rc": 99}
        rc = spawn([a if a != "CFG" else cfg for a in second_args(cd)], cwd=cd)
        _, err = first.communicate(timeout=TIMEOUT)
        ok, note = (same_equity(cd / "out", P("ckpt_ref")) if first.returncode == 0 else
                    (False, f"the FIRST run failed: rc {first.returncode}: {err.strip()[-200:]}"))
        (cd / "first.json").write_text(json.dumps([ok, note]))
        return {"rc": rc, "check": None}

    def after(cd):
        ok, note = json.loads((cd / "first.json").read_text()) if (cd / "first.json").exists() else (False, "?")
        return ok, f"first writer: {note}"
    return fn, after


for _label, _args in [("two writers: same --out twice", lambda cd: ["run", "CFG", "--engine", "local", "--no-progress",
                                                                     "--out", cd / "out"]),
                      ("two writers: --resume while the first runs", lambda cd: ["run", "--resume", cd / "out",
                                                                                 "--engine", "local",
                                                                                 "--no-progress"]),
                      ("two writers: --out same --overwrite while it runs",
                       lambda cd: ["run", "CFG", "--engine", "local", "--no-progress", "--out", cd / "out",
                                   "--overwrite"])]:
    _fn, _after = _two_writers(_args)
    case(_label, "cli run (2 processes)", "6", "error", out=None, after=_after)(_fn)


@case("report on a finished run", "cli report", "6", "ok", out=None)
def _(cd):
    shutil.copytree(P("ref_run"), cd / "out")
    rc = cli(["report", cd / "out", "--no-frontier"])
    check = None
    if rc == 0:
        same = (cd / "out" / "metrics.json").read_text() == (P("ref_run") / "metrics.json").read_text()
        leftovers = [p.name for p in (cd / "out").iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
        check = (same and not leftovers, f"metrics unchanged {same}, temp files left {leftovers}")
    return {"rc": rc, "check": check}


@case("report on an unfinished run", "cli report", "6", "error", out=None)
def _(cd):
    partial = copy_partial(cd)
    return {"rc": cli(["report", partial])}


@case("report on a folder that is not a run", "cli report", "6", "error", out=None)
def _(cd):
    (cd / "empty").mkdir()
    return {"rc": cli(["report", cd / "empty"])}


# ============================================================================================
# class 7: unwritable output
# ============================================================================================

def _file_parent(cd):
    (cd / "afile").write_text("x")
    return cd / "afile" / "out"


UNWRITABLE = [
    ("run --out under /proc", lambda cd: ["run", P("p.yaml"), "--engine", "local", "--no-progress", "--out",
                                          "/proc/raybt_tally_out"]),
    ("run --out under a file", lambda cd: ["run", P("p.yaml"), "--engine", "local", "--no-progress", "--out",
                                           _file_parent(cd)]),
    ("run --out under /sys", lambda cd: ["run", P("p.yaml"), "--engine", "local", "--no-progress", "--out",
                                         "/sys/raybt_tally_out"]),
    ("backtest --out under /proc", lambda cd: ["backtest", "--data", P("u", "EURUSDX_5m.parquet"), "--out",
                                               "/proc/raybt_tally_out"]),
    ("data synth --out under /proc", lambda cd: ["data", "synth", "--out", "/proc/raybt_tally_u", "--assets", 2,
                                                 "--bars", 300]),
    ("sweep --out under /proc", lambda cd: ["sweep", P("sweep_ok.yaml"), "--engine", "local", "--no-progress",
                                            "--out", "/proc/raybt_tally_sweep"]),
    ("optimize --out under /proc", lambda cd: ["optimize", "--config", P("assets.json"), "--grid", P("grid.yaml"),
                                               "--engine", "local", "--no-progress", "--out", "/proc/raybt_tally_o",
                                               "--best-dir", cd / "best"]),
    ("optimize --best-dir under /proc", lambda cd: ["optimize", "--config", P("assets.json"), "--grid",
                                                    P("grid.yaml"), "--engine", "local", "--no-progress", "--out",
                                                    cd / "out", "--best-dir", "/proc/raybt_tally_best"]),
    ("run with cwd's results/ a file (default --out)", None),
]
for _label, _args in UNWRITABLE:
    if _args is None:
        continue

    def _mk(args):
        def fn(cd):
            return {"rc": cli(args(cd))}
        return fn
    case(_label, "cli " + _label.split()[0], "7", "error")(_mk(_args))


@case("run with results/ a file in the working folder", "cli run", "7", "error", out=None)
def _(cd):
    (cd / "results").write_text("not a folder")
    return {"rc": cli(["run", P("p.yaml"), "--engine", "local", "--no-progress"])}


@case("run --out in a chmod 500 folder", "cli run", "7", "either", out=None)
def _(cd):
    (cd / "ro").mkdir()
    os.chmod(cd / "ro", 0o500)
    rc = spawn(["run", P("p.yaml"), "--engine", "local", "--no-progress", "--out", cd / "ro" / "out"], cwd=cd)
    os.chmod(cd / "ro", 0o700)
    check = None
    if rc == 0:
        ok, note = same_equity(cd / "ro" / "out")
        check = (ok, note + ("; written although chmod 500: running as root (uid 0), so permissions do not apply"
                             if os.geteuid() == 0 else ""))
    return {"rc": rc, "check": check}


def _fsize_limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    import resource
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))


@case("run with a 100 kB file-size limit (disk full)", "cli run", "7", "error")
def _(cd):
    return {"rc": spawn(["run", P("p.yaml"), "--engine", "local", "--no-progress", "--out", cd / "out"],
                        preexec=_fsize_limit, cwd=cd)}


@case("data synth with a 100 kB file-size limit", "cli data synth", "7", "error", out="uu")
def _(cd):
    return {"rc": spawn(["data", "synth", "--out", cd / "uu", "--assets", 3, "--bars", 20000], preexec=_fsize_limit,
                        cwd=cd)}


# ============================================================================================
# class 8: --resume with other arguments
# ============================================================================================

RESUME_EXTRA = [["--allocation", "risk_parity"], ["--chunk", "1h"], ["--max-assets", "2"],
                ["--preference", "pnl"], ["--timeframe", "15m"], ["--out", "elsewhere"], ["--format", "csv"],
                ["--date-format", "%d/%m/%Y"], ["--checkpoint-every", "3"], ["CONFIG"],
                ["--layout", "actors"]]
for _extra in RESUME_EXTRA:
    def _mk(extra):
        def fn(cd):
            copy_partial(cd)
            args = [P("pckpt.yaml") if a == "CONFIG" else a for a in extra]
            pos = args if extra == ["CONFIG"] else []
            opts = [] if extra == ["CONFIG"] else args
            rc = cli(["run", *pos, "--resume", cd / "out", "--engine", "local", "--no-progress", *opts])
            return {"rc": rc, "check": (False, "ran: the extra argument was taken or ignored") if rc == 0 else None}
        return fn
    _label = "positional config" if _extra == ["CONFIG"] else " ".join(_extra)
    case(f"--resume with {_label}", "cli run --resume", "8", "error")(_mk(_extra))


@case("--resume with --engine local (allowed)", "cli run --resume", "8", "ok")
def _(cd):
    copy_partial(cd)
    rc = cli(["run", "--resume", cd / "out", "--engine", "local", "--no-progress"])
    return _resume_result(cd, rc)


# ============================================================================================
# class 9: per-asset weight
# ============================================================================================

def weight_case(name, edit, expect="error"):
    @case(name, "cli run", "9", expect)
    def fn(cd):
        rc = run_local(write_portfolio(cd, portfolio_doc(assets_path=write_assets(cd, assets_doc(edit=edit)))))
        return {"rc": rc, "check": same_equity(cd / "out") if rc == 0 else None}


def _w(value, where="assets"):
    def edit(doc):
        if where == "assets":
            for entry in doc["assets"].values():
                entry["broker"] = {"weight": value}
        elif where == "one":
            doc["assets"][sorted(doc["assets"])[0]]["broker"] = {"weight": value}
        else:
            doc["defaults"]["broker"] = {"weight": value}
    return edit


weight_case("broker.weight 0.9 on every asset", _w(0.9))
weight_case("broker.weight 0.3 on one asset", _w(0.3, "one"))
weight_case("broker.weight 0.5 in defaults", _w(0.5, "defaults"))
weight_case("broker.weight 1 (the default, harmless)", _w(1.0), expect="ok")
weight_case("broker.weight 1.5", _w(1.5))


@case("weight 0.5 in best_configs params", "cli run", "9", "error")
def _(cd):
    (cd / "results").mkdir()
    name = sorted(assets_doc()["assets"])[0]
    (cd / "results" / "best_configs_balanced.json").write_text(json.dumps(
        {"assets": {name: {"params": {"weight": 0.5}}}}))
    rc = run_local(P("p.yaml"))
    return {"rc": rc, "check": same_equity(cd / "out") if rc == 0 else None}


@case("weight 0.9 in the API's AssetConfig params", "api PortfolioBacktester", "9", "error")
def _(cd):
    try:
        result = api_run(api_base(), params={"bb_period": 20, "weight": 0.9})
    except RaybtError as exc:
        return api_error(exc)
    return {"rc": 0, "check": None, "note": summary(result)}


@case("backtest --set weight=0.5 (honoured: half the capital)", "cli backtest", "9", "ok")
def _(cd):
    rc = cli(["backtest", "--data", P("u", "EURUSDX_5m.parquet"), "--set", "weight=0.5", "--out", cd / "out"])
    check = None
    if rc == 0:
        eq = pd.read_csv(cd / "out" / "equity.csv")
        check = (abs(eq["equity"].iloc[0] - 50_000) < 1e-6 or abs(eq["equity"].iloc[0] - 50_000) < 1000,
                 f"first equity {eq['equity'].iloc[0]} (capital 100000 x 0.5 = 50000)")
    return {"rc": rc, "check": check}


# ============================================================================================
# class 10: compute_weights
# ============================================================================================

def hadamard_returns(vols, means, rows=16, names=None):
    from scipy.linalg import hadamard
    k = len(vols)
    x = hadamard(rows)[:, 1:k + 1].astype(float) * np.sqrt((rows - 1) / rows) * np.asarray(vols, float)
    return pd.DataFrame(x + np.asarray(means, float), columns=names or [f"a{i}" for i in range(k)])


VOLS, MEANS = np.array([0.02, 0.01, 0.04]), np.array([0.004, 0.001, 0.002])


def closed_form(model, vols, means):
    if model in ("inverse_volatility", "risk_parity"):
        w = 1 / vols
    elif model == "min_variance":
        w = 1 / vols ** 2
    elif model == "max_sharpe":
        w = means / vols ** 2
    elif model == "performance_weighted":
        w = np.maximum(means / vols, 0)
    else:
        w = np.ones(len(vols))
    return w / w.sum()


def alloc_case(name, model, make, expect, check=None, **kw):
    @case(name, "api compute_weights", "10" if not name.startswith("[m]") else "m", expect)
    def fn(cd):
        from raybt.allocation import compute_weights
        returns = make()
        try:
            w = compute_weights(model, returns, **kw)
        except RaybtError as exc:
            return api_error(exc)
        arr = np.asarray(w, float)
        valid = bool(np.isfinite(arr).all() and (arr >= -1e-12).all() and abs(arr.sum() - 1) < 1e-9)
        note = "weights " + ", ".join(f"{k}={v:.4g}" for k, v in w.items())
        if check is None:
            return {"rc": 0, "check": (valid, ("valid " if valid else "INVALID ") + note)}
        ok, why = check(w)
        return {"rc": 0, "check": (valid and ok, f"{why}; {note}")}


def expect_close(target):
    def check(w):
        ok = np.allclose(np.asarray(w, float), target, atol=1e-6)
        return ok, "expected " + ", ".join(f"{t:.4g}" for t in target)
    return check


MODELS = ("equal_weight", "inverse_volatility", "risk_parity", "performance_weighted", "min_variance", "max_sharpe")
for _m in MODELS:
    def _zero(m=_m):
        r = hadamard_returns(VOLS, MEANS, names=["a", "b", "c"])
        r["z"] = 0.0005
        return r
    alloc_case(f"{_m}: zero-variance column", _m, _zero, "ok",
               expect_close(closed_form(_m, np.append(VOLS, VOLS.min()), np.append(MEANS, 0.0005))))
for _m in MODELS:
    alloc_case(f"{_m}: returns scaled 1e200", _m,
               lambda: hadamard_returns(VOLS, MEANS, names=["a", "b", "c"]) * 1e200, "either",
               expect_close(closed_form(_m, VOLS, MEANS)))
for _m in ("inverse_volatility", "min_variance", "max_sharpe", "risk_parity"):
    def _nan():
        r = hadamard_returns(VOLS, MEANS, names=["a", "b", "c"])
        r.iloc[3, 1] = np.nan
        return r
    alloc_case(f"{_m}: a NaN return", _m, _nan, "error")
alloc_case("min_variance: an inf return", "min_variance",
           lambda: hadamard_returns(VOLS, MEANS).assign(a0=lambda r: r["a0"].where(r.index != 2, np.inf)), "error")
for _m in MODELS:
    alloc_case(f"{_m}: single asset", _m, lambda: hadamard_returns([0.02], [0.001]), "ok", expect_close([1.0]))
for _m in ("inverse_volatility", "risk_parity", "min_variance", "max_sharpe", "performance_weighted"):
    def _equal():
        base = hadamard_returns([0.02], [0.003])["a0"]
        return pd.DataFrame({"a": base, "b": base, "c": base})
    alloc_case(f"{_m}: three identical return columns", _m, _equal, "ok", expect_close([1 / 3] * 3))
for _m in ("risk_parity", "min_variance"):
    alloc_case(f"{_m}: all returns zero", _m, lambda: pd.DataFrame(np.zeros((20, 3)), columns=list("abc")), "ok",
               expect_close([1 / 3] * 3))
alloc_case("max_sharpe: every mean negative", "max_sharpe", lambda: hadamard_returns(VOLS, -MEANS), "either")
alloc_case("performance_weighted: every mean negative", "performance_weighted",
           lambda: hadamard_returns(VOLS, -MEANS), "either")
alloc_case("risk_parity: empty frame", "risk_parity", lambda: pd.DataFrame(columns=list("abc"), dtype=float), "error")
alloc_case("min_variance: one row", "min_variance",
           lambda: pd.DataFrame([[0.01, 0.02, 0.0]], columns=list("abc")), "either")
alloc_case("inverse_volatility: a string column", "inverse_volatility",
           lambda: hadamard_returns(VOLS, MEANS).assign(a1="x"), "error")
alloc_case("min_variance: duplicate column names", "min_variance",
           lambda: hadamard_returns(VOLS, MEANS).set_axis(["a", "a", "b"], axis=1), "error")
alloc_case("max_single_asset_weight 0.1 with 3 assets", "equal_weight", lambda: hadamard_returns(VOLS, MEANS),
           "error", max_single_asset_weight=0.1)
alloc_case("max_assets 0", "equal_weight", lambda: hadamard_returns(VOLS, MEANS), "error", max_assets=0)
alloc_case("max_assets 5 of 3", "inverse_volatility", lambda: hadamard_returns(VOLS, MEANS), "ok",
           expect_close(closed_form("inverse_volatility", VOLS, MEANS)), max_assets=5)
alloc_case("returns not a DataFrame (list)", "equal_weight", lambda: [[0.1, 0.2], [0.0, 0.1]], "error")
alloc_case("[m] unknown model 'risk_parit'", "risk_parit", lambda: hadamard_returns(VOLS, MEANS), "error")
alloc_case("[m] model name None", None, lambda: hadamard_returns(VOLS, MEANS), "error")


# ============================================================================================
# config keys, parameter values, missing files, allocation model, chunks
# ============================================================================================

def portfolio_case(name, cls, extra=None, text=None, assets_edit=None, args=(), expect="error", assets_text=None):
    @case(name, "cli run", cls, expect)
    def fn(cd):
        assets = (write_assets(cd, text=assets_text) if assets_text is not None else
                  write_assets(cd, assets_doc(edit=assets_edit)) if assets_edit else P("assets.json"))
        cfg = write_portfolio(cd, portfolio_doc(assets_path=assets, **(extra or {})), text=text)
        rc = run_local(cfg, "out", *args)
        return {"rc": rc, "check": same_equity(cd / "out") if rc == 0 else None,
                "note": "" if rc else "should be refused"}


def _asset(section, key, value):
    def edit(doc):
        doc["assets"][sorted(doc["assets"])[0]].setdefault(section, {})[key] = value
    return edit


portfolio_case("portfolio: unknown top key 'initial_captial'", "k", {"initial_captial": 1000})
portfolio_case("portfolio: misspelt 'risk.max_portfolio_drawdwn'", "k", {"risk": {"max_portfolio_drawdwn": 0.1}})
portfolio_case("portfolio: misspelt 'allocation.lookbak'", "k", {"allocation": {"lookbak": "2D"}})
portfolio_case("portfolio: misspelt 'engine.chunck'", "k", {"engine": {"chunck": "1D"}})
portfolio_case("portfolio: misspelt 'rebalanse'", "k", {"rebalanse": "weekly"})
portfolio_case("portfolio: 'Allocation' capitalised", "k", {"Allocation": {"model": "risk_parity"}})
portfolio_case("asset config: top key 'asests'", "k", assets_edit=lambda d: d.update(asests={}))
portfolio_case("asset config: 'bb_perod' in strategy", "k", assets_edit=_asset("strategy", "bb_perod", 30))
portfolio_case("asset config: 'leverag' in broker", "k", assets_edit=_asset("broker", "leverag", 10))
portfolio_case("asset config: 'brokr' section", "k", assets_edit=lambda d: d["assets"][sorted(d["assets"])[0]]
               .update(brokr={}))
portfolio_case("asset config: 'leverage' in strategy section", "k", assets_edit=_asset("strategy", "leverage", 2))
portfolio_case("asset config: 'defaults.stratgy'", "k", assets_edit=lambda d: d["defaults"].update(stratgy={}))
portfolio_case("portfolio: document is a list", "k", text="- a\n- b\n")
portfolio_case("portfolio: YAML syntax error", "k", text="risk:\n  max_portfolio_drawdown: [0.1\n")
portfolio_case("asset config: JSON syntax error", "k", assets_text='{"assets": {')

portfolio_case("asset leverage -30", "p", assets_edit=_asset("broker", "leverage", -30))
portfolio_case("asset entry_z -1", "p", assets_edit=_asset("strategy", "entry_z", -1))  # spec: entry_z >= 0
portfolio_case("asset bb_period 1", "p", assets_edit=_asset("strategy", "bb_period", 1))
portfolio_case("asset sl_atr -1", "p", assets_edit=_asset("strategy", "sl_atr", -1))
portfolio_case("asset tp_atr 'abc'", "p", assets_edit=_asset("strategy", "tp_atr", "abc"))
portfolio_case("asset bb_period 20.5", "p", assets_edit=_asset("strategy", "bb_period", 20.5))
portfolio_case("asset commission -0.001", "p", assets_edit=_asset("broker", "commission", -0.001))
portfolio_case("asset initial_capital nan", "p", assets_edit=_asset("broker", "initial_capital", float("nan")))
portfolio_case("asset entry_z true (bool)", "p", assets_edit=_asset("strategy", "entry_z", True))
portfolio_case("asset max_hold_bars -5", "p", assets_edit=_asset("strategy", "max_hold_bars", -5))
portfolio_case("initial_capital -5", "p", {"initial_capital": -5})
portfolio_case("initial_capital .inf", "p", text=None, extra={"initial_capital": float("inf")})
portfolio_case("max_portfolio_drawdown 1.5", "p", {"risk": {"max_portfolio_drawdown": 1.5}})
portfolio_case("rebalance 'hourly'", "p", {"rebalance": "hourly"})
portfolio_case("--max-assets 0", "p", args=["--max-assets", "0"])
portfolio_case("--max-assets -1", "p", args=["--max-assets", "-1"])
portfolio_case("--timeframe 7x", "p", args=["--timeframe", "7x"])
portfolio_case("--timeframe 1m (finer than the 5m bars)", "p", args=["--timeframe", "1m"])
portfolio_case("assets: unknown asset name", "p", {"assets": ["EURUSDX_5m", "NOPE_5m"]})
portfolio_case("allocation.lookback -2D", "p", {"allocation": {"lookback": "-2D"}})
portfolio_case("allocation.lookback longer than the data (equal_weight needs no window)", "p",
               {"allocation": {"lookback": "400D"}}, expect="ok")

portfolio_case("unknown allocation model in config", "m", {"allocation": {"model": "risk_parit"}})
portfolio_case("--allocation riskparity", "m", args=["--allocation", "riskparity"])
portfolio_case("allocation.model 42", "m", {"allocation": {"model": 42}})

for _chunk in ["soon", "1min", "0h", "-1D", "", "1e400D", "nan", "5"]:
    portfolio_case(f"engine.chunk {_chunk!r}", "c", {"engine": {"chunk": _chunk}})
portfolio_case("--chunk abc", "c", args=["--chunk", "abc"])
portfolio_case("--chunk 0D", "c", args=["--chunk", "0D"])
portfolio_case("engine.chunk 400D (longer than the data)", "c", {"engine": {"chunk": "400D"}}, expect="either")


def backtest_set_case(name, cls, sets, expect="error"):
    @case(name, "cli backtest --set", cls, expect)
    def fn(cd):
        args = ["backtest", "--data", P("u", "EURUSDX_5m.parquet"), "--out", cd / "out"]
        for s in sets:
            args += ["--set", s]
        return {"rc": cli(args)}


for _s in ["leverage=-1", "entry_z=-1", "bb_period=1", "sl_atr=-2", "bb_period=1e30", "spread=-1", "sizing=kelly",
           "allow_short=maybe", "weight=0"]:
    backtest_set_case(f"--set {_s}", "p", [_s])
backtest_set_case("--set levrage=2 (misspelt)", "k", ["levrage=2"])
backtest_set_case("--set bb_period (no '=')", "k", ["bb_period"])


def api_params_case(name, params):
    @case(name, "api validate_params", "p", "error")
    def fn(cd):
        from raybt.config.params import validate_params
        try:
            validate_params(params)
        except RaybtError as exc:
            return api_error(exc)
        return {"rc": 0, "check": None, "note": "accepted"}


api_params_case("validate_params leverage -1", {"leverage": -1})
api_params_case("validate_params entry_z -1", {"entry_z": -1})
api_params_case("validate_params bb_period 1", {"bb_period": 1})
api_params_case("validate_params sl_atr -1", {"sl_atr": -1})
api_params_case("validate_params unknown key bb_perod", {"bb_perod": 20})


@case("best_configs with bb_period 1", "cli run", "p", "error")
def _(cd):
    (cd / "results").mkdir()
    (cd / "results" / "best_configs_balanced.json").write_text(json.dumps(
        {"assets": {"EURUSDX_5m": {"params": {"bb_period": 1}}}}))
    return {"rc": run_local(P("p.yaml"))}


MISSING = [
    ("missing portfolio config", lambda cd: ["run", cd / "nope.yaml", "--engine", "local", "--no-progress",
                                             "--out", cd / "out"]),
    ("missing asset config", lambda cd: ["run", write_portfolio(cd, portfolio_doc(assets_path=cd / "nope.json")),
                                         "--engine", "local", "--no-progress", "--out", cd / "out"]),
    ("missing data file in asset config", lambda cd: ["run", write_portfolio(cd, portfolio_doc(assets_path=write_assets(
        cd, assets_doc(edit=lambda d: d["assets"]["EURUSDX_5m"].update(data=str(cd / "gone.parquet")))))),
        "--engine", "local", "--no-progress", "--out", cd / "out"]),
    ("backtest --data missing", lambda cd: ["backtest", "--data", cd / "gone.csv", "--out", cd / "out"]),
    ("backtest --config missing", lambda cd: ["backtest", "--config", cd / "gone.json", "--out", cd / "out"]),
    ("optimize --grid missing", lambda cd: ["optimize", "--config", P("assets.json"), "--grid", cd / "gone.yaml",
                                            "--engine", "local", "--no-progress", "--out", cd / "out",
                                            "--best-dir", cd / "best"]),
    ("optimize --config missing", lambda cd: ["optimize", "--config", cd / "gone.json", "--grid", P("grid.yaml"),
                                              "--engine", "local", "--no-progress", "--out", cd / "out",
                                              "--best-dir", cd / "best"]),
    ("sweep file missing", lambda cd: ["sweep", cd / "gone.yaml", "--engine", "local", "--no-progress", "--out",
                                       cd / "out"]),
    ("report on a missing folder", lambda cd: ["report", cd / "gone"]),
    ("data file is a directory", lambda cd: ["backtest", "--data", P("u"), "--out", cd / "out"]),
    ("data file empty", lambda cd: ["backtest", "--data", (cd / "e.csv").write_text("") or cd / "e.csv",
                                    "--out", cd / "out"]),
]
for _label, _args in MISSING:
    def _mk(args):
        def fn(cd):
            return {"rc": cli(args(cd))}
        return fn
    case(_label, "cli " + {"optimize": "optimize", "sweep": "sweep", "report": "report", "backtest": "backtest",
                           "data": "backtest"}.get(_label.split()[0].replace("--", ""), "run"), "f", "error")(_mk(_args))


# ============================================================================================
# optimize grids and sweep files
# ============================================================================================

def grid_case(name, grid_text=None, grid_doc=None, args=(), expect="error"):
    @case(name, "cli optimize", "g", expect)
    def fn(cd):
        grid = cd / "g.yaml"
        grid.write_text(grid_text if grid_text is not None else yaml.safe_dump(grid_doc))
        rc = cli(["optimize", "--config", P("assets.json"), "--grid", grid, "--engine", "local", "--no-progress",
                  "--out", cd / "out", "--best-dir", cd / "best", *args])
        check = None
        if rc == 0:
            files = sorted(p.name for p in (cd / "best").glob("best_configs_*.json"))
            doc = json.loads((cd / "best" / "best_configs_balanced.json").read_text()) if files else {}
            picks = {n: e.get("params", {}).get("bb_period") for n, e in doc.get("assets", {}).items()}
            ok = len(files) == 3 and all(v in (20, 30) for v in picks.values())
            check = (ok, f"best_configs {files}, bb_period picks {picks}")
        return {"rc": rc, "check": check}


GOOD_GRID = {"grid": {"bb_period": [20, 30], "entry_z": [1.8, 2.4]}, "selection": {"max_drawdown": 0.5,
                                                                                     "min_trades": 3}}
grid_case("grid: unknown parameter 'bb_perod'", grid_doc={"grid": {"bb_perod": [20, 30]}})
grid_case("grid: empty value list", grid_doc={"grid": {"bb_period": []}})
grid_case("grid: bb_period [1]", grid_doc={"grid": {"bb_period": [1, 20]}})
grid_case("grid: entry_z [-1]", grid_doc={"grid": {"entry_z": [-1, 2]}})
grid_case("grid: leverage [-10]", grid_doc={"grid": {"leverage": [-10]}})
grid_case("grid: string value", grid_doc={"grid": {"sl_atr": ["abc"]}})
grid_case("grid: YAML syntax error", grid_text="grid:\n  bb_period: [20, 30\n")
grid_case("grid: a list, not a mapping", grid_text="- 1\n- 2\n")
grid_case("grid: no 'grid' key", grid_doc={"gird": {"bb_period": [20]}})
grid_case("grid: one value, not a list (read as [20])", grid_doc={"grid": {"bb_period": 20}}, expect="ok")
grid_case("grid: misspelt selection key", grid_doc={"grid": {"bb_period": [20]}, "selection": {"min_trade": 3}})
grid_case("grid: max_candidates -1", grid_doc={"grid": {"bb_period": [20, 30]}, "max_candidates": -1})
grid_case("optimize --train 1.5", grid_doc=GOOD_GRID, args=["--train", "1.5"])
grid_case("optimize --train 0", grid_doc=GOOD_GRID, args=["--train", "0"])
grid_case("optimize --walk-forward 0", grid_doc=GOOD_GRID, args=["--walk-forward", "0"])
grid_case("optimize --assets NOPE", grid_doc=GOOD_GRID, args=["--assets", "NOPE"])
grid_case("optimize --batch 0", grid_doc=GOOD_GRID, args=["--batch", "0"])
grid_case("optimize a valid 2x2 grid", grid_doc=GOOD_GRID, expect="ok")


def sweep_case(name, doc=None, text=None, expect="error", args=()):
    @case(name, "cli sweep", "s", expect)
    def fn(cd):
        path = cd / "s.yaml"
        path.write_text(text if text is not None else yaml.safe_dump({"base": str(P("base.yaml")), **doc}))
        rc = cli(["sweep", path, "--engine", "local", "--no-progress", "--out", cd / "out", *args])
        check = None
        if rc == 0:
            table = sorted(p.name for p in (cd / "out").iterdir())
            best = cd / "out" / "best_config.yaml"
            check = (best.is_file(), f"sweep folder {table}")
            if best.is_file():  # the best point equals raybt run of its best_config.yaml
                rc2 = cli(["run", best, "--engine", "local", "--no-progress", "--out", cd / "rerun"])
                sweep_json = json.loads((cd / "out" / "sweep.json").read_text()) if (cd / "out" / "sweep.json").is_file() else {}
                check = (rc2 == 0, f"sweep folder {table}; best_config.yaml reruns (rc {rc2}); sweep.json keys "
                                   f"{sorted(sweep_json)[:6]}")
        return {"rc": rc, "check": check}


sweep_case("sweep: unknown key 'paramters'", {"paramters": {"rebalance": ["none"]}})
sweep_case("sweep: mode grid", {"mode": "grid", "parameters": {"rebalance": ["none"]}})
sweep_case("sweep: unknown config path", {"parameters": {"risk.max_portfolio_drawdwn": [0.1]}})
sweep_case("sweep: parameters value not a list", {"parameters": {"rebalance": "weekly"}})
sweep_case("sweep: point with an unknown asset", {"mode": "list", "points": [{"rebalance": "none"},
                                                                              {"assets": ["NOPE_5m"]}]})
sweep_case("sweep: point with an invalid chunk", {"mode": "list", "points": [{"rebalance": "none"},
                                                                              {"engine.chunk": "soon"}]})
sweep_case("sweep: point with an unknown model", {"mode": "list", "points": [{"allocation.model": "foo"}]})
sweep_case("sweep: point with drawdown 2.0", {"parameters": {"risk.max_portfolio_drawdown": [0.1, 2.0]}})
sweep_case("sweep: missing base file", text="base: /nonexistent/base.yaml\nparameters:\n  rebalance: [none]\n")
sweep_case("sweep: YAML syntax error", text="parameters:\n  rebalance: [none\n")
sweep_case("sweep: empty parameters", {"parameters": {}})
sweep_case("sweep: document is a list", text="- 1\n")
sweep_case("sweep: rank_by unknown", {"rank_by": "sharp", "parameters": {"rebalance": ["none"]}})
sweep_case("sweep: a valid 2-point list", {"name": "ok", "mode": "list",
                                           "points": [{"allocation.model": "equal_weight"},
                                                      {"allocation.model": "inverse_volatility"}]}, expect="ok")


# ============================================================================================
# running and classifying
# ============================================================================================

def start(c: Case, cd: Path):
    cd.mkdir(parents=True, exist_ok=True)
    out, err, res = cd / "stdout.txt", cd / "stderr.txt", cd / "result.json"
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.chdir(cd)
            os.setsid()
            fo = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            fe = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fo, 1)
            os.dup2(fe, 2)
            sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), write_through=True)
            sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), write_through=True)
            result = c.fn(cd) or {}
            code = result.get("rc", 1)
            code = code if isinstance(code, int) else 1
            res.write_text(json.dumps(result, default=str))
        except BaseException:  # noqa: BLE001 - the crash is the finding
            traceback.print_exc()
            code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code if 0 <= code < 256 else 1)
    return pid


def complete_folders(cd: Path, c: Case) -> list[str]:
    """Complete-looking results folders left: ``metrics.json`` without a ``.partial`` beside."""
    found = []
    candidates = []
    if c.out:
        candidates.append(cd / c.out)
    if (cd / "results").is_dir():
        candidates += [p for p in (cd / "results").iterdir() if p.is_dir()]
    for folder in candidates:
        if (folder / "metrics.json").is_file() and not (folder.parent / f".{folder.name}.partial").exists():
            found.append(str(folder.relative_to(cd)))
    return found


def classify(c: Case, cd: Path, status: int, timed_out: bool) -> tuple[str, str]:
    err = (cd / "stderr.txt").read_text(errors="replace") if (cd / "stderr.txt").exists() else ""
    out = (cd / "stdout.txt").read_text(errors="replace") if (cd / "stdout.txt").exists() else ""
    result = {}
    if (cd / "result.json").exists():
        try:
            result = json.loads((cd / "result.json").read_text())
        except json.JSONDecodeError:
            pass
    lines = [x for x in err.splitlines() if x.strip()]
    last = lines[-1] if lines else ""
    if timed_out:
        return "crash", f"killed after {c.timeout} s (hung)"
    if os.WIFSIGNALED(status):
        return "crash", f"killed by signal {os.WTERMSIG(status)}: {last}"
    rc = os.WEXITSTATUS(status)
    if rc < 0 or (isinstance(result.get("rc"), int) and result["rc"] < 0):
        return "crash", f"subprocess killed by signal {-result['rc']}: {last}"
    if "Traceback" in err or "Traceback" in out:
        exc_line = next((x for x in reversed(lines) if not x.startswith(" ")), last)
        return "crash", f"traceback: {exc_line}"
    side_ok, side_note = (True, "")
    if c.after:
        side_ok, side_note = c.after(cd)
    if rc != 0:
        left = complete_folders(cd, c)
        one_line = len(lines) == 1 and lines[0].startswith("error:")
        if not side_ok:
            return "silently wrong", f"refused, but: {side_note}; {last}"
        if not one_line or left:
            why = [] if one_line else [f"{len(lines)} stderr line(s)"]
            why += [f"complete-looking folder left: {left}"] if left else []
            return "unclear error", f"{'; '.join(why)}: {' | '.join(lines)[:300]}"
        flag = "UNEXPECTED (a result was expected): " if c.expect == "ok" else ""
        return "clear error", flag + lines[0]
    check = result.get("check")
    note = result.get("note", "")
    if c.expect == "error":
        detail = (check[1] if check else note) or "exit 0"
        return "silently wrong", f"accepted, should be refused: {detail}" + (f"; {side_note}" if side_note else "")
    if not side_ok:
        return "silently wrong", side_note
    if check is None:
        return "silently wrong", f"succeeded without a check: {note}"
    ok, why = check
    return ("correct result" if ok else "silently wrong"), why + (f"; {side_note}" if side_note and ok else "")


def main() -> int:
    global W
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="cases running at once (default 2)")
    ap.add_argument("--only", help="run only cases whose name contains this")
    ap.add_argument("--keep", help="work folder (kept); default: a temporary folder, removed at the end")
    opts = ap.parse_args()
    W = Path(opts.keep or tempfile.mkdtemp(prefix="raybt-tally-")).resolve()
    W.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    setup()
    (P("sweep_ok.yaml")).write_text(yaml.safe_dump({"name": "s", "base": str(P("base.yaml")), "mode": "list",
                                                    "points": [{"allocation.model": "equal_weight"}]}))
    cases = [c for c in CASES if not opts.only or opts.only in c.name]
    # the slow two-process cases alone at the end (they time a running process)
    cases.sort(key=lambda c: c.entry.startswith("cli run (2"))
    results = [None] * len(cases)
    running: dict[int, tuple[int, float, Path]] = {}
    queue = list(enumerate(cases))
    while queue or running:
        solo = queue and queue[0][1].entry.startswith("cli run (2")
        limit = 1 if solo else opts.jobs
        while queue and len(running) < limit and not (solo and running):
            k, c = queue.pop(0)
            cd = P("cases", f"{k:03d}")
            running[start(c, cd)] = (k, time.time(), cd)
        time.sleep(0.05)
        for pid, (k, began, cd) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            timed_out = False
            if not done and time.time() - began > cases[k].timeout:
                os.killpg(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                done, timed_out = pid, True
            if done:
                del running[pid]
                outcome, message = classify(cases[k], cd, status, timed_out)
                results[k] = (outcome, message, time.time() - began)
                c = cases[k]
                print(f"[{sum(r is not None for r in results):3d}/{len(cases)}] {outcome:15s} {c.name}",
                      flush=True)

    print()
    print(f"{'#':>3}  {'case':58s} {'entry point':26s} {'class':18s} {'outcome':15s} message")
    for k, (c, (outcome, message, secs)) in enumerate(zip(cases, results)):
        cls = f"{c.cls} {CLASSES[c.cls]}"
        print(f"{k + 1:3d}  {c.name[:58]:58s} {c.entry[:26]:26s} {cls[:18]:18s} {outcome:15s} "
              f"{message.replace(chr(10), ' ')[:100]}")
    print()
    by_outcome = Counter(r[0] for r in results)
    print(f"tally: {len(cases)} cases: " + ", ".join(f"{by_outcome.get(o, 0)} {o}" for o in
                                                     ("clear error", "correct result", "silently wrong", "crash",
                                                      "unclear error")))
    per_class = defaultdict(Counter)
    for c, r in zip(cases, results):
        per_class[c.cls][r[0]] += 1
    for cls in CLASSES:
        if cls in per_class:
            n = per_class[cls]
            print(f"  class {cls:>2} {CLASSES[cls]:16s} {sum(n.values()):3d} cases: " + ", ".join(
                f"{n[o]} {o}" for o in ("clear error", "correct result", "silently wrong", "crash", "unclear error")
                if n[o]))
    bad = [(c, r) for c, r in zip(cases, results) if r[0] in ("silently wrong", "crash", "unclear error")]
    if bad:
        print("\nfindings (silently wrong, crash, unclear error), full messages:")
        for c, (outcome, message, _) in bad:
            print(f"- [{outcome}] {c.name} ({c.entry}, class {c.cls}): {message}")
    print(f"\ntotal {time.time() - t0:.0f} s; work folder {W}" + ("" if opts.keep else " (removed)"))
    if not opts.keep:
        shutil.rmtree(W, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
