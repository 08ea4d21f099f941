"""``termstore ingest``, ``rebuild``, ``sql`` and ``maintain``: the lake from the command line."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipelines.cli.app import app, console, err_console, print_rows

if TYPE_CHECKING:
    import polars as pl

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Local home: writer lock and the default catalog and data "
        "(default: $TERMSTORE_HOME, else ./warehouse).",
    ),
]


TERMINAL_ROWS = 50
"""Rows ``termstore sql`` prints as a table to the terminal; a file gets them all."""


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


@app.command()
def ingest(
    once: Annotated[
        bool, typer.Option("--once", help="Fetch and store one tick, then exit.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Fetch the four symbols once, archive and store them, and print a per-symbol summary."""
    if not once:
        err_console.print(
            "only [bold]--once[/] is supported here; scheduled ingestion runs in Dagster "
            "(make dev)."
        )
        raise typer.Exit(2)
    from backquant.config import ClientConfig
    from backquant.errors import ConfigError
    from storage import Warehouse, ingest_once

    try:
        config = ClientConfig.from_env()
        config.require_key()
    except ConfigError as exc:
        err_console.print(f"[red]configuration error:[/] {exc}")
        raise typer.Exit(2) from None
    warehouse = Warehouse.open(home)
    report = ingest_once(warehouse, config)
    print_rows(f"Ingest tick → {warehouse.config.describe()['catalog']}", report.table_rows())
    console.print(
        f"rows written: {', '.join(f'{t} {n:,}' for t, n in report.rows_written.items())}; "
        f"duplicates skipped: {report.duplicates_skipped}; "
        f"quarantined: {report.quarantined}"
    )
    if report.failed:
        raise typer.Exit(1)


@app.command()
def rebuild(
    day: Annotated[str | None, typer.Option("--date", help="One UTC day (YYYY-MM-DD).")] = None,
    start: Annotated[str | None, typer.Option("--start", help="First day of a range.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last day (inclusive).")] = None,
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", help="Limit to symbol(s).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Rebuild days from the raw archive with today's code, one transaction per day."""
    try:
        if day is not None and start is None and end is None:
            days = (date.fromisoformat(day), date.fromisoformat(day))
        elif day is None and start is not None and end is not None:
            days = (date.fromisoformat(start), date.fromisoformat(end))
        else:
            raise ValueError("give either --date D, or both --start D and --end D")
    except ValueError as exc:
        err_console.print(f"[red]bad dates:[/] {exc} (dates look like 2026-03-02)")
        raise typer.Exit(2) from None
    from storage import Warehouse, rebuild_day, rebuild_range

    warehouse = Warehouse.open(home)
    try:
        if days[0] == days[1]:
            report = rebuild_day(warehouse, days[0], symbol or None)
        else:
            report = rebuild_range(warehouse, days[0], days[1], symbol or None)
    except ValueError as exc:
        err_console.print(f"[red]cannot rebuild:[/] {exc}")
        raise typer.Exit(2) from None
    print_rows(f"Rebuild ({report.seconds:.2f} s)", report.table_rows())
    if report.missing and not report.rebuilt:
        raise typer.Exit(1)


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        err_console.print(
            f"[red]--as-of {text!r} is not a time;[/] use ISO 8601, e.g. 2026-03-02T12:00:00Z "
            "(a time without zone is UTC)"
        )
        raise typer.Exit(2) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query over the lake.")],
    output_format: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.table,
    output: Annotated[Path | None, typer.Option("--output", help="Write to this file.")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Query the lake as it was at this instant (ISO 8601, UTC if no zone): what "
            "the warehouse knew then.",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Run a read-only SQL query over the lake's tables and views. In the terminal a result
    is a table when its columns fit, else one block of `column | value` lines per row; numbers
    are rounded for display only (csv, json and parquet keep every digit)."""
    from storage import Warehouse

    instant = _instant(as_of) if as_of is not None else None
    with Warehouse.open(home) as warehouse:
        frame = warehouse.sql(query, as_of=instant)
    _emit(frame, output_format, output)


@app.command()
def maintain(home: HomeOption = None) -> None:
    """Merge small files, expire old snapshots and delete unreferenced files (what the
    lake_maintenance asset runs every hour)."""
    from storage import Warehouse
    from storage.maintenance import maintain as maintain_lake

    with Warehouse.open(home) as warehouse:
        report = maintain_lake(warehouse)
    print_rows(
        f"Maintenance ({report.seconds:.2f} s): data files {report.files_before} → "
        f"{report.files_after}, {report.snapshots_kept} snapshots kept",
        [
            {"step": s.name, "seconds": f"{s.seconds:.3f}", "affected": str(s.affected)}
            for s in report.steps
        ],
    )


@app.command("attach-sql")
def attach_sql(home: HomeOption = None) -> None:
    """Print the SQL that attaches this lake read-only in a DuckDB 1.5.5 CLI or client:
    `termstore attach-sql > attach.sql`, then `duckdb -init attach.sql`. It holds no secret
    (see the README)."""
    from storage import Warehouse
    from storage.lake import attach_script

    with Warehouse.open(home) as warehouse:
        sys.stdout.write(attach_script(warehouse.config) + "\n")


def _emit(frame: pl.DataFrame, output_format: OutputFormat, output: Path | None) -> None:
    if output_format is OutputFormat.parquet:
        if output is None:
            err_console.print("[red]--format parquet needs --output FILE[/]")
            raise typer.Exit(2)
        frame.write_parquet(output)
        console.print(f"wrote {frame.height} rows to {output}")
        return
    if output_format is OutputFormat.table:
        # To a file: every row, as wide as it takes; to the terminal: the first rows, as a
        # table when the columns fit its width, else one record at a time.
        from pipelines.cli.tables import Result, render, terminal_width

        if output is None:
            text = render(Result.from_frame(frame, TERMINAL_ROWS), terminal_width())
        else:
            text = render(Result.from_frame(frame), None)
    elif output_format is OutputFormat.csv:
        nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()]
        if nested:
            err_console.print(
                f"[red]--format csv cannot hold the nested column(s) {', '.join(nested)}[/]; "
                "use --format json or parquet, or select them as text (CAST(… AS VARCHAR))"
            )
            raise typer.Exit(2)
        text = frame.write_csv()
    else:
        text = frame.write_json()
    if output is not None:
        output.write_text(text)
        console.print(f"wrote {frame.height} rows to {output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
