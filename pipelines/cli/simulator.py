"""``termstore simulator``: serve the synthetic BackQuant v2 API in the foreground."""

from __future__ import annotations

import ipaddress
import socket
from datetime import datetime
from typing import Annotated

import typer

from pipelines.cli.app import app, console, err_console


def _parse_start(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        err_console.print(
            f"[red]--start {value!r} is not an ISO 8601 instant[/]; write e.g. 2026-03-02T12:00:00Z"
        )
        raise typer.Exit(2) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def simulator(
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8787,
    host: Annotated[
        str, typer.Option(help="Interface to bind (loopback by default).")
    ] = "127.0.0.1",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic market.")] = 7,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="API key the server accepts (X-API-Key). [default: the simulator's demo key, "
            "printed at start]",
            show_default=False,
        ),
    ] = None,
    faults: Annotated[
        str,
        typer.Option(
            help="Fault spec, e.g. '500@10%; ETHUSDT:seq=burst(1),ok' (docs/simulator.md)."
        ),
    ] = "",
    start: Annotated[
        str | None, typer.Option(help="Start the clock at this ISO instant instead of now.")
    ] = None,
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 1.0,
    burst: Annotated[int, typer.Option(help="Burst limit per key per wall-clock minute.")] = 120,
    quota: Annotated[int, typer.Option(help="Monthly request quota per key.")] = 1_000_000,
) -> None:
    """Serve the synthetic BackQuant v2 API (expiry summary, expiries, status, meta, health)."""
    import uvicorn

    from backquant.config import API_KEY_ENV, BASE_URL_ENV, ApiKey
    from backquant.simulator import SimulatorConfig, create_app
    from backquant.simulator.config import DEFAULT_SIMULATOR_KEY, SimulatorConfigError
    from backquant.simulator.faults import FaultSpecError

    key = DEFAULT_SIMULATOR_KEY if key is None else key
    try:
        config = SimulatorConfig(
            seed=seed,
            api_key=key,
            faults=faults,
            burst_limit_per_minute=burst,
            monthly_quota=quota,
            start=_parse_start(start),
            speed=speed,
        )
    except (SimulatorConfigError, FaultSpecError) as exc:
        err_console.print(f"[red]cannot start the simulator:[/] {exc}")
        raise typer.Exit(2) from None
    if not _is_loopback(host):
        err_console.print(
            f"[yellow]warning:[/] binding {host}, not loopback: anyone who can reach this "
            "machine can use the simulator."
        )
    _check_free(host, port)
    shown_key = key if key == DEFAULT_SIMULATOR_KEY else ApiKey(key).redacted
    console.print(
        f"BackQuant simulator on http://{host}:{port} (seed {seed}, "
        f"clock {'from ' + start if start else 'wall'} × {speed:g}, "
        f"faults: {faults or 'none'})\n"
        f"  export {BASE_URL_ENV}=http://{host}:{port}\n"
        f"  export {API_KEY_ENV}={shown_key}\n"
        "Press Ctrl+C to stop."
    )
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning", access_log=False)


def _check_free(host: str, port: int) -> None:
    """Fail with a clear message before uvicorn does so with a log line."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            err_console.print(
                f"[red]cannot listen on {host}:{port}:[/] {exc.strerror}. "
                "Pick another --port or stop what is using it."
            )
            raise typer.Exit(1) from None
