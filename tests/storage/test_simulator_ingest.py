"""Ingest over real loopback HTTP against the simulator, then a rebuild of the same day."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl

from backquant.symbols import SUPPORTED_SYMBOLS
from storage import ingest_once, rebuild_day
from tests.storage.helpers import duplicate_keys, open_local, table
from tests.support.simulator import SIM_START, running_simulator

SUMMARY_TABLES = ("snapshots", "expiries", "venue_oi")


def test_ticks_over_http_store_the_served_bodies_and_a_rebuild_reproduces_them(
    tmp_path: Path,
) -> None:
    warehouse = open_local(tmp_path / "home")
    with running_simulator(frozen_at=SIM_START, seed=3) as sim:
        config = sim.client_config()
        first = ingest_once(warehouse, config)
        again = ingest_once(warehouse, config)  # same 30-second bucket: nothing new
        sim.clock.set(SIM_START + timedelta(minutes=1))
        second = ingest_once(warehouse, config)
        served = {s: sim.market.expiry_summary(s, SIM_START) for s in SUPPORTED_SYMBOLS}
        served_bytes = {s: sim.market.expiry_summary_bytes(s, SIM_START) for s in SUPPORTED_SYMBOLS}
    assert sorted(first.stored) == sorted(SUPPORTED_SYMBOLS) == sorted(second.stored)
    assert again.duplicates_skipped == 4 and again.stored == ()

    snapshots = table(warehouse, "snapshots").filter(
        pl.col("computed_at") == pl.col("computed_at").min()
    )
    expiries = table(warehouse, "expiries")
    for symbol, document in served.items():
        row = snapshots.filter(pl.col("symbol") == symbol).row(0, named=True)
        assert row["spot_price"] == document["meta"]["spot_price"]
        assert row["expiry_count"] == len(document["data"]["expiries"])
        assert row["request_id"] == document["meta"]["request_id"]
        tokens = (
            expiries.filter(
                (pl.col("symbol") == symbol) & (pl.col("computed_at") == row["computed_at"])
            )
            .sort("position")["expiry"]
            .to_list()
        )
        assert tokens == [entry["expiry"] for entry in document["data"]["expiries"]]

    archived = warehouse.sql(
        "SELECT symbol, body FROM responses WHERE computed_at = "
        "(SELECT min(computed_at) FROM responses)"
    )
    assert dict(archived.iter_rows()) == served_bytes

    before = {name: table(warehouse, name) for name in (*SUMMARY_TABLES, "ingest_log")}
    report = rebuild_day(warehouse, SIM_START.date())
    assert all(day.rejected == () for day in report.days)
    assert sorted(report.rebuilt) == sorted((s, SIM_START.date()) for s in SUPPORTED_SYMBOLS)
    assert all(day.responses == 2 for day in report.days)
    for name, frame in before.items():
        assert table(warehouse, name).equals(frame), name
    assert duplicate_keys(warehouse) == dict.fromkeys(duplicate_keys(warehouse), 0)
    warehouse.close()
