"""The shared Typer application and console; command modules attach to it."""

from __future__ import annotations

import polars as pl
import typer
from rich import box
from rich.console import Console
from rich.table import Table

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
    """A polars frame as a table; nulls shown empty."""
    print_rows(
        title,
        [
            {name: "" if value is None else str(value) for name, value in row.items()}
            for row in frame.iter_rows(named=True)
        ],
    )
