"""Start a test's helper process (``python -m module args``) and wait for its "ready" line."""

from __future__ import annotations

import subprocess
import sys
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
