"""Start a test's helper process (``python -m module args``) and wait for its "ready" line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_ready_child(module: str, *args: str) -> subprocess.Popen[str]:
    """The running child, once it printed "ready"; a child that fails to start is killed and its
    stderr is the assertion message."""
    child = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "ready":
        child.kill()
        raise AssertionError(f"{module} did not start: {line!r} {child.communicate()[1]}")
    return child


def kill_after(module: str, delay_s: float, *args: str) -> None:
    """Start ``module`` (a writer looping until killed), let it work ``delay_s`` seconds, then
    SIGKILL it: the crash tests' random instant. Fails if the child died on its own first."""
    child = start_ready_child(module, *args)
    time.sleep(delay_s)
    assert child.poll() is None, child.communicate()[1]
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=10)
    assert child.returncode == -signal.SIGKILL


def process_exited(pid: int) -> bool:
    """Gone, or a zombie waiting for a reaper (``kill -0`` still finds those); Linux /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def child_pids(parent: int) -> list[int]:
    """The running children of ``parent`` (Linux /proc)."""
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if f"\nPPid:\t{parent}\n" in text and "\nState:\tZ" not in text:
            children.append(int(status.parent.name))
    return children
