"""``termstore doctor``: effective configuration (key redacted), key present, API reachable."""

from __future__ import annotations

import asyncio

import typer
from rich.table import Table

from backquant.client import fetch_health
from backquant.config import API_KEY_ENV, ClientConfig
from backquant.errors import BackQuantError, ConfigError
from pipelines.cli.app import app, console


def _status(ok: bool | None) -> str:
    return {True: "[green]ok[/]", False: "[red]FAIL[/]", None: "[yellow]skipped[/]"}[ok]


@app.command()
def doctor() -> None:
    """Show the effective configuration with the key redacted, and check key and reachability."""
    checks: list[tuple[str, bool | None, str]] = []
    try:
        config = ClientConfig.from_env()
    except ConfigError as exc:
        console.print(f"[red]configuration error:[/] {exc}")
        raise typer.Exit(2) from None

    settings = Table(title="Effective configuration", show_header=False)
    for name, value in config.describe().items():
        settings.add_row(name, value)
    console.print(settings)

    has_key = config.api_key is not None
    checks.append(
        (
            "API key present",
            has_key,
            "set" if has_key else f"{API_KEY_ENV} is not set (the simulator needs none)",
        )
    )
    checks.append(("/v2/health answers", *_health(config)))

    results = Table(title="Checks")
    for column in ("check", "status", "detail"):
        results.add_column(column)
    for name, ok, detail in checks:
        results.add_row(name, _status(ok), detail)
    console.print(results)
    if any(ok is False for _, ok, _ in checks):
        raise typer.Exit(1)


def _health(config: ClientConfig) -> tuple[bool, str]:
    try:
        body = asyncio.run(fetch_health(config))
    except BackQuantError as exc:
        return False, str(exc)
    data = body.get("data")
    status = data.get("status") if isinstance(data, dict) else body.get("status")
    return status == "ok", f"{config.base_url} says status={status!r}"
