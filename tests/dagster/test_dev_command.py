"""``termstore dev`` without a key: simulator + webserver + daemon, a SIMULATED UI, clean stop;
no misleading start-up output, no newsletter dialog, charts served to the asset page, and a
wrapper that loads none of what its children run."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest
from typer.testing import CliRunner

from assets.research import chart_metadata
from pipelines.cli import app
from pipelines.cli.dagster_commands import _spawn, _stop_group, prepare_dagster_home
from tests.support.dagster_ui import BIN, ROOT, free_port

ASSET_DESCRIPTIONS = '{"query": "{ assetNodes { assetKey { path } description } }"}'
SHOULD_SHOW_NUX = '{"query": "{ shouldShowNux }"}'
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
"""Bytes the webserver must hand back unchanged, as image/png."""
HEAVY_LIBRARIES = ("_duckdb", "polars", "cygrpc", "pyarrow")
"""Shared objects of DuckDB, polars, gRPC (Dagster) and Arrow: the wrapper must map none."""


def port_open(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
    except httpx.TransportError:
        return False
    return True


@pytest.mark.slow
def test_dev_without_key_serves_a_simulated_ui_and_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKQUANT_", "TERMSTORE_"))}
    env.update(DAGSTER_HOME=str(tmp_path / "dagster"), TERMSTORE_HOME=str(tmp_path / "wh"))
    log = (tmp_path / "dev.log").open("w+b")
    dev = subprocess.Popen(
        [str(BIN / "termstore"), "dev", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        descriptions = ""
        while time.monotonic() < deadline and "SIMULATED DATA" not in descriptions:
            time.sleep(1)
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/graphql",
                    content=ASSET_DESCRIPTIONS,
                    headers={"content-type": "application/json"},
                    timeout=5,
                )
                descriptions = response.text
            except httpx.TransportError:
                continue
        output = (tmp_path / "dev.log").read_text()
        assert "SIMULATED DATA" in descriptions, output
        assert "BACKQUANT_API_KEY is not set" in " ".join(output.split())
        # Nothing that tells the user something false or asks them to switch tools.
        assert "will not be used" not in output, output
        assert "superseded" not in output, output
        nux = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            content=SHOULD_SHOW_NUX,
            headers={"content-type": "application/json"},
            timeout=10,
        )
        assert nux.json()["data"]["shouldShowNux"] is False
        # A chart written as research_daily writes it is served where its Markdown points.
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            shown = chart_metadata(instance, tmp_path / "charts", "2026-03-02", {"skew_25d": PNG})
        url = str(shown["chart_skew_25d"].value).split("](", 1)[1].rstrip(")")
        served = httpx.get(f"http://127.0.0.1:{port}{url}", timeout=10)
        assert served.status_code == 200 and served.content == PNG
        assert served.headers["content-type"] == "image/png"
        # The wrapper only waits on its children: it loads none of their libraries.
        mapped = Path(f"/proc/{dev.pid}/maps").read_text()
        assert not [name for name in HEAVY_LIBRARIES if name in mapped], mapped
        announced = re.search(r"simulator\s+on\s+port\s+(\d+)", " ".join(output.split()))
        assert announced is not None, output
        simulator_port = int(announced[1])
        assert port_open(simulator_port)

        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=60) != 0
        for _ in range(30):
            if not port_open(port) and not port_open(simulator_port):
                break
            time.sleep(1)
        assert not port_open(port), "the webserver outlived termstore dev"
        assert not port_open(simulator_port), "the simulator outlived termstore dev"
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
        log.close()


def test_a_prepared_dagster_home_has_its_storage_created_once(tmp_path: Path) -> None:
    home = tmp_path / "dagster"
    prepare_dagster_home(home)
    template = (ROOT / "dagster-instance.yaml").read_text()
    assert (home / "dagster.yaml").read_text() == template
    # No dagster.yaml where `dagster dev` runs: it would say the file "will not be used".
    assert not (ROOT / "dagster.yaml").exists()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.nux_enabled is False
    for database in ("history/runs.db", "history/runs/index.db", "schedules/schedules.db"):
        with sqlite3.connect(home / database) as connection:
            heads = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        assert len(heads) == 1, (database, heads)
    # Preparing again keeps the instance (and a dagster.yaml the operator edited).
    (home / "dagster.yaml").write_text(template + "\n# edited\n")
    prepare_dagster_home(home)
    assert (home / "dagster.yaml").read_text().endswith("# edited\n")


def test_dev_with_a_broken_dagster_home_says_what_to_do(tmp_path: Path) -> None:
    home = tmp_path / "dagster"
    prepare_dagster_home(home)
    with sqlite3.connect(home / "schedules" / "schedules.db") as connection:
        connection.execute("INSERT INTO alembic_version VALUES ('a_second_head')")
    result = CliRunner().invoke(app, ["dev", "--dagster-home", str(home)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "cannot be opened" in message and "more than one head" in message
    assert "docs/runbook.md" in message and "Traceback" not in result.output


STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import signal, time; "
    "signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""
"""A process that ignores the interrupt and starts another that does too: what a ``dagster
dev`` whose webserver is slow to stop looks like to the wrapper."""


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for whoever inherited it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def test_stopping_a_child_stops_everything_it_started_after_the_grace() -> None:
    child = _spawn([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE)
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    assert not _gone(grandchild)

    _stop_group(child, grace_s=1.0)

    assert child.returncode == -signal.SIGKILL
    for _ in range(50):
        if _gone(grandchild):
            break
        time.sleep(0.1)
    assert _gone(grandchild), "the child's own child outlived the stop"


def test_a_child_that_stops_on_the_interrupt_is_not_killed_even_if_its_parent_ignores_it() -> None:
    # As when a shell starts `termstore dev` in the background: the interrupt ignored, which
    # a child would inherit.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        script = "import time; print('ready', flush=True); time.sleep(600)"
        child = _spawn([sys.executable, "-c", script], stdout=subprocess.PIPE)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"ready"

    _stop_group(child, grace_s=30.0)

    # Python ends an uncaught KeyboardInterrupt by the interrupt itself, not by SIGKILL.
    assert child.returncode == -signal.SIGINT
