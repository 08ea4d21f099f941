"""The README's SQL examples, run as printed against a small lake written by real ticks: each
returns rows, and every one listing expiries lists them in date order (not as text)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from storage import Warehouse, ingest_outcomes
from tests.storage.helpers import BASE_TIME, tick

README = Path(__file__).parents[2] / "README.md"


def _examples() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(), flags=re.DOTALL)
    [examples] = [block for block in blocks if "-- the term structure right now" in block]
    return [statement.strip() for statement in examples.split(";") if statement.strip()]


def _dates_in_listed_order(frame: pl.DataFrame, dates: dict[str, date]) -> list[date]:
    return [dates[token] for token in frame["expiry"].unique(maintain_order=True)]


def test_the_readme_sql_examples_return_rows_with_expiries_in_date_order(
    warehouse: Warehouse,
) -> None:
    # Minutes 0, 1 and 3: minute 2 is a gap for ingest_gaps to report.
    for minutes in (0, 1, 3):
        ingest_outcomes(warehouse, tick(BASE_TIME + timedelta(minutes=minutes)))
    listed = warehouse.sql("SELECT DISTINCT expiry, expiry_date FROM expiries")
    dates = dict(zip(listed["expiry"], listed["expiry_date"], strict=True))
    examples = _examples()
    assert len(examples) >= 7
    for example in examples:
        frame = warehouse.sql(example)
        assert frame.height > 0, f"no rows: {example}"
        if "expiry" not in frame.columns or frame["expiry"].n_unique() < 2:
            continue
        parts = frame.partition_by("symbol") if "symbol" in frame.columns else [frame]
        for rows in parts:
            order = _dates_in_listed_order(rows, dates)
            assert order == sorted(order), f"expiries not in date order: {example}"
