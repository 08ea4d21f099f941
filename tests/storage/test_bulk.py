"""Bulk ingest: quarantine, duplicates, merging into a day, idempotence, equality with the live
path, routing of misleading bodies, resuming an interrupted import, worker processes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import orjson
import polars as pl
import pytest

from storage.schemas import FetchMeta, RejectedValueError
from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, ingest_outcomes, rebuild_day
from storage.archive import ArchiveCorruptError
from storage.bulk import FetchedBody, bulk_ingest
from storage.bulk_day import BulkDayBuild, BulkJob, hinted_day, import_symbol_day
from storage.catalog import cold_file
from storage.rebuild import DayBuild, DayJob, rebuild_symbol_day
from tests.storage.helpers import BASE_TIME, KEY_COLUMNS, body, duplicate_keys, outcome, table

DAY = BASE_TIME.date()


def fetched(symbol: str, computed_at: datetime, raw: bytes | None = None) -> FetchedBody:
    """The body and fetch metadata the live path would have for this fetch."""
    result = outcome(symbol, computed_at, raw).result
    assert result is not None
    fetch = FetchMeta(
        symbol, result.status, result.started_at, result.finished_at, 1, result.headers
    )
    return FetchedBody(fetch, result.raw)


def minutes(
    start: int, stop: int, symbols: tuple[str, ...] = SUPPORTED_SYMBOLS
) -> list[FetchedBody]:
    return [
        fetched(symbol, BASE_TIME + timedelta(minutes=minute))
        for minute in range(start, stop)
        for symbol in symbols
    ]


def tables(warehouse: Warehouse) -> dict[str, pl.DataFrame]:
    return {name: table(warehouse, name) for name in KEY_COLUMNS}


def refetched(item: FetchedBody, minutes: int, raw: bytes | None = None) -> FetchedBody:
    """The same body (or ``raw``) fetched again ``minutes`` later: another fetch attempt."""
    shift = timedelta(minutes=minutes)
    fetch = replace(
        item.fetch,
        started_at=item.fetch.started_at + shift,
        finished_at=item.fetch.finished_at + shift,
    )
    return FetchedBody(fetch, item.raw if raw is None else raw)


def bad(symbol: str, minute: int, raw: bytes) -> FetchedBody:
    """A refused body fetched at a time no good body uses."""
    return refetched(fetched(symbol, BASE_TIME), minute + 30, raw)


def test_refused_bodies_are_quarantined_with_their_reason_and_the_rest_land(
    warehouse: Warehouse,
) -> None:
    refused = [
        bad("BTCUSDT", 0, b"{not json"),
        bad("BTCUSDT", 1, body("BTCUSDT", BASE_TIME, **{"data.expiries.0.atm_iv": "12"})),
        bad("ETHUSDT", 0, body("ETHUSDT", BASE_TIME, **{"data.expiries.0.call_oi": -5.0})),
        bad("SOLUSDT", 0, body("BTCUSDT", BASE_TIME)),
    ]
    good = minutes(0, 3)
    report = bulk_ingest(warehouse, [*refused, *good])

    assert [o.status for o in report.outcomes] == ["quarantined"] * 4 + ["stored"] * 12
    kinds = [o.logged_as for o in report.outcomes[:4]]
    assert kinds == ["not_json", "schema_violation", "rejected_value", "rejected_value"]
    assert report.outcomes[1].field_path == "data.expiries[0].atm_iv"
    assert "meta.symbol" in (report.outcomes[3].reason or "")
    for refusal, item in zip(report.outcomes[:4], refused, strict=True):
        assert refusal.quarantine_file is not None
        kept = Path(refusal.quarantine_file)
        assert kept.read_bytes() == item.raw
        reason = orjson.loads(kept.with_suffix(".json").read_bytes())
        assert reason["kind"] == refusal.logged_as and reason["reason"] == refusal.reason
    assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 12
    log = warehouse.sql("SELECT outcome, count(*) AS n FROM ingest_log GROUP BY 1 ORDER BY 1")
    assert dict(log.iter_rows()) == {
        "not_json": 1,
        "rejected_value": 2,
        "schema_violation": 1,
        "stored": 12,
    }
    assert [(day.symbol, day.quarantined) for day in report.days] == [
        ("BTCUSDT", 2),
        ("ETHUSDT", 1),
        ("HYPEUSDT", 0),
        ("SOLUSDT", 1),
    ]
    # Refused bodies are never archived.
    assert sum(len(warehouse.archive.read_day(s, DAY)) for s in SUPPORTED_SYMBOLS) == 12


def test_a_body_for_an_unsupported_symbol_stops_the_import_before_anything_is_written(
    warehouse: Warehouse,
) -> None:
    stray = fetched("BTCUSDT", BASE_TIME)
    foreign = FetchedBody(
        FetchMeta("DOGEUSDT", 200, BASE_TIME, BASE_TIME, 1, stray.fetch.headers), stray.raw
    )
    with pytest.raises(RejectedValueError, match="DOGEUSDT"):
        bulk_ingest(warehouse, [stray, foreign])
    assert warehouse.archive.days("BTCUSDT") == []


def test_duplicates_in_the_input_and_in_the_archive_are_counted_and_logged(
    warehouse: Warehouse,
) -> None:
    ingest_outcomes(warehouse, {"BTCUSDT": outcome("BTCUSDT", BASE_TIME)})
    late_copy = refetched(fetched("BTCUSDT", BASE_TIME), minutes=5)
    second = fetched("BTCUSDT", BASE_TIME + timedelta(minutes=1))
    second_copy = refetched(second, minutes=5)
    report = bulk_ingest(warehouse, [late_copy, second, second_copy])
    assert [o.status for o in report.outcomes] == ["duplicate", "stored", "duplicate"]
    assert (report.days[0].stored, report.days[0].duplicates) == (1, 2)
    assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0)
    log = warehouse.sql("SELECT outcome, reason FROM ingest_log ORDER BY started_at")
    assert log.get_column("outcome").to_list() == ["stored", "stored", "duplicate", "duplicate"]
    assert "already archived" in log.item(2, "reason")


def test_an_import_merges_with_the_days_pack_and_with_loose_records_of_live_ticks(
    warehouse: Warehouse,
) -> None:
    for minute in range(3):
        ingest_outcomes(
            warehouse, {"BTCUSDT": outcome("BTCUSDT", BASE_TIME + timedelta(minutes=minute))}
        )
    rebuild_day(warehouse, DAY, ["BTCUSDT"])  # minutes 0-2 packed
    for minute in range(3, 5):
        ingest_outcomes(
            warehouse, {"BTCUSDT": outcome("BTCUSDT", BASE_TIME + timedelta(minutes=minute))}
        )
    archive = warehouse.home / "archive" / "BTCUSDT"
    assert len(list(archive.rglob("*.rec.gz"))) == 2  # minutes 3-4 loose

    report = bulk_ingest(warehouse, minutes(0, 8, ("BTCUSDT",)))

    assert [o.status for o in report.outcomes] == ["duplicate"] * 5 + ["stored"] * 3
    assert not list(archive.rglob("*.rec.gz"))
    assert len(warehouse.archive.read_day("BTCUSDT", DAY)) == 8
    snapshots = warehouse.sql("SELECT computed_at FROM snapshots ORDER BY 1")
    assert snapshots.get_column("computed_at").to_list() == [
        BASE_TIME + timedelta(minutes=minute) for minute in range(8)
    ]
    assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0)
    # Live attempts keep their rows; the imported copies of minutes 0-4 are the same attempts.
    assert warehouse.sql("SELECT count(*) FROM ingest_log").item() == 8
    assert warehouse.state().is_cold("BTCUSDT", DAY)


def test_the_same_import_twice_changes_no_table_and_is_all_duplicates(
    warehouse: Warehouse,
) -> None:
    bodies = minutes(0, 4)
    bulk_ingest(warehouse, bodies)
    first = tables(warehouse)
    files = {
        table_name: cold_file(
            warehouse.layout, warehouse.state(), table_name, "BTCUSDT", DAY
        ).read_bytes()
        for table_name in KEY_COLUMNS
    }
    report = bulk_ingest(warehouse, bodies)
    assert report.count("duplicate") == len(bodies) and report.count("stored") == 0
    again = tables(warehouse)
    for name in KEY_COLUMNS:
        assert again[name].equals(first[name]), name
    state = warehouse.state()
    for table_name, data in files.items():
        assert cold_file(warehouse.layout, state, table_name, "BTCUSDT", DAY).read_bytes() == data


def test_bulk_gives_the_tables_of_the_live_path_then_a_rebuild(tmp_path: Path) -> None:
    live = Warehouse.open(tmp_path / "live")
    bulk = Warehouse.open(tmp_path / "bulk")
    bodies = minutes(0, 6)
    for minute in range(6):
        at = BASE_TIME + timedelta(minutes=minute)
        ingest_outcomes(live, {symbol: outcome(symbol, at) for symbol in SUPPORTED_SYMBOLS})
    rebuild_day(live, DAY)
    bulk_ingest(bulk, bodies)
    expected, got = tables(live), tables(bulk)
    for name in KEY_COLUMNS:
        assert got[name].equals(expected[name]), name
    latest = "SELECT * FROM latest_term_structure"
    assert bulk.sql(latest).equals(live.sql(latest))
    live.close()
    bulk.close()


def test_a_misleading_computed_at_costs_a_second_round_not_a_wrong_day(
    warehouse: Warehouse,
) -> None:
    document = orjson.loads(body("BTCUSDT", BASE_TIME))
    document["meta"]["extra"] = {"computed_at": "2026-01-01T00:00:00Z"}
    raw = orjson.dumps(document)
    assert hinted_day(raw) == datetime(2026, 1, 1, tzinfo=UTC).date()
    report = bulk_ingest(warehouse, [fetched("BTCUSDT", BASE_TIME, raw)])
    assert [o.status for o in report.outcomes] == ["stored"]
    assert [(day.symbol, day.day, day.stored) for day in report.days] == [("BTCUSDT", DAY, 1)]
    assert warehouse.archive.days("BTCUSDT") == [DAY]
    assert warehouse.sql("SELECT count(*) FROM ingest_log").item() == 1


def test_an_import_stopped_before_its_commit_is_finished_by_running_it_again(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = minutes(0, 3, ("ETHUSDT",))

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("simulated crash before the state commit")

    with monkeypatch.context() as patch:
        patch.setattr("storage.bulk.commit_days", crash)
        with pytest.raises(OSError, match="simulated"):
            bulk_ingest(warehouse, bodies)
    # The packs were written (archive first), nothing is visible yet.
    assert len(warehouse.archive.read_day("ETHUSDT", DAY)) == 3
    assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 0

    report = bulk_ingest(warehouse, bodies)
    assert report.count("duplicate") == 3
    assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 3
    outcomes = warehouse.sql("SELECT DISTINCT outcome FROM ingest_log").get_column("outcome")
    assert outcomes.to_list() == ["stored"]


J = TypeVar("J")
R = TypeVar("R")
PARENT_ENV = "TERMSTORE_TEST_PARENT_PID"
MARKS_ENV = "TERMSTORE_TEST_WORKER_MARKS"


def _slow_in_parent(job: J, function: Callable[[J], R]) -> R:
    """A job run in the test process first waits until a worker process has taken a job (each
    leaves a mark file), so the worker surely writes some days."""
    marks = Path(os.environ[MARKS_ENV])
    if os.getpid() == int(os.environ[PARENT_ENV]):
        deadline = time.monotonic() + 60
        while not any(marks.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.02)
    else:
        (marks / f"{os.getpid()}-{time.monotonic_ns()}").touch()
    return function(job)


def slow_import(job: BulkJob) -> BulkDayBuild:
    return _slow_in_parent(job, import_symbol_day)


def slow_rebuild(job: DayJob) -> DayBuild:
    return _slow_in_parent(job, rebuild_symbol_day)


def test_days_written_by_a_worker_process_equal_days_written_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = [*minutes(0, 3), bad("HYPEUSDT", 0, b"[]")]
    alone = Warehouse.open(tmp_path / "alone")
    bulk_ingest(alone, bodies, workers=1)
    worker_marks = tmp_path / "marks"
    worker_marks.mkdir()
    monkeypatch.setenv(PARENT_ENV, str(os.getpid()))
    monkeypatch.setenv(MARKS_ENV, str(worker_marks))
    monkeypatch.setattr("storage.bulk.import_symbol_day", slow_import)
    monkeypatch.setattr("storage.rebuild.rebuild_symbol_day", slow_rebuild)
    helped = Warehouse.open(tmp_path / "helped")
    report = bulk_ingest(helped, bodies, workers=2)
    assert list(worker_marks.iterdir()), "no job ran in a worker process"
    assert (report.count("stored"), report.count("quarantined")) == (12, 1)
    expected, got = tables(alone), tables(helped)
    for name in KEY_COLUMNS:
        # Quarantine paths name each warehouse's home.
        paths = pl.col("^quarantine_file$").str.replace(r".*/quarantine/", "")
        assert got[name].with_columns(paths).equals(expected[name].with_columns(paths)), name

    for mark in worker_marks.iterdir():
        mark.unlink()
    before = got
    rebuild_day(helped, DAY, workers=2)
    assert list(worker_marks.iterdir()), "no rebuild job ran in a worker process"
    for name, frame in tables(helped).items():
        assert frame.equals(before[name]), name
    alone.close()
    helped.close()


def test_an_unreadable_pack_stops_the_import_with_its_name_and_commits_nothing(
    warehouse: Warehouse,
) -> None:
    pack = warehouse.layout.archive_pack("BTCUSDT", DAY)
    pack.parent.mkdir(parents=True)
    pack.write_bytes(b"not parquet")
    with pytest.raises(ArchiveCorruptError, match=str(pack)):
        bulk_ingest(warehouse, minutes(0, 2))
    state = warehouse.state()
    assert not any(state.is_cold(symbol, DAY) for symbol in SUPPORTED_SYMBOLS)
    assert pack.read_bytes() == b"not parquet"
