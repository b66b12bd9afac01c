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


def print_summary(title: str, metrics: dict) -> None:
    """Print the headline metrics as a table."""
    from rich.console import Console
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
    for label, key, fmt in rows:
        value = metrics.get(key)
        try:
            text = fmt.format(value) if value is not None else "n/a"
        except (ValueError, TypeError):
            text = str(value)
        table.add_row(label, text)
    Console().print(table)


def print_asset_table(per_asset: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="per asset")
    for col in ("asset", "PnL", "return", "Sharpe", "max DD", "trades", "win rate"):
        table.add_column(col, justify="right" if col != "asset" else "left")

    def fmt(value, spec):
        try:
            return spec.format(value) if value is not None else "n/a"
        except (TypeError, ValueError):
            return str(value)

    for name, m in per_asset.items():
        table.add_row(name, fmt(m.get("pnl"), "{:,.0f}"), fmt(m.get("total_return"), "{:.2%}"),
                      fmt(m.get("sharpe"), "{:.2f}"), fmt(m.get("max_drawdown"), "{:.2%}"),
                      fmt(m.get("n_trades"), "{:d}"), fmt(m.get("win_rate"), "{:.1%}"))
    Console().print(table)
