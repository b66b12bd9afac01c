"""The end of a ``raybt`` command: the interpreter's exit steps, without its teardown.

When the command's ``main`` has returned, its run folder is complete
(written, synced, renamed) or removed. :func:`exit_now` then exits as the
interpreter's own exit would, step by step: the other threads are joined
(executors told to stop first), the exit hooks run (the embedded Ray is
stopped by :func:`raybt.ray.runtime.stop_embedded_ray`, child processes are
joined) and the output is flushed; then the process ends with the code.
What is skipped is Python freeing every module and object one by one (numba
and LLVM, Ray, matplotlib, the run's arrays): about a second after the
default run, measured on the 2-core machine.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading


def exit_now(code: int) -> None:
    """End the process with ``code`` after the interpreter's exit steps (see the module docstring).

    On a Python without those two steps as functions (``threading._shutdown``,
    ``atexit._run_exitfuncs``, what CPython calls at exit), the ordinary
    ``sys.exit``.
    """
    join_threads = getattr(threading, "_shutdown", None)
    run_exit_hooks = getattr(atexit, "_run_exitfuncs", None)
    if join_threads is None or run_exit_hooks is None:
        sys.exit(code)
    join_threads()
    run_exit_hooks()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (raybt ... | head): nothing more to say
            pass
    os._exit(int(code) & 0xFF)
