"""What the ``termstore`` command loads: commands that do not need Dagster, DuckDB or polars
never import them, and ``termstore dev`` (which only waits on its children) imports none of
them itself. Checked in a new interpreter each time (``sys.modules``), never timed: the speed
is bench/cli_bench.py's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import backquant.config
import pipelines.settings
from backquant.simulator.config import DEFAULT_SIMULATOR_KEY
from pipelines.cli import dagster_commands

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("dagster", "polars", "duckdb", "pyarrow", "matplotlib", "numpy", "uvicorn", "grpc")

RUN_CLI = """
import json, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["termstore", *json.loads(sys.argv[1])]
from pipelines.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\nLOADED " + json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in
    heavy)) + "\\n")
"""

RUN_DEV_WITH_FAKE_CHILDREN = """
import json, subprocess, sys

class Child:
    returncode = 0
    pid = 2 ** 30  # no such process group: stopping it finds nothing left
    def __init__(self, *args, **kwargs): pass
    def wait(self, timeout=None): return 0
    def poll(self): return 0
    def send_signal(self, signum): pass

subprocess.Popen = Child
subprocess.run = lambda *args, **kwargs: subprocess.CompletedProcess(args, 0, "", "")
heavy = json.loads(sys.argv[2])
sys.argv = ["termstore", "dev", "--dagster-home", sys.argv[1]]
from pipelines.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\nLOADED " + json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in
    heavy)) + "\\n")
"""


def loaded_modules(script: str, *arguments: str, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", script, *arguments, json.dumps(HEAVY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    marker = [line for line in done.stderr.splitlines() if line.startswith("LOADED ")]
    assert marker, done.stdout + done.stderr
    modules: list[str] = json.loads(marker[-1].removeprefix("LOADED "))
    return modules


@pytest.mark.parametrize(
    "arguments",
    [
        ["--help"],
        ["sql", "--help"],
        ["dev", "--help"],
        ["simulator", "--help"],
        ["plot", "--help"],
        ["import", "--help"],
        ["doctor", "--help"],
    ],
    ids=lambda arguments: " ".join(arguments),
)
def test_help_imports_no_heavy_library(arguments: list[str]) -> None:
    assert loaded_modules(RUN_CLI, json.dumps(arguments)) == []


def test_the_dev_wrapper_imports_no_heavy_library(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKQUANT_", "TERMSTORE_"))}
    # Without a key it also starts the simulator; its children are fakes here.
    assert loaded_modules(RUN_DEV_WITH_FAKE_CHILDREN, str(tmp_path / "dagster"), env=env) == []


def test_the_wrapper_names_the_same_variables_as_the_code_location() -> None:
    assert dagster_commands.API_KEY_ENV == backquant.config.API_KEY_ENV
    assert dagster_commands.BASE_URL_ENV == backquant.config.BASE_URL_ENV
    assert dagster_commands.SIMULATED_ENV == pipelines.settings.SIMULATED_ENV
    assert dagster_commands.SIMULATOR_KEY == DEFAULT_SIMULATOR_KEY


def test_a_query_imports_neither_dagster_nor_pyarrow(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKQUANT_", "TERMSTORE_"))}
    env["TERMSTORE_HOME"] = str(tmp_path / "home")
    loaded = loaded_modules(RUN_CLI, json.dumps(["sql", "SELECT 1"]), env=env)
    # DuckDB and polars it needs; pyarrow and Dagster would cost every query their import.
    assert "duckdb" in loaded
    assert not [module for module in loaded if module.split(".")[0] in ("pyarrow", "dagster")]
