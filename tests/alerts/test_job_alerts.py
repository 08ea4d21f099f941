"""The job alerts: real runs of the ``history`` and ``maintenance`` jobs in a Dagster instance,
failing and succeeding, and the real ``job_alerts`` sensor: one alert per failing streak, one
recovery on the next success, even when both happen between two evaluations."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pipelines.alerting import JOB_SENSOR
from pipelines.automation import HISTORY_JOB, MAINTENANCE_JOB
from tests.alerts.helpers import DAY, AlertSensors, run, tally, webhook
from tests.alerts.receiver import Receiver
from tests.support.simulator import SIM_START, running_simulator

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


def test_each_failing_job_alerts_once_and_recovers_once(
    tmp_path: Path, instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    good = tmp_path / "lake"
    broken = tmp_path / "not-a-directory"
    broken.write_text("a file where the lake's home should be")
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
    tmp_path: Path, instance: dg.DagsterInstance, receiver: Receiver
) -> None:
    broken = tmp_path / "not-a-directory"
    broken.write_text("")
    assert not run(instance, MAINTENANCE_JOB, broken)
    with running_simulator(frozen_at=SIM_START) as sim:
        sensors = AlertSensors(sim, instance, {"alert_webhook": webhook(receiver.url)})
        sensors.evaluate_jobs()
        sensors.evaluate_jobs()
    assert tally(receiver) == {(f"job_failed:{MAINTENANCE_JOB}", "alert"): 1}
