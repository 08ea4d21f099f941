"""Soak variants run only when asked for (``make soak`` passes ``-m soak``).

``make test`` runs plain ``pytest``; without this hook the soak-sized parametrisations would run
there too, since a marker alone does not deselect anything.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in (config.getoption("markexpr", default="") or ""):
        return
    skip = pytest.mark.skip(reason="full-size reliability run: use make soak (pytest -m soak)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
