"""Wall-clock time of each phase of a command: what a user waits for.

A :class:`PhaseTimer` collects ``{phase name: seconds}`` in the order the
phases first ran. Names are dotted, ``group.detail`` (``analysis.frontier``,
``figure.equity.png``, ``file.trades.parquet``); :meth:`PhaseTimer.by_group`
adds up a group. Library functions take an optional ``timer`` and time their
steps with ``with phase(timer, "name"):``, which costs nothing without one.
"""

from __future__ import annotations

import contextlib
import time


class PhaseTimer:
    """Seconds per named phase (wall clock, ``time.perf_counter``).

    A phase that runs twice accumulates. ``seconds`` is a copy of the table.
    """

    def __init__(self, seconds: dict[str, float] | None = None):
        self._seconds: dict[str, float] = dict(seconds or {})

    @contextlib.contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self._seconds[name] = self._seconds.get(name, 0.0) + float(seconds)

    def merge(self, other: "PhaseTimer | dict | None") -> None:
        """Add another timer's phases (e.g. the engine's) to this one."""
        items = other.seconds if isinstance(other, PhaseTimer) else (other or {})
        for name, seconds in items.items():
            self.add(name, seconds)

    @property
    def seconds(self) -> dict[str, float]:
        return dict(self._seconds)

    @property
    def total(self) -> float:
        return sum(self._seconds.values())

    def by_group(self) -> dict[str, float]:
        """Seconds per group (the part of each name before its first dot), in first-run order."""
        groups: dict[str, float] = {}
        for name, seconds in self._seconds.items():
            group = name.split(".", 1)[0]
            groups[group] = groups.get(group, 0.0) + seconds
        return groups

    def one_line(self) -> str:
        """``time: load 1.2 s, run 0.8 s, ... = 3.1 s (+ ray.init 6.1 s)`` (groups, in the order
        they ran; starting Ray is shown apart: it is paid once per process, not per run)."""
        seconds = dict(self._seconds)
        ray_init = seconds.pop("ray.init", None)
        rest = PhaseTimer(seconds)
        parts = [f"{group} {_fmt(value)}" for group, value in rest.by_group().items()]
        line = f"time: {', '.join(parts)} = {_fmt(rest.total)}"
        return line + (f" (+ ray.init {_fmt(ray_init)})" if ray_init is not None else "")

    def table(self) -> str:
        """A fixed-width table: phase, seconds, share of the total; then the total."""
        total = self.total or 1.0
        width = max([len(name) for name in self._seconds] + [5])
        lines = [f"{'phase':<{width}}  {'seconds':>8}  {'share':>6}"]
        lines += [f"{name:<{width}}  {seconds:>8.3f}  {seconds / total:>6.1%}"
                  for name, seconds in self._seconds.items()]
        lines.append(f"{'total':<{width}}  {self.total:>8.3f}  {1:>6.1%}")
        return "\n".join(lines)


def phase(timer: PhaseTimer | None, name: str):
    """``timer.phase(name)``, or a no-op context without a timer."""
    return contextlib.nullcontext() if timer is None else timer.phase(name)


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
