"""Printing rich tables to the terminal (or to a pipe, at a fixed width)."""

from __future__ import annotations


def print_table(table, width: int | None = None) -> None:
    """Print a ``rich`` table; when stdout is not a terminal, lay it out ``width`` columns wide
    (rich's default of 80 would wrap wide tables in logs and files)."""
    from rich.console import Console

    console = Console()
    if width is not None and not console.is_terminal:
        console = Console(width=width)
    console.print(table)
