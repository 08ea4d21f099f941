"""What a run and the code location cost, and what the UI is told about columns and numbers.

Each ingest run executes its step in the run's own process; loading the code location imports
no library only a step needs (polars, DuckDB, the simulator, the research code, plotting);
every column of every asset's column table is described, from the data dictionary; metadata
tables are shown inline with numbers rounded."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.columns import DATA_DICTIONARY, parse_dictionary, table_columns
from assets.metadata import frame_metadata, table_metadata
from pipelines.automation import INGEST_JOB
from storage import Warehouse
from storage.schemas import TABLE_SCHEMAS, create_table_sql
from tests.support.fixtures import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
STEP_ONLY = (
    "polars",
    "duckdb",
    "pyarrow",
    "numpy",
    "scipy",
    "matplotlib",
    "uvicorn",
    "starlette",
    "backquant.simulator",
    "storage.research",
    "storage.warehouse",
    "storage.ingest",
    "storage.rebuild",
    "storage.maintenance",
)
LOADED = """
import json, sys
import pipelines.definitions
print(json.dumps(sorted(name for name in json.loads(sys.argv[1])
    if any(module == name or module.startswith(name + ".") for module in sys.modules))))
"""


def definitions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dg.Definitions:
    for name in list(os.environ):
        if name.startswith(("BACKQUANT_", "TERMSTORE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BACKQUANT_API_KEY", TEST_KEY)
    monkeypatch.setenv("TERMSTORE_HOME", str(tmp_path / "wh"))
    module = importlib.import_module("pipelines.definitions")
    built: dg.Definitions = module.build_definitions()
    return built


def test_every_job_runs_its_step_in_the_run_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = definitions(monkeypatch, tmp_path)
    assert built.resolve_job_def(INGEST_JOB).executor_def is dg.in_process_executor
    jobs = built.get_repository_def().get_all_jobs()
    assert jobs and {job.executor_def.name for job in jobs} == {"in_process"}


def test_loading_the_code_location_imports_no_library_only_a_step_needs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKQUANT_", "TERMSTORE_"))}
    env.update(BACKQUANT_API_KEY=TEST_KEY, TERMSTORE_HOME=str(tmp_path / "wh"))
    done = subprocess.run(
        [sys.executable, "-c", LOADED, json.dumps(STEP_ONLY)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_every_column_of_every_asset_is_described(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    graph = definitions(monkeypatch, tmp_path).get_repository_def().asset_graph
    described = {}
    for key in graph.get_all_asset_keys():
        schema = graph.get(key).metadata.get("dagster/column_schema")
        if schema is None:
            continue
        columns = getattr(schema, "schema", schema).columns
        assert columns, key
        for column in columns:
            assert column.description and column.type, (key, column)
        described[key.to_user_string()] = len(columns)
    assert {"expiry_ticks", "expiry_history", "research_daily"} <= set(described)


def test_the_data_dictionary_lists_every_lake_column_with_its_sql_type(tmp_path: Path) -> None:
    # In the table's order too: the Dagster UI shows the columns as the dictionary lists them.
    for table in TABLE_SCHEMAS:
        declared = [
            tuple(column.split(" ", 1))
            for column in create_table_sql(table).split("(", 1)[1].rstrip(")").split(", ")
        ]
        documented = [(column.name, column.type) for column in table_columns(table)]
        assert documented == declared, table
    # hourly_sample is documented as the expiries columns: it must have exactly those.
    with Warehouse.open(tmp_path) as warehouse:
        warehouse.initialise()
        sample = warehouse.sql("DESCRIBE hourly_sample")
    described = [
        (name, kind.replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"))
        for name, kind in sample.select("column_name", "column_type").rows()
    ]
    assert described == [(column.name, column.type) for column in table_columns("hourly_sample")]


def test_the_dictionary_parser_expands_shared_rows_and_inherits_types() -> None:
    text = """
## first — a table

| column | type | unit / meaning |
|---|---|---|
| **symbol**, **at** | VARCHAR | the key |
| count_a/b | INTEGER | counts |

### second / third — views
| column | type | unit / meaning |
|---|---|---|
| **symbol** | | as in first |
| extra | DOUBLE | more |

## Prose — no table here
"""
    parsed = parse_dictionary(text)
    assert [column.name for column in parsed["first"]] == ["symbol", "at", "count_a", "count_b"]
    assert parsed["second"] == parsed["third"]
    assert parsed["second"][0].type == "VARCHAR" and parsed["second"][0].description == "the key"
    assert "Prose" not in parsed and DATA_DICTIONARY.is_file()


def test_metadata_tables_are_inline_with_numbers_rounded() -> None:
    frame = pl.DataFrame(
        {"symbol": ["BTCUSDT"], "close_atm_iv": [52.34567891234567], "snapshots": [1440]}
    )
    value = frame_metadata(frame)
    assert isinstance(value, dg.TableMetadataValue)
    assert [record.data for record in value.records] == [
        {"symbol": "BTCUSDT", "close_atm_iv": "52.35", "snapshots": "1440"}
    ]
    assert [column.name for column in value.schema.columns] == frame.columns
    assert table_metadata([]) == dg.MetadataValue.md("_(nothing)_")
