"""A tick SIGKILLed between its archive writes and its commit is completed by the next tick.

Each test kills a real child process at an exact point of its tick (tests/storage/
interrupt_child.py), then checks what the next tick makes of it against a warehouse that ran the
same ticks without a crash: the same rows visible, the same ingest-log rows, nothing twice.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, dirty_days, ingest_outcomes, rebuild_day, rebuild_dirty
from storage.atomic import WriteBatch
from storage.ingest import TickStorageError
from storage.tick_journal import JournalCorruptError
from tests.storage.helpers import BASE_TIME, KEY_COLUMNS, duplicate_keys, tick
from tests.support.child_process import ROOT

T1 = BASE_TIME
T2 = BASE_TIME + timedelta(minutes=1)
T3 = BASE_TIME + timedelta(minutes=2)


def _started(computed_at: datetime) -> datetime:
    return computed_at + timedelta(seconds=4, microseconds=123)


def _killed_tick(
    home: Path, point: str, computed_at: datetime, started_at: datetime | None = None
) -> None:
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.storage.interrupt_child",
            str(home),
            point,
            computed_at.isoformat(),
            (started_at or _started(computed_at)).isoformat(),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr


def _tick(
    warehouse: Warehouse, computed_at: datetime, symbols: tuple[str, ...] = SUPPORTED_SYMBOLS
):
    return ingest_outcomes(warehouse, tick(computed_at, symbols, started_at=_started(computed_at)))


def _log(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.sql("SELECT * FROM ingest_log ORDER BY symbol, started_at")


def _snapshot_keys(warehouse: Warehouse) -> set[tuple[str, datetime]]:
    return set(warehouse.sql("SELECT symbol, computed_at FROM snapshots").iter_rows())


def _keys(
    *instants: datetime, symbols: tuple[str, ...] = SUPPORTED_SYMBOLS
) -> set[tuple[str, datetime]]:
    return {(symbol, at) for at in instants for symbol in symbols}


@pytest.fixture
def clean(tmp_path: Path) -> Iterator[Warehouse]:
    """The warehouse the crashed one must end up equal to: the same ticks, no crash."""
    opened = Warehouse.open(tmp_path / "clean")
    yield opened
    opened.close()


def test_a_tick_killed_before_its_commit_is_completed_by_the_next(
    tmp_path: Path, clean: Warehouse
) -> None:
    home = tmp_path / "home"
    _killed_tick(home, "commit", T1)
    crashed = Warehouse.open(home)
    assert all(crashed.archive.contains(symbol, T1) for symbol in SUPPORTED_SYMBOLS)
    # What the crash left: archived, but in no table and not in the log.
    assert _snapshot_keys(crashed) == set()
    assert _log(crashed).height == 0
    assert crashed.layout.tick_journal.exists()

    report = _tick(crashed, T2)

    assert sorted(report.recovered) == sorted(_keys(T1))
    assert sorted(report.stored) == sorted(SUPPORTED_SYMBOLS)
    assert not crashed.layout.tick_journal.exists()
    _tick(clean, T1)
    _tick(clean, T2)
    assert _snapshot_keys(crashed) == _keys(T1, T2)
    assert _log(crashed).equals(_log(clean))
    for table in ("snapshots", "expiries", "venue_oi"):
        assert crashed.sql(f"SELECT * FROM {table} ORDER BY ALL").equals(
            clean.sql(f"SELECT * FROM {table} ORDER BY ALL")
        ), table
    latest = crashed.sql("SELECT DISTINCT symbol, computed_at FROM latest_term_structure")
    assert set(latest.iter_rows()) == _keys(T2)
    assert duplicate_keys(crashed) == dict.fromkeys(KEY_COLUMNS, 0)


def test_only_the_responses_archived_before_the_kill_are_completed(
    tmp_path: Path, clean: Warehouse
) -> None:
    home = tmp_path / "home"
    _killed_tick(home, "archive:2", T1)
    crashed = Warehouse.open(home)
    first, *others = sorted(SUPPORTED_SYMBOLS)  # a tick stores symbols in name order
    assert crashed.archive.contains(first, T1)
    assert not any(crashed.archive.contains(symbol, T1) for symbol in others)

    report = _tick(crashed, T2)

    # The others were never stored: nothing of them at T1, and their next fetch is new.
    assert report.recovered == ((first, T1),)
    assert _snapshot_keys(crashed) == {(first, T1)} | _keys(T2)
    _tick(clean, T1, (first,))
    _tick(clean, T2)
    assert _log(crashed).equals(_log(clean))
    assert not crashed.layout.tick_journal.exists()


def test_a_fetch_killed_before_its_archive_write_is_not_logged_by_a_later_one(
    tmp_path: Path, clean: Warehouse
) -> None:
    home = tmp_path / "home"
    first_try = _started(T1)
    second_try = first_try + timedelta(seconds=20)
    _killed_tick(home, "archive:1", T1, first_try)  # journaled, nothing archived
    _killed_tick(home, "commit", T1, second_try)  # BackQuant had not refreshed: the same keys

    crashed = Warehouse.open(home)
    report = _tick(crashed, T2)

    assert sorted(report.recovered) == sorted(_keys(T1))
    ingest_outcomes(clean, tick(T1, started_at=second_try))
    _tick(clean, T2)
    assert _log(crashed).equals(_log(clean))  # one stored row per key: the second try's


def test_a_late_tick_killed_before_its_dirty_mark_still_reaches_the_cold_day(
    tmp_path: Path, clean: Warehouse
) -> None:
    home = tmp_path / "home"
    late = T1 + timedelta(minutes=3)
    for warehouse in (Warehouse.open(home), clean):
        _tick(warehouse, T1)
        _tick(warehouse, T1 + timedelta(minutes=5))
        rebuild_day(warehouse, T1.date())
        warehouse.close()
    _killed_tick(home, "state", late)
    crashed = Warehouse.open(home)
    assert dirty_days(crashed) == []  # the crash lost the mark
    next_day = T1 + timedelta(days=1)

    report = _tick(crashed, next_day)

    assert sorted(report.recovered) == sorted(_keys(late))
    assert sorted(dirty_days(crashed)) == sorted((s, T1.date()) for s in SUPPORTED_SYMBOLS)
    rebuild_dirty(crashed)
    _tick(clean, late)
    _tick(clean, next_day)
    rebuild_dirty(clean)
    assert _snapshot_keys(crashed) == _snapshot_keys(clean)
    assert (SUPPORTED_SYMBOLS[0], late) in _snapshot_keys(crashed)
    assert _log(crashed).equals(_log(clean))


def test_a_tick_completing_a_crash_can_itself_be_killed(tmp_path: Path, clean: Warehouse) -> None:
    home = tmp_path / "home"
    _killed_tick(home, "commit", T1)
    _killed_tick(home, "commit", T2)  # recovers T1, archives T2, and dies before committing

    crashed = Warehouse.open(home)
    report = _tick(crashed, T3)

    assert sorted(report.recovered) == sorted(_keys(T1, T2))
    for at in (T1, T2, T3):
        _tick(clean, at)
    assert _snapshot_keys(crashed) == _keys(T1, T2, T3)
    assert _log(crashed).equals(_log(clean))
    assert duplicate_keys(crashed) == dict.fromkeys(KEY_COLUMNS, 0)


def test_a_journal_left_by_a_committed_tick_adds_nothing(warehouse: Warehouse) -> None:
    _tick(warehouse, T1)
    journal_of_t1 = _log(warehouse)
    # As if the tick had died after its commit and before removing its journal.
    journal_of_t1.write_parquet(warehouse.layout.tick_journal)

    report = _tick(warehouse, T2)

    assert report.recovered == ()
    assert not warehouse.layout.tick_journal.exists()
    assert report.rows_written["ingest_log"] == len(SUPPORTED_SYMBOLS)  # T2's rows only
    assert report.rows_written["snapshots"] == len(SUPPORTED_SYMBOLS)
    assert _log(warehouse).height == 2 * len(SUPPORTED_SYMBOLS)
    assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0)


def test_a_journal_it_cannot_read_stops_the_tick_with_what_to_do(warehouse: Warehouse) -> None:
    warehouse.layout.tick_journal.parent.mkdir(parents=True, exist_ok=True)
    warehouse.layout.tick_journal.write_bytes(b"not parquet")

    with pytest.raises(JournalCorruptError) as raised:
        _tick(warehouse, T1)

    message = str(raised.value)
    assert str(warehouse.layout.tick_journal) in message
    assert "Move it aside" in message and "termstore rebuild" in message
    assert not warehouse.archive.contains("BTCUSDT", T1)  # nothing half-done


def test_a_tick_whose_commit_fails_is_completed_by_the_next(
    warehouse: Warehouse, clean: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(batch: WriteBatch) -> None:
        batch.discard()
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(WriteBatch, "commit", disk_full)
        with pytest.raises(TickStorageError, match="the next tick makes them visible"):
            _tick(warehouse, T1)
    assert _snapshot_keys(warehouse) == set()

    report = _tick(warehouse, T2)

    assert sorted(report.recovered) == sorted(_keys(T1))
    _tick(clean, T1)
    _tick(clean, T2)
    assert _snapshot_keys(warehouse) == _keys(T1, T2)
    assert _log(warehouse).equals(_log(clean))


def test_an_archived_record_it_cannot_read_does_not_stop_later_ticks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _killed_tick(home, "commit", T1)
    crashed = Warehouse.open(home)
    damaged = crashed.layout.archive_record("BTCUSDT", T1)
    damaged.write_bytes(b"not gzip")

    report = _tick(crashed, T2)

    assert sorted(report.stored) == sorted(SUPPORTED_SYMBOLS)
    assert sorted(report.recovered) == sorted(_keys(T1))
    # The other three are complete; the damaged one is logged and left to the day's rebuild.
    assert _snapshot_keys(crashed) == _keys(T1, T2) - {("BTCUSDT", T1)}
    stored = crashed.sql("SELECT symbol, computed_at FROM ingest_log WHERE outcome = 'stored'")
    assert set(stored.iter_rows()) == _keys(T1, T2)
    assert not crashed.layout.tick_journal.exists()
