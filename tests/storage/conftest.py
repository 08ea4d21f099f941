from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import Warehouse


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    opened = Warehouse.open(tmp_path / "home")
    yield opened
    opened.close()
