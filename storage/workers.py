"""Worker processes for day jobs, started once and kept while calls keep using them.

Starting a worker costs 1–1.3 s: a spawned interpreter imports the storage package (polars,
pydantic, duckdb, httpx). Spawned, not forked: polars and pyarrow start threads on import, and
the child of a fork from a threaded process can deadlock. A pool started per call paid that
start every time (each 64 symbol-days of a long rebuild, each batch of an import); a kept pool
costs it once, and later calls find its workers ready and warm.

Between calls workers idle, keeping the memory of their last job (~250 MB after a day); once no
call has used them for ``IDLE_STOP_S`` they are stopped. They exit with this process, even when
it is killed: each watches its parent and leaves as soon as the parent is gone, rather than idle
on as an orphan. They hold the environment of the moment they started. A worker that dies
(killed, out of memory) breaks its pool: the call that meets it fails, and the next call starts
a new pool.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
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


IDLE_STOP_S: float = 600.0
"""Workers no call has used for this long are stopped, returning their memory; the next call
that wants workers starts new ones."""


class WorkerPool:
    """``size`` spawned worker processes; ``started`` holds one future per worker, done once it
    runs. Calls use it through ``using_workers``, which keeps count, so the pool is stopped only
    when no call is using it."""

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
        self.users = 0
        self.last_used = time.monotonic()
        self.closed = threading.Event()

    @property
    def ready(self) -> bool:
        """Every worker has started."""
        return all(start.done() and start.exception() is None for start in self.started)

    def submit(self, function: Callable[..., R], *args: Any) -> Future[R]:
        return self._executor.submit(function, *args)

    def shutdown(self) -> None:
        self.closed.set()
        self._executor.shutdown(wait=False, cancel_futures=True)


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def _pool_for(size: int) -> WorkerPool:
    """This process's pool, started now (with its idle watch) if there is none; a smaller one
    no call is using is replaced by one of ``size`` workers. Call under ``_pool_lock``."""
    global _pool
    if _pool is not None and (_pool.size >= size or _pool.users > 0):
        return _pool
    if _pool is not None:
        _pool.shutdown()
    _pool = WorkerPool(size)
    threading.Thread(
        target=_stop_when_idle, args=(_pool,), name="termstore-workers-idle", daemon=True
    ).start()
    return _pool


def _stop_when_idle(pool: WorkerPool) -> None:
    """The pool's watch: stop it once no call has used it for ``IDLE_STOP_S``."""
    global _pool
    while not pool.closed.is_set():
        with _pool_lock:
            idle = time.monotonic() - pool.last_used
            if pool.users == 0 and idle >= IDLE_STOP_S:
                pool.shutdown()
                if _pool is pool:
                    _pool = None
                return
            delay = IDLE_STOP_S - idle if pool.users == 0 else IDLE_STOP_S
        pool.closed.wait(max(delay, 0.01))


@contextmanager
def using_workers(size: int) -> Iterator[WorkerPool]:
    """This process's pool for the length of a call (``_pool_for``): new workers start while
    the caller goes on."""
    with _pool_lock:
        pool = _pool_for(size)
        pool.users += 1
    try:
        yield pool
    finally:
        with _pool_lock:
            pool.users -= 1
            pool.last_used = time.monotonic()


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
    with _pool_lock:
        return _pool_for(count if count is not None else max(1, (os.cpu_count() or 1) - 1))


def stop_workers() -> None:
    """Stop this process's workers, if any run (the next call that wants some starts anew)."""
    pool = _pool
    if pool is not None:
        discard_pool(pool)
