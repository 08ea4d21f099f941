"""Crash-safe file writes: temp name in the same directory, flush + fsync, rename, fsync the dir.

A reader (or a crash) sees either the old file or the complete new one, never half of either.
Temp names start with a dot and end in ``.tmp`` so no ``*.parquet`` listing ever picks them up.
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path

import polars as pl

TEMP_SUFFIX = ".tmp"


def temp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(path: Path, data: bytes, *, fsync: bool) -> Path:
    """``data`` in a new temp file beside ``path`` (fsynced if asked); the temp file's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return temp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that it appears complete or not at all."""
    temp = _write_temp(path, data, fsync=True)
    try:
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def parquet_bytes(frame: pl.DataFrame, *, compression_level: int | None = None) -> bytes:
    """A frame as zstd Parquet bytes (statistics on, so DuckDB can skip row groups)."""
    buffer = io.BytesIO()
    frame.write_parquet(
        buffer, compression="zstd", compression_level=compression_level, statistics=True
    )
    return buffer.getvalue()


def atomic_write_parquet(
    path: Path, frame: pl.DataFrame, *, compression_level: int | None = None
) -> None:
    atomic_write_bytes(path, parquet_bytes(frame, compression_level=compression_level))


def remove_stale_temp_files(directory: Path) -> int:
    """Delete temp files a killed writer left behind; only call while holding the writer lock."""
    removed = 0
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


def unlink_durably(paths: list[Path]) -> None:
    """Remove files and fsync each directory touched once."""
    directories: set[Path] = set()
    for path in paths:
        path.unlink(missing_ok=True)
        directories.add(path.parent)
    for directory in directories:
        if directory.is_dir():
            fsync_dir(directory)


class WriteBatch:
    """Files that become visible together at ``commit``, in the order they were added.

    Same guarantees as ``atomic_write_bytes`` for each file (temp name, data fsynced before the
    rename, directory fsynced after), but the fsyncs run back to back once every file is
    written: the first one commits the filesystem journal for all of them, so a tick's twenty
    small files cost a few disk flushes instead of forty. Files are renamed in insertion order,
    which keeps "snapshots last" meaningful. Uncommitted temp files are removed by ``discard``
    (or, after a crash, by ``remove_stale_temp_files``); their dot names keep them out of every
    listing meanwhile.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, path: Path, data: bytes) -> None:
        # fsync waits for commit, where the flushes run back to back.
        self._pending.append((_write_temp(path, data, fsync=False), path))

    def add_parquet(
        self, path: Path, frame: pl.DataFrame, *, compression_level: int | None = None
    ) -> None:
        self.add(path, parquet_bytes(frame, compression_level=compression_level))

    def commit(self) -> None:
        """Make every added file durable and visible; on error the rest stay uncommitted."""
        pending, self._pending = self._pending, []
        try:
            for temp, _ in pending:
                fd = os.open(temp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            directories: dict[Path, None] = {}
            for temp, path in pending:
                temp.replace(path)
                directories[path.parent] = None
            for directory in directories:
                fsync_dir(directory)
        finally:
            for temp, _ in pending:
                temp.unlink(missing_ok=True)

    def discard(self, since: int = 0) -> None:
        """Drop the files added after the first ``since`` (all by default)."""
        dropped, self._pending = self._pending[since:], self._pending[:since]
        for temp, _ in dropped:
            temp.unlink(missing_ok=True)
