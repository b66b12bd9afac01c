"""A bounded map of Ray tasks: at most ``max_parallel`` in flight, results handled as they finish."""

from __future__ import annotations

from typing import Any, Callable, Iterable

import ray

from raybt.ray.runtime import one_cpu_task


def put(value) -> "ray.ObjectRef":
    """``ray.put``: one copy in the object store, shared by every task that gets the reference."""
    return ray.put(value)


def map_tasks(fn: Callable, calls: Iterable[tuple[Any, tuple]], on_result: Callable[[Any, Any], None], *,
              max_parallel: int | None = None, on_error: Callable[[Any, BaseException], None] | None = None) -> None:
    """Run ``fn(*args)`` for every ``(key, args)`` of ``calls`` as one-CPU Ray tasks, never retried.

    ``on_result(key, value)`` is called in the driver as each task finishes
    (in completion order); at most ``max_parallel`` tasks are submitted at
    once (default: all). A task that raises (or whose worker dies) goes to
    ``on_error(key, exception)`` when given, else its error is raised.
    """
    remote = one_cpu_task(fn)
    queue = list(calls)
    limit = len(queue) if not max_parallel else max(1, int(max_parallel))
    pending: dict = {}
    queue.reverse()  # pop() from the end: submitted in the given order
    while queue or pending:
        while queue and len(pending) < limit:
            key, args = queue.pop()
            pending[remote.remote(*args)] = key
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            key = pending.pop(ref)
            try:
                value = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - worker died, task failed, ...
                if on_error is None:
                    raise
                cause = getattr(exc, "cause", None)
                on_error(key, cause if isinstance(cause, BaseException) else exc)
                continue
            on_result(key, value)
            del value
