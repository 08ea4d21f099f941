"""Shared pieces of the benchmark scripts: timing, machine description, results, progress bars,
and the lake's rows and bytes per table."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import orjson
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from storage.derived import EXPIRY_ROWS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CACHE_ENV = "TERMSTORE_BENCH_CACHE"
T = TypeVar("T")


def cache_dir() -> Path:
    """Where corpora are cached: outside the repository, reused across runs."""
    chosen = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "termstore-bench"
    path = Path(chosen).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def machine() -> dict[str, Any]:
    """What the figures were measured on, written next to every result."""
    memory_gb = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        first = meminfo.read_text().splitlines()[0].split()
        memory_gb = round(int(first[1]) / 1024 / 1024, 1)
    cpu_model = None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def summarise(seconds: list[float]) -> dict[str, float]:
    """Median, p50/p95 and min of a list of durations, in milliseconds."""
    ordered = sorted(seconds)
    count = len(ordered)
    return {
        "runs": count,
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[min(count - 1, round(0.95 * (count - 1)))] * 1000, 3),
        "min_ms": round(ordered[0] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def repeat(action: Callable[[], object], runs: int, *, warmup: int = 1) -> dict[str, float]:
    """Time ``action`` ``runs`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        action()
    seconds = []
    for _ in range(runs):
        begin = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - begin)
    return summarise(seconds)


def timed(action: Callable[[], T]) -> tuple[T, float]:
    """Run once; return the value and the wall seconds it took."""
    begin = time.perf_counter()
    value = action()
    return value, time.perf_counter() - begin


def progress() -> Progress:
    """A rich progress display used by every benchmark (stderr, so JSON on stdout stays clean)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )


def directory_bytes(root: Path, pattern: str = "*") -> int:
    return sum(path.stat().st_size for path in root.rglob(pattern) if path.is_file())


def load_average() -> float:
    """The 1-minute load average: the machine is shared, so every figure carries it."""
    return round(os.getloadavg()[0], 2)


def with_load(action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``action``'s results with the load average before and after."""
    before = load_average()
    results = action()
    return {**results, "load_average_before_after": [before, load_average()]}


def table_sizes(connection: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Per lake table: rows, data files and their bytes (what the current snapshot
    references; files awaiting clean-up are not counted), delete files and their bytes."""
    info = connection.execute(
        "SELECT table_name, file_count, file_size_bytes, delete_file_count, "
        "delete_file_size_bytes FROM ducklake_table_info('lake') ORDER BY table_name"
    ).fetchall()
    sizes = {}
    for name, files, size, delete_files, delete_size in info:
        row = connection.execute(f"SELECT count(*) FROM {name}").fetchone()
        sizes[name] = {
            "rows": int(row[0]) if row else 0,
            "data_files": int(files),
            "data_bytes": int(size),
            "delete_files": int(delete_files),
            "delete_bytes": int(delete_size),
        }
    return sizes


def bytes_per_row(sizes: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The bytes figures from ``table_sizes``: bytes per expiry row (``expiry_rows``, which
    holds ``expiries``, alone, and the three summary tables together) and bytes per archived
    response."""
    expiries = sizes[EXPIRY_ROWS]
    expiry_rows = expiries["rows"]
    summary = sum(sizes[table]["data_bytes"] for table in ("snapshots", EXPIRY_ROWS, "venue_oi"))
    responses = sizes["responses"]
    return {
        "expiry_rows": expiry_rows,
        "bytes_per_expiry_row_expiries_table": round(expiries["data_bytes"] / expiry_rows, 2),
        "bytes_per_expiry_row_three_summary_tables": round(summary / expiry_rows, 2),
        "responses": responses["rows"],
        "bytes_per_response_responses_table": round(responses["data_bytes"] / responses["rows"], 1)
        if responses["rows"]
        else None,
    }


def write_results(name: str, command: str, results: dict[str, Any]) -> Path:
    """Write bench/results/<name>.json with the machine, the date and the command."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = RESULTS_DIR / f"{name}.json"
    document = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine(),
        **results,
    }
    target.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    return target
