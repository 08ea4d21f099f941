"""Shared pieces of the benchmark scripts: timing, machine description, results, progress bars."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

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


def tracked(items: Iterable[T], description: str, total: int) -> Iterator[T]:
    """Iterate with a progress bar."""
    with progress() as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


def directory_bytes(root: Path, pattern: str = "*") -> int:
    return sum(path.stat().st_size for path in root.rglob(pattern) if path.is_file())


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
