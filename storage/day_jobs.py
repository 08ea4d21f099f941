"""Run independent symbol-day jobs, optionally spread over worker processes.

A day job (validate, normalise, write a symbol-day's cold files and archive pack) touches
nothing another job touches, and nothing is visible until the writer commits the state, so jobs
can run in spawned processes while this process, holding the writer lock, waits for their
results and alone commits them. Starting a worker costs 1–1.3 s (importing the storage package),
so workers only take jobs once started, and only while the caller has others left.

A job may hand back its file writes as a ``DayWrites`` instead of a result: polars writes
Parquet without holding the GIL, so in this process one job's writes run on a writer thread
while the next job validates and normalises (one write in flight at a time, which bounds memory).
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from types import ModuleType
from typing import Generic, TypeVar

from storage.parsing import gc_paused

J = TypeVar("J")
R = TypeVar("R")


PARALLEL_MIN_RESPONSES = 12_000
"""Below this many responses (~3 s of work in one process at ~0.25 ms each), a worker process
saves too little: one takes 1–1.3 s to start (importing the storage package: polars, pydantic,
duckdb, httpx), while this process overlaps its writes with the next job. In the year home
(``rebuild_range`` in bench/results/tick_bench.json) 11,520 responses take the same time either
way and 23,040 are 10–20% faster with workers; at 5,760 one process is faster (3,672 against
2,914 responses/s in bench/results/ingest_bench.json)."""


@dataclass(frozen=True, slots=True)
class DayWrites(Generic[R]):
    """The rest of a day job, once its tables are built: writing its files, which yields the
    job's result. ``run_day_jobs`` may run it on a writer thread."""

    write: Callable[[], R]


DayJobFunction = Callable[[J], "R | DayWrites[R]"]


def _prepared(function: DayJobFunction[J, R], job: J) -> R | DayWrites[R]:
    """``function(job)`` without cyclic GC (see ``gc_paused``), resumed once the job's
    temporaries are freed, so the first collection only meets the result."""
    with gc_paused():
        return function(job)


def _paused(function: DayJobFunction[J, R], job: J) -> R:
    """The whole job here and now, writes included (a worker process, or the caller while
    workers help)."""
    outcome = _prepared(function, job)
    return outcome.write() if isinstance(outcome, DayWrites) else outcome


def _overlapped(function: DayJobFunction[J, R], jobs: Sequence[J]) -> list[R]:
    """Every job in this process, each job's writes on a writer thread while the next job is
    prepared; at most one write in flight."""
    results: list[Future[R]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="termstore-writes") as writer:
        for job in jobs:
            outcome = _prepared(function, job)
            if results:
                results[-1].result()
            if isinstance(outcome, DayWrites):
                results.append(writer.submit(outcome.write))
            else:
                done: Future[R] = Future()
                done.set_result(outcome)
                results.append(done)
        return [result.result() for result in results]


def _ready() -> None:
    """Run once per worker before it is given a job: returns when the worker has started."""


class _Pending:
    """Jobs not yet taken, largest first: the caller takes from the front, workers from the
    back but never the last one, which the caller will soon take: no batch ends waiting on a
    worker that started late or runs slowly on a busy machine."""

    def __init__(self, order: list[int]) -> None:
        self._left = deque(order)
        self._lock = threading.Lock()

    def front(self) -> int | None:
        with self._lock:
            return self._left.popleft() if self._left else None

    def back(self) -> int | None:
        with self._lock:
            return self._left.pop() if len(self._left) > 1 else None

    def clear(self) -> None:
        with self._lock:
            self._left.clear()

    def __bool__(self) -> bool:
        return bool(self._left)


@contextmanager
def _main_hidden() -> Iterator[None]:
    """A spawned process imports the parent's ``__main__`` again, to find functions defined
    there. Ours are importable by name, and importing a caller's script costs seconds (the
    termstore CLI pulls in Dagster) or, unguarded, runs it again: so the worker is started with
    a blank ``__main__`` in place."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _feed(
    pool: ProcessPoolExecutor,
    ready: Future[None],
    function: DayJobFunction[J, R],
    jobs: Sequence[J],
    pending: _Pending,
    results: dict[int, R],
    failures: list[BaseException],
) -> None:
    # Jobs go to the worker only once it has started, so a batch the calling process finishes
    # alone never waits for it; a worker that cannot start leaves every job to the caller.
    while not ready.done():
        if not pending:
            return
        wait([ready], timeout=0.05)
    if ready.exception() is not None:
        return
    while (index := pending.back()) is not None:
        try:
            done: Future[R] = pool.submit(_paused, function, jobs[index])
            results[index] = done.result()
        except BaseException as error:
            failures.append(error)
            pending.clear()
            return


def run_day_jobs(
    function: DayJobFunction[J, R],
    jobs: Sequence[J],
    workers: int | None,
    *,
    sizes: Sequence[int],
) -> list[R]:
    """``function`` of every job, in job order; ``sizes`` are the jobs' responses.

    With ``workers`` > 1 (None: the CPU count when the jobs hold at least
    ``PARALLEL_MIN_RESPONSES`` responses, else 1), this process takes the largest jobs first
    while ``workers - 1`` spawned processes take the smallest as soon as they have started.
    Jobs must be independent and ``function`` importable by name (not defined in a script's
    ``__main__``); results come back to this process, which alone commits them.
    """
    chosen = workers if workers is not None else (os.cpu_count() or 1)
    if workers is None and sum(sizes) < PARALLEL_MIN_RESPONSES:
        chosen = 1
    helpers = min(chosen, len(jobs)) - 1
    if helpers < 1:
        return _overlapped(function, jobs)
    pending = _Pending(sorted(range(len(jobs)), key=lambda index: -sizes[index]))
    results: dict[int, R] = {}
    failures: list[BaseException] = []
    pool = ProcessPoolExecutor(max_workers=helpers, mp_context=get_context("spawn"))
    with _main_hidden():
        # Each submit starts one worker process while the blank __main__ is in place.
        readies = [pool.submit(_ready) for _ in range(helpers)]
    feeders = [
        threading.Thread(
            target=_feed, args=(pool, ready, function, jobs, pending, results, failures)
        )
        for ready in readies
    ]
    for feeder in feeders:
        feeder.start()
    try:
        while (index := pending.front()) is not None:
            results[index] = _paused(function, jobs[index])
    finally:
        pending.clear()
        for feeder in feeders:
            feeder.join()
        # No job is left in flight; a worker still starting up exits on its own.
        pool.shutdown(wait=False, cancel_futures=True)
    if failures:
        raise failures[0]
    return [results[index] for index in range(len(jobs))]
