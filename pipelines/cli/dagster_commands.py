"""``termstore demo`` and ``termstore dev``: the two ways to see termstore run in Dagster."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from backquant.config import API_KEY_ENV, BASE_URL_ENV
from pipelines.cli.app import app, console, print_frame
from pipelines.settings import SIMULATED_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@app.command()
def demo(
    ticks: Annotated[int, typer.Option(min=2, max=60, help="How many ingest ticks to run.")] = 5,
    keep: Annotated[
        Path | None, typer.Option(help="Keep the demo warehouse in this directory.")
    ] = None,
    plot: Annotated[
        Path,
        typer.Option(help="Where to write the demo's chart (PNG); outside the throwaway home."),
    ] = Path("termstore-demo.png"),
) -> None:
    """Simulator + a few ticks through Dagster + the day's rebuild + lake maintenance + the term
    structure from SQL, ending with a PNG of open interest by expiry (anchors marked) for the
    four symbols."""
    from assets.charts import render_charts
    from pipelines.demo import run_demo
    from storage.warehouse import Warehouse

    started = time.perf_counter()
    home = keep or Path(tempfile.mkdtemp(prefix="termstore-demo-"))
    result = run_demo(home, ticks=ticks, say=console.print)
    for (symbol,), frame in result.term_structure.group_by("symbol", maintain_order=True):
        print_frame(f"{symbol} term structure (latest snapshot, SIMULATED)", frame.drop("symbol"))
    console.print(
        f"\n{result.ticks} ticks through Dagster ({', '.join(map(str, result.stored_per_tick))} "
        f"symbols stored per tick), {len(result.days)} day(s) rebuilt, data files merged "
        f"{result.data_files[0]} → {result.data_files[1]}, {result.history_rows} expiry rows in "
        f"SQL, in {time.perf_counter() - started:.1f} s. Data is SIMULATED."
    )
    console.print(f'warehouse: {result.home}  (termstore sql --home {result.home} "...")')
    with Warehouse.open(config=result.lake) as warehouse:
        png = render_charts(warehouse, names=("oi_by_expiry",))["oi_by_expiry"]
    plot.write_bytes(png)
    console.print(f"chart (OI by expiry, anchors marked): {plot.resolve()}")
    if keep is None:
        shutil.rmtree(home, ignore_errors=True)
        console.print("(throwaway home removed; pass --keep DIR to keep it)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare_dagster_home(dagster_home: Path) -> None:
    """A Dagster instance directory ready for a webserver and a daemon started together: our
    dagster.yaml when it has none, and its SQLite storage created now, by one process. Created
    on first use instead, by the webserver, the daemon and a code server at once, its schedule
    database can be stamped twice, and every process then refuses to load it ("Version table
    'alembic_version' has more than one head present", dagster-io/dagster#27390)."""
    from dagster import DagsterInstance

    dagster_home.mkdir(parents=True, exist_ok=True)
    if not (dagster_home / "dagster.yaml").exists():
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    with DagsterInstance.from_config(str(dagster_home)):
        pass


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Dagster webserver port.")] = 3000,
    dagster_home: Annotated[
        Path, typer.Option(envvar="DAGSTER_HOME", help="Dagster instance directory.")
    ] = PROJECT_ROOT / "dagster_home",
) -> None:
    """Dagster webserver + daemon; without a key, the simulator too, and the UI says so."""
    env = dict(os.environ)
    dagster_home = dagster_home.resolve()
    try:
        prepare_dagster_home(dagster_home)
    except Exception as exc:  # any way Dagster fails to open its own storage
        first_line = next(iter(str(exc).splitlines()), "")
        console.print(
            f"[red]the Dagster instance in {dagster_home} cannot be opened:[/] "
            f"{type(exc).__name__}: {first_line}\n"
            "See docs/runbook.md, 'The code location does not load', or point --dagster-home "
            "(DAGSTER_HOME) at a new directory."
        )
        raise typer.Exit(1) from None
    env["DAGSTER_HOME"] = str(dagster_home)
    env.setdefault("TERMSTORE_HOME", str(PROJECT_ROOT / "warehouse"))
    children: list[subprocess.Popen[bytes]] = []
    if not env.get(API_KEY_ENV):
        from backquant.simulator.config import DEFAULT_SIMULATOR_KEY

        sim_port = _free_port()
        children.append(
            subprocess.Popen(  # noqa: S603 - our own entry point
                [sys.executable, "-m", "pipelines.cli", "simulator", "--port", str(sim_port)],
                env=env,
            )
        )
        env.update(
            {
                API_KEY_ENV: DEFAULT_SIMULATOR_KEY,
                BASE_URL_ENV: f"http://127.0.0.1:{sim_port}",
                SIMULATED_ENV: "1",
            }
        )
        console.print(
            f"[yellow]{API_KEY_ENV} is not set: serving SIMULATED data from the local simulator "
            f"on port {sim_port}. Export a key to use the real API.[/]"
        )
    console.print(
        f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={dagster_home}, "
        f"TERMSTORE_HOME={env['TERMSTORE_HOME']}); turn on 'ingest_every_minute' under Automation."
    )
    dagster = [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml")]
    # A SIGTERM (from a supervisor, or `kill`) must stop the children too, not orphan them.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        children.append(
            subprocess.Popen(  # noqa: S603
                [*dagster, "-h", "127.0.0.1", "-p", str(port)], env=env, cwd=PROJECT_ROOT
            )
        )
        children[-1].wait()
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
