"""The writer lock: writers on one machine take turns (``flock``), and on a PostgreSQL catalog
so do writers on different machines (an advisory lock in the catalog's database), so two
writers never both store the same key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pytest

from backquant.client import FetchOutcome
from storage import LakeConfig, Warehouse, ingest_outcomes
from storage.errors import WriterBusyError
from storage.reports import DUPLICATE, STORED
from tests.reliability.team_lake import new_database
from tests.storage.helpers import BASE_TIME, count, tick
from tests.support.services import PostgresServer

Outcomes = Mapping[str, FetchOutcome]
HOLD = """
import sys, time
from storage import LakeConfig, Warehouse
env = {"TERMSTORE_CATALOG": sys.argv[2], "TERMSTORE_DATA_PATH": sys.argv[3]}
warehouse = Warehouse.open(config=LakeConfig.from_env(sys.argv[1], env=env))
with warehouse.lock():
    print("held", flush=True)
    time.sleep(600)
"""


def _machines(tmp_path: Path, server: PostgresServer, name: str) -> tuple[Warehouse, Warehouse]:
    """Two writers of one lake as two machines would run them: their own homes (so their own
    ``flock``), the catalog in PostgreSQL and the data files on a path both reach."""
    catalog = new_database(server, name).ducklake_catalog()
    env = {"TERMSTORE_CATALOG": catalog, "TERMSTORE_DATA_PATH": str(tmp_path / "data")}
    first, second = (
        Warehouse.open(config=LakeConfig.from_env(tmp_path / home, env=env))
        for home in ("machine-a", "machine-b")
    )
    first.initialise()
    return first, second


def test_a_second_writer_on_this_machine_waits_then_is_told_who_holds_the_lock(
    warehouse: Warehouse,
) -> None:
    other = Warehouse.open(config=warehouse.config)
    busy = pytest.raises(WriterBusyError, match=f"pid {os.getpid()}")
    with warehouse.lock(), busy, other.lock(timeout_s=0.2):
        pass
    with other.lock(timeout_s=0.2):
        pass


def test_writers_on_two_machines_take_turns_on_a_postgresql_catalog(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    first, second = _machines(tmp_path, postgres_server, "writer_lock_turns")
    busy_pattern = f"termstore writer .* pid {os.getpid()}"
    raises = pytest.raises(WriterBusyError, match=busy_pattern)
    with first.writer(), raises as busy, second.lock(timeout_s=0.3):
        pass
    assert postgres_server.password not in str(busy.value)
    with second.lock(timeout_s=0.3):  # released when the first writer was done
        pass
    first.close()
    second.close()


def test_a_killed_writer_leaves_no_lock_behind(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    first, second = _machines(tmp_path, postgres_server, "writer_lock_killed")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLD,
            str(tmp_path / "machine-c"),
            first.config.attach_target().removeprefix("ducklake:"),
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(WriterBusyError), second.lock(timeout_s=0.3):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with second.lock(timeout_s=30):  # PostgreSQL ends the dead session and frees its lock
        pass
    first.close()
    second.close()


def _land_together(warehouses: tuple[Warehouse, ...], outcomes: Outcomes) -> list[str]:
    """Each warehouse lands the same tick, in threads released at the same instant; returns
    every symbol's status."""
    start = threading.Barrier(len(warehouses))
    statuses: list[str] = []

    def land(warehouse: Warehouse) -> None:
        start.wait()
        report = ingest_outcomes(warehouse, outcomes)
        statuses.extend(symbol.status for symbol in report.symbols)

    threads = [threading.Thread(target=land, args=(warehouse,)) for warehouse in warehouses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


def test_two_machines_landing_the_same_tick_store_it_once(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    first, second = _machines(tmp_path, postgres_server, "writer_lock_same_tick")
    for minute in range(3):
        statuses = _land_together((first, second), tick(BASE_TIME + timedelta(minutes=minute)))
        assert sorted(statuses) == sorted([STORED] * 4 + [DUPLICATE] * 4), statuses
    assert count(first, "SELECT count(*) FROM snapshots") == 3 * 4
    assert count(first, "SELECT count(*) FROM responses") == 3 * 4
    first.close()
    second.close()
