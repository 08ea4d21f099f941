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
