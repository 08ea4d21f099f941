"""Run independent symbol-day jobs, optionally spread over worker processes.

A day job (validate, normalise, write a symbol-day's cold files and archive pack) touches
nothing another job touches, and nothing is visible until the writer commits the state, so jobs
can run in worker processes (storage/workers.py) while this process, holding the writer lock,
takes its share and alone commits the results. Workers are kept while calls keep using them:
only the first call that wants them waits 1–1.3 s for them to start (importing the storage
package), taking jobs meanwhile; later calls share the jobs with them from the start.

A job may hand back its file writes as a ``DayWrites`` instead of a result: polars writes
Parquet without holding the GIL, so in this process one job's writes run on a writer thread
while the next job validates and normalises (one write in flight at a time, which bounds memory).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Generic, TypeVar

from storage.parsing import gc_paused
from storage.workers import WorkerPool, discard_pool, running_pool, using_workers

J = TypeVar("J")
R = TypeVar("R")


PARALLEL_MIN_RESPONSES = 12_000
"""Below this many responses (~2.5 s of work in one process at ~0.2 ms each), starting workers
saves little: one takes 1–1.3 s to start (importing the storage package: polars, pydantic,
duckdb, httpx), while this process overlaps its writes with the next job. In the year home
(``rebuild_range`` in bench/results/tick_bench.json) 11,520 responses are ~7% faster with
workers started by the call and 23,040 ~24%; at 5,760 one process is faster than starting
workers (a 4-symbol day rebuilt: 1,195 against 1,441 ms in bench/results/warehouse_bench.json).
Workers already running pay at any size (755 ms for that day)."""


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


class _Pending:
    """Jobs not yet taken, heaviest first. The caller takes from the front. A worker that was
    ready when the call began is as fast as the caller and takes its first job from the front
    too; a job queued behind a worker's running one, and any job of a worker still starting,
    comes from the back but is never the last, which the caller will soon take: no call ends
    waiting on a job stuck behind another, or on a worker that started late or runs slowly on a
    busy machine."""

    def __init__(self, order: list[int], workers_ready: bool) -> None:
        self._left = deque(order)
        self._lock = threading.Lock()
        self._workers_ready = workers_ready

    def front(self) -> int | None:
        with self._lock:
            return self._left.popleft() if self._left else None

    def for_worker(self, *, queued: bool) -> int | None:
        with self._lock:
            if self._workers_ready and not queued:
                return self._left.popleft() if self._left else None
            return self._left.pop() if len(self._left) > 1 else None

    def clear(self) -> None:
        with self._lock:
            self._left.clear()

    def __bool__(self) -> bool:
        return bool(self._left)


def _feed(
    pool: WorkerPool,
    started: Future[None],
    function: DayJobFunction[J, R],
    jobs: Sequence[J],
    pending: _Pending,
    results: dict[int, R],
    failures: list[BaseException],
) -> None:
    # Jobs go to the worker only once it has started, so a call the calling process finishes
    # alone never waits for it; a worker that cannot start leaves every job to the caller.
    while not started.done():
        if not pending:
            return
        wait([started], timeout=0.05)
    if started.exception() is not None:
        discard_pool(pool)
        return
    # One job waits queued behind the running one: a day's bodies take ~0.1 s to reach a
    # worker (pickled, piped, unpickled), which would otherwise idle it between jobs.
    in_flight: deque[tuple[int, Future[R]]] = deque()
    try:
        while True:
            while len(in_flight) < 2:
                index = pending.for_worker(queued=bool(in_flight))
                if index is None:
                    break
                in_flight.append((index, pool.submit(_paused, function, jobs[index])))
            if not in_flight:
                return
            index, future = in_flight[0]
            results[index] = future.result()
            in_flight.popleft()
    except BaseException as error:
        if isinstance(error, BrokenProcessPool):
            discard_pool(pool)
        failures.append(error)
        pending.clear()
        # No job is left in flight once the feeder is back (the caller relies on it).
        for _, queued in in_flight:
            queued.cancel()
        wait([queued for _, queued in in_flight])


def run_day_jobs(
    function: DayJobFunction[J, R],
    jobs: Sequence[J],
    workers: int | None,
    *,
    sizes: Sequence[int],
    weights: Sequence[int] | None = None,
) -> list[R]:
    """``function`` of every job, in job order; ``sizes`` are the jobs' responses, ``weights``
    their expected work (default: the sizes). Body bytes weigh a job better than its count:
    a day of BTC bodies is 2.8 times the bytes of a day of HYPE ones.

    With ``workers`` > 1 (None: the CPU count when this process's workers are already running
    or the jobs hold at least ``PARALLEL_MIN_RESPONSES`` responses, else 1), this process and
    ``workers - 1`` worker processes share the jobs, heaviest first (``_Pending``). Jobs must be
    independent and ``function`` importable by name (not defined in a script's ``__main__``);
    results come back to this process, which alone commits them.
    """
    chosen = workers if workers is not None else (os.cpu_count() or 1)
    if workers is None and sum(sizes) < PARALLEL_MIN_RESPONSES and running_pool() is None:
        chosen = 1
    helpers = min(chosen, len(jobs)) - 1
    if helpers < 1:
        return _overlapped(function, jobs)
    work = sizes if weights is None else weights
    order = sorted(range(len(jobs)), key=lambda index: -work[index])
    results: dict[int, R] = {}
    failures: list[BaseException] = []
    with using_workers(helpers) as pool:
        pending = _Pending(order, workers_ready=pool.ready)
        feeders = [
            threading.Thread(
                target=_feed, args=(pool, started, function, jobs, pending, results, failures)
            )
            for started in pool.started[:helpers]
        ]
        for feeder in feeders:
            feeder.start()
        try:
            while (index := pending.front()) is not None:
                results[index] = _paused(function, jobs[index])
        finally:
            # No job is left in flight once the feeders are back; the workers stay for later
            # calls.
            pending.clear()
            for feeder in feeders:
                feeder.join()
    if failures:
        raise failures[0]
    return [results[index] for index in range(len(jobs))]
