"""Child process for the SIGKILL test: ingest ticks and rebuild days in a loop until killed.

Run as ``python -m tests.storage.crash_child HOME SEED``; prints ``ready`` once it is working.
"""

from __future__ import annotations

import random
import sys
from datetime import timedelta

from storage import Warehouse, ingest_outcomes, rebuild_day
from tests.storage.helpers import BASE_TIME, tick


def main() -> None:
    home, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    warehouse = Warehouse.open(home, hot_grace=timedelta(0))
    print("ready", flush=True)
    step = 0
    while True:
        step += 1
        # Two days of minutes, revisited at random: new keys, duplicates and late ticks alike.
        computed_at = BASE_TIME + timedelta(minutes=rng.randrange(0, 2 * 1440, 7))
        started_at = computed_at + timedelta(seconds=seed % 50, microseconds=step)
        ingest_outcomes(warehouse, tick(computed_at, started_at=started_at))
        if step % 4 == 0:
            rebuild_day(warehouse, BASE_TIME.date() + timedelta(days=rng.randrange(2)))


if __name__ == "__main__":
    main()
