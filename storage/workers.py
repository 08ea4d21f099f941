"""Worker processes for day jobs, started once and kept for the life of this process.

Starting a worker costs 1–1.3 s: a spawned interpreter imports the storage package (polars,
pydantic, duckdb, httpx). Spawned, not forked: polars and pyarrow start threads on import, and
the child of a fork from a threaded process can deadlock. A pool started per call paid that
start every time (each 64 symbol-days of a long rebuild, each batch of an import); a kept pool
costs it once, and every later call finds its workers ready and warm.

Workers are idle between calls, keeping the memory of their last job (~250 MB after a day), and
exit with this process, even when it is killed: each watches its parent and leaves as soon as the
parent is gone, rather than idle on as an orphan. They hold the environment of the moment they
started. A worker that dies (killed, out of memory) breaks its pool: the call that meets it
fails, and the next call starts a new pool.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.connection import wait
from types import ModuleType
from typing import Any, TypeVar

R = TypeVar("R")


def _ready() -> None:
    """Run once per worker as it starts: returns when the worker has started."""


def _exit_with_parent() -> None:
    """Worker initializer: leave as soon as the parent process is gone (its sentinel closes)."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        watcher = threading.Thread(
            target=_exit_when_parent_gone,
            args=(parent.sentinel,),
            name="termstore-parent",
            daemon=True,
        )
        watcher.start()


def _exit_when_parent_gone(sentinel: int) -> None:
    wait([sentinel])
    os._exit(0)


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


class WorkerPool:
    """``size`` spawned worker processes; ``started`` holds one future per worker, done once it
    runs."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._executor = ProcessPoolExecutor(
            max_workers=size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
        )
        with _main_hidden():
            # Each submit starts one worker process while the blank __main__ is in place.
            self.started: tuple[Future[None], ...] = tuple(
                self._executor.submit(_ready) for _ in range(size)
            )

    @property
    def ready(self) -> bool:
        """Every worker has started."""
        return all(start.done() and start.exception() is None for start in self.started)

    def submit(self, function: Callable[..., R], *args: Any) -> Future[R]:
        return self._executor.submit(function, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def worker_pool(size: int) -> WorkerPool:
    """This process's pool, with at least ``size`` workers: the running one, or a new one
    (replacing a smaller one) whose workers start now, while the caller goes on."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.size < size:
            if _pool is not None:
                _pool.shutdown()
            _pool = WorkerPool(size)
        return _pool


def running_pool() -> WorkerPool | None:
    """This process's pool, if one was started."""
    return _pool


def discard_pool(pool: WorkerPool) -> None:
    """Shut a broken pool down; the next call that wants workers starts a new one."""
    global _pool
    with _pool_lock:
        pool.shutdown()
        if _pool is pool:
            _pool = None


def start_workers(count: int | None = None) -> WorkerPool:
    """Start ``count`` worker processes (default: one per CPU besides this process) without
    waiting for them, for a caller that knows big jobs are coming: their start overlaps its
    other work, and ``run_day_jobs`` with ``workers=None`` uses them once they run."""
    return worker_pool(count if count is not None else max(1, (os.cpu_count() or 1) - 1))


def stop_workers() -> None:
    """Stop this process's workers, if any run (the next call that wants some starts anew)."""
    pool = _pool
    if pool is not None:
        discard_pool(pool)
