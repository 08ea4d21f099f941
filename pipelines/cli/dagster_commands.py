"""``termstore demo`` and ``termstore dev``: the two ways to see termstore run in Dagster.

``dev`` only starts and waits on its children (the simulator, ``dagster dev``), so it imports
neither Dagster nor the warehouse: it stays a small process for as long as the UI runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from pipelines.cli.app import app, console, print_frame
from pipelines.dagster_instance import PROJECT_ROOT, prepare_dagster_home

__all__ = ["PROJECT_ROOT", "demo", "dev", "prepare_dagster_home"]

API_KEY_ENV: Final[str] = "BACKQUANT_API_KEY"
BASE_URL_ENV: Final[str] = "BACKQUANT_BASE_URL"
SIMULATED_ENV: Final[str] = "TERMSTORE_SIMULATED"
SIMULATOR_KEY: Final[str] = "bq_test_simulator_key_000000000000"
"""backquant.config's, pipelines.settings' and backquant.simulator.config's values (a test checks
they agree): importing those modules would load httpx, numpy and scipy into the wrapper for four
strings."""
SUPERSEDED_WARNING: Final[str] = "ignore:Function `dev_command` is superseded:FutureWarning"
"""Dagster 1.13 marks ``dagster dev`` superseded by ``dg dev``, which needs a dg project
layout termstore does not use; ``dagster dev`` works as documented, so its warning is noise."""


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
    from storage import Warehouse

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
    with Warehouse.open(config=result.lake) as warehouse:
        png = render_charts(warehouse, names=("oi_by_expiry",))["oi_by_expiry"]
    plot.write_bytes(png)
    console.print(f"chart (OI by expiry, anchors marked): {plot.resolve()}")
    if keep is None:
        shutil.rmtree(home, ignore_errors=True)
        console.print(
            "The demo's warehouse was a throwaway home, now removed: pass --keep DIR to keep it "
            'and query it with termstore sql --home DIR/warehouse "..."'
        )
    else:
        console.print(f'warehouse: {result.home}  (termstore sql --home {result.home} "...")')


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
    problem = _prepare_in_child(dagster_home)
    if problem is not None:
        console.print(
            f"[red]the Dagster instance in {dagster_home} cannot be opened:[/] {problem}\n"
            "See docs/runbook.md, 'The code location does not load', or point --dagster-home "
            "(DAGSTER_HOME) at a new directory."
        )
        raise typer.Exit(1)
    env["DAGSTER_HOME"] = str(dagster_home)
    env.setdefault("TERMSTORE_HOME", str(PROJECT_ROOT / "warehouse"))
    children: list[subprocess.Popen[bytes]] = []
    if not env.get(API_KEY_ENV):
        sim_port = _free_port()
        children.append(
            _spawn(
                [sys.executable, "-m", "pipelines.cli", "simulator", "--port", str(sim_port)],
                env=env,
            )
        )
        env.update(
            {
                API_KEY_ENV: SIMULATOR_KEY,
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
    dagster = [
        *(sys.executable, "-W", SUPERSEDED_WARNING, "-m", "dagster", "dev"),
        *("-w", str(PROJECT_ROOT / "workspace.yaml")),
    ]
    # A SIGTERM (from a supervisor, or `kill`) must stop the children too, not orphan them;
    # so must an interrupt, even when a shell started this in the background with it ignored.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        children.append(
            _spawn([*dagster, "-h", "127.0.0.1", "-p", str(port)], env=env, cwd=PROJECT_ROOT)
        )
        children[-1].wait()
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            _stop_group(child)


def _spawn(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """``command`` in its own process group (so stopping it reaches all it starts), stopping on
    an interrupt whatever this process inherited: a shell starts background jobs with the
    interrupt ignored, and Dagster then ignores SIGTERM too (it maps SIGTERM to SIGINT's
    handler)."""
    return subprocess.Popen(  # noqa: S603 - our own entry points
        command,
        process_group=0,
        preexec_fn=_default_interrupt,  # safe: the wrapper runs no threads
        **options,
    )


def _default_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop_group(child: subprocess.Popen[bytes], grace_s: float = 40.0) -> None:
    """Stop ``child`` and every process it started (its own process group): an interrupt, as
    Ctrl-C would send (``dagster dev`` then stops its webserver, daemon and code server), up to
    ``grace_s`` for all of them to exit, then SIGKILL for whatever is left. Killing only
    ``dagster dev`` would leave its webserver running."""
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        child.poll()  # reaps the child itself once it exits
        try:
            os.killpg(child.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _prepare_in_child(dagster_home: Path) -> str | None:
    """Prepare the instance directory in a child process; its one-line error, or None."""
    done = subprocess.run(  # noqa: S603 - our own entry point
        [sys.executable, "-m", "pipelines.dagster_instance", str(dagster_home)],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {done.returncode}"


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
