"""Materialise the assets in process with real resources against the simulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from assets.history import build_history_asset
from assets.ingest import TICK_ASSET, build_tick_asset
from backquant.symbols import SUPPORTED_SYMBOLS
from assets.resources import BackQuantResource, WarehouseResource
from storage.warehouse import Warehouse
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
    sim: RunningSimulator, home: Path, instance: dg.DagsterInstance, minutes: int = 0
) -> dg.ExecuteInProcessResult:
    sim.clock.set(SIM_START + timedelta(minutes=minutes))
    return dg.materialize(
        [build_tick_asset(simulated=True)],
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
    assert metadata["recovered_from_killed_tick"].value == "none"
    assert "SIMULATED" in str(metadata["data_source"].value)
    assert "| BTCUSDT | stored |" in str(metadata["symbols"].value)
    checks = checks_by_name(result)
    assert set(checks) == {"freshness", "completeness", "consistency", "schema_drift"}
    failing = {name: check.metadata for name, check in checks.items() if not check.passed}
    # the simulator's clock is frozen in March, so wall-clock age fails freshness by design
    assert set(failing) == {"freshness"}
    rows = Warehouse.open(tmp_path).sql(
        "SELECT symbol, count(*) AS n FROM expiries GROUP BY symbol"
    )
    assert rows.height == 4
    assert metadata["dagster/row_count"].value == int(rows["n"].sum())


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


def test_history_partition_rebuilds_the_day_and_its_checks_pass(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    with running_simulator(frozen_at=SIM_START) as sim:
        for minute in range(3):
            assert tick(sim, tmp_path, instance, minutes=minute).success
        partitions = dg.DailyPartitionsDefinition(
            start_date=(DAY - timedelta(days=1)).isoformat(), end_offset=1
        )
        history = build_history_asset(
            partitions_def=partitions, ingest_cron="* * * * *", simulated=True
        )
        results = {
            day: dg.materialize(
                [history],
                partition_key=day.isoformat(),
                resources=resources(sim, tmp_path),
                instance=instance,
            )
            for day in (DAY - timedelta(days=1), DAY)
        }
    empty_day = results[DAY - timedelta(days=1)].asset_materializations_for_node("expiry_history")
    assert "no_archive" in str(empty_day[0].metadata["per_symbol_day"].value)
    assert empty_day[0].metadata["no_archive"].value != "none"

    checks = checks_by_name(results[DAY])
    assert checks["no_duplicate_keys"].passed
    assert checks["matches_archive"].passed
    assert not checks["coverage"].passed  # 3 ticks out of 1,440 scheduled
    snapshots = Warehouse.open(tmp_path).sql(
        "SELECT symbol, count(*) AS n FROM snapshots GROUP BY symbol ORDER BY symbol"
    )
    assert snapshots["n"].to_list() == [3, 3, 3, 3]
