"""Child for the race test: ticks into one day, or rebuilds of that day, started on a signal.

Run as ``python -m tests.reliability.race_child HOME ticks|rebuilds COUNT GO_FILE`` with the
lake's settings in the environment. It opens its writer connection, prints ``ready``, waits for
GO_FILE so both children start together, then runs COUNT ticks (minute ``i`` of the day) or
rebuilds the day until COUNT rebuilds committed, and prints ``refused N`` (rebuilds DuckLake
refused, after the core's own retries, because a tick from another machine committed first)
and ``done``.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path

from storage import LakeConfig, Warehouse, ingest_outcomes, rebuild_day
from storage.errors import CommitError
from tests.storage.helpers import BASE_TIME, tick


def main() -> None:
    home, mode, count, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    warehouse = Warehouse.open(config=LakeConfig.from_env(home))
    warehouse.initialise()
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    refused = 0
    if mode == "ticks":
        for index in range(count):
            report = ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=index)))
            assert not report.failed, report.as_dict()
    else:
        rebuilt = 0
        while rebuilt < count:
            try:
                rebuild_day(warehouse, BASE_TIME.date())
                rebuilt += 1
            except CommitError as error:
                # Ticks faster than a rebuild keep winning; the rebuild commits once they pause.
                assert "conflict" in error.message, error
                refused += 1
    warehouse.close()
    print(f"refused {refused}", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
