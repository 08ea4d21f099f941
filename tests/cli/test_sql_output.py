"""``termstore sql`` output a person reads: a table when the columns fit the terminal, one
``column | value`` block per row when they do not; numbers rounded for display only, the
machine formats exact."""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assets.display import display_number, display_value
from pipelines.cli import app, main
from pipelines.cli.tables import Result, render
from storage import Warehouse, ingest_outcomes
from tests.storage.helpers import BASE_TIME, tick
from tests.support.simulator import SIM_START, running_simulator

WIDTH = 80
WIDE = "SELECT * FROM latest_term_structure ORDER BY symbol, position"
NARROW = "SELECT symbol, expiry, atm_iv, years_to_expiry FROM latest_term_structure"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sql-output")
    with Warehouse.open(root) as warehouse:
        ingest_outcomes(warehouse, tick(BASE_TIME))
    return root


def sql(home: Path, *arguments: str) -> str:
    result = CliRunner().invoke(
        app, ["sql", *arguments, "--home", str(home)], env={"COLUMNS": str(WIDTH)}
    )
    assert result.exit_code == 0, result.output
    return result.output


def exact_rows(home: Path, query: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(sql(home, query, "--format", "csv"))))


def test_a_result_wider_than_the_terminal_is_one_block_per_row(home: Path) -> None:
    output = sql(home, WIDE)
    with Warehouse.open(home) as warehouse:
        frame = warehouse.sql(WIDE)
    assert frame.width > 20
    lines = output.splitlines()
    headers = [line for line in lines if line.startswith("-[ row ")]
    assert len(headers) == frame.height
    assert f"({frame.height} rows)" in output
    first = lines[lines.index(headers[0]) + 1 : lines.index(headers[1])]
    # Every column of the row on its own line, in order, its name padded to one width.
    assert [line.split(" | ")[0].rstrip() for line in first] == frame.columns
    assert len({line.index(" | ") for line in first}) == 1
    assert max(len(line) for line in lines) <= WIDTH


def test_values_are_rounded_for_display_and_exact_in_csv(home: Path) -> None:
    output = sql(home, WIDE)
    exact = exact_rows(home, WIDE)[0]
    block = output.split("-[ row 2 ]")[0]
    shown = {
        name.strip(): value.strip()
        for name, value in (line.split(" | ", 1) for line in block.splitlines() if " | " in line)
    }
    for column in ("atm_iv", "years_to_expiry", "total_oi", "spot_price"):
        value = float(exact[column])
        assert shown[column] == display_number(value)
        assert float(shown[column]) == pytest.approx(value, rel=1e-3, abs=5e-3)
    # The machine format keeps the digits the display drops.
    assert len(exact["years_to_expiry"].split(".")[1]) > 5


def test_a_result_that_fits_is_a_table_with_numbers_right_aligned(home: Path) -> None:
    output = sql(home, NARROW)
    lines = output.splitlines()
    assert lines[0].split(" | ")[0].strip() == "symbol"
    assert [name.strip() for name in lines[0].split(" | ")] == [
        "symbol",
        "expiry",
        "atm_iv",
        "years_to_expiry",
    ]
    assert set(lines[1]) <= {"-", "+"}
    rows = [line.split(" | ") for line in lines[2:-1]]
    assert rows and all(len(cells) == 4 for cells in rows)
    iv_width = len(lines[1].split("-+-")[2])
    for cells in rows:
        assert len(cells[2]) == iv_width and cells[2] == cells[2].strip().rjust(iv_width)
        assert len(cells[2].strip().split(".")[1]) == 2
    assert lines[-1] == f"({len(rows)} rows)"
    assert not any(line.startswith("-[ row") for line in lines)


def test_json_keeps_every_digit(home: Path) -> None:
    output = sql(home, "SELECT atm_iv FROM expiries ORDER BY atm_iv LIMIT 1", "--format", "json")
    with Warehouse.open(home) as warehouse:
        exact = warehouse.sql("SELECT atm_iv FROM expiries ORDER BY atm_iv LIMIT 1").item()
    assert str(exact) in output or repr(exact) in output


def test_only_the_first_rows_go_to_the_terminal_and_a_file_gets_them_all(
    home: Path, tmp_path: Path
) -> None:
    query = "SELECT range AS n FROM range(120)"
    output = sql(home, query)
    assert "(50 of 120 rows shown;" in output
    target = tmp_path / "all.txt"
    sql(home, query, "--output", str(target))
    written = target.read_text().splitlines()
    assert written[-1] == "(120 rows)" and len(written) == 120 + 3


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (52.345678912345, "52.35"),
        (0.04383561643835616, "0.04384"),
        (0.87341, "0.8734"),
        (-0.000123456, "-0.0001235"),
        (0.0, "0.00"),
        (1234567.891, "1234567.89"),
        (math.nan, "nan"),
    ],
)
def test_numbers_for_display(value: float, shown: str) -> None:
    assert display_number(value) == shown


def test_cells_for_display() -> None:
    assert display_value(None) == "" and display_value(None, null="NULL") == "NULL"
    assert display_value(["deribit", "okx"]) == "[deribit, okx]"
    assert display_value(b"\x00" * 2048) == "<2,048 bytes>"
    assert display_value(True) == "true"
    assert display_value(BASE_TIME) == "2026-03-02 12:00:30 UTC"


def test_render_without_a_width_is_always_a_table() -> None:
    result = Result(("a", "b"), (False, True), (("x" * 200, "1.00"),), 1)
    assert render(result, None).splitlines()[0].startswith("a ")
    assert render(result, 40).startswith("-[ row 1 ]")


def test_a_report_never_cuts_a_cell_and_shows_a_long_one_as_a_block() -> None:
    reason = "UNAUTHORIZED: Invalid API key — check BACKQUANT_API_KEY; the key is missing"
    result = Result(("symbol", "reason"), (False, False), (("BTCUSDT", reason),), 1)
    assert "…" in render(result, 300)  # a query result's long text is cut in a table
    shown = render(result, 300, cut=False)
    assert shown.startswith("-[ row 1 ]") and f"reason | {reason}" in shown
    short = Result(("symbol", "status"), (False, False), (("BTCUSDT", "stored"),), 1)
    assert render(short, 300, cut=False).splitlines()[0].split() == ["symbol", "|", "status"]


def test_a_failed_ingest_prints_the_whole_reason(tmp_path: Path) -> None:
    with running_simulator(frozen_at=SIM_START) as simulator:
        result = CliRunner().invoke(
            app,
            ["ingest", "--once", "--home", str(tmp_path / "home")],
            env={
                "COLUMNS": "300",
                "BACKQUANT_BASE_URL": simulator.base_url,
                "BACKQUANT_API_KEY": "bq_live_" + "0" * 32,  # not the simulator's key
            },
        )

    assert result.exit_code == 1, result.output
    reasons = [line for line in result.output.splitlines() if line.startswith("reason ")]
    assert len(reasons) == 4, result.output
    for line in reasons:
        assert "check BACKQUANT_API_KEY" in line and "…" not in line
    assert "rows written: snapshots 0, expiries 0, venue_oi 0, ingest_log 4" in result.output


def test_a_report_title_is_printed_as_given(capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines.cli.app import print_rows

    print_rows("Rebuild → /data/[bold]lake[/]", [{"symbol": "BTCUSDT"}])
    assert "Rebuild → /data/[bold]lake[/]" in capsys.readouterr().out


def test_a_query_of_a_home_with_no_lake_says_so_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A mistyped --home must not answer with the empty tables of a lake it just created.
    missing = tmp_path / "typo"
    argv = ["termstore", "sql", "SELECT count(*) FROM snapshots", "--home", str(missing)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    error = " ".join(capsys.readouterr().err.split())
    assert f"there is no lake catalog at {missing / 'catalog.sqlite'} yet" in error
    assert "termstore ingest --once" in error
    assert not missing.exists()
