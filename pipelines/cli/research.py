"""``termstore plot``: write the research charts (PNG) from the warehouse."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from assets.charts import CHART_NAMES
from backquant.symbols import SUPPORTED_SYMBOLS
from pipelines.cli.app import app, console, err_console


@app.command()
def plot(
    out: Annotated[
        Path, typer.Option("--out", help="Directory to write the PNG files into.")
    ] = Path("plots"),
    chart: Annotated[
        list[str] | None,
        typer.Option(
            "--chart", help=f"Chart(s) to draw (repeatable): {', '.join(CHART_NAMES)}. Default all."
        ),
    ] = None,
    symbol: Annotated[
        list[str] | None,
        typer.Option("--symbol", help="Symbol(s) to include (repeatable). Default all four."),
    ] = None,
    at: Annotated[
        datetime | None,
        typer.Option(
            "--at", help="Draw as of this UTC time (default: the newest stored snapshot)."
        ),
    ] = None,
    days: Annotated[
        int, typer.Option(min=1, max=3650, help="Days of history in the time-series charts.")
    ] = 30,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Local home (default: $TERMSTORE_HOME, else ./warehouse)."),
    ] = None,
) -> None:
    """Term structure now vs 1 and 7 days ago, 30d CM ATM IV, 25Δ skew, OI by expiry (PNG)."""
    names = tuple(chart or CHART_NAMES)
    symbols = tuple(s.upper() for s in symbol) if symbol else SUPPORTED_SYMBOLS
    unknown = [s for s in symbols if s not in SUPPORTED_SYMBOLS]
    bad_charts = [name for name in names if name not in CHART_NAMES]
    if unknown or bad_charts:
        what = "symbol" if unknown else "chart"
        listed = ", ".join(unknown or bad_charts)
        err_console.print(
            f"[red]unknown {what}(s): {listed}.[/] Symbols: {', '.join(SUPPORTED_SYMBOLS)}; "
            f"charts: {', '.join(CHART_NAMES)}."
        )
        raise typer.Exit(2)
    from assets.charts import render_charts, write_charts
    from storage import Warehouse

    with Warehouse.open(home) as warehouse:
        charts = render_charts(warehouse, at=at, days=days, symbols=symbols, names=names)
    try:
        paths = write_charts(charts, out)
    except OSError as exc:
        err_console.print(f"[red]cannot write the charts into {out}:[/] {exc}")
        raise typer.Exit(2) from None
    for path in paths:
        console.print(f"wrote {path.resolve()}")
