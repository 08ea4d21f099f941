"""Worker processes for day jobs: shared jobs, job order, failures, kept workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from storage import workers
from storage.day_jobs import run_day_jobs
from storage.workers import running_pool, start_workers
from tests.support.child_process import ROOT, process_exited

DIES = -2
"""A job value whose worker process exits at once."""


@dataclass(frozen=True)
class Job:
    value: int
    marks: str
    caller: int
    wait_for_worker: bool = True
    hold_s: float = 0.0
    worker_hold_s: float = 0.0


def _job(job: Job) -> tuple[int, int]:
    """Which process ran the job. A worker appends the job's value to ``marks/order``; the
    caller's jobs wait until a worker has run one (unless told not to), so a worker surely
    takes jobs however slowly it starts. A negative value fails."""
    order = Path(job.marks) / "order"
    if os.getpid() == job.caller:
        deadline = time.monotonic() + (60 if job.wait_for_worker else 0)
        while not order.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    else:
        with order.open("a") as marks:
            marks.write(f"{job.value}\n")
        if job.value == DIES:
            os._exit(3)
        time.sleep(job.worker_hold_s)
    time.sleep(job.hold_s)
    if job.value < 0:
        raise ValueError(f"job {job.value} failed")
    if os.getpid() != job.caller:
        (Path(job.marks) / f"done-{job.value}").touch()
    return job.value, os.getpid()


def _jobs(values: list[int], marks: Path) -> list[Job]:
    marks.mkdir()
    return [Job(value, str(marks), os.getpid()) for value in values]


def _worker_order(marks: Path) -> list[int]:
    return [int(line) for line in (marks / "order").read_text().split()]


def test_worker_processes_share_the_jobs_and_results_keep_job_order(tmp_path: Path) -> None:
    results = run_day_jobs(_job, _jobs(list(range(6)), tmp_path / "m"), 2, sizes=[1] * 6)
    assert [value for value, _ in results] == list(range(6))
    processes = {pid for _, pid in results}
    assert os.getpid() in processes and len(processes) == 2


def test_a_failed_job_in_a_worker_fails_the_whole_run(tmp_path: Path) -> None:
    # A worker still starting takes the smallest job first: the failing one.
    marks = tmp_path / "m"
    with pytest.raises(ValueError, match="job -1 failed"):
        run_day_jobs(_job, _jobs([0, 1, 2, -1], marks), 2, sizes=[4, 3, 2, 1])
    assert _worker_order(marks)[0] == -1


def test_a_failed_call_leaves_no_job_running_in_a_worker(tmp_path: Path) -> None:
    # The worker takes the failing job and queues the next-smallest behind it, which runs for
    # a second: the call may only fail once that job is done (or was never started).
    marks = tmp_path / "m"
    marks.mkdir()
    jobs = [
        Job(value, str(marks), os.getpid(), worker_hold_s=1.0 if value == 2 else 0.0)
        for value in (0, 1, 2, -1)
    ]
    with pytest.raises(ValueError, match="job -1 failed"):
        run_day_jobs(_job, jobs, 2, sizes=[4, 3, 2, 1])
    started = {value for value in _worker_order(marks) if value >= 0}
    assert started == {int(path.name.split("-")[1]) for path in marks.glob("done-*")}


def test_a_job_that_cannot_be_submitted_fails_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = start_workers(1)
    wait(pool.started)
    submitted = pool.submit
    calls: list[object] = []

    def submit_once(function: Any, *args: Any) -> Any:
        calls.append(function)
        if len(calls) > 1:
            raise RuntimeError("cannot schedule new futures after shutdown")
        return submitted(function, *args)

    monkeypatch.setattr(pool, "submit", submit_once)
    with pytest.raises(RuntimeError, match="cannot schedule"):
        run_day_jobs(_job, _jobs([0, 1, 2, 3], tmp_path / "m"), None, sizes=[1] * 4)


def test_workers_are_kept_and_once_ready_take_the_largest_jobs_too(tmp_path: Path) -> None:
    first = run_day_jobs(_job, _jobs([0, 1, 2, 3], tmp_path / "a"), 2, sizes=[1] * 4)
    pool = running_pool()
    assert pool is not None and pool.ready
    marks = tmp_path / "b"
    jobs = _jobs([0, 1, 2, 3], marks)
    second = run_day_jobs(_job, jobs, 2, sizes=[1] * 4, weights=[1, 2, 3, 4])
    assert running_pool() is pool
    workers = {pid for _, pid in first + second} - {os.getpid()}
    assert len(workers) == 1  # the same worker served both calls
    # A ready worker starts with one of the two heaviest jobs, not the lightest.
    assert _worker_order(marks)[0] in {2, 3}


def test_running_workers_take_jobs_of_any_size(tmp_path: Path) -> None:
    marks = tmp_path / "a"
    marks.mkdir()
    jobs = [Job(value, str(marks), os.getpid(), wait_for_worker=False) for value in (0, 1)]
    alone = run_day_jobs(_job, jobs, None, sizes=[1, 1])
    assert {pid for _, pid in alone} == {os.getpid()} and running_pool() is None
    pool = start_workers(1)
    wait(pool.started)
    helped = run_day_jobs(_job, _jobs([0, 1, 2, 3], tmp_path / "b"), None, sizes=[1] * 4)
    assert len({pid for _, pid in helped}) == 2


def test_a_worker_that_dies_fails_the_call_and_the_next_call_starts_new_workers(
    tmp_path: Path,
) -> None:
    with pytest.raises(BrokenProcessPool):
        run_day_jobs(_job, _jobs([0, 1, 2, DIES], tmp_path / "a"), 2, sizes=[4, 3, 2, 1])
    assert running_pool() is None
    results = run_day_jobs(_job, _jobs([0, 1, 2, 3], tmp_path / "b"), 2, sizes=[1] * 4)
    assert [value for value, _ in results] == [0, 1, 2, 3]
    assert len({pid for _, pid in results}) == 2


def test_idle_workers_are_stopped_and_a_later_call_starts_new_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "IDLE_STOP_S", 0.5)
    first = run_day_jobs(_job, _jobs([0, 1, 2, 3], tmp_path / "a"), 2, sizes=[1] * 4)
    (worker,) = {pid for _, pid in first} - {os.getpid()}
    deadline = time.monotonic() + 30
    while running_pool() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running_pool() is None
    while not process_exited(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_exited(worker)
    second = run_day_jobs(_job, _jobs([0, 1, 2, 3], tmp_path / "b"), 2, sizes=[1] * 4)
    assert len({pid for _, pid in second} - {os.getpid(), worker}) == 1


def test_workers_a_call_is_using_are_not_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The call lasts seconds (its workers start, each job holds 0.5 s), far past the idle limit:
    # a pool stopped under it would fail its submits.
    monkeypatch.setattr(workers, "IDLE_STOP_S", 0.3)
    marks = tmp_path / "m"
    marks.mkdir()
    jobs = [Job(value, str(marks), os.getpid(), hold_s=0.5) for value in range(4)]
    results = run_day_jobs(_job, jobs, 2, sizes=[1] * 4)
    assert [value for value, _ in results] == [0, 1, 2, 3]
    assert len({pid for _, pid in results}) == 2
    assert running_pool() is not None


UNGUARDED_SCRIPT = """
import sys
from pathlib import Path

with Path(sys.argv[1]).open("a") as runs:
    runs.write("ran\\n")
from storage.day_jobs import run_day_jobs
from tests.storage.test_workers import _job, _jobs

jobs = _jobs(list(range(4)), Path(sys.argv[2]))
print(len({pid for _, pid in run_day_jobs(_job, jobs, 2, sizes=[1] * 4)}))
"""


def test_worker_processes_never_run_the_callers_script_again(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT)
    runs = tmp_path / "runs.txt"
    done = subprocess.run(
        [sys.executable, str(script), str(runs), str(tmp_path / "m")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"  # the worker process took jobs
    assert runs.read_text() == "ran\n"


KILLED_PARENT_SCRIPT = """
import os
import time
from concurrent.futures import wait
from storage.workers import start_workers

pool = start_workers(1)
wait(pool.started)
print(pool.submit(os.getpid).result(), flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_workers_leave_when_their_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(KILLED_PARENT_SCRIPT)
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert not process_exited(worker)
    finally:
        parent.kill()
        parent.wait(timeout=30)
    deadline = time.monotonic() + 30
    while not process_exited(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_exited(worker)
