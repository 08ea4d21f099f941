"""The single-writer lock: ingest and rebuild serialise on ``state/writer.lock``.

One writer at a time keeps the tier rules simple and exact (a rebuild cannot move the watermark
past a tick that is half written). ``flock`` is released by the kernel when a process dies, even
by SIGKILL, so a crash never leaves the warehouse locked. Readers never take it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class WriterBusyError(RuntimeError):
    """Another process has held the writer lock for longer than we were willing to wait."""


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
                        f"{timeout_s:g} s; wait for its ingest or rebuild to finish, or stop it"
                    ) from None
                time.sleep(0.01)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
