"""The ``termstore`` command line. Each concern registers its commands from its own module."""

from __future__ import annotations

from rich.markup import escape

from pipelines.cli import bulk_import as _bulk_import
from pipelines.cli import dagster_commands as _dagster_commands
from pipelines.cli import doctor as _doctor
from pipelines.cli import research as _research
from pipelines.cli import simulator as _simulator
from pipelines.cli import warehouse as _warehouse
from pipelines.cli.app import app, err_console
from storage.errors import StorageError

__all__ = ["app", "main"]

_COMMAND_MODULES = (_bulk_import, _dagster_commands, _doctor, _research, _simulator, _warehouse)


def main() -> None:
    """Run the CLI; a warehouse failure prints its one-line message and advice, exit code 2."""
    try:
        app()
    except StorageError as error:
        # soft_wrap: one line whatever the terminal width, so logs and scripts see it whole.
        err_console.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
