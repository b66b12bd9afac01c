"""Ctrl-C and SIGTERM stop a command even when they land inside a finalizer or numba's own code."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numba

from raybt.interrupts import _unsafe_to_raise

FREED_WHILE_RUNNING = textwrap.dedent("""
    import os, signal, time
    from raybt.interrupts import install_signal_handlers

    install_signal_handlers()

    class Freed:
        def __del__(self):
            os.kill(os.getpid(), signal.{sig})
            start = time.time()
            while time.time() - start < 0.05:  # bytecodes: the handler runs in here, inside __del__
                pass

    start = time.time()
    try:
        Freed()  # freed at once
        while time.time() - start < 10:
            time.sleep(0.01)
        print("not interrupted")
    except KeyboardInterrupt as exc:
        print("stopped by", type(exc).__name__, "after", round(time.time() - start, 2), "s")
""")


def _freed_while_running(sig: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", FREED_WHILE_RUNNING.format(sig=sig)], capture_output=True,
                          text=True, timeout=60)


def test_a_signal_inside_a_finalizer_still_stops_the_command():
    """Raised inside ``__del__`` the interrupt would be printed as "Exception ignored" and lost; it is sent
    again and stops the command within a moment."""
    for sig, name in (("SIGINT", "KeyboardInterrupt"), ("SIGTERM", "Terminated")):
        done = _freed_while_running(sig)
        assert done.returncode == 0, done.stderr
        assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr
        words = done.stdout.split()
        assert words[:3] == ["stopped", "by", name], done.stdout
        assert float(words[4]) < 2.0, done.stdout


def test_frames_in_numba_or_finalizers_are_unsafe_and_ours_are_not():
    fake = os.path.join(os.path.dirname(numba.__file__), "typed", "not_a_real_module.py")
    namespace: dict = {}
    exec(compile("import sys\ndef here():\n    return sys._getframe()\n", fake, "exec"), namespace)
    assert _unsafe_to_raise(namespace["here"]())  # e.g. numba unboxing a typed List for a kernel call

    class Freed:
        def __del__(self):
            Freed.frame = sys._getframe()

    Freed()
    assert _unsafe_to_raise(Freed.frame)
    assert not _unsafe_to_raise(sys._getframe())
