"""Printing rich tables to the terminal (or to a pipe, at a fixed width): the metrics a command ends with."""

from __future__ import annotations


def print_table(table, width: int | None = None) -> None:
    """Print a ``rich`` table; when stdout is not a terminal, lay it out ``width`` columns wide
    (rich's default of 80 would wrap wide tables in logs and files)."""
    from rich.console import Console

    console = Console()
    if width is not None and not console.is_terminal:
        console = Console(width=width)
    console.print(table)


def _cell(value, spec: str) -> str:
    """``value`` formatted by ``spec``; ``n/a`` for None, as it is when the spec does not fit it."""
    try:
        return spec.format(value) if value is not None else "n/a"
    except (TypeError, ValueError):
        return str(value)


def print_summary(title: str, metrics: dict) -> None:
    """Print the headline metrics as a table."""
    from rich.table import Table

    rows = [
        ("final equity", "final_equity", "{:,.2f}"),
        ("total return", "total_return", "{:.2%}"),
        ("CAGR", "cagr", "{:.2%}"),
        ("annual volatility", "annual_volatility", "{:.2%}"),
        ("Sharpe", "sharpe", "{:.3f}"),
        ("Sortino", "sortino", "{:.3f}"),
        ("max drawdown", "max_drawdown", "{:.2%}"),
        ("Calmar", "calmar", "{:.3f}"),
        ("trades", "n_trades", "{:d}"),
        ("win rate", "win_rate", "{:.2%}"),
        ("profit factor", "profit_factor", "{:.3f}"),
        ("exposure", "exposure", "{:.2%}"),
    ]
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, key, spec in rows:
        table.add_row(label, _cell(metrics.get(key), spec))
    print_table(table)


def print_asset_table(per_asset: dict) -> None:
    """Print each asset's PnL, return, Sharpe, drawdown, trades and win rate as a table."""
    from rich.table import Table

    table = Table(title="per asset")
    for col in ("asset", "PnL", "return", "Sharpe", "max DD", "trades", "win rate"):
        table.add_column(col, justify="right" if col != "asset" else "left")
    for name, m in per_asset.items():
        table.add_row(name, _cell(m.get("pnl"), "{:,.0f}"), _cell(m.get("total_return"), "{:.2%}"),
                      _cell(m.get("sharpe"), "{:.2f}"), _cell(m.get("max_drawdown"), "{:.2%}"),
                      _cell(m.get("n_trades"), "{:d}"), _cell(m.get("win_rate"), "{:.1%}"))
    print_table(table)
