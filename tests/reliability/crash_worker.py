"""Child for the crash test: ticks, day rebuilds, bulk imports and maintenance until SIGKILLed.

Run as ``python -m tests.reliability.crash_worker HOME SEED FOCUS``. It prints ``ready`` once
its writer connection is open, then ``begin OP`` and ``end OP SECONDS`` around every operation,
so the test can kill it inside the operation it wants and tell what the kill interrupted. Every
other operation, from the second on, is FOCUS (one of ``OPERATIONS``); the others are drawn by
``WEIGHTS``.

Keys: most ticks advance past the newest archived minute (crossing into later days); the others
repeat an archived minute (a duplicate) or land late in an earlier day. An import carries the
four symbols' bodies of a few random minutes, with a fetch fixed by the key, so a body imported
twice is the same attempt. Fetch start times are unique per (seed, step): the ingest log's key
never repeats. Maintenance runs as if two days had passed, with snapshots kept one day, so it
expires snapshots and deletes files, not only merges them.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import Warehouse, ingest_outcomes, rebuild_day
from storage.bulk import FetchedBody, bulk_ingest
from storage.ingest import fetch_meta
from storage.maintenance import maintain
from tests.storage.helpers import BASE_TIME, open_local, outcome, tick

OPERATIONS: Final[tuple[str, ...]] = ("tick", "rebuild", "bulk", "maintain")
WEIGHTS: Final[tuple[int, ...]] = (5, 2, 2, 1)
"""How often each operation is drawn: mostly ticks, so the lake grows from kill to kill."""
RETENTION_DAYS: Final[str] = "1"
ADVANCE_MINUTES: Final[tuple[int, ...]] = (1, 2, 13, 97)
IMPORT_MINUTES: Final[int] = 3
MAINTENANCE_LAG: Final = timedelta(days=2)


def minute(index: int) -> datetime:
    return BASE_TIME + timedelta(minutes=index)


def imported(computed_at: datetime) -> list[FetchedBody]:
    """The four bodies an import holds for ``computed_at``, always with the same fetch."""
    bodies = []
    for symbol in SUPPORTED_SYMBOLS:
        result = outcome(symbol, computed_at, started_at=computed_at + timedelta(seconds=4)).result
        assert result is not None
        bodies.append(FetchedBody(fetch_meta(symbol, result), result.raw))
    return bodies


class Worker:
    def __init__(self, warehouse: Warehouse, seed: int) -> None:
        self.warehouse = warehouse
        self.seed = seed
        self.rng = random.Random(seed)
        self.step = 0
        newest = warehouse.sql("SELECT max(computed_at) FROM responses").item()
        # The test's own ticks land the day before BASE_TIME, never past it.
        self.newest = 0 if newest is None else max(0, (newest - BASE_TIME) // timedelta(minutes=1))

    def tick(self) -> None:
        if self.rng.random() < 0.75:
            self.newest += self.rng.choice(ADVANCE_MINUTES)
            index = self.newest
        else:
            index = self.rng.randint(0, self.newest)
        computed_at = minute(index)
        started_at = computed_at + timedelta(
            seconds=5, milliseconds=self.seed, microseconds=self.step
        )
        ingest_outcomes(self.warehouse, tick(computed_at, started_at=started_at))

    def rebuild(self) -> None:
        days = (minute(self.newest) - BASE_TIME).days
        rebuild_day(self.warehouse, BASE_TIME.date() + timedelta(days=self.rng.randint(0, days)))

    def bulk(self) -> None:
        span = self.newest + 3 * 1440
        minutes = sorted({self.rng.randint(0, span) for _ in range(IMPORT_MINUTES)})
        bulk_ingest(self.warehouse, [body for m in minutes for body in imported(minute(m))])

    def maintain(self) -> None:
        maintain(self.warehouse, now=datetime.now(UTC) + MAINTENANCE_LAG)

    def run(self, focus: str) -> None:
        operations: dict[str, Callable[[], None]] = {
            "tick": self.tick,
            "rebuild": self.rebuild,
            "bulk": self.bulk,
            "maintain": self.maintain,
        }
        while True:
            self.step += 1
            name = self.rng.choices(OPERATIONS, WEIGHTS)[0] if self.step % 2 else focus
            print(f"begin {name}", flush=True)
            started = time.perf_counter()
            operations[name]()
            print(f"end {name} {time.perf_counter() - started:.3f}", flush=True)


def main() -> None:
    home, seed, focus = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    assert focus in OPERATIONS, focus
    warehouse = open_local(home, TERMSTORE_SNAPSHOT_RETENTION_DAYS=RETENTION_DAYS)
    warehouse.initialise()
    worker = Worker(warehouse, seed)
    print("ready", flush=True)
    worker.run(focus)


if __name__ == "__main__":
    main()
