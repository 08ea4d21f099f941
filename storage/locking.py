"""The writer lock: this machine's writers (ingest, rebuild, import, maintenance) take turns.

DuckLake commits are atomic on their own; the lock keeps writers on one machine from racing for
the catalog (a SQLite catalog answers a second concurrent writer with "database is locked") and
makes a rebuild and a tick of the same day follow each other. ``flock`` is released by the
kernel when a process dies, even by SIGKILL, so a crash never leaves the lake locked. Readers
never take it. Writers on several machines (a PostgreSQL catalog) are kept apart by Dagster's
concurrency limits; a commit that conflicts with another machine's is refused by DuckLake
(nothing of it lands), and a rebuild retries it (storage.writes.retry_on_conflict).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from storage.errors import WriterBusyError


@contextmanager
def writer_lock(path: Path, *, timeout_s: float = 120.0) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise WriterBusyError(
                        f"another termstore writer (pid {holder}) has held {path} for over "
                        f"{timeout_s:g} s",
                        advice="wait for its ingest, rebuild, import or maintenance to finish, "
                        "or stop it",
                    ) from None
                time.sleep(0.01)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
