"""Starting or joining Ray; the dashboard's address; one-CPU tasks.

* ``address=None``: join the cluster named by ``RAY_ADDRESS`` if set, else
  start an embedded local Ray with this machine's CPUs (the default).
* ``address="auto"`` or ``"ray://host:10001"`` or ``"host:6379"``: join that
  cluster; failure is a :class:`~raybt.errors.ClusterError` (one line).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import sys

from raybt.errors import ClusterError


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast (ClusterError) when a ``host:port`` / ``ray://host:port`` address does not answer.

    ``ray.init`` retries an unreachable address for minutes; a plain TCP
    connect tells within ``timeout`` seconds.
    """
    if address == "auto" or address.startswith("local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"cannot connect to Ray at '{address}': expected host:port, ray://host:port or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(f"cannot connect to Ray at '{address}': {reason}") from None


@contextlib.contextmanager
def _stderr_kept_unless_failing():
    """File descriptor 2 goes to a temporary file meanwhile; written back to stderr if the block
    succeeds, dropped if it raises (the caller's one error line says what failed)."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if not failed:
                captured.seek(0)
                text = captured.read()
                if text:
                    sys.stderr.buffer.write(text)
                    sys.stderr.flush()


def dashboard_url() -> str | None:
    """``http://host:port`` of the dashboard of the Ray this process is connected to (the port Ray chose)."""
    from ray._private.worker import get_dashboard_url

    url = get_dashboard_url()
    return f"http://{url}" if url and not url.startswith("http") else (url or None)


def ray_started() -> bool:
    """Whether this process is connected to Ray already."""
    import ray

    return ray.is_initialized()


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to (or start) Ray once per process."""
    import ray

    if ray.is_initialized():
        return
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target:
        check_reachable(target)
    kwargs = {"include_dashboard": None, "log_to_driver": False, "ignore_reinit_error": True}
    if not target:
        # chunk reports (per-asset equity of a shard for one chunk) stay inline
        # in the RPC instead of going through the object store
        kwargs["_system_config"] = {"max_direct_call_object_size": 4 * 1024 * 1024}
    if not target:
        # Ray nices its workers (15) so a busy node keeps its raylet responsive; our coordinator
        # actor does the simulation itself and lost ~30 % of its CPU to the idle-time work of Ray's
        # own daemons at that priority. Only for the embedded Ray we start; a user setting wins.
        os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        if target:
            with _stderr_kept_unless_failing():  # Ray's C++ client logs every failed attempt to stderr
                ray.init(address=target, **kwargs)
        else:
            # "local": always a Ray of our own, never a cluster that happens to run on this machine
            ray.init(address="local", num_cpus=num_cpus, **kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(f"cannot connect to Ray at '{target or 'local'}': {first}") from None
    if not target:
        atexit.unregister(stop_embedded_ray)  # once, however often Ray was started and stopped
        atexit.register(stop_embedded_ray)  # runs before Ray's own exit hook (registered when ray was imported)


def stop_embedded_ray() -> None:
    """At exit: stop the Ray this process started, without the 1.5 s ``ray.shutdown`` waits at exit.

    Ray's own exit hook first sleeps half a second so that worker logs
    forwarded to the driver finish printing (the embedded Ray forwards none:
    ``log_to_driver=False``), then stops the monitor last, a second late
    (:func:`stop_embedded_monitor`). Here the monitor goes first and the rest
    through a plain ``ray.shutdown()``; Ray's hook then finds nothing to do.
    Measured on the 2-core machine, the time from ``main`` returning to the
    process gone: 2.8-2.9 s before, 1.0-1.3 s after (the rest is Python's
    teardown, which the ``raybt`` command skips: :mod:`raybt.process_exit`).
    """
    import ray

    try:
        if ray.is_initialized():
            stop_embedded_monitor()
            ray.shutdown()
    except Exception:  # noqa: BLE001 - at exit: Ray's own hook still stops what is left
        pass


def stop_embedded_monitor() -> bool:
    """Stop the autoscaler monitor of the Ray this process started (SIGKILL); whether one was stopped.

    Called before ``ray.shutdown``, which stops the GCS
    first and then sends the monitor SIGTERM; the monitor's handler tries to
    report to the GCS that is gone and does not exit, so Ray waits a second
    before it kills it (Ray 2.60: 1.0 of the 1.2 s ``ray.shutdown`` takes;
    every command paid it after its last line). The monitor of a Ray on this
    machine alone scales nothing and keeps no state, so it goes first, at
    once. Touches Ray's private node record; on a Ray without one, nothing.
    """
    try:
        from ray._private import ray_constants, worker

        node = worker._global_node
        if node is None or not node.is_head():
            return False
        stopped = False
        for info in node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, []):
            if info.process.poll() is None:
                info.process.kill()
                info.process.wait(timeout=5)
                stopped = True
        return stopped
    except Exception:  # noqa: BLE001 - an exit helper: Ray's own shutdown still stops everything
        return False


_ONE_CPU_TASKS: dict = {}


def one_cpu_task(fn):
    """``fn`` as a Ray task holding one CPU and never retried (wrapped once per process).

    Used for work that is one unit per task (an optimisation batch, a sweep
    point): a failure is reported by the caller, not silently re-run.
    """
    import ray

    if fn not in _ONE_CPU_TASKS:
        _ONE_CPU_TASKS[fn] = ray.remote(num_cpus=1, max_retries=0)(fn)
    return _ONE_CPU_TASKS[fn]
