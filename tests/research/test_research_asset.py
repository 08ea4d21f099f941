"""research_daily materialises in process after real ticks and a history rebuild (simulator)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from assets.history import build_history_asset
from assets.ingest import build_tick_asset
from assets.plots import PIXELS
from assets.research import CHART_TITLES, RESEARCH_ASSET, build_research_asset
from assets.resources import BackQuantResource, WarehouseResource
from backquant.symbols import SUPPORTED_SYMBOLS
from pipelines.settings import DEFAULT_INGEST_CRON
from storage.warehouse import Warehouse
from tests.research.test_plots import png_size
from tests.storage.helpers import rows_per_day
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


def test_a_run_of_several_days_gives_each_day_its_own_sample_table_and_charts(
    tmp_path: Path,
) -> None:
    """A backfill run covers up to seven days: each day's materialization shows that day's
    hourly sample, closing table and charts (as of the day's end), not the run's."""
    days = [DAY, DAY + timedelta(days=1)]
    partitions = dg.DailyPartitionsDefinition(
        start_date=DAY.isoformat(), timezone="UTC", end_offset=1
    )
    history = build_history_asset(
        partitions_def=partitions, ingest_cron=DEFAULT_INGEST_CRON, simulated=True
    )
    research = build_research_asset(partitions_def=partitions, simulated=True)
    ranged_run = {
        ASSET_PARTITION_RANGE_START_TAG: str(days[0]),
        ASSET_PARTITION_RANGE_END_TAG: str(days[-1]),
    }
    with dg.instance_for_test() as instance, running_simulator(frozen_at=SIM_START) as sim:
        resources = {
            "backquant": BackQuantResource(
                api_key=sim.api_key, base_url=sim.base_url, retry_deadline_s=2.0, simulated=True
            ),
            "warehouse": WarehouseResource(home=str(tmp_path)),
        }
        for offset, ticks in enumerate((3, 1)):
            for minute in range(ticks):
                sim.clock.set(SIM_START + timedelta(days=offset, minutes=minute))
                tick = build_tick_asset(simulated=True)
                assert dg.materialize([tick], resources=resources, instance=instance).success
        for asset in (history, research):
            result = dg.materialize(
                [asset], tags=ranged_run, resources=resources, instance=instance
            )
        events = result.asset_materializations_for_node(RESEARCH_ASSET)
        charts = {
            event.partition: served_chart(instance, event.metadata["chart_term_structure"])
            for event in events
        }
    with Warehouse.open(tmp_path) as warehouse:
        sampled = rows_per_day(warehouse, "hourly_sample")
    assert [event.partition for event in events] == [str(day) for day in days]
    for day, event in zip(days, events, strict=True):
        metadata = event.metadata
        assert metadata["days"].value == str(day)
        assert metadata["hourly_sample_rows"].value == {str(day): sampled[day]}
        closing = metadata["cm_30d_daily"].value
        assert isinstance(closing, dg.TableMetadataValue)
        assert {record.data["day"] for record in closing.records} == {str(day)}
        day_end = datetime.combine(day + timedelta(days=1), time(0), UTC)
        assert metadata["charts_as_of"].value == (day_end - timedelta(seconds=1)).timestamp()
        path, _ = charts[str(day)]
        assert path.parent == Path(str(metadata["charts_dir"].value))
        assert str(day) in path.parts
    # Each day's charts are drawn as of that day: the two images differ.
    assert charts[str(days[0])][1] != charts[str(days[1])][1]
