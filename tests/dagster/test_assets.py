"""Materialise the assets in process with real resources against the simulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from assets.history import CHECK_DESCRIPTIONS, HISTORY_ASSET, build_history_asset
from assets.ingest import TICK_ASSET, build_tick_asset
from assets.maintenance import MAINTENANCE_ASSET, build_maintenance_asset
from assets.resources import BackQuantResource, WarehouseResource
from backquant.symbols import SUPPORTED_SYMBOLS
from storage.warehouse import Warehouse
from tests.storage.helpers import rows_per_day
from tests.support.simulator import SIM_START, RunningSimulator, running_simulator

DAY = SIM_START.date()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def resources(sim: RunningSimulator, home: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "backquant": BackQuantResource(
            api_key=sim.api_key,
            base_url=sim.base_url,
            retry_deadline_s=2.0,
            read_timeout_s=1.0,
            simulated=True,
            **overrides,
        ),
        "warehouse": WarehouseResource(home=str(home)),
    }


def checks_by_name(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()
    }


def tick(
    sim: RunningSimulator,
    home: Path,
    instance: dg.DagsterInstance,
    minutes: int = 0,
    start: datetime = SIM_START,
    *,
    late: timedelta = timedelta(0),
) -> dg.ExecuteInProcessResult:
    """A tick with the simulator's clock at ``start + minutes``; its checks judge the data at
    that instant plus ``late``."""
    sim.clock.set(start + timedelta(minutes=minutes))
    return dg.materialize(
        [build_tick_asset(simulated=True, clock=lambda: sim.clock.now() + late)],
        resources=resources(sim, home),
        instance=instance,
        raise_on_error=False,
    )


def test_tick_stores_four_symbols_and_every_check_passes(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    with running_simulator(frozen_at=SIM_START) as sim:
        result = tick(sim, tmp_path, instance)
    assert result.success
    metadata = result.asset_materializations_for_node(TICK_ASSET)[0].metadata
    assert sorted(str(metadata["stored"].value).split(", ")) == sorted(SUPPORTED_SYMBOLS)
    assert metadata["failed"].value == "none"
    rows_written = metadata["rows_written"].value
    assert isinstance(rows_written, dict) and rows_written["snapshots"] == 4
    assert metadata["duplicates_skipped"].value == 0
    assert "SIMULATED" in str(metadata["data_source"].value)
    shown = {record.data["symbol"]: record.data for record in metadata["symbols"].value.records}
    assert shown["BTCUSDT"]["status"] == "stored"
    checks = checks_by_name(result)
    assert set(checks) == {"freshness", "completeness", "consistency", "schema_drift"}
    failing = {name: check.metadata for name, check in checks.items() if not check.passed}
    assert not failing
    staleness = checks["freshness"].metadata["worst_staleness_s"].value
    assert isinstance(staleness, float) and staleness <= 60
    rows = Warehouse.open(tmp_path).sql(
        "SELECT symbol, count(*) AS n FROM expiries GROUP BY symbol"
    )
    assert rows.height == 4
    assert metadata["dagster/row_count"].value == int(rows["n"].sum())


@pytest.mark.parametrize(
    ("late", "severity"),
    [
        (timedelta(minutes=2), dg.AssetCheckSeverity.WARN),
        (timedelta(minutes=6), dg.AssetCheckSeverity.ERROR),
    ],
)
def test_freshness_judges_the_data_against_the_clock(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    late: timedelta,
    severity: dg.AssetCheckSeverity,
) -> None:
    """The same stored tick, judged at a later instant: stale over 60 s, unhealthy over 300 s."""
    with running_simulator(frozen_at=SIM_START) as sim:
        result = tick(sim, tmp_path, instance, late=late)
    freshness = checks_by_name(result)["freshness"]
    assert not freshness.passed
    assert freshness.severity == severity
    staleness = freshness.metadata["worst_staleness_s"].value
    assert isinstance(staleness, float)
    assert late.total_seconds() <= staleness <= late.total_seconds() + 60


@pytest.mark.parametrize(("faults", "duplicates"), [("HYPEUSDT:frozen", 1), ("*:frozen", 4)])
def test_freshness_judges_a_summary_served_again_by_its_age(
    tmp_path: Path, instance: dg.DagsterInstance, faults: str, duplicates: int
) -> None:
    """BackQuant stops refreshing one symbol, or all four: ten minutes later each of them is a
    duplicate of the summary stored then, ten minutes old, and the check says so."""
    with running_simulator(frozen_at=SIM_START, faults=faults) as sim:
        assert tick(sim, tmp_path, instance).success
        result = tick(sim, tmp_path, instance, minutes=10)
    assert result.success
    metadata = result.asset_materializations_for_node(TICK_ASSET)[0].metadata
    assert metadata["duplicates_skipped"].value == duplicates
    freshness = checks_by_name(result)["freshness"]
    assert not freshness.passed
    assert freshness.severity == dg.AssetCheckSeverity.ERROR
    staleness = freshness.metadata["worst_staleness_s"].value
    assert isinstance(staleness, float) and staleness >= 600
    assert "HYPEUSDT (duplicate): " in str(freshness.metadata["symbols"].value)


def test_failing_symbol_is_explained_and_costs_nothing_else(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    with running_simulator(frozen_at=SIM_START, faults="SOLUSDT:404") as sim:
        result = tick(sim, tmp_path, instance)
    assert result.success
    metadata = result.asset_materializations_for_node(TICK_ASSET)[0].metadata
    assert metadata["failed"].value == "SOLUSDT"
    assert "cold start" in str(metadata["failure_reasons"].value)
    checks = checks_by_name(result)
    assert not checks["completeness"].passed
    assert checks["completeness"].severity == dg.AssetCheckSeverity.WARN
    assert checks["consistency"].passed
    logged = Warehouse.open(tmp_path).sql("SELECT symbol, outcome FROM ingest_log ORDER BY symbol")
    assert dict(logged.iter_rows()) == {
        "BTCUSDT": "stored",
        "ETHUSDT": "stored",
        "HYPEUSDT": "stored",
        "SOLUSDT": "not_found",
    }


def test_drift_is_reported_by_its_check(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    with running_simulator(frozen_at=SIM_START, faults="BTCUSDT:drift-unknown") as sim:
        result = tick(sim, tmp_path, instance)
    assert result.success
    drift = checks_by_name(result)["schema_drift"]
    assert not drift.passed
    assert "BTCUSDT" in str(drift.metadata["unknown_fields"].value)


def test_run_fails_only_when_no_symbol_could_be_stored(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    with running_simulator(frozen_at=SIM_START, faults="401") as sim:
        result = tick(sim, tmp_path, instance)
    assert not result.success
    logged = Warehouse.open(tmp_path).sql(
        "SELECT outcome, count(*) AS n FROM ingest_log GROUP BY 1"
    )
    assert logged.to_dicts() == [{"outcome": "unauthorized", "n": 4}]


def history_asset(first_day: datetime | None = None) -> dg.AssetsDefinition:
    start = (first_day or SIM_START).date() - timedelta(days=1)
    partitions = dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1)
    return build_history_asset(partitions_def=partitions, ingest_cron="* * * * *", simulated=True)


def lake_snapshots(home: Path) -> int:
    """Snapshots (committed transactions) of the lake so far."""
    with Warehouse.open(home) as warehouse:
        return int(warehouse.sql("SELECT count(*) FROM ducklake_snapshots('lake')").item())


def test_history_partition_rebuilds_the_day_in_one_transaction_and_its_checks_pass(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    history = history_asset()
    with running_simulator(frozen_at=SIM_START) as sim:
        for minute in range(3):
            assert tick(sim, tmp_path, instance, minutes=minute).success
        empty = dg.materialize(
            [history],
            partition_key=(DAY - timedelta(days=1)).isoformat(),
            resources=resources(sim, tmp_path),
            instance=instance,
        )
        before = lake_snapshots(tmp_path)
        rebuilt = dg.materialize(
            [history],
            partition_key=DAY.isoformat(),
            resources=resources(sim, tmp_path),
            instance=instance,
        )
    # The day's four symbols are replaced by one commit: readers see the old day or the new.
    assert lake_snapshots(tmp_path) == before + 1
    empty_day = empty.asset_materializations_for_node(HISTORY_ASSET)
    assert "no_archive" in str(empty_day[0].metadata["per_symbol_day"].value)
    assert empty_day[0].metadata["no_archive"].value != "none"

    metadata = rebuilt.asset_materializations_for_node(HISTORY_ASSET)[0].metadata
    assert metadata["rebuilt"].value == 4 and metadata["no_archive"].value == "none"
    checks = checks_by_name(rebuilt)
    assert checks["no_duplicate_keys"].passed
    assert checks["matches_archive"].passed
    assert not checks["coverage"].passed  # 3 ticks out of 1,440 scheduled
    with Warehouse.open(tmp_path) as warehouse:
        snapshots = warehouse.sql(
            "SELECT symbol, count(*) AS n FROM snapshots GROUP BY symbol ORDER BY symbol"
        )
    assert snapshots["n"].to_list() == [3, 3, 3, 3]


def ranged_run(first: date, last: date) -> dict[str, str]:
    """The tags of a backfill run over several days (multi_run(7) gives each run a range)."""
    return {ASSET_PARTITION_RANGE_START_TAG: str(first), ASSET_PARTITION_RANGE_END_TAG: str(last)}


def table_rows(value: dg.MetadataValue) -> list[dict[str, str]]:
    """A metadata table's rows; an empty table is shown as text, so it has none."""
    if not isinstance(value, dg.TableMetadataValue):
        return []
    return [{key: str(cell) for key, cell in record.data.items()} for record in value.records]


def test_a_run_of_several_days_records_each_days_own_metadata(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """A backfill run rebuilds up to seven days and records a materialization of each: a day
    shows its own rows, never the run's; the checks judge the run's days together."""
    before, after = DAY - timedelta(days=1), DAY + timedelta(days=1)
    ticks = {before: 0, DAY: 3, after: 1}
    with running_simulator(frozen_at=SIM_START) as sim:
        for minute in range(ticks[DAY]):
            assert tick(sim, tmp_path, instance, minutes=minute).success
        assert tick(sim, tmp_path, instance, start=SIM_START + timedelta(days=1)).success
        result = dg.materialize(
            [history_asset()],
            tags=ranged_run(before, after),
            resources=resources(sim, tmp_path),
            instance=instance,
        )
    with Warehouse.open(tmp_path) as warehouse:
        expiry_rows = rows_per_day(warehouse, "expiries")
    metadata = {
        event.partition: event.metadata
        for event in result.asset_materializations_for_node(HISTORY_ASSET)
    }
    assert list(metadata) == [str(day) for day in ticks]
    for day, count in ticks.items():
        own = metadata[str(day)]
        assert own["days"].value == str(day)
        assert own["dagster/row_count"].value == expiry_rows.get(day, 0)
        assert own["rebuilt"].value == (len(SUPPORTED_SYMBOLS) if count else 0)
        assert (own["no_archive"].value == "none") == bool(count)
        assert {row["day"] for row in table_rows(own["per_symbol_day"].value)} == {str(day)}
        snapshots = {
            row["symbol"]: row["snapshots"] for row in table_rows(own["rows_by_symbol"].value)
        }
        assert snapshots == (dict.fromkeys(SUPPORTED_SYMBOLS, str(count)) if count else {})
    checks = checks_by_name(result)
    assert sorted(checks) == sorted(CHECK_DESCRIPTIONS)
    assert checks["matches_archive"].passed and checks["no_duplicate_keys"].passed
    judged = table_rows(checks["coverage"].metadata["per_symbol_day"].value)
    assert {row["day"] for row in judged} == {str(day) for day in ticks}


def ticks_per_symbol(warehouse: Warehouse) -> dict[str, list[datetime]]:
    frame = warehouse.sql(
        "SELECT s.symbol, s.computed_at, count(e.expiry) AS expiries FROM snapshots s "
        "LEFT JOIN expiries e USING (symbol, computed_at) GROUP BY ALL ORDER BY ALL"
    )
    assert all(count > 0 for count in frame["expiries"]), "a snapshot without its expiries"
    found: dict[str, list[datetime]] = {}
    for symbol, computed_at, _ in frame.iter_rows():
        found.setdefault(symbol, []).append(computed_at)
    return found


def test_a_backfill_of_today_then_a_tick_leaves_both_visible_at_once(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """The day still receiving ticks is rebuilt through Dagster, a tick lands right after, and
    every reader sees both the rebuilt ticks and the new one without waiting for anything."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = max(now - timedelta(minutes=10), datetime.combine(now.date(), time(0, 0, 5), UTC))
    today = start.date()
    with running_simulator(frozen_at=start) as sim:
        for minute in range(3):
            assert tick(sim, tmp_path, instance, minutes=minute, start=start).success
        attached = Warehouse.open(tmp_path)  # a reader that stays attached throughout
        earlier = ticks_per_symbol(attached)
        assert set(earlier) == set(SUPPORTED_SYMBOLS)
        assert {len(ticks) for ticks in earlier.values()} == {3}
        assert {ticks[0].date() for ticks in earlier.values()} == {today}

        backfill = dg.materialize(
            [history_asset(start)],
            partition_key=today.isoformat(),
            resources=resources(sim, tmp_path),
            instance=instance,
        )
        assert backfill.success
        assert checks_by_name(backfill)["matches_archive"].passed
        assert tick(sim, tmp_path, instance, minutes=3, start=start).success

    with Warehouse.open(tmp_path) as fresh:
        for warehouse in (attached, fresh):
            found = ticks_per_symbol(warehouse)
            assert set(found) == set(SUPPORTED_SYMBOLS)
            for symbol, ticks in found.items():
                # the three rebuilt ticks, then the new one
                assert ticks[:3] == earlier[symbol], symbol
                assert len(ticks) == 4 and ticks[3] > ticks[2], symbol
    attached.close()


def test_lake_maintenance_merges_the_ticks_files_and_reports_them(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    with running_simulator(frozen_at=SIM_START) as sim:
        for minute in range(3):
            assert tick(sim, tmp_path, instance, minutes=minute).success
    result = dg.materialize(
        [build_maintenance_asset(simulated=True)],
        resources={"warehouse": WarehouseResource(home=str(tmp_path))},
        instance=instance,
    )
    assert result.success
    metadata = result.asset_materializations_for_node(MAINTENANCE_ASSET)[0].metadata
    before, after = metadata["data_files_before"].value, metadata["data_files_after"].value
    assert isinstance(before, int) and isinstance(after, int)
    # Three ticks wrote three files per table for the day; merging leaves one per table.
    assert after < before
    steps = {record.data["step"] for record in metadata["steps"].value.records}
    assert {"merge_adjacent_files", "expire_snapshots", "cleanup_old_files"} <= steps
    assert metadata["snapshots_kept"].value == lake_snapshots(tmp_path)
    with Warehouse.open(tmp_path) as warehouse:
        assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 12
