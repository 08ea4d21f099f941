from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import Warehouse
from storage.lake_config import CATALOG_ENV, DATA_PATH_ENV, HOME_ENV, RETENTION_ENV
from tests.storage.helpers import open_local


@pytest.fixture(autouse=True)
def _local_lake_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every lake here is the default local one under tmp_path, whatever the shell exports
    (the CLI reads the environment)."""
    for name in (HOME_ENV, CATALOG_ENV, DATA_PATH_ENV, RETENTION_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    opened = open_local(tmp_path / "home")
    yield opened
    opened.close()
