"""``termstore import``: bulk import of an NDJSON file of captured bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from typer.testing import CliRunner

from pipelines.cli import app
from storage import Warehouse
from tests.support.bodies import summary_document

runner = CliRunner()
START = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)


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
    assert "not_json" in output and "response body is not valid JSON" in output
    warehouse = Warehouse.open(home)
    assert warehouse.sql("SELECT count(*) FROM snapshots").item() == 3
    (quarantined,) = (home / "quarantine" / "BTCUSDT").rglob("*.body")
    assert quarantined.read_bytes() == b"{truncated"
    # Line 2 (the bad one) keeps its own ingest-log row, stamped from the import's start.
    log = warehouse.sql("SELECT outcome, count(*) FROM ingest_log GROUP BY 1 ORDER BY 1")
    assert dict(log.iter_rows()) == {"not_json": 1, "stored": 3}
    warehouse.close()


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
