"""research_daily materialises in process after real ticks and a history rebuild (simulator)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg

from assets.history import build_history_asset
from assets.ingest import build_tick_asset
from assets.plots import PIXELS
from assets.research import CHART_TITLES, RESEARCH_ASSET, build_research_asset
from assets.resources import BackQuantResource, WarehouseResource
from backquant.symbols import SUPPORTED_SYMBOLS
from pipelines.settings import DEFAULT_INGEST_CRON
from storage.warehouse import Warehouse
from tests.research.test_plots import png_size
from tests.support.simulator import SIM_START, running_simulator

DAY = SIM_START.date()


def served_chart(instance: dg.DagsterInstance, value: dg.MetadataValue) -> tuple[Path, bytes]:
    """The file a chart's Markdown shows, found as the webserver's /logs/ route finds it.

    The Markdown must be short for the asset page to render it in place (Dagster shows
    Markdown of 1,000 characters or more behind a link)."""
    text = str(value.value)
    assert len(text) < 1000 and text.count("![") == 1
    url = text.split("](", 1)[1].rstrip(")").split("?")[0]
    *key, extension = url.removeprefix("/logs/").split("/")
    path = Path(instance.compute_log_manager.get_captured_local_path(key, extension))
    return path, path.read_bytes()


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
        metadata = result.asset_materializations_for_node(RESEARCH_ASSET)[0].metadata
        charts = {name: served_chart(instance, metadata[f"chart_{name}"]) for name in CHART_TITLES}
    with Warehouse.open(tmp_path) as warehouse:
        sampled = warehouse.sql(
            "SELECT DISTINCT symbol, computed_at FROM hourly_sample ORDER BY ALL"
        ).rows()
        sampled_rows = warehouse.sql("SELECT count(*) FROM hourly_sample").item()
        snapshots = warehouse.sql("SELECT symbol, count(*) AS n FROM snapshots GROUP BY ALL")
        hourly = warehouse.sql("SELECT * FROM expiries_hourly ORDER BY symbol, position")
        newest = warehouse.sql("SELECT * FROM latest_term_structure ORDER BY symbol, position")
    assert result.success
    assert metadata["hourly_sample_rows"].value == {DAY.isoformat(): sampled_rows}
    closing = {record.data["symbol"] for record in metadata["cm_30d_daily"].value.records}
    assert "BTCUSDT" in closing
    for path, png in charts.values():
        assert png_size(png) == PIXELS
        assert path.parent == Path(str(metadata["charts_dir"].value))
    # Three ticks within one hour: the day is over, so research_daily stored its sample, and
    # the hour's sample is the newest of the three snapshots of every symbol.
    assert dict(snapshots.rows()) == dict.fromkeys(SUPPORTED_SYMBOLS, 3)
    assert sampled == sorted(newest.select("symbol", "computed_at").unique().rows())
    assert len(sampled) == len(SUPPORTED_SYMBOLS)
    assert hourly.equals(newest.select(hourly.columns))
