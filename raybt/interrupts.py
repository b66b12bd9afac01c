"""Ctrl-C and SIGTERM as exceptions that stop a command, never lost on the way.

:func:`install_signal_handlers` (``raybt``'s commands call it first) turns
SIGINT into ``KeyboardInterrupt`` and SIGTERM into :class:`Terminated`, so
both stop a run the same way: its ``.partial`` folder keeps its last
checkpoint for ``--resume``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so the run stops the way Ctrl-C stops it."""


#: seconds after which a signal that arrived where raising was unsafe is sent again
REDELIVER_SECONDS = 0.05


def _unsafe_to_raise(frame) -> bool:
    """Whether an exception raised at ``frame`` could be lost or garbled.

    Inside a ``__del__`` Python prints it as "Exception ignored" and goes
    on; inside numba's or llvmlite's own Python code (freeing LLVM objects,
    unboxing a typed List for a kernel call) it is dropped the same way, or
    turned into a ``TypeError``.
    """
    roots = tuple(os.path.dirname(module.__file__) + os.sep
                  for module in (sys.modules.get("numba"), sys.modules.get("llvmlite"))
                  if module is not None and getattr(module, "__file__", None))
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or (roots and code.co_filename.startswith(roots)):
            return True
        frame = frame.f_back
    return False


def _on_signal(signum, frame):
    """SIGINT -> KeyboardInterrupt, SIGTERM -> :class:`Terminated`, never lost.

    Python calls the handler between any two bytecodes. Where raising could
    lose the signal (:func:`_unsafe_to_raise`), and the run would go on to
    finish, the signal is sent again a moment later instead, until it lands
    in code where the exception stops the run.
    """
    if _unsafe_to_raise(frame):
        threading.Timer(REDELIVER_SECONDS, os.kill, (os.getpid(), signum)).start()
        return
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM stop a command through :func:`_on_signal` (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
