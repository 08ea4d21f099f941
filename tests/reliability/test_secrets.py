"""Secrets: run ingest, faults, rebuild, the CLI and Dagster with a canary key, then look for it.

The canary must appear nowhere: not in captured logs or output, not in the archive, quarantine,
hot/cold Parquet (decoded, not just raw bytes), state or catalog, not in the Dagster instance
(event log, run storage, compute logs, metadata).
"""

from __future__ import annotations

import gzip
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.ingest import build_tick_asset
from assets.resources import BackQuantResource, WarehouseResource
from storage import Warehouse, ingest_once, rebuild_day
from tests.support.simulator import SIM_START, running_simulator

CANARY = "bq_live_CANARYsecret0123456789abcdefXYZ"
ROOT = Path(__file__).resolve().parents[2]
FAULTS = "401@20%; 500@10%; truncate@10%; drift-wrong-type@5%; drift-unknown@10%"


def _readable_views(path: Path) -> list[bytes]:
    """The raw bytes of a file plus its decoded contents where compression would hide text."""
    data = path.read_bytes()
    views = [data]
    if path.name.endswith(".gz"):
        views.append(gzip.decompress(data))
    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
        views.append(repr(frame.to_dicts()).encode())
    return views


def occurrences(root: Path, needle: str) -> list[str]:
    """Files under ``root`` whose bytes or decoded contents contain ``needle``."""
    wanted = needle.encode()
    return [
        str(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and any(wanted in view for view in _readable_views(path))
    ]


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "termstore"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout + done.stderr


def test_the_api_key_appears_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    dagster_dir = tmp_path / "dagster"
    dagster_dir.mkdir()
    outputs: list[str] = []
    with running_simulator(frozen_at=SIM_START, api_key=CANARY, faults=FAULTS, seed=5) as sim:
        warehouse = Warehouse.open(home)
        config = sim.client_config()
        for minute in range(6):
            sim.clock.set(SIM_START + timedelta(minutes=minute))
            report = ingest_once(warehouse, config)
            outputs.append(repr(report.as_dict()))
            outputs.extend(str(line) for line in report.table_rows())
        rebuild_day(warehouse, SIM_START.date())
        outputs.append(repr(warehouse.sql("SELECT * FROM ingest_gaps").to_dicts()))
        warehouse.close()

        env = {
            **os.environ,
            "BACKQUANT_API_KEY": CANARY,
            "BACKQUANT_BASE_URL": sim.base_url,
            "TERMSTORE_HOME": str(home),
        }
        sim.clock.set(SIM_START + timedelta(minutes=7))
        outputs.append(_cli(env, "ingest", "--once"))
        outputs.append(_cli({**env, "BACKQUANT_API_KEY": CANARY + " "}, "ingest", "--once"))
        outputs.append(_cli(env, "sql", "SELECT * FROM ingest_log"))

        with dg.instance_for_test(temp_dir=str(dagster_dir)) as instance:
            for minute in range(8, 11):
                sim.clock.set(SIM_START + timedelta(minutes=minute))
                result = dg.materialize(
                    [build_tick_asset(simulated=True)],
                    resources={
                        "backquant": BackQuantResource(
                            api_key=CANARY,
                            base_url=sim.base_url,
                            retry_deadline_s=2.0,
                            read_timeout_s=1.0,
                            simulated=True,
                        ),
                        "warehouse": WarehouseResource(home=str(home)),
                    },
                    instance=instance,
                    raise_on_error=False,
                )
                outputs.extend(repr(event) for event in result.all_events)

    captured = capfd.readouterr()
    texts = {
        "captured log records": "\n".join(record.getMessage() for record in caplog.records),
        "stdout/stderr": captured.out + captured.err,
        "reports and CLI output": "\n".join(outputs),
    }
    assert sum(len(text) for text in texts.values()) > 1000, "the scan would prove nothing"
    for name, text in texts.items():
        assert CANARY not in text, f"the API key leaked into {name}"
    assert len(list(home.rglob("*.parquet"))) > 20
    assert list((home / "quarantine").rglob("*.body")), "the fault mix should quarantine bodies"
    assert list(dagster_dir.rglob("*.db")), "the Dagster instance should have written storage"
    assert occurrences(home, CANARY) == []
    assert occurrences(dagster_dir, CANARY) == []
