"""The job alerts: real runs of the ``history`` and ``maintenance`` jobs in a Dagster instance
(and of their assets materialised from the UI or by a backfill), failing and succeeding, and the
real ``job_alerts`` sensor: one alert per failing streak, one recovery on the next success, even
when both happen between two evaluations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assets.history import HISTORY_ASSET
from assets.maintenance import MAINTENANCE_ASSET
from pipelines.alerting import JOB_SENSOR, job_checks
from pipelines.automation import HISTORY_JOB, MAINTENANCE_JOB
from tests.alerts.helpers import DAY, AlertSensors, materialise, run, tally, webhook
from tests.alerts.receiver import Receiver
from tests.support.simulator import SIM_START, running_simulator

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


@pytest.fixture
def homes(tmp_path: Path) -> tuple[Path, Path]:
    """A lake's home, and a file where the lake's home should be: a run there fails."""
    broken = tmp_path / "not-a-directory"
    broken.write_text("a file where the lake's home should be")
    return tmp_path / "lake", broken


def test_each_failing_job_alerts_once_and_recovers_once(
    homes: tuple[Path, Path], instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    good, broken = homes
    with running_simulator(frozen_at=SIM_START) as sim:
        sensors = AlertSensors(sim, instance, {"alert_webhook": webhook(receiver.url)})
        sensors.evaluate_jobs()  # no run yet: nothing to say
        assert not run(instance, MAINTENANCE_JOB, broken)
        sensors.evaluate_jobs()
        assert tally(receiver) == {(f"job_failed:{MAINTENANCE_JOB}", "alert"): 1}
        assert not run(instance, MAINTENANCE_JOB, broken)
        assert not run(instance, HISTORY_JOB, broken)
        sensors.evaluate_jobs()  # the second maintenance failure is the same incident
        assert run(instance, MAINTENANCE_JOB, good)
        assert run(instance, HISTORY_JOB, good)
        sensors.evaluate_jobs()
        # A failure and the next success between two evaluations: both are told.
        assert not run(instance, MAINTENANCE_JOB, broken)
        assert run(instance, MAINTENANCE_JOB, good)
        sensors.evaluate_jobs()
        sensors.evaluate_jobs()

    assert tally(receiver) == {
        (f"job_failed:{MAINTENANCE_JOB}", "alert"): 2,
        (f"job_failed:{MAINTENANCE_JOB}", "recovery"): 2,
        (f"job_failed:{HISTORY_JOB}", "alert"): 1,
        (f"job_failed:{HISTORY_JOB}", "recovery"): 1,
    }
    texts = receiver.texts()
    (history,) = [text for text in texts if text.startswith("[termstore] ALERT history job")]
    assert f"(partition {DAY}) failed:" in history
    assert "LakeConfigError: TERMSTORE_HOME=" in history  # what Dagster's wrapper wraps
    maintenance = [text for text in texts if text.startswith("[termstore] ALERT maintenance")]
    # A dg.Failure's description, the lake's own advice.
    assert all("not-a-directory' is not a directory; point it at" in t for t in maintenance)
    assert texts[-2].startswith("[termstore] ALERT maintenance job failed: run ")
    assert texts[-1] == (
        "[termstore] RESOLVED maintenance job failed: the maintenance job succeeded again "
        "(after under a minute)"
    )
    assert sensors.state(JOB_SENSOR).incidents == {}


def test_a_sensor_started_after_a_failure_alerts_for_it(
    homes: tuple[Path, Path], instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    _, broken = homes
    assert not run(instance, MAINTENANCE_JOB, broken)
    with running_simulator(frozen_at=SIM_START) as sim:
        sensors = AlertSensors(sim, instance, {"alert_webhook": webhook(receiver.url)})
        sensors.evaluate_jobs()
        sensors.evaluate_jobs()
    assert tally(receiver) == {(f"job_failed:{MAINTENANCE_JOB}", "alert"): 1}


def test_a_sensor_started_after_a_recovery_reports_no_failure_later(
    homes: tuple[Path, Path], instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    good, broken = homes
    assert not run(instance, MAINTENANCE_JOB, broken)
    assert run(instance, MAINTENANCE_JOB, good)  # the retry: the job is healthy
    with running_simulator(frozen_at=SIM_START) as sim:
        sensors = AlertSensors(sim, instance, {"alert_webhook": webhook(receiver.url)})
        sensors.evaluate_jobs()
        sensors.evaluate_jobs()  # reads the runs finished within REWIND again
        assert receiver.posts == []
        assert sensors.state(JOB_SENSOR).incidents == {}
        assert not run(instance, MAINTENANCE_JOB, broken)
        sensors.evaluate_jobs()
    assert tally(receiver) == {(f"job_failed:{MAINTENANCE_JOB}", "alert"): 1}


def test_runs_of_the_asset_from_the_ui_or_a_backfill_count_for_its_job(
    homes: tuple[Path, Path], instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    good, broken = homes
    backfill = {
        "dagster/backfill": "abcdefgh",
        "dagster/asset_partition_range_start": "2026-03-01",
        "dagster/asset_partition_range_end": DAY,
    }
    with running_simulator(frozen_at=SIM_START) as sim:
        sensors = AlertSensors(sim, instance, {"alert_webhook": webhook(receiver.url)})
        sensors.evaluate_jobs()
        assert not materialise(instance, HISTORY_ASSET, broken, tags=backfill)
        sensors.evaluate_jobs()
        assert tally(receiver) == {(f"job_failed:{HISTORY_JOB}", "alert"): 1}
        assert not materialise(instance, MAINTENANCE_ASSET, broken)
        sensors.evaluate_jobs()
        assert materialise(instance, MAINTENANCE_ASSET, good)
        sensors.evaluate_jobs()

    assert tally(receiver) == {
        (f"job_failed:{HISTORY_JOB}", "alert"): 1,
        (f"job_failed:{MAINTENANCE_JOB}", "alert"): 1,
        (f"job_failed:{MAINTENANCE_JOB}", "recovery"): 1,
    }
    (history,) = [text for text in receiver.texts() if "ALERT history job" in text]
    assert f"(partition 2026-03-01–{DAY}) failed:" in history
    # Only a run that materialises the job's asset counts for the job.
    assert set(sensors.state(JOB_SENSOR).incidents) == {f"job_failed:{HISTORY_JOB}"}


def test_a_first_look_judges_each_job_by_its_newest_run_however_old(
    homes: tuple[Path, Path], instance: dg.DagsterInstance
) -> None:
    good, broken = homes
    assert run(instance, MAINTENANCE_JOB, good)
    assert not materialise(instance, MAINTENANCE_ASSET, broken)
    assert not run(instance, HISTORY_JOB, broken)
    assert materialise(instance, HISTORY_ASSET, good, DAY)
    # A day on, every run finished long before the rewind window, as ``termstore doctor`` or a
    # sensor with a new cursor may look.
    later = datetime.now(UTC) + timedelta(days=1)
    checks = job_checks(instance, {}, later)
    assert [(check.scope, len(check.findings or ())) for check in checks] == [
        (f"job_failed:{HISTORY_JOB}", 0),
        (f"job_failed:{MAINTENANCE_JOB}", 1),
    ]
