"""The charts are valid PNGs of the documented size, and ``write_charts`` writes them."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

from assets.charts import CHART_NAMES, render_charts, write_charts
from assets.plots import PIXELS
from storage import Warehouse

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data[-8:-4] == b"IEND"
    return width, height


def test_every_chart_is_a_png_of_the_expected_size(
    research_warehouse: Warehouse, tmp_path: Path
) -> None:
    charts = render_charts(research_warehouse, at=datetime(2026, 3, 3, 9, tzinfo=UTC), days=7)
    assert set(charts) == set(CHART_NAMES)
    for png in charts.values():
        assert png_size(png) == PIXELS
        assert len(png) > 10_000
    paths = write_charts(charts, tmp_path / "plots", prefix="x-")
    assert sorted(p.name for p in paths) == sorted(f"x-{name}.png" for name in CHART_NAMES)
    assert all(png_size(p.read_bytes()) == PIXELS for p in paths)


def test_charts_of_an_empty_warehouse_still_render(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "empty") as warehouse:
        warehouse.initialise()
        charts = render_charts(warehouse, names=("term_structure", "oi_by_expiry"))
    assert {name: png_size(png) for name, png in charts.items()} == {
        "term_structure": PIXELS,
        "oi_by_expiry": PIXELS,
    }
