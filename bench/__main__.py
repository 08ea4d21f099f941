"""``make bench``: run every benchmark, one process each, with progress; results in bench/results.

Order: corpora first (built once, cached in ~/.cache/termstore-bench or $TERMSTORE_BENCH_CACHE),
then each benchmark script. A script that fails is reported and the others still run; the exit
status is non-zero if any failed. ``python -m bench --only ingest_bench,query_bench`` runs a subset.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from bench.common import progress

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
ORDER = (
    "corpus",
    "ingest_bench",
    "tick_bench",
    "day_bench",
    "query_bench",
    "catalog_bench",
    "schedule_bench",
    "simulator_throughput",
    "cli_bench",
)
"""Known scripts in run order; scripts not present in this checkout are skipped."""


def available(only: set[str] | None) -> list[str]:
    names = [name for name in ORDER if (BENCH_DIR / f"{name}.py").exists()]
    return [name for name in names if only is None or name in only]


def main() -> None:
    parser = argparse.ArgumentParser(description="Run termstore's benchmarks.")
    parser.add_argument("--only", help="comma-separated script names (default: all)")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    console = Console(stderr=True)
    names = available(only)
    failed: list[str] = []
    with progress() as bar:
        task = bar.add_task("benchmarks", total=len(names))
        for name in names:
            bar.update(task, description=f"bench.{name}")
            began = time.monotonic()
            done = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, check=False)
            took = time.monotonic() - began
            if done.returncode != 0:
                failed.append(name)
                console.print(
                    f"[red]bench.{name} failed (exit {done.returncode}) after {took:.0f} s"
                )
            else:
                console.print(f"[green]bench.{name} done in {took:.0f} s")
            bar.advance(task)
    if failed:
        console.print(f"[red]failed: {', '.join(failed)}; rerun one with python -m bench.<name>")
        raise SystemExit(1)
    console.print(f"results in {BENCH_DIR / 'results'}; tables in docs/benchmarks.md")


if __name__ == "__main__":
    main()
