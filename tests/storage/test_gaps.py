"""The gap report: ``ingest_gaps_between(since, until, every)`` (a table macro stored in the lake)
and the ``ingest_gaps`` view over it, on the local lake and on a PostgreSQL catalog.

A gap is a minute the ingest schedule was due in without a stored attempt: its failed attempts'
outcomes and reasons, or "no attempt" when nothing ran at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from backquant.client import FetchOutcome
from backquant.errors import FetchError, InternalServerError, RateLimitError
from backquant.symbols import SUPPORTED_SYMBOLS
from storage import LakeConfig, Warehouse, ingest_outcomes
from tests.reliability.team_lake import new_database
from tests.storage.helpers import tick
from tests.support.services import PostgresServer

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def failed(symbol: str, at: datetime, error: FetchError) -> FetchOutcome:
    return FetchOutcome(symbol, at, at + timedelta(milliseconds=80), error=error)


def land(warehouse: Warehouse, minutes: list[int], start: datetime = START) -> None:
    """A stored tick of the four symbols in each of ``minutes`` (attempts 5 s into the minute)."""
    for minute in minutes:
        at = start + minute * MINUTE
        ingest_outcomes(warehouse, tick(at, started_at=at + timedelta(seconds=5)))


def gaps(warehouse: Warehouse, since: datetime, until: datetime, every: str = "") -> pl.DataFrame:
    step = f", every := INTERVAL {every}" if every else ""
    return warehouse.sql(
        f"SELECT symbol, minute, attempts, outcomes, reasons FROM ingest_gaps_between("
        f"TIMESTAMPTZ '{since.isoformat()}', TIMESTAMPTZ '{until.isoformat()}'{step})"
    )


def minutes_of(frame: pl.DataFrame, symbol: str, outcomes: str | None = None) -> list[int]:
    rows = frame.filter(pl.col("symbol") == symbol)
    if outcomes is not None:
        rows = rows.filter(pl.col("outcomes") == outcomes)
    return [int((at - START).total_seconds() // 60) for at in rows["minute"]]


def test_no_attempt_and_failed_attempts_are_told_apart_over_the_whole_span(
    warehouse: Warehouse,
) -> None:
    land(warehouse, [0, 1, 6])
    # Minute 2: BTCUSDT is rate limited, ETHUSDT gets a 500, the others are stored.
    at = START + 2 * MINUTE + timedelta(seconds=5)
    outcomes = tick(START + 2 * MINUTE, started_at=at)
    outcomes["BTCUSDT"] = failed("BTCUSDT", at, RateLimitError("burst limit reached"))
    outcomes["ETHUSDT"] = failed("ETHUSDT", at, InternalServerError("internal error"))
    ingest_outcomes(warehouse, outcomes)
    # Minutes 3–5: nothing ran. The span asked about starts two minutes before the first
    # attempt and ends after minute 8, so minutes -2, -1, 7 and 8 have no attempt either.

    found = gaps(warehouse, START - 2 * MINUTE, START + 9 * MINUTE + timedelta(seconds=30))

    for symbol in SUPPORTED_SYMBOLS:
        assert minutes_of(found, symbol, "no_attempt") == [-2, -1, 3, 4, 5, 7, 8], symbol
    no_attempt = found.filter(pl.col("outcomes") == "no_attempt")
    assert set(no_attempt["reasons"]) == {"no attempt"}
    assert set(no_attempt["attempts"]) == {0}
    failures = found.filter(pl.col("attempts") > 0).sort("symbol").to_dicts()
    assert [(row["symbol"], row["outcomes"]) for row in failures] == [
        ("BTCUSDT", "rate_limited"),
        ("ETHUSDT", "internal_error"),
    ]
    assert "burst limit reached" in failures[0]["reasons"]
    assert minutes_of(found, "BTCUSDT", "rate_limited") == [2]
    # The minute holding ``until`` is not reported: it may still be under way.
    assert 9 not in minutes_of(found, "SOLUSDT")


def test_a_slower_schedule_is_judged_on_its_own_minutes(warehouse: Warehouse) -> None:
    """Every 15 minutes: only :00, :15, :30, :45 are due. A late tick (12:38, after the daemon
    came back) stores data but does not make the 12:30 tick happen."""
    land(warehouse, [0, 15, 38, 60])

    found = gaps(warehouse, START, START + 75 * MINUTE, every="15 MINUTE")

    for symbol in SUPPORTED_SYMBOLS:
        assert minutes_of(found, symbol) == [30, 45], symbol
    assert set(found["outcomes"]) == {"no_attempt"}


def test_the_view_runs_from_the_first_attempt_to_the_current_minute(
    warehouse: Warehouse,
) -> None:
    now = datetime.now(UTC)
    first = now.replace(second=0, microsecond=0) - 5 * MINUTE
    land(warehouse, [0, 2], start=first)

    before = datetime.now(UTC).replace(second=0, microsecond=0)
    found = warehouse.sql("SELECT * FROM ingest_gaps")
    after = datetime.now(UTC).replace(second=0, microsecond=0)

    listed = sorted(set(found["minute"]))
    assert set(found["outcomes"]) == {"no_attempt"}
    assert set(found["symbol"]) == set(SUPPORTED_SYMBOLS)
    # From the first attempt's minute up to, not including, the minute the query ran in.
    candidates = [
        [first + offset * MINUTE for offset in range(1, 60) if first + offset * MINUTE < end]
        for end in {before, after}
    ]
    expected = [[at for at in minutes if at != first + 2 * MINUTE] for minutes in candidates]
    assert listed in expected


def test_a_span_that_ends_later_stops_at_the_current_minute(warehouse: Warehouse) -> None:
    # A minute still to come is no gap, however far the span asked about runs.
    warehouse.initialise()
    this_minute = datetime.now(UTC).replace(second=0, microsecond=0)
    found = gaps(warehouse, this_minute - 3 * MINUTE, this_minute + 60 * MINUTE)
    after = datetime.now(UTC).replace(second=0, microsecond=0)
    listed = sorted(set(found["minute"]))
    assert listed[0] == this_minute - 3 * MINUTE
    assert listed[-1] in {this_minute - MINUTE, after - MINUTE}, listed


def test_an_empty_lake_has_no_gaps_and_a_span_with_no_log_is_all_no_attempt(
    warehouse: Warehouse,
) -> None:
    warehouse.initialise()
    assert warehouse.sql("SELECT * FROM ingest_gaps").is_empty()
    found = gaps(warehouse, START, START + 3 * MINUTE)
    assert found.height == 3 * len(SUPPORTED_SYMBOLS)
    assert set(found["reasons"]) == {"no attempt"}


def test_the_gap_report_works_on_a_postgresql_catalog(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    database = new_database(postgres_server, "gaps_report")
    env = {"TERMSTORE_CATALOG": database.ducklake_catalog(), "TERMSTORE_DATA_PATH": str(tmp_path)}
    with Warehouse.open(config=LakeConfig.from_env(tmp_path / "home", env=env)) as warehouse:
        land(warehouse, [0, 2])
        found = gaps(warehouse, START, START + 3 * MINUTE)
    assert minutes_of(found, "HYPEUSDT") == [1]
    assert set(found["reasons"]) == {"no attempt"}
