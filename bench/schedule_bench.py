"""Schedule tick → rows visible in SQL, with the real Dagster webserver and daemon.

The simulator runs on the wall clock; the ``ingest_every_minute`` schedule is switched on through
GraphQL; a reader polls ``snapshots`` every 0.2 s. For each scheduled minute boundary the
latency is the time from that boundary (the tick's scheduled instant) to the first poll that
sees the new rows. Startup of the webserver and daemon is not counted.

Run: ``.venv/bin/python -m bench.schedule_bench [--ticks 3]``; writes
bench/results/schedule_bench.json. Takes about ``ticks + 2`` minutes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import load_average, summarise, write_results
from storage import QueryError, Warehouse
from tests.support.dagster_ui import running_dagster, simulated_env
from tests.support.simulator import running_simulator

COMMAND = ".venv/bin/python -m bench.schedule_bench"


def _visible(warehouse: Warehouse) -> int:
    try:
        return int(warehouse.sql("SELECT count(DISTINCT computed_at) FROM snapshots").item())
    except QueryError:
        return 0


def run(ticks: int, root: Path) -> dict[str, Any]:
    home = root / "warehouse"
    today = datetime.now(UTC).date()
    latencies: list[float] = []
    load_before = load_average()
    with running_simulator() as sim:
        env = simulated_env(sim, home, today - timedelta(days=1))
        with running_dagster(root, env) as ui:
            started = ui.start_schedule("ingest_every_minute")
            if started.get("scheduleState", {}).get("status") != "RUNNING":
                raise RuntimeError(f"could not start the schedule: {started}")
            warehouse = Warehouse.open(home)
            seen = _visible(warehouse)
            deadline = time.monotonic() + 60 * (ticks + 3)
            while len(latencies) < ticks and time.monotonic() < deadline:
                now_visible = _visible(warehouse)
                if now_visible > seen:
                    now = datetime.now(UTC)
                    boundary = now.replace(second=0, microsecond=0)
                    latencies.append((now - boundary).total_seconds())
                    print(f"tick visible {latencies[-1]:.2f} s after {boundary:%H:%M}", flush=True)
                    seen = now_visible
                time.sleep(0.2)
            warehouse.close()
    if not latencies:
        raise RuntimeError("no scheduled tick became visible; see the Dagster logs")
    return {
        "ticks_observed": len(latencies),
        "schedule_boundary_to_visible": summarise(latencies),
        "seconds": [round(value, 2) for value in latencies],
        "load_average_before_after": [load_before, load_average()],
        "note": "measured from the cron minute boundary; includes daemon tick evaluation, run "
        "launch (a new process), the fetch and the tick's commit to the lake",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="termstore-schedule-bench-") as temp:
        results = run(args.ticks, Path(temp))
    path = write_results("schedule_bench", COMMAND, results)
    print(path.read_text())


if __name__ == "__main__":
    main()
