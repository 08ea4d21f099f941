"""Child for the crash test: ingest, rebuild and compaction in a random mix until SIGKILLed.

Run as ``python -m tests.reliability.crash_worker HOME SEED``; prints ``ready`` once working.
Ticks land on three days at random minutes (new keys, repeats and late ticks into days already
cold, which marks them dirty); rebuilds pick a day, ``rebuild_dirty`` is the sensor's compaction.
An odd SEED starts worker processes before it is ready, so its rebuilds share their symbol-days
with them and the kill lands while they run; it writes its children's pids to
``HOME/../children-SEED.txt`` for the test to check that none outlives it.
"""

from __future__ import annotations

import os
import random
import sys
from concurrent.futures import wait
from datetime import timedelta
from pathlib import Path

from storage import Warehouse, ingest_outcomes, rebuild_day, rebuild_dirty, rebuild_range
from storage.workers import start_workers
from tests.storage.helpers import BASE_TIME, tick
from tests.support.child_process import child_pids

DAYS = 3


def main() -> None:
    home, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    warehouse = Warehouse.open(home, hot_grace=timedelta(0))
    if seed % 2:
        wait(start_workers().started)
        children = " ".join(map(str, child_pids(os.getpid())))
        Path(home).parent.joinpath(f"children-{seed}.txt").write_text(children)
    print("ready", flush=True)
    step = 0
    while True:
        step += 1
        action = rng.random()
        if action < 0.7:
            computed_at = BASE_TIME + timedelta(minutes=rng.randrange(0, DAYS * 1440, 11))
            started_at = computed_at + timedelta(seconds=seed % 50, microseconds=step)
            ingest_outcomes(warehouse, tick(computed_at, started_at=started_at))
        elif action < 0.8:
            rebuild_day(warehouse, BASE_TIME.date() + timedelta(days=rng.randrange(DAYS)))
        elif action < 0.9:
            rebuild_dirty(warehouse)
        else:
            first = BASE_TIME.date()
            rebuild_range(warehouse, first, first + timedelta(days=DAYS - 1))


if __name__ == "__main__":
    main()
