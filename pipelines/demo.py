"""The demo: a few real ticks through Dagster against the simulator, then a day's rebuild and
the lake's maintenance.

Everything happens in a throwaway directory: a simulator on a loopback port with a frozen clock
that the demo moves one minute per tick, an ephemeral Dagster instance, and a fresh lake (its
catalog file and data under the demo's home, whatever TERMSTORE_CATALOG says).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from assets.history import build_history_asset
from assets.ingest import build_tick_asset
from assets.maintenance import MAINTENANCE_ASSET, build_maintenance_asset
from assets.resources import BackQuantResource, WarehouseResource
from backquant.simulator.app import create_app
from backquant.simulator.config import DEFAULT_SIMULATOR_KEY, SimulatorConfig
from backquant.simulator.runner import serve_in_thread
from pipelines.settings import DEFAULT_INGEST_CRON
from storage.lake_config import LakeConfig
from storage.warehouse import Warehouse

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Dagster's step-by-step debug log would bury the demo's own output."""

TERM_STRUCTURE_SQL = """
SELECT symbol, expiry, type, dte, atm_iv, skew_25d,
       CAST(round(total_oi) AS BIGINT) AS total_oi, net_gex / 1e6 AS "gex_$m",
       max_pain_strike AS max_pain
FROM latest_term_structure
ORDER BY symbol, expiry_at NULLS LAST
"""


@dataclass(frozen=True, slots=True)
class DemoResult:
    home: Path
    lake: LakeConfig
    """The demo's own lake (catalog file and data under ``home``), for opening it afterwards."""
    ticks: int
    days: tuple[date, ...]
    stored_per_tick: tuple[int, ...]
    term_structure: pl.DataFrame
    history_rows: int
    data_files: tuple[int, int]
    """Data files before and after lake_maintenance merged the ticks' small files."""


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_demo(
    home: Path, *, ticks: int = 5, seed: int = 7, say: Callable[[str], None] = print
) -> DemoResult:
    """Run ``ticks`` ingest runs, the day's history rebuild and the lake's maintenance; return
    what landed."""
    start = (datetime.now(UTC) - timedelta(minutes=ticks)).replace(second=5, microsecond=0)
    simulator = SimulatorConfig(seed=seed, api_key=DEFAULT_SIMULATOR_KEY, start=start)
    app = create_app(simulator)
    clock = app.state.clock
    warehouse_home = home / "warehouse"
    lake = LakeConfig.from_env(warehouse_home, env={})
    with (
        serve_in_thread(app) as server,
        _environment(
            BACKQUANT_API_KEY=DEFAULT_SIMULATOR_KEY,
            TERMSTORE_HOME=str(warehouse_home),
            # The demo's lake is its own: a catalog file and data under its home.
            TERMSTORE_CATALOG="",
            TERMSTORE_DATA_PATH="",
        ),
    ):
        say(f"simulator (seed {seed}) serving on {server.base_url}")
        resources = {
            "backquant": BackQuantResource(
                api_key=dg.EnvVar("BACKQUANT_API_KEY"), base_url=server.base_url, simulated=True
            ),
            "warehouse": WarehouseResource(home=str(warehouse_home)),
        }
        tick_asset = build_tick_asset(simulated=True)
        instance = dg.DagsterInstance.ephemeral()
        stored: list[int] = []
        for index in range(ticks):
            clock.set(start + timedelta(minutes=index))
            result = dg.materialize(
                [tick_asset], resources=resources, instance=instance, run_config=QUIET
            )
            materialization = result.asset_materializations_for_node("expiry_ticks")[0]
            stored_text = str(materialization.metadata["stored"].value)
            stored.append(0 if stored_text == "none" else len(stored_text.split(", ")))
            say(f"tick {index + 1}/{ticks} at {clock.now():%H:%M:%S} UTC: stored {stored_text}")

        days = tuple(sorted({(start + timedelta(minutes=i)).date() for i in range(ticks)}))
        partitions = dg.DailyPartitionsDefinition(
            start_date=days[0].isoformat(), timezone="UTC", end_offset=1
        )
        history_asset = build_history_asset(
            partitions_def=partitions, ingest_cron=DEFAULT_INGEST_CRON, simulated=True
        )
        for day in days:
            dg.materialize(
                [history_asset],
                partition_key=day.isoformat(),
                resources=resources,
                instance=instance,
                run_config=QUIET,
            )
            say(f"rebuilt expiry_history partition {day} from the raw archive")

        maintained = dg.materialize(
            [build_maintenance_asset(simulated=True)],
            resources=resources,
            instance=instance,
            run_config=QUIET,
        )
        metadata = maintained.asset_materializations_for_node(MAINTENANCE_ASSET)[0].metadata
        data_files = (
            int(str(metadata["data_files_before"].value)),
            int(str(metadata["data_files_after"].value)),
        )
        say(f"lake_maintenance merged {data_files[0]} data files into {data_files[1]}")

        with Warehouse.open(config=lake) as warehouse:
            term_structure = warehouse.sql(TERM_STRUCTURE_SQL)
            history_rows = int(warehouse.sql("SELECT count(*) AS n FROM expiries")["n"][0])
    return DemoResult(
        home=warehouse_home,
        lake=lake,
        ticks=ticks,
        days=days,
        stored_per_tick=tuple(stored),
        term_structure=term_structure,
        history_rows=history_rows,
        data_files=data_files,
    )
