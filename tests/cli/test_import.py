"""``termstore import`` (bulk import of an NDJSON file of captured bodies), and the lake's
history from the command line: ``termstore sql --as-of`` and ``termstore maintain``."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from storage import Warehouse
from storage.lake_config import CATALOG_ENV, DATA_PATH_ENV, HOME_ENV
from tests.support.bodies import summary_document
from tests.support.dagster_ui import BIN

runner = CliRunner()
START = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _local_lake_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every lake here is the default local one under --home, whatever the shell exports."""
    for name in (HOME_ENV, CATALOG_ENV, DATA_PATH_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def document(symbol: str, minute: int) -> dict[str, object]:
    return summary_document(symbol, computed_at=START + timedelta(minutes=minute))


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def run(*args: str) -> tuple[int, str]:
    """Exit code and output (stderr included) with rich's wrapping folded away."""
    result = runner.invoke(app, ["import", *args])
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


def test_a_file_is_imported_and_a_line_that_is_not_json_is_quarantined(tmp_path: Path) -> None:
    good = [orjson.dumps(document("BTCUSDT", minute)) for minute in range(3)]
    source = write_lines(tmp_path / "bodies.ndjson", [good[0], b"{truncated", b"", *good[1:]])
    home = tmp_path / "home"

    code, output = run(str(source), "--symbol", "btcusdt", "--home", str(home))

    assert code == 1, output
    assert "stored: 3; duplicates: 0; quarantined: 1" in output
    assert "line 2: not_json: response body is not valid JSON" in output
    with Warehouse.open(home) as warehouse:
        assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 3
        quarantined = warehouse.sql("SELECT quarantine_id, symbol, kind, body FROM quarantine")
        ((quarantine_id, symbol, kind, body),) = quarantined.rows()
        assert (symbol, kind, body) == ("BTCUSDT", "not_json", b"{truncated")
        assert f"(kept as quarantine_id {quarantine_id})" in output
        # Line 2 (the bad one) keeps its own ingest-log row, stamped from the import's start,
        # and names its quarantine row.
        log = warehouse.sql(
            "SELECT outcome, count(*), max(quarantine_id) FROM ingest_log GROUP BY 1 ORDER BY 1"
        )
        assert log.rows() == [("not_json", 1, quarantine_id), ("stored", 3, None)]


def test_fetch_metadata_is_synthesised_from_the_bodys_timestamp(tmp_path: Path) -> None:
    bodies = [document(symbol, 0) for symbol in ("ETHUSDT", "SOLUSDT")]
    source = write_lines(tmp_path / "bodies.ndjson", [orjson.dumps(body) for body in bodies])
    home = tmp_path / "home"
    code, output = run(str(source), "--home", str(home))
    assert code == 0, output
    warehouse = Warehouse.open(home)
    log = warehouse.sql(
        "SELECT symbol, started_at, finished_at, latency_s, http_status, attempts, outcome "
        "FROM ingest_log ORDER BY symbol"
    )
    timestamp = datetime.fromisoformat(str(bodies[0]["meta"]["timestamp"]))  # type: ignore[index]
    assert log.rows() == [
        ("ETHUSDT", timestamp, timestamp, 0.0, 200, 1, "stored"),
        ("SOLUSDT", timestamp, timestamp, 0.0, 200, 1, "stored"),
    ]
    fetched = warehouse.sql("SELECT fetch_started_at, http_status FROM snapshots").rows()
    assert fetched == [(timestamp, 200), (timestamp, 200)]
    warehouse.close()


def test_importing_the_same_file_again_stores_nothing_new(tmp_path: Path) -> None:
    lines = [orjson.dumps(document("HYPEUSDT", minute)) for minute in range(4)]
    source = write_lines(tmp_path / "bodies.ndjson", lines)
    home = tmp_path / "home"
    assert run(str(source), "--home", str(home))[0] == 0
    code, output = run(str(source), "--home", str(home))
    assert code == 0, output
    assert "stored: 0; duplicates: 4; quarantined: 0" in output


def test_lines_naming_no_supported_symbol_are_reported_and_the_rest_imported(
    tmp_path: Path,
) -> None:
    foreign = document("BTCUSDT", 0)
    foreign["meta"]["symbol"] = "DOGEUSDT"  # type: ignore[index]
    anonymous = document("BTCUSDT", 1)
    del anonymous["meta"]["symbol"]  # type: ignore[attr-defined]
    lines = [orjson.dumps(foreign), b"not json", orjson.dumps(anonymous)]
    lines.append(orjson.dumps(document("BTCUSDT", 2)))
    source = write_lines(tmp_path / "bodies.ndjson", lines)
    code, output = run(str(source), "--home", str(tmp_path / "home"))
    assert code == 1
    assert "line 1 not imported: the body names symbol 'DOGEUSDT'" in output
    assert "line 2 not imported: the line is not JSON" in output
    assert "line 3 not imported: the body has no meta.symbol" in output
    assert "Pass --symbol" in output
    assert "stored: 1; duplicates: 0; quarantined: 0" in output


def test_clear_errors_for_a_missing_file_and_an_unsupported_symbol(tmp_path: Path) -> None:
    code, output = run(str(tmp_path / "nowhere.ndjson"), "--home", str(tmp_path / "home"))
    assert code == 2
    assert "nowhere.ndjson: it does not exist; give an NDJSON file" in output
    source = write_lines(tmp_path / "bodies.ndjson", [orjson.dumps(document("BTCUSDT", 0))])
    code, output = run(str(source), "--symbol", "DOGEUSDT", "--home", str(tmp_path / "home"))
    assert code == 2
    assert (
        "unsupported symbol 'DOGEUSDT'; choose from BTCUSDT, ETHUSDT, SOLUSDT, HYPEUSDT" in output
    )


def import_minutes(tmp_path: Path, home: Path, minutes: range) -> None:
    lines = [orjson.dumps(document("BTCUSDT", minute)) for minute in minutes]
    source = write_lines(tmp_path / f"bodies-{minutes.start}.ndjson", lines)
    code, output = run(str(source), "--home", str(home))
    assert code == 0, output


def snapshot_times(home: Path) -> list[datetime]:
    with Warehouse.open(home) as warehouse:
        times = warehouse.sql(
            "SELECT snapshot_time FROM ducklake_snapshots('lake') ORDER BY snapshot_id"
        )
    return list(times["snapshot_time"])


def sql_csv(home: Path, query: str, *options: str) -> tuple[int, str]:
    result = runner.invoke(app, ["sql", query, "--format", "csv", "--home", str(home), *options])
    return result.exit_code, result.output


def test_sql_as_of_an_instant_before_the_second_import_returns_the_older_rows(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    import_minutes(tmp_path, home, range(0, 2))
    first_import = snapshot_times(home)
    import_minutes(tmp_path, home, range(2, 5))
    second_import = snapshot_times(home)[len(first_import) :]
    assert second_import, "the second import committed nothing"
    between = first_import[-1] + (second_import[0] - first_import[-1]) / 2
    query = "SELECT count(*) AS n, max(computed_at) AS newest FROM snapshots"

    assert sql_csv(home, query)[1].splitlines()[1].startswith("5,2026-03-02T12:04:30")
    for instant in (between.isoformat(), between.replace(tzinfo=None).isoformat()):
        code, output = sql_csv(home, query, "--as-of", instant)
        assert code == 0, output
        assert output.splitlines()[1].startswith("2,2026-03-02T12:01:30"), (instant, output)
    code, output = sql_csv(home, query, "--as-of", second_import[-1].isoformat())
    assert output.splitlines()[1].startswith("5,"), output


def test_sql_as_of_a_value_that_is_not_a_time_says_how_to_write_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, output = sql_csv(home, "SELECT 1", "--as-of", "last tuesday")
    assert code == 2
    assert "--as-of 'last tuesday' is not a time; use ISO 8601, e.g. 2026-03-02T12:00:00Z" in output
    assert not home.exists()


def test_sql_as_of_before_the_lake_existed_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    import_minutes(tmp_path, home, range(0, 1))
    # A narrow terminal (no COLUMNS): the error line must not be wrapped all the same.
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    query = "SELECT count(*) FROM snapshots"
    result = subprocess.run(
        [str(BIN / "termstore"), "sql", query, "--home", str(home), "--as-of", "2001-01-01T00:00Z"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: the lake has no snapshot at 2001-01-01T00:00:00+00:00"), line
    assert "TERMSTORE_SNAPSHOT_RETENTION_DAYS" in line and "Traceback" not in result.stderr


def test_maintain_prints_its_steps_and_merges_a_days_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    import_minutes(tmp_path, home, range(0, 2))
    import_minutes(tmp_path, home, range(2, 4))

    result = runner.invoke(app, ["maintain", "--home", str(home)])

    assert result.exit_code == 0, result.output
    steps = ("merge_adjacent_files", "rewrite_data_files", "expire_snapshots")
    for step in (*steps, "cleanup_old_files", "delete_orphaned_files"):
        assert re.search(rf"{step}\s+\|\s+\d+\.\d{{3}}\s+\|\s+\d+", result.output), (
            step,
            result.output,
        )
    counted = re.search(r"data files (\d+) → (\d+)", result.output)
    assert counted is not None, result.output
    # Each import wrote one file per table for the day; merging leaves one per table and month.
    assert int(counted[2]) < int(counted[1])
    assert sql_csv(home, "SELECT count(*) AS n FROM snapshots")[1].splitlines()[1] == "4"
