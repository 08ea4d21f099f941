"""``expiries`` as the view of ``expiry_rows``: every published value comes back bit for bit,
and the derived columns take no room where their formula gives them back."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from backquant.validation import parse_expiry_summary
from storage import Warehouse, ingest_outcomes, rebuild_day
from storage.bulk import bulk_ingest
from storage.derived import ALL_KEPT, DERIVED_BITS, DERIVED_FORMULAS, EXPIRY_ROWS, KEPT_COLUMN
from storage.ingest import fetch_meta
from storage.normalise import normalise
from storage.schemas import TABLE_SORT_KEYS
from tests.storage.helpers import BASE_TIME, body, fetched, outcome

OFF_FORMULA = {
    # A skew that is not put − call, a PCR the API left out although both OIs are there, a
    # total that is not call + put, a notional and a skew left out.
    "data.expiries.0.skew_25d": 99.123456789,
    "data.expiries.1.pcr": None,
    "data.expiries.2.total_oi": 1234.56789,
    "data.expiries.3.notional_oi_usd": None,
    "data.expiries.3.skew_25d": None,
    # A published -0.0 whose formula gives 0.0: SQL calls them equal, the sign is kept anyway.
    "data.expiries.1.put_25d_iv": 50.0,
    "data.expiries.1.call_25d_iv": 50.0,
    "data.expiries.1.skew_25d": -0.0,
}


def _expected(raw: bytes) -> pl.DataFrame:
    result = outcome("BTCUSDT", BASE_TIME, raw).result
    assert result is not None
    frames = normalise(parse_expiry_summary(raw), fetch_meta("BTCUSDT", result))
    return frames.expiries.sort("position")


def _read(warehouse: Warehouse) -> tuple[pl.DataFrame, list[int], tuple[int, int]]:
    """BTC's expiries, the mask of BTC's rows, and (rows with a clear mask, derived values
    stored in them)."""
    stored = warehouse.sql("SELECT * FROM expiries WHERE symbol = 'BTCUSDT' ORDER BY position")
    kept = warehouse.sql(
        f"SELECT {KEPT_COLUMN} FROM {EXPIRY_ROWS} WHERE symbol = 'BTCUSDT' ORDER BY position"
    )
    on_formula = warehouse.sql(
        "SELECT count(*) AS rows, count(*) FILTER (WHERE "
        + " OR ".join(f"{name} IS NOT NULL" for name in DERIVED_FORMULAS)
        + f") AS stored FROM {EXPIRY_ROWS} WHERE {KEPT_COLUMN} = 0"
    ).row(0)
    return stored, kept[KEPT_COLUMN].to_list(), on_formula


def test_every_published_value_comes_back_bit_for_bit(tmp_path: Path) -> None:
    raw = body("BTCUSDT", BASE_TIME, **OFF_FORMULA)
    later = BASE_TIME + timedelta(minutes=1)
    with Warehouse.open(tmp_path / "home") as warehouse:
        ingest_outcomes(warehouse, {"BTCUSDT": outcome("BTCUSDT", BASE_TIME, raw)})
        ingest_outcomes(warehouse, {"ETHUSDT": outcome("ETHUSDT", later)})
        ticked = _read(warehouse)
        rebuild_day(warehouse, BASE_TIME.date())
        rebuilt = _read(warehouse)

    expected = _expected(raw)
    assert expected["skew_25d"][0] == 99.123456789 and expected["pcr"][1] is None
    assert math.copysign(1.0, expected["skew_25d"][1]) == -1.0
    # A tick stores every derived value as it came.
    assert_frame_equal(ticked[0], expected, check_exact=True)
    assert ticked[1:] == ([ALL_KEPT] * 4, (0, 0))
    # The rebuild stores only what its formula does not give back, and returns the same.
    assert_frame_equal(rebuilt[0], expected, check_exact=True)
    assert math.copysign(1.0, rebuilt[0]["skew_25d"][1]) == -1.0
    bits = DERIVED_BITS
    assert rebuilt[1] == [
        bits["skew_25d"],
        bits["pcr"] | bits["skew_25d"],
        bits["total_oi"],
        bits["skew_25d"] | bits["notional_oi_usd"],
    ]
    # ETH's four rows follow every formula (years_to_expiry included, bit for bit with
    # storage.normalise): nothing derived is stored for them.
    assert rebuilt[2] == (4, 0)


def test_expiries_is_a_view_that_no_one_writes_to(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "home") as warehouse:
        warehouse.initialise()
        kinds = dict(
            warehouse.sql(
                "SELECT table_name, table_type FROM information_schema.tables "
                f"WHERE table_name IN ('expiries', '{EXPIRY_ROWS}')"
            ).rows()
        )
    assert kinds == {"expiries": "VIEW", EXPIRY_ROWS: "BASE TABLE"}


def test_an_import_writes_expiry_rows_in_key_order(tmp_path: Path) -> None:
    minutes = [BASE_TIME + timedelta(minutes=offset) for offset in range(3)]
    # Minute by minute, every symbol in turn: the order bodies arrive in, not the key order.
    bodies = [fetched(symbol, at) for at in minutes for symbol in ("ETHUSDT", "BTCUSDT")]
    with Warehouse.open(tmp_path / "home") as warehouse:
        bulk_ingest(warehouse, bodies)
        (path,) = warehouse.sql(
            f"SELECT data_file FROM ducklake_list_files('lake', '{EXPIRY_ROWS}')"
        )["data_file"]
        written = warehouse.sql(f"SELECT symbol, computed_at, position FROM read_parquet('{path}')")
    assert written.height == 6 * 4
    assert written.equals(written.sort(TABLE_SORT_KEYS["expiries"]))
