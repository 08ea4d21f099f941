"""The shared Typer application and console; command modules attach to it.

Command modules import only what registering their commands needs; each command imports its
heavy dependencies (DuckDB, polars, Dagster, the simulator) when it runs, so ``termstore --help``
and a quick ``termstore sql`` do not pay for what they do not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich import box
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import polars as pl

app = typer.Typer(
    name="termstore",
    help=(
        "Keep the history of the crypto options term structure: poll BackQuant's expiry summary, "
        "archive every response and query the history with SQL."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """termstore: minute-level history of the crypto options term structure."""


def print_rows(title: str, rows: list[dict[str, str]]) -> None:
    """A titled table of string cells."""
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for column in rows[0] if rows else ():
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row.values())
    console.print(table)


def print_frame(title: str, frame: pl.DataFrame) -> None:
    """A titled polars frame: a table when it fits the terminal, else one block per row;
    numbers rounded for display."""
    from pipelines.cli.tables import Result, render, terminal_width

    console.print(f"\n[bold]{title}[/]")
    text = render(Result.from_frame(frame), terminal_width())
    console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
