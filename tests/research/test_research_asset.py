"""research_daily materialises in process after real ticks and a history rebuild (simulator)."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import dagster as dg

from assets.history import build_history_asset
from assets.ingest import build_tick_asset
from assets.research import CHART_TITLES, RESEARCH_ASSET, build_research_asset
from assets.resources import BackQuantResource, WarehouseResource
from pipelines.settings import DEFAULT_INGEST_CRON
from storage.research.plots import PIXELS
from storage.warehouse import Warehouse
from tests.research.test_plots import png_size
from tests.support.simulator import SIM_START, running_simulator

DAY = SIM_START.date()


def test_research_daily_materialises_with_charts(tmp_path: Path) -> None:
    partitions = dg.DailyPartitionsDefinition(
        start_date=DAY.isoformat(), timezone="UTC", end_offset=1
    )
    assets = [
        build_tick_asset(simulated=True),
        build_history_asset(
            partitions_def=partitions, ingest_cron=DEFAULT_INGEST_CRON, simulated=True
        ),
        build_research_asset(partitions_def=partitions, simulated=True),
    ]
    with dg.instance_for_test() as instance, running_simulator(frozen_at=SIM_START) as sim:
        resources = {
            "backquant": BackQuantResource(
                api_key=sim.api_key, base_url=sim.base_url, retry_deadline_s=2.0, simulated=True
            ),
            "warehouse": WarehouseResource(home=str(tmp_path)),
        }
        for minute in range(3):
            sim.clock.set(SIM_START + timedelta(minutes=minute))
            assert dg.materialize([assets[0]], resources=resources, instance=instance).success
        result = dg.materialize(
            assets[1:], partition_key=DAY.isoformat(), resources=resources, instance=instance
        )
    assert result.success
    metadata = result.asset_materializations_for_node(RESEARCH_ASSET)[0].metadata
    assert "BTCUSDT" in str(metadata["hourly_tier_months"].value)
    assert "| BTCUSDT |" in str(metadata["cm_30d_daily"].value)
    for name in CHART_TITLES:
        text = str(metadata[f"chart_{name}"].value)
        encoded = text.split("data:image/png;base64,")[1].rstrip(")")
        assert png_size(base64.b64decode(encoded)) == PIXELS
    with Warehouse.open(tmp_path) as warehouse:
        hourly = warehouse.sql("SELECT count(DISTINCT computed_at) AS n FROM expiries_hourly")
        tier = list((tmp_path / "research" / "expiries_hourly").rglob("*.parquet"))
    # three ticks within one hour: one hourly sample per symbol, from the materialised tier
    assert hourly["n"][0] == 1
    assert len(tier) == 4
