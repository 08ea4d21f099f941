"""The shared Typer application and console; command modules attach to it."""

from __future__ import annotations

import typer
from rich.console import Console

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
