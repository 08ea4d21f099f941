"""Start a test's helper process (``python -m module args``) and wait for its "ready" line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_ready_child(
    module: str, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """The running child, once it printed "ready"; a child that fails to start is killed and its
    stderr is the assertion message. ``env`` replaces the environment (default: inherited)."""
    child = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=None if env is None else dict(env),
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


def read_until(child: subprocess.Popen[str], wanted: str) -> list[str]:
    """The child's stdout lines up to and including ``wanted``; fails with the child's stderr
    when it exits first."""
    assert child.stdout is not None
    seen = []
    while True:
        line = child.stdout.readline()
        if not line:
            child.wait(timeout=30)
            raise AssertionError(
                f"the child exited ({child.returncode}) before printing {wanted!r}: "
                f"{child.communicate()[1][-2000:]}"
            )
        seen.append(line.strip())
        if seen[-1] == wanted:
            return seen


def sigkill(child: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGKILL a child that must still be running; returns the rest of its stdout and stderr."""
    assert child.poll() is None, f"the child died on its own: {child.communicate()[1][-2000:]}"
    os.kill(child.pid, signal.SIGKILL)
    out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, (child.returncode, err[-2000:])
    return out, err
