"""Importing a warehouse of termstore's previous on-disk layout: packed days and loose records
become the lake's responses and rows, each exactly once, as if they had been ingested; a damaged
record stops the CLI with one line saying which file and what to do."""

from __future__ import annotations

import gzip
import re
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from pipelines.cli import app, main
from storage import Warehouse, ingest_outcomes
from storage.bulk import FetchedBody, bulk_ingest
from storage.errors import ArchiveCorruptError
from storage.legacy import is_legacy_home, legacy_bodies, legacy_days
from storage.schemas import key_stamp
from tests.storage.helpers import BASE_TIME, ORDER, fetched, open_local, outcome, tables

NEXT_DAY = BASE_TIME + timedelta(days=1)
PACKED = {"BTCUSDT": range(3), "SOLUSDT": range(2)}
"""Minutes of BASE_TIME's day packed per symbol."""
LOOSE = {
    "BTCUSDT": [(BASE_TIME, m) for m in (1, 3, 4)],
    "ETHUSDT": [(NEXT_DAY, m) for m in range(2)],
}
"""(day's base instant, minute) of each loose record; BTC minute 1 is also in the pack."""
COMPARED = tuple(name for name in ORDER if name != "hourly_sample")


def _at(base: datetime, minute: int) -> datetime:
    return base + timedelta(minutes=minute)


def _fetch_json(item: FetchedBody) -> str:
    return orjson.dumps(item.fetch.to_json_dict()).decode()


def write_pack(home: Path, symbol: str, minutes: range) -> None:
    items = [fetched(symbol, _at(BASE_TIME, minute)) for minute in minutes]
    frame = pl.DataFrame(
        {
            "computed_at": [_at(BASE_TIME, minute) for minute in minutes],
            "fetch": [_fetch_json(item) for item in items],
            "body": [item.raw for item in items],
        },
        schema={"computed_at": pl.Datetime("us", "UTC"), "fetch": pl.String, "body": pl.Binary},
    )
    path = home / "archive" / symbol / f"{BASE_TIME.date()}.pack.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)


def write_record(home: Path, symbol: str, computed_at: datetime) -> Path:
    item = fetched(symbol, computed_at)
    header = {
        "format": 1,
        "symbol": symbol,
        "computed_at": computed_at.isoformat(),
        "fetch": item.fetch.to_json_dict(),
    }
    path = home / "archive" / symbol / str(computed_at.date()) / f"{key_stamp(computed_at)}.rec.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(orjson.dumps(header) + b"\n" + item.raw))
    return path


def legacy_home(root: Path) -> Path:
    """A previous-layout home: packed and loose archive, plus tiers the import must ignore."""
    home = root / "legacy"
    for symbol, minutes in PACKED.items():
        write_pack(home, symbol, minutes)
    for symbol, records in LOOSE.items():
        for base, minute in records:
            write_record(home, symbol, _at(base, minute))
    for ignored in ("hot/snapshots/BTCUSDT/2026-03-02/x.parquet", "state/tiers.json"):
        (home / ignored).parent.mkdir(parents=True, exist_ok=True)
        (home / ignored).write_bytes(b"not read by the import")
    return home


def expected_keys() -> set[tuple[str, datetime]]:
    keys = {(s, _at(BASE_TIME, m)) for s, minutes in PACKED.items() for m in minutes}
    return keys | {(s, _at(base, m)) for s, records in LOOSE.items() for base, m in records}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """The same responses stored by live ticks."""
    warehouse = open_local(tmp_path_factory.mktemp("reference") / "home")
    for symbol, at in sorted(expected_keys(), key=lambda key: key[1]):
        ingest_outcomes(warehouse, {symbol: outcome(symbol, at)})
    yield warehouse
    warehouse.close()


def assert_same_lake(got: Warehouse, expected: Warehouse) -> None:
    want = tables(expected, COMPARED)
    for name, frame in tables(got, COMPARED).items():
        assert_frame_equal(frame, want[name], check_exact=True)


def test_every_response_is_imported_once_with_the_rows_ingest_gives(
    tmp_path: Path, reference: Warehouse
) -> None:
    source = legacy_home(tmp_path)
    assert is_legacy_home(source) and not is_legacy_home(tmp_path)
    assert legacy_days(source) == [
        ("BTCUSDT", "2026-03-02"),
        ("ETHUSDT", "2026-03-03"),
        ("SOLUSDT", "2026-03-02"),
    ]
    lake = open_local(tmp_path / "home")
    reports = [bulk_ingest(lake, legacy_bodies(source, s, d)) for s, d in legacy_days(source)]
    statuses = [o.status for report in reports for o in report.outcomes]
    assert statuses.count("stored") == len(expected_keys()) and statuses.count("quarantined") == 0
    assert statuses.count("duplicate") == 1  # BTC minute 1, packed and loose

    responses = lake.sql("SELECT symbol, computed_at, body FROM responses")
    assert responses.height == len(expected_keys())
    assert set(responses.select("symbol", "computed_at").iter_rows()) == expected_keys()
    for symbol, at, raw in responses.iter_rows():
        assert raw == fetched(symbol, at).raw
    assert_same_lake(lake, reference)
    lake.close()


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["import", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


def test_termstore_import_legacy_imports_once_and_again_changes_nothing(
    tmp_path: Path, reference: Warehouse
) -> None:
    source = legacy_home(tmp_path)
    home = tmp_path / "home"
    code, output = _cli(str(source), "--legacy", "--home", str(home))
    assert code == 0, output
    stored = len(expected_keys())
    assert f"stored: {stored}; duplicates: 1; quarantined: 0" in output
    lake = open_local(home)
    assert_same_lake(lake, reference)
    before = tables(lake)

    code, output = _cli(str(source), "--legacy", "--home", str(home))
    assert code == 0, output
    assert f"stored: 0; duplicates: {stored + 1}; quarantined: 0" in output
    for name, frame in tables(lake).items():
        assert_frame_equal(frame, before[name], check_exact=True)
    lake.close()


def test_a_directory_that_is_no_previous_layout_is_refused(tmp_path: Path) -> None:
    code, output = _cli(str(tmp_path), "--legacy", "--home", str(tmp_path / "home"))
    assert code == 2 and "no archive/ directory" in output


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["termstore", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0)


def test_a_damaged_record_stops_the_import_with_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = legacy_home(tmp_path)
    damaged = write_record(source, "BTCUSDT", _at(BASE_TIME, 9))
    damaged.write_bytes(b"\x1f\x8b not really gzip")
    home = tmp_path / "home"

    code = _main(monkeypatch, "import", "--legacy", str(source), "--home", str(home))

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert str(damaged) in err and "move the file aside" in err
    with pytest.raises(ArchiveCorruptError, match=re.escape(str(damaged))):
        list(legacy_bodies(source, "BTCUSDT", str(BASE_TIME.date())))

    damaged.rename(tmp_path / "set-aside.rec.gz")
    assert _main(monkeypatch, "import", "--legacy", str(source), "--home", str(home)) == 0
    lake = open_local(home)
    assert lake.sql("SELECT count(*) FROM responses").item() == len(expected_keys())
    lake.close()


def test_a_damaged_pack_is_named(tmp_path: Path) -> None:
    source = legacy_home(tmp_path)
    pack = source / "archive" / "SOLUSDT" / f"{BASE_TIME.date()}.pack.parquet"
    pack.write_bytes(b"not parquet")
    with pytest.raises(ArchiveCorruptError, match=re.escape(str(pack))) as caught:
        list(legacy_bodies(source, "SOLUSDT", str(BASE_TIME.date())))
    assert "move the file aside" in caught.value.advice
