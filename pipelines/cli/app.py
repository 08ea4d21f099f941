"""The shared Typer application and console; command modules attach to it.

Command modules import only what registering their commands needs; each command imports its
heavy dependencies (DuckDB, polars, Dagster, the simulator) when it runs, so ``termstore --help``
and a quick ``termstore sql`` do not pay for what they do not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    import polars as pl

    from pipelines.cli.tables import Result

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
    """A titled report of string cells (a tick's symbols, a rebuild's days), laid out as
    ``termstore sql`` lays out a result, except that no cell is ever cut: a failure's reason
    says what to do, so a row with a long cell is shown as a block."""
    from pipelines.cli.tables import Result

    columns = tuple(rows[0]) if rows else ()
    cells = tuple(tuple(row.values()) for row in rows)
    _print_result(title, Result(columns, (False,) * len(columns), cells, len(cells)), cut=False)


def print_frame(title: str, frame: pl.DataFrame) -> None:
    """A titled polars frame: a table when it fits the terminal, else one block per row;
    numbers rounded for display."""
    from pipelines.cli.tables import Result

    _print_result(title, Result.from_frame(frame), cut=True)


def _print_result(title: str, result: Result, *, cut: bool) -> None:
    from rich.markup import escape

    from pipelines.cli.tables import render, terminal_width

    # A title names paths and catalogs, which may hold brackets rich would read as markup.
    console.print(f"\n[bold]{escape(title)}[/]")
    text = render(result, terminal_width(), cut=cut)
    console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
