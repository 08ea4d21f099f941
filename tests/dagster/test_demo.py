"""``termstore demo``, what ``make demo`` runs: ticks, a rebuild and maintenance through Dagster."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from storage import LakeConfig, Warehouse
from storage.lake_config import CATALOG_ENV, DATA_PATH_ENV


def test_the_demo_runs_its_ticks_rebuild_and_maintenance_in_its_own_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo's lake is its own, whatever lake the shell points at.
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv(CATALOG_ENV, f"sqlite:{elsewhere}/catalog.sqlite")
    monkeypatch.setenv(DATA_PATH_ENV, str(elsewhere / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    keep, plot = tmp_path / "kept", tmp_path / "demo.png"

    result = CliRunner().invoke(
        app, ["demo", "--ticks", "2", "--keep", str(keep), "--plot", str(plot)]
    )

    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "tick 2/2" in output
    assert "2 ticks through Dagster (4, 4 symbols stored per tick), 1 day(s) rebuilt" in output
    assert "BTCUSDT term structure (latest snapshot, SIMULATED)" in output
    merged = re.search(r"data files merged (\d+) → (\d+)", output)
    assert merged is not None, output
    assert 0 < int(merged[2]) < int(merged[1])
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert not elsewhere.exists()
    home = keep / "warehouse"
    assert f"termstore sql --home {home}" in output
    assert (home / "catalog.sqlite").is_file()
    with Warehouse.open(config=LakeConfig.from_env(home, env={})) as warehouse:
        per_symbol = warehouse.sql("SELECT symbol, count(*) AS n FROM snapshots GROUP BY symbol")
    assert sorted(per_symbol["n"]) == [2, 2, 2, 2]


def test_a_throwaway_demo_names_no_warehouse_it_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    result = CliRunner().invoke(app, ["demo", "--ticks", "2", "--plot", str(tmp_path / "d.png")])

    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    # The kept lake is DIR/warehouse (first test): the hint names that.
    assert (
        "pass --keep DIR to keep it and query it with termstore sql --home DIR/warehouse" in output
    )
    assert str(tmp_path) not in output.replace(str(tmp_path / "d.png"), "")
    assert not list(tmp_path.glob("termstore-demo-*"))
