"""The code location loads from workspace.yaml, and refuses to load misconfigured; what it
holds, and that the lake's catalog password never reaches what the UI is sent."""

from __future__ import annotations

import importlib
import json
import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.freshness import TimeWindowFreshnessPolicy
from dagster._core.remote_representation.external_data import (
    RepositorySnap,
    ResourceConfigEnvVarSnap,
)
from dagster._serdes import serialize_value

from assets.ingest import TICK_ASSET
from assets.maintenance import MAINTENANCE_ASSET
from backquant.errors import ConfigError
from pipelines.alerting import FEED_SENSOR
from pipelines.automation import MAINTENANCE_JOB
from pipelines.settings import Settings, SettingsError, check_client_environment
from storage.lake_config import CATALOG_ENV, DATA_PATH_ENV
from tests.support.fixtures import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = [sys.executable, "-m", "dagster"]


def validate(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BACKQUANT_", "TERMSTORE_"))
    }
    full_env.update(DAGSTER_HOME=str(tmp_path), TERMSTORE_HOME=str(tmp_path / "wh"), **env)
    return subprocess.run(
        [*DAGSTER, "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        env=full_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_definitions_validate_passes_for_workspace_yaml(tmp_path: Path) -> None:
    result = validate(tmp_path, BACKQUANT_API_KEY=TEST_KEY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_missing_key_fails_at_load_time_saying_what_to_set(tmp_path: Path) -> None:
    result = validate(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "BACKQUANT_API_KEY is not set" in output
    assert "make dev" in output


def test_a_bad_catalog_fails_at_load_time_naming_the_variable(tmp_path: Path) -> None:
    password = secrets.token_hex(8)
    result = validate(
        tmp_path,
        BACKQUANT_API_KEY=TEST_KEY,
        TERMSTORE_CATALOG=f"mysql:host=db user=lake password={password}",
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "TERMSTORE_CATALOG='mysql:host=db user=lake password=***' is not a catalog" in output
    assert "'sqlite:/path/to/catalog.sqlite' or 'postgres:host=" in output
    assert password not in output


def test_bad_base_url_fails_at_load_time() -> None:
    with pytest.raises(ConfigError, match="must be an http"):
        check_client_environment({"BACKQUANT_API_KEY": TEST_KEY, "BACKQUANT_BASE_URL": "ftp://x"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TERMSTORE_INGEST_CRON": "every minute"}, "five-field cron"),
        ({"TERMSTORE_HISTORY_START": "yesterday"}, "YYYY-MM-DD"),
        ({"TERMSTORE_KEEP_SUCCESSFUL_RUNS_HOURS": "-3"}, "positive whole number"),
    ],
)
def test_bad_settings_say_what_to_set(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_settings_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.ingest_cron == "* * * * *"
    assert not settings.simulated


def build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> dg.Definitions:
    """The code location's definitions, built in this process from ``env`` only."""
    for name in list(os.environ):
        if name.startswith(("BACKQUANT_", "TERMSTORE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BACKQUANT_API_KEY", TEST_KEY)
    monkeypatch.setenv("TERMSTORE_HOME", str(tmp_path / "wh"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Importing the module builds its ``defs`` once, from the environment set above.
    module = importlib.import_module("pipelines.definitions")
    definitions: dg.Definitions = module.build_definitions()
    return definitions


def test_the_location_holds_lake_maintenance_on_an_hourly_schedule_and_no_dirty_day_sensor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    definitions = build(monkeypatch, tmp_path)
    repository = definitions.get_repository_def()
    assert dg.AssetKey(MAINTENANCE_ASSET) in repository.asset_graph.get_all_asset_keys()
    job = definitions.resolve_job_def(MAINTENANCE_JOB)
    assert job.asset_layer.selected_asset_keys == {dg.AssetKey(MAINTENANCE_ASSET)}
    schedule = definitions.resolve_schedule_def("lake_maintenance_hourly")
    assert schedule.job_name == MAINTENANCE_JOB
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.execution_timezone == "UTC"
    sensors = {sensor.name for sensor in repository.sensor_defs}
    assert "rebuild_dirty_days" not in sensors
    assert sensors == {"research_after_history", "feed_alerts", "job_alerts"}
    schedules = {schedule.name for schedule in repository.schedule_defs}
    assert schedules == {
        "ingest_every_minute",
        "history_nightly",
        "prune_runs_hourly",
        "lake_maintenance_hourly",
    }


def test_the_ui_is_sent_the_catalog_variables_name_never_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    password = secrets.token_hex(12)
    catalog = f"postgres:host=127.0.0.1 port=5432 dbname=lake user=termstore password={password}"
    definitions = build(
        monkeypatch, tmp_path, TERMSTORE_CATALOG=catalog, TERMSTORE_DATA_PATH=str(tmp_path / "d")
    )
    # What a code server sends the webserver: every asset, job, schedule and resource.
    snapshot = RepositorySnap.from_def(definitions.get_repository_def())
    (warehouse,) = [r for r in snapshot.resources or () if r.name == "warehouse"]
    assert warehouse.configured_values["catalog"] == ResourceConfigEnvVarSnap(name=CATALOG_ENV)
    assert warehouse.configured_values["data_path"] == ResourceConfigEnvVarSnap(name=DATA_PATH_ENV)
    # Plain values are shown JSON-encoded.
    assert warehouse.configured_values["home"] == json.dumps(str(tmp_path / "wh"))
    assert password not in serialize_value(snapshot)


def test_the_default_local_lake_needs_no_catalog_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    snapshot = RepositorySnap.from_def(build(monkeypatch, tmp_path).get_repository_def())
    (warehouse,) = [r for r in snapshot.resources or () if r.name == "warehouse"]
    assert warehouse.configured_values["catalog"] == '""'
    assert warehouse.configured_values["data_path"] == '""'


def test_a_slower_ingest_schedule_widens_the_tick_freshness_policy_and_the_stale_alert(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Warn and fail after two and five of the schedule's intervals (at least 3 and 10 min);
    the stale alert after two (at least 5 min)."""
    for cron, warn, fail, stale in (("* * * * *", 3, 10, 5), ("*/15 * * * *", 30, 75, 30)):
        definitions = build(monkeypatch, tmp_path, TERMSTORE_INGEST_CRON=cron)
        spec = definitions.resolve_assets_def(TICK_ASSET).specs_by_key[dg.AssetKey(TICK_ASSET)]
        policy = spec.freshness_policy
        assert isinstance(policy, TimeWindowFreshnessPolicy)
        assert policy.warn_window is not None
        windows = (policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta())
        assert windows == (timedelta(minutes=warn), timedelta(minutes=fail))
        description = definitions.resolve_sensor_def(FEED_SENSOR).description
        assert f"no tick was stored for {stale} min" in str(description)
