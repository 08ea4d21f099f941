"""The Dagster instance directory (``DAGSTER_HOME``) that ``termstore dev`` runs in.

``python -m pipelines.dagster_instance DIR`` prepares it in a process of its own, so the
``termstore dev`` wrapper, which only starts and waits on its children, never imports Dagster.
On failure it prints one line (the error's type and first line) and exits 1.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Final

PROJECT_ROOT: Final[Path] = Path(__file__).resolve().parents[1]
INSTANCE_TEMPLATE: Final[Path] = PROJECT_ROOT / "dagster-instance.yaml"
"""Copied to ``$DAGSTER_HOME/dagster.yaml``. Not named ``dagster.yaml``: ``dagster dev`` warns
that a ``dagster.yaml`` in its working directory "will not be used" whenever DAGSTER_HOME is
elsewhere, which is always the case here."""


def prepare_dagster_home(dagster_home: Path) -> None:
    """A Dagster instance directory ready for a webserver and a daemon started together: our
    instance template as its dagster.yaml when it has none, and its SQLite storage created now,
    by one process. Created on first use instead, by the webserver, the daemon and a code server
    at once, its schedule database can be stamped twice, and every process then refuses to load
    it ("Version table 'alembic_version' has more than one head present",
    dagster-io/dagster#27390)."""
    from dagster import DagsterInstance

    dagster_home.mkdir(parents=True, exist_ok=True)
    if not (dagster_home / "dagster.yaml").exists():
        shutil.copyfile(INSTANCE_TEMPLATE, dagster_home / "dagster.yaml")
    with DagsterInstance.from_config(str(dagster_home)):
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m pipelines.dagster_instance DAGSTER_HOME", file=sys.stderr)
        return 2
    try:
        prepare_dagster_home(Path(argv[0]))
    except Exception as exc:  # any way Dagster fails to open its own storage
        first_line = next(iter(str(exc).splitlines()), "")
        print(f"{type(exc).__name__}: {first_line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
