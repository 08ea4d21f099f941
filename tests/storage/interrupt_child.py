"""Child for the interrupted-tick tests: one tick, SIGKILLed at a chosen point.

Run as ``python -m tests.storage.interrupt_child HOME POINT COMPUTED_AT STARTED_AT``. POINT is
where the process kills itself, as a crash would: ``commit`` (every response archived, the state
saved, the hot files not committed), ``archive:N`` (at the Nth archive write: the first N - 1
symbols archived, the others not) or ``state`` (archived, the dirty marks not saved).
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime
from typing import Any

import storage.ingest
from storage import Warehouse, ingest_outcomes
from storage.archive import Archive
from storage.atomic import WriteBatch
from tests.storage.helpers import tick


def _die(*_: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    home, point, computed_at, started_at = sys.argv[1:5]
    if point == "commit":
        WriteBatch.commit = _die  # type: ignore[method-assign]
    elif point.startswith("archive:"):
        write, calls, fatal = Archive.write, [], int(point.removeprefix("archive:"))

        def write_then_die(archive: Archive, record: Any) -> Any:
            calls.append(record)
            if len(calls) == fatal:
                _die()
            return write(archive, record)

        Archive.write = write_then_die  # type: ignore[method-assign]
    elif point == "state":
        storage.ingest.save_state = _die  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown point {point!r}")
    warehouse = Warehouse.open(home)
    at = datetime.fromisoformat(computed_at)
    ingest_outcomes(warehouse, tick(at, started_at=datetime.fromisoformat(started_at)))
    raise SystemExit("the tick finished: the kill point was never reached")


if __name__ == "__main__":
    main()
