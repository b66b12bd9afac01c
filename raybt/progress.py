"""Live feedback in the terminal: progress bars (rich).

:func:`chunk_progress` shows a portfolio run's chunks with its equity,
drawdown and breaker state (and passes each batch of chunk summaries to a
``dashboard`` callback: :class:`raybt.ray.metrics.DashboardMetrics` on Ray);
:func:`task_progress` counts the units of work of ``raybt optimize`` and
``raybt sweep``.
"""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def chunk_progress(total: int, label: str, enabled: bool = True, dashboard=None):
    """Yield a callback taking chunk summaries; shows a rich progress bar."""
    if not enabled:
        def update(summaries):
            if dashboard:
                dashboard.update(summaries)
        yield update
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), transient=False) as bar:
        task = bar.add_task(label, total=total, status="")

        def update(summaries):
            if not summaries:
                return
            last = summaries[-1]
            state = "HALTED" if last.halted else "trading"
            bar.update(task, advance=len(summaries), total=last.n_chunks,
                       status=f"equity {last.equity:,.0f}  dd {last.drawdown:6.2%}  {state}")
            if dashboard:
                dashboard.update(summaries)

        yield update


@contextlib.contextmanager
def task_progress(total: int, label: str, enabled: bool = True):
    """Yield ``advance(status="")``, called once per finished unit of work; shows a rich progress bar."""
    if not enabled or total <= 0:
        yield lambda status="": None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), transient=False) as bar:
        task = bar.add_task(label, total=total, status="")
        yield lambda status="": bar.update(task, advance=1, status=status)
