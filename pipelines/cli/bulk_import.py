"""``termstore import``: bulk-import captured expiry-summary bodies from an NDJSON file.

Each non-blank line is one response body, as BackQuant sent it. The file does not say how each
body was fetched, so the fetch metadata is synthesised, and says so: HTTP status 200, one
attempt, no response headers, and the fetch start and end both set to the body's
``meta.timestamp`` (when BackQuant answered: the closest known instant to the fetch, and what
keeps the ingest log's per-minute gaps meaningful), so the latency reads 0. A line whose time
cannot be read (not JSON, no usable timestamp) is stamped with the import's start plus its line
number in microseconds, so each such line keeps its own ingest-log row.

Every body is validated; refused ones are quarantined with the reason and the others go on.
A body's symbol is ``--symbol`` when given (a body naming another symbol is then refused), else
its ``meta.symbol``; a line with neither cannot be filed anywhere and is reported, not imported.

``--legacy DIR`` imports a warehouse written by termstore's previous on-disk layout instead: every
archived response, with the fetch metadata it was archived with (storage/legacy.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.markup import escape

from backquant.symbols import SUPPORTED_SYMBOLS
from pipelines.cli.app import app, console, err_console, print_rows
from pipelines.cli.warehouse import HomeOption
from storage.reports import DUPLICATE, STORED

if TYPE_CHECKING:
    from storage import Warehouse
    from storage.bulk import BulkReport, FetchedBody
    from storage.records import FetchMeta

BATCH_LINES: Final[int] = 20_000
"""Bodies per bulk call: bounds memory (~10 KB a body) for files of any length."""


@dataclass(frozen=True, slots=True)
class Unfiled:
    """A line that names no supported symbol, so it can be neither imported nor quarantined."""

    line: int
    reason: str


def _body_fields(raw: bytes) -> tuple[bool, str | None, str | None]:
    """Whether the line is JSON, and the body's ``meta.symbol`` and ``meta.timestamp``."""
    import orjson

    try:
        document: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False, None, None
    meta = document.get("meta") if isinstance(document, dict) else None
    if not isinstance(meta, dict):
        return True, None, None
    symbol, timestamp = meta.get("symbol"), meta.get("timestamp")
    return (
        True,
        symbol if isinstance(symbol, str) else None,
        timestamp if isinstance(timestamp, str) else None,
    )


def synthesised_fetch(
    raw: bytes, line: int, symbol: str | None, started: datetime
) -> FetchMeta | Unfiled:
    """The fetch metadata a captured body is imported with (see the module docstring)."""
    from backquant.headers import ResponseHeaders
    from storage.records import FetchMeta, RejectedValueError, parse_instant

    is_json, named, timestamp = _body_fields(raw)
    chosen = symbol or named
    if chosen not in SUPPORTED_SYMBOLS:
        if not is_json:
            found = "line is not JSON, so it names no symbol"
        else:
            found = f"body names symbol {named[:40]!r}" if named else "body has no meta.symbol"
        return Unfiled(
            line,
            f"the {found} (supported: {', '.join(SUPPORTED_SYMBOLS)}). Pass --symbol to file "
            "such lines under one symbol; a body for another symbol is then quarantined",
        )
    at = started + timedelta(microseconds=line)
    if timestamp is not None:
        # An unreadable timestamp keeps the import-time stamp; validation reports the body.
        with contextlib.suppress(RejectedValueError):
            at = parse_instant(timestamp, "meta.timestamp")
    return FetchMeta(chosen, 200, at, at, 1, ResponseHeaders())


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as stream:
        for number, line in enumerate(stream, start=1):
            stripped = line.strip()
            if stripped:
                yield number, stripped


def _batches(
    path: Path, symbol: str | None, unfiled: list[Unfiled]
) -> Iterator[tuple[list[int], list[FetchedBody]]]:
    """(line numbers, bodies) per batch; unfiled lines are reported as they are met."""
    from storage.bulk import FetchedBody

    started = datetime.now(UTC)
    numbers: list[int] = []
    bodies: list[FetchedBody] = []
    for number, raw in _lines(path):
        fetch = synthesised_fetch(raw, number, symbol, started)
        if isinstance(fetch, Unfiled):
            err_console.print(f"[yellow]line {number} not imported:[/] {escape(fetch.reason)}")
            unfiled.append(fetch)
            continue
        numbers.append(number)
        bodies.append(FetchedBody(fetch, raw))
        if len(bodies) == BATCH_LINES:
            yield numbers, bodies
            numbers, bodies = [], []
    if bodies:
        yield numbers, bodies


def _day_rows(reports: list[BulkReport]) -> list[dict[str, str]]:
    """One row per symbol-day, counts summed over batches."""
    sums: dict[tuple[str, str], list[int]] = {}
    for report in reports:
        for day in report.days:
            key = (day.symbol, day.day.isoformat())
            earlier = sums.get(key, [0, 0, 0])
            sums[key] = [earlier[0] + day.stored, earlier[1] + day.duplicates]
            sums[key].append(earlier[2] + day.quarantined)
    return [
        {
            "symbol": symbol,
            "day": day,
            **dict(zip(("stored", "dup", "quarantined"), map(str, counts), strict=True)),
        }
        for (symbol, day), counts in sorted(sums.items())
    ]


def _problems(reports: list[BulkReport], numbers: list[list[int]]) -> list[str]:
    """One line per quarantined body: where it came from, why, and where it is kept."""
    from storage.landing import QUARANTINED

    return [
        f"line {lines[outcome.position]}: {outcome.logged_as}: {outcome.reason} "
        f"(kept as quarantine_id {outcome.quarantine_id})"
        for report, lines in zip(reports, numbers, strict=True)
        for outcome in report.outcomes
        if outcome.status == QUARANTINED
    ]


@app.command("import")
def import_bodies(
    path: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="NDJSON file: one expiry-summary body per line."),
    ],
    symbol: Annotated[
        str | None,
        typer.Option("--symbol", help="Symbol of every body (default: each body's meta.symbol)."),
    ] = None,
    legacy: Annotated[
        bool,
        typer.Option(
            "--legacy",
            help="FILE is the home of a warehouse written by termstore's previous layout "
            "(archive/ of .rec.gz records and .pack.parquet days): import every response.",
        ),
    ] = False,
    home: HomeOption = None,
) -> None:
    """Bulk-import captured bodies: validate, archive and store them, one transaction a day."""
    if legacy:
        _import_legacy(path, home)
        return
    if symbol is not None and symbol.upper() not in SUPPORTED_SYMBOLS:
        err_console.print(
            f"[red]unsupported symbol {symbol!r}[/]; choose from {', '.join(SUPPORTED_SYMBOLS)}"
        )
        raise typer.Exit(2)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        hint = " (a previous-layout warehouse? add --legacy)" if path.is_dir() else ""
        err_console.print(f"[red]cannot import {path}:[/] it {what}; give an NDJSON file{hint}")
        raise typer.Exit(2)
    from storage import Warehouse
    from storage.bulk import bulk_ingest

    warehouse = Warehouse.open(home)
    reports: list[BulkReport] = []
    numbers: list[list[int]] = []
    unfiled: list[Unfiled] = []
    chosen = symbol.upper() if symbol else None
    try:
        for lines, bodies in _batches(path, chosen, unfiled):
            reports.append(bulk_ingest(warehouse, bodies))
            numbers.append(lines)
    except OSError as exc:
        err_console.print(
            f"[red]import stopped:[/] {exc}. Rerun it: bodies already stored count as duplicates"
        )
        raise typer.Exit(1) from None
    if not reports:
        err_console.print(f"[red]nothing imported:[/] {path} holds no body that could be filed")
        raise typer.Exit(1)
    problems = _print_summary(warehouse, reports, numbers)
    if problems or unfiled:
        raise typer.Exit(1)


def _print_summary(
    warehouse: Warehouse, reports: list[BulkReport], numbers: list[list[int]]
) -> int:
    """Print what the import did; returns how many lines were quarantined."""
    from storage.landing import QUARANTINED

    seconds = sum(report.seconds for report in reports)
    bodies = sum(len(report.outcomes) for report in reports)
    print_rows(f"Import → {warehouse.home} ({bodies} bodies, {seconds:.2f} s)", _day_rows(reports))
    totals = {
        status: sum(report.count(status) for report in reports)
        for status in (STORED, DUPLICATE, QUARANTINED)
    }
    console.print(
        f"stored: {totals[STORED]}; duplicates: {totals[DUPLICATE]}; "
        f"quarantined: {totals[QUARANTINED]}"
    )
    problems = _problems(reports, numbers)
    for problem in problems:
        console.print(f"[yellow]quarantined[/] {escape(problem)}", highlight=False)
    return len(problems)


def _import_legacy(path: Path, home: Path | None) -> None:
    """Import every response of a previous-layout warehouse, one symbol-day at a time."""
    from storage import Warehouse
    from storage.bulk import bulk_ingest
    from storage.legacy import is_legacy_home, legacy_bodies, legacy_days

    if not is_legacy_home(path):
        err_console.print(
            f"[red]cannot import {path}:[/] it has no archive/ directory, so it is not a "
            "warehouse of termstore's previous layout"
        )
        raise typer.Exit(2)
    warehouse = Warehouse.open(home)
    reports = [
        bulk_ingest(warehouse, legacy_bodies(path, symbol, day))
        for symbol, day in legacy_days(path)
    ]
    if not reports:
        err_console.print(f"[red]nothing imported:[/] {path}/archive holds no response")
        raise typer.Exit(1)
    numbers = [list(range(1, len(report.outcomes) + 1)) for report in reports]
    if _print_summary(warehouse, reports, numbers):
        raise typer.Exit(1)
