"""Exactly once under SIGKILL: kill a writer at random instants, then check the catalog."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, rebuild_range
from tests.storage.helpers import KEY_COLUMNS, duplicate_keys
from tests.support.child_process import kill_after

KILLS = 20


def _archived_keys(warehouse: Warehouse) -> set[tuple[str, object]]:
    keys: set[tuple[str, object]] = set()
    for symbol in SUPPORTED_SYMBOLS:
        for day in warehouse.archive.days(symbol):
            keys.update(
                (symbol, record.computed_at) for record in warehouse.archive.read_day(symbol, day)
            )
    return keys


@pytest.mark.slow
def test_sigkill_at_random_instants_never_doubles_or_loses_a_row(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rng = random.Random(20260302)
    for kill in range(KILLS):
        kill_after("tests.storage.crash_child", rng.uniform(0.02, 0.6), str(home), str(kill))

        warehouse = Warehouse.open(home)
        # The catalog a killed writer left behind opens, reads every listed file completely
        # and shows each key once.
        for table in KEY_COLUMNS:
            warehouse.sql(f"SELECT count(*) FROM {table}")
        assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0), f"after kill {kill}"
        assert not [
            p
            for p in (home / "cold").rglob("*")
            if p.name.endswith(".tmp") and p.stat().st_mtime > time.time() + 1
        ]

        # A rebuild restores everything the archive holds, each key once.
        archived = _archived_keys(warehouse)
        days = sorted({key[1].date() for key in archived})  # type: ignore[attr-defined]
        if days:
            rebuild_range(warehouse, days[0], days[-1])
        stored = warehouse.sql("SELECT symbol, computed_at FROM snapshots")
        assert set(stored.iter_rows()) == archived, f"after kill {kill}"
        assert stored.height == len(archived)
        assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0)
        warehouse.close()
