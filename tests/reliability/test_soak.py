"""Soak: many ticks against the simulator with faults; nothing lost, nothing doubled, all logged.

The simulator's clock is moved one minute per tick (a fast clock driven by the test), and the
client runs without retries so every injected fault surfaces as exactly one failed attempt. The
injected faults are known in advance: a shadow ``FaultPlan`` with the same seed and spec draws
the same fault for the same (symbol, request number) as the server does.

Fetch times are relabelled to the simulated minute before storing (the scheduler would have
fetched at that minute), so ``ingest_gaps``, which works per minute of ``started_at``, can be
compared with the injected faults minute by minute. Maintenance runs every ``MAINTAIN_EVERY``
ticks, as the hourly schedule would, and leaves at most one data file per table and day
(the days of a month share theirs).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from backquant.client import FetchOutcome, fetch_all_sync
from backquant.config import RetryPolicy
from backquant.simulator.faults import FaultPlan
from backquant.symbols import SUPPORTED_SYMBOLS
from storage import ingest_outcomes
from storage.lake_schema import LAKE_TABLES
from storage.maintenance import maintain
from tests.reliability.sizes import sized
from tests.storage.helpers import KEY_COLUMNS, duplicate_keys, open_local
from tests.support.simulator import SIM_START, running_simulator

SEED = 11
MAINTAIN_EVERY = 30
FAULTS = "burst(1)@10%; 500@2.5%; 503@2.5%; hang(1)@2%; truncate@1%; drift-unknown@1%"
"""10 % 429, 5 % 5xx, 2 % timeouts, 1 % malformed, 1 % drift, per symbol and request."""
NO_RETRIES = RetryPolicy(
    deadline_s=3.0, upstream_backoff_s=(), rate_limit_retries=0, transport_retries=0
)
EXPECTED_KIND = {
    "burst": "rate_limited",
    "500": "internal_error",
    "503": "upstream_error",
    "hang": "timeout",
    "truncate": "not_json",
}


def _relabel(outcome: FetchOutcome, at: datetime) -> FetchOutcome:
    shift = at - outcome.started_at
    result = outcome.result
    if result is not None:
        result = replace(
            result, started_at=result.started_at + shift, finished_at=result.finished_at + shift
        )
    return replace(outcome, started_at=at, finished_at=outcome.finished_at + shift, result=result)


@sized(60, 2000)
def test_faulty_ticks_store_each_success_once_and_log_each_failure(
    tmp_path: Path, size: int
) -> None:
    shadow = FaultPlan(SEED, FAULTS)
    expected_fault: dict[tuple[str, int], str] = {}
    warehouse = open_local(tmp_path / "home")
    with running_simulator(
        frozen_at=SIM_START, seed=SEED, faults=FAULTS, burst_limit_per_minute=10**6
    ) as sim:
        config = sim.client_config(retry=NO_RETRIES, read_timeout_s=0.3)
        for minute in range(size):
            at = SIM_START + timedelta(minutes=minute)
            sim.clock.set(at)
            for symbol in SUPPORTED_SYMBOLS:
                fault = shadow.next_fault(symbol)
                if fault is not None:
                    expected_fault[(symbol, minute)] = fault.name
            outcomes = {s: _relabel(o, at) for s, o in fetch_all_sync(config).items()}
            ingest_outcomes(warehouse, outcomes)
            if minute % MAINTAIN_EVERY == MAINTAIN_EVERY - 1:
                maintain(warehouse)

    failing = {key: name for key, name in expected_fault.items() if name in EXPECTED_KIND}
    drifted = {key for key, name in expected_fault.items() if name == "drift-unknown"}
    # The seed is chosen so even the reduced run meets every kind of fault.
    assert set(failing.values()) == set(EXPECTED_KIND), failing
    assert drifted

    log = warehouse.sql(
        "SELECT symbol, started_at, outcome, reason, computed_at FROM ingest_log"
    ).to_dicts()
    assert len(log) == size * len(SUPPORTED_SYMBOLS), "every attempt is logged once"
    for row in log:
        key = (row["symbol"], _minute_of(row["started_at"]))
        if key in failing:
            assert row["outcome"] == EXPECTED_KIND[failing[key]], row
            assert row["reason"], f"a failure without a reason: {row}"
        else:
            assert row["outcome"] == "stored", row

    stored = warehouse.sql("SELECT symbol, computed_at, drift FROM snapshots").to_dicts()
    expected_keys = {
        (symbol, minute)
        for symbol in SUPPORTED_SYMBOLS
        for minute in range(size)
        if (symbol, minute) not in failing
    }
    assert len(stored) == len(expected_keys)
    assert {(row["symbol"], _minute_of(row["computed_at"])) for row in stored} == expected_keys
    for row in stored:
        assert bool(row["drift"]) == ((row["symbol"], _minute_of(row["computed_at"])) in drifted)
    assert duplicate_keys(warehouse) == dict.fromkeys(KEY_COLUMNS, 0)
    archived = warehouse.sql("SELECT count(*) FROM responses").item()
    assert archived == len(expected_keys), "every stored response is archived once"

    first, end = SIM_START.replace(second=0), SIM_START.replace(second=0) + timedelta(minutes=size)
    gaps = warehouse.sql(
        f"SELECT symbol, minute, outcomes FROM ingest_gaps_between("
        f"TIMESTAMPTZ '{first.isoformat()}', TIMESTAMPTZ '{end.isoformat()}')"
    ).to_dicts()
    assert {(g["symbol"], _minute_of(g["minute"])) for g in gaps} == set(failing)
    quarantined = warehouse.sql("SELECT count(*) FROM quarantine").item()
    assert quarantined == sum(1 for name in failing.values() if name == "truncate")
    days = warehouse.sql("SELECT count(DISTINCT CAST(started_at AS DATE)) FROM ingest_log").item()
    merged = maintain(warehouse)
    assert merged.files_after <= len(LAKE_TABLES) * days + 1, merged.as_dict()
    warehouse.close()


def _minute_of(instant: datetime) -> int:
    """Minutes since the first tick's minute (computed_at is the bucket start, 5 s earlier)."""
    return int((instant - SIM_START.replace(second=0)).total_seconds() // 60)
