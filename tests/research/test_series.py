"""Every research series against a plain-Python computation on the hand-built cases (1e-9),
read through termstore's Warehouse and through a plain DuckDB connection to the lake."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from storage import HOME_ENV, Warehouse
from storage.lake import open_lake
from storage.lake_schema import VIEW_NAMES
from storage.research import api
from storage.research.cm_sql import STANDARD_TENORS
from storage.research.views import RESEARCH_VIEW_NAMES
from tests.research.conftest import SAMPLED_DAY
from tests.research.helpers import CMRow, Snapshot, close, forward, reference_cm_row

START = datetime(2026, 2, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)


def _key(symbol: str, at: datetime) -> tuple[str, datetime]:
    return symbol, at.astimezone(UTC)


def _has_future(snapshot: Snapshot) -> bool:
    return any(snapshot.years(row) > 0 for row in snapshot.rows)


def _check_cm(row: dict[str, object], expected: CMRow) -> None:
    for column, value in (
        ("atm_iv", expected.atm),
        ("put_25d_iv", expected.put),
        ("call_25d_iv", expected.call),
        ("rr_25d", expected.rr),
        ("bf_25d", expected.bf),
        ("skew_25d", expected.skew),
    ):
        assert close(row[column], value), (column, row, expected)  # type: ignore[arg-type]
    assert row["extrapolated"] is expected.extrapolated, (row, expected)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def _in_utc(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))


def test_a_plain_duckdb_connection_sees_the_research_views(research_warehouse: Warehouse) -> None:
    """The views live in the lake's catalog: any DuckDB that attaches the lake has them, with
    the same rows termstore's own reader returns, whatever that session's time zone."""
    assert set(RESEARCH_VIEW_NAMES) <= set(VIEW_NAMES)
    connection = open_lake(research_warehouse.config, read_only=True)
    try:
        # Nine hours ahead of UTC: a UTC day computed in the session's zone would differ.
        connection.execute("SET TimeZone = 'Asia/Tokyo'")
        listed = {
            row[0]
            for row in connection.execute(
                "SELECT view_name FROM duckdb_views() WHERE database_name = 'lake'"
            ).fetchall()
        }
        assert set(RESEARCH_VIEW_NAMES) <= listed
        for name in RESEARCH_VIEW_NAMES:
            theirs = _in_utc(connection.sql(f"SELECT * FROM {name}").pl())
            ours = research_warehouse.sql(f"SELECT * FROM {name}")
            assert theirs.height > 0, name
            assert _sorted(theirs).equals(_sorted(ours)), name
    finally:
        connection.close()


def test_constant_maturity_view_matches_reference(
    research_warehouse: Warehouse, cases: list[Snapshot]
) -> None:
    frame = research_warehouse.sql("SELECT * FROM constant_maturity")
    rows = {
        (r["symbol"], r["computed_at"], r["tenor_days"]): r for r in frame.iter_rows(named=True)
    }
    expected_keys = set()
    for snapshot in cases:
        if not _has_future(snapshot):
            continue
        for tenor in STANDARD_TENORS:
            key = (*_key(snapshot.symbol, snapshot.computed_at), tenor)
            expected_keys.add(key)
            _check_cm(rows[key], reference_cm_row(snapshot, tenor))
    assert set(rows) == expected_keys


def test_edge_cases_take_the_documented_values(research_warehouse: Warehouse) -> None:
    frame = research_warehouse.sql("SELECT * FROM constant_maturity")
    by_key = {
        (r["symbol"], r["computed_at"], r["tenor_days"]): r for r in frame.iter_rows(named=True)
    }
    sol = datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC)
    assert by_key[("SOLUSDT", sol, 1)]["extrapolated"] is True
    assert by_key[("SOLUSDT", sol, 180)]["atm_iv"] is None
    exact = by_key[("SOLUSDT", datetime(2026, 3, 6, 8, tzinfo=UTC), 7)]
    assert exact["lower_expiry"] == exact["upper_expiry"] == "13MAR26"
    eth_before = by_key[("ETHUSDT", datetime(2026, 3, 3, 7, 59, tzinfo=UTC), 1)]
    eth_after = by_key[("ETHUSDT", datetime(2026, 3, 3, 8, 0, 30, tzinfo=UTC), 1)]
    assert eth_before["lower_expiry"] == "03MAR26"
    assert eth_after["lower_expiry"] != "03MAR26"


@pytest.mark.parametrize("every", ["snapshot", "1h", "2h", "30m", "1d"])
def test_api_constant_maturity_samples_then_interpolates(
    research_warehouse: Warehouse, cases: list[Snapshot], every: str
) -> None:
    tenors = (1, 30, 45.5)
    frame = api.constant_maturity(research_warehouse, None, START, END, tenors, every=every)
    bucket = api.every_us(every)
    chosen: dict[tuple[str, int], Snapshot] = {}
    for snapshot in cases:
        stamp = int(snapshot.computed_at.timestamp() * 1_000_000)
        bucket_key = (snapshot.symbol, stamp // bucket if bucket else stamp)
        if bucket_key not in chosen or chosen[bucket_key].computed_at < snapshot.computed_at:
            chosen[bucket_key] = snapshot
    expected = {
        (*_key(s.symbol, s.computed_at), float(t)): reference_cm_row(s, t)
        for s in chosen.values()
        if _has_future(s)
        for t in tenors
    }
    rows = {
        (r["symbol"], r["computed_at"], float(r["tenor_days"])): r
        for r in frame.iter_rows(named=True)
    }
    assert set(rows) == set(expected)
    for key, reference in expected.items():
        _check_cm(rows[key], reference)


def test_hourly_series_read_the_stored_sample(
    research_warehouse: Warehouse, cases: list[Snapshot]
) -> None:
    """The fixture sampled one day: the hourly view and ``every="1h"`` read it and the on-the-fly
    sample of the other days, and agree with each other."""
    stored = research_warehouse.sql("SELECT DISTINCT symbol, computed_at FROM hourly_sample")
    last_of_hour: dict[tuple[str, datetime], datetime] = {}
    for s in cases:
        if s.computed_at.date() == SAMPLED_DAY:
            hour = (s.symbol, s.computed_at.replace(minute=0, second=0))
            last_of_hour[hour] = max(last_of_hour.get(hour, s.computed_at), s.computed_at)
    assert set(stored.iter_rows()) == {(symbol, at) for (symbol, _), at in last_of_hour.items()}
    view = research_warehouse.sql("SELECT * FROM constant_maturity_hourly")
    series = api.constant_maturity(research_warehouse, None, START, END, STANDARD_TENORS, "1h")
    assert SAMPLED_DAY in set(view["computed_at"].dt.date())
    assert _sorted(series).equals(_sorted(view.select(series.columns)))


def test_forward_vol_between_listed_expiries(
    research_warehouse: Warehouse, cases: list[Snapshot]
) -> None:
    frame = api.forward_vols(research_warehouse, None, START, END)
    rows = {
        (r["symbol"], r["computed_at"], r["from_expiry"]): r for r in frame.iter_rows(named=True)
    }
    expected = {}
    for s in cases:
        points = sorted(
            (s.years(row), row) for row in s.rows if s.years(row) > 0 and row.atm is not None
        )
        for (t1, first), (t2, second) in itertools.pairwise(points):
            token = rows_token(first.expiry_date)
            expected[(*_key(s.symbol, s.computed_at), token)] = (
                forward(first.atm, t1, second.atm, t2),  # type: ignore[arg-type]
                rows_token(second.expiry_date),
            )
    assert set(rows) == set(expected)
    arbitrage = 0
    for key, (value, to_expiry) in expected.items():
        assert close(rows[key]["forward_atm_iv"], value)
        assert rows[key]["to_expiry"] == to_expiry
        assert rows[key]["calendar_arbitrage"] is (value is None)
        arbitrage += value is None
    assert arbitrage >= 1


def rows_token(expiry: date) -> str:
    return expiry.strftime("%d%b%y").upper()


def test_forward_vol_between_tenors_and_shape(
    research_warehouse: Warehouse, cases: list[Snapshot]
) -> None:
    forwards = api.tenor_forward_vols(research_warehouse, None, START, END)
    shapes = api.term_structure_shape(research_warehouse, None, START, END)
    fwd = {
        (r["symbol"], r["computed_at"], r["from_tenor_days"]): r
        for r in forwards.iter_rows(named=True)
    }
    shape = {(r["symbol"], r["computed_at"]): r for r in shapes.iter_rows(named=True)}
    for s in (c for c in cases if _has_future(c)):
        cm = {t: reference_cm_row(s, t) for t in STANDARD_TENORS}
        for t1, t2 in itertools.pairwise(STANDARD_TENORS):
            row = fwd[(*_key(s.symbol, s.computed_at), t1)]
            a, b = cm[t1].atm, cm[t2].atm
            value = None if a is None or b is None else forward(a, t1, b, t2)
            assert close(row["forward_atm_iv"], value)
            assert row["calendar_arbitrage"] is (a is not None and b is not None and value is None)
            assert row["extrapolated"] is (cm[t1].extrapolated or cm[t2].extrapolated)
        got = shape[_key(s.symbol, s.computed_at)]
        seven, ninety = cm[7].atm, cm[90].atm
        slope = None if seven is None or ninety is None else ninety - seven
        assert close(got["slope_90d_7d"], slope)
        assert close(got["atm_iv_30d"], cm[30].atm)
        expected_shape = (
            None
            if slope is None
            else "contango"
            if slope > 0
            else "backwardation"
            if slope < 0
            else "flat"
        )
        assert got["shape"] == expected_shape


def _by_day(cases: list[Snapshot]) -> dict[tuple[str, date], list[Snapshot]]:
    days: dict[tuple[str, date], list[Snapshot]] = defaultdict(list)
    for s in cases:
        days[(s.symbol, s.computed_at.astimezone(UTC).date())].append(s)
    return days


@pytest.mark.parametrize("source", ["view", "api"])
def test_daily_term_structure_keeps_last_row_of_each_expiry(
    research_warehouse: Warehouse, cases: list[Snapshot], source: str
) -> None:
    frame = (
        research_warehouse.sql("SELECT * FROM daily_term_structure")
        if source == "view"
        else api.daily_term_structure(research_warehouse, None, START, END)
    )
    rows = {(r["symbol"], r["day"], r["expiry"]): r for r in frame.iter_rows(named=True)}
    expected = {}
    for (symbol, day), snapshots in _by_day(cases).items():
        last = max(s.computed_at for s in snapshots)
        for s in sorted(snapshots, key=lambda item: item.computed_at):
            for row in s.rows:
                expected[(symbol, day, rows_token(row.expiry_date))] = (
                    s,
                    row,
                    s.computed_at == last,
                )
    assert set(rows) == set(expected)
    for key, (s, row, in_last) in expected.items():
        got = rows[key]
        assert got["computed_at"] == s.computed_at
        assert close(got["atm_iv"], row.atm)
        assert got["in_last_snapshot"] is in_last
    gone = rows[("BTCUSDT", date(2026, 3, 2), "13MAR26")]
    assert gone["in_last_snapshot"] is False


@pytest.mark.parametrize("source", ["view", "api"])
def test_daily_constant_maturity_ohlc(
    research_warehouse: Warehouse, cases: list[Snapshot], source: str
) -> None:
    frame = (
        research_warehouse.sql("SELECT * FROM daily_constant_maturity")
        if source == "view"
        else api.daily_constant_maturity(research_warehouse, None, START, END)
    )
    rows = {(r["symbol"], r["day"], r["tenor_days"]): r for r in frame.iter_rows(named=True)}
    checked = 0
    for (symbol, day), snapshots in _by_day(cases).items():
        ordered = sorted((s for s in snapshots if _has_future(s)), key=lambda s: s.computed_at)
        for tenor in STANDARD_TENORS:
            series = [(s.computed_at, reference_cm_row(s, tenor)) for s in ordered]
            atm = [cm.atm for _, cm in series if cm.atm is not None]
            skews = [cm.skew for _, cm in series if cm.skew is not None]
            got = rows[(symbol, day, tenor)]
            assert got["snapshots"] == len(series)
            assert close(got["open_atm_iv"], atm[0] if atm else None)
            assert close(got["close_atm_iv"], atm[-1] if atm else None)
            assert close(got["high_atm_iv"], max(atm) if atm else None)
            assert close(got["low_atm_iv"], min(atm) if atm else None)
            assert close(got["close_skew_25d"], skews[-1] if skews else None)
            checked += 1
    assert checked == len(rows)


def test_opex_anchors_and_next_anchor(research_warehouse: Warehouse, cases: list[Snapshot]) -> None:
    anchors = api.opex_anchors(research_warehouse, None, START, END)
    following = api.next_anchor(research_warehouse, None, START, END)
    rows = {(r["symbol"], r["computed_at"], r["expiry"]): r for r in anchors.iter_rows(named=True)}
    nxt = {(r["symbol"], r["computed_at"]): r for r in following.iter_rows(named=True)}
    expected = {}
    expected_next = {}
    for s in cases:
        listed = [
            row
            for row in s.rows
            if s.years(row) > 0 and row.expiry_date.day > 21 and row.expiry_date.weekday() == 4
        ]
        for row in listed:
            expected[(*_key(s.symbol, s.computed_at), rows_token(row.expiry_date))] = (s, row)
        if listed:
            expected_next[_key(s.symbol, s.computed_at)] = rows_token(
                min(listed, key=s.years).expiry_date
            )
    assert set(rows) == set(expected)
    for key, (s, row) in expected.items():
        got = rows[key]
        assert close(got["total_oi"], row.call_oi + row.put_oi)
        assert close(got["pcr"], row.put_oi / row.call_oi)
        distance = None if row.max_pain is None else row.max_pain - s.spot
        assert close(got["max_pain_distance_usd"], distance)
        pct = None if distance is None else distance / s.spot * 100
        assert close(got["max_pain_distance_pct"], pct)
        assert close(got["days_to_expiry"], s.years(row) * 365)
    assert {key: row["expiry"] for key, row in nxt.items()} == expected_next


def test_term_structure_at_picks_the_last_snapshot_before(
    research_warehouse: Warehouse, cases: list[Snapshot]
) -> None:
    at = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    frame = api.term_structure(research_warehouse, "BTCUSDT", at)
    expected = max(
        (s for s in cases if s.symbol == "BTCUSDT" and s.computed_at <= at),
        key=lambda s: s.computed_at,
    )
    assert set(frame["computed_at"]) == {expected.computed_at}
    assert frame["expiry"].to_list() == [
        rows_token(r.expiry_date) for r in sorted(expected.rows, key=lambda r: r.expiry_date)
    ]
    latest = api.term_structure(research_warehouse, "BTCUSDT")
    assert latest.height == 3
    assert api.term_structure(research_warehouse, "BTCUSDT", date(2020, 1, 1)).height == 0


def test_the_readme_python_example_runs(
    research_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    [example] = [block for block in blocks if "from storage.research import api" in block]
    monkeypatch.setenv(HOME_ENV, str(research_warehouse.home))
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), namespace)
    opened = namespace["warehouse"]
    assert isinstance(opened, Warehouse)
    opened.close()
    cm, now = namespace["cm"], namespace["now"]
    assert isinstance(cm, pl.DataFrame) and isinstance(now, pl.DataFrame)
    assert {"symbol", "computed_at", "tenor_days", "atm_iv", "rr_25d"} <= set(cm.columns)
    assert set(now["symbol"]) == {"ETHUSDT"}
    assert now["computed_at"].n_unique() == 1 and now.height > 0


def test_bad_arguments_say_what_to_pass(research_warehouse: Warehouse) -> None:
    with pytest.raises(ValueError, match="sampling interval"):
        api.constant_maturity(research_warehouse, None, START, END, every="hourly")
    with pytest.raises(ValueError, match="positive number of days"):
        api.constant_maturity(research_warehouse, None, START, END, tenors=(0,))
    with pytest.raises(ValueError, match="must be after start"):
        api.forward_vols(research_warehouse, None, END, START)
    with pytest.raises(ValueError):
        api.opex_anchors(research_warehouse, "DOGEUSDT", START, END)


# Each view: the condition under which a value it carries is null.
NULLABLE_VALUES = {
    "constant_maturity": "atm_iv IS NULL OR put_25d_iv IS NULL OR call_25d_iv IS NULL",
    "constant_maturity_hourly": "atm_iv IS NULL OR put_25d_iv IS NULL OR call_25d_iv IS NULL",
    "forward_vol_listed": "forward_atm_iv IS NULL",
    "forward_vol_tenor": "forward_atm_iv IS NULL",
    "term_structure_shape": "atm_iv_7d IS NULL OR atm_iv_30d IS NULL OR atm_iv_90d IS NULL",
    "daily_constant_maturity": (
        "close_atm_iv IS NULL OR close_put_25d_iv IS NULL OR close_call_25d_iv IS NULL"
    ),
}


@pytest.mark.parametrize("view", sorted(NULLABLE_VALUES))
def test_every_null_in_a_series_carries_its_reason(
    research_warehouse: Warehouse, view: str
) -> None:
    counts = research_warehouse.sql(
        f"SELECT count(*) FILTER (WHERE {NULLABLE_VALUES[view]}) AS nulls, "
        f"count(*) FILTER (WHERE ({NULLABLE_VALUES[view]}) = (null_reason IS NULL)) AS wrong "
        f"FROM {view}"
    ).row(0, named=True)
    assert counts["nulls"] > 0, f"the fixture has no null in {view} to explain"
    assert counts["wrong"] == 0, f"{view}: a null without its reason, or a reason without a null"


def test_a_tenor_beyond_the_listed_expiries_says_how_far_they_reach(
    research_warehouse: Warehouse, cases: list[Snapshot]
) -> None:
    sol = datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC)
    (snapshot,) = [c for c in cases if c.symbol == "SOLUSDT" and c.computed_at == sol]
    longest = max(snapshot.years(row) for row in snapshot.rows if row.atm is not None)
    reason = research_warehouse.sql(
        "SELECT null_reason FROM constant_maturity "
        f"WHERE symbol = 'SOLUSDT' AND computed_at = '{sol.isoformat()}' AND tenor_days = 180"
    ).item()
    assert reason.startswith(
        f"atm_iv: no listed expiry at or beyond 180d (the longest is {longest * 365:.1f}d)"
    )


def test_sampled_series_are_stamped_with_the_period_they_summarise(
    research_warehouse: Warehouse,
) -> None:
    hourly = research_warehouse.sql(
        "SELECT period_start, computed_at FROM constant_maturity_hourly"
    )
    assert hourly.height > 0
    assert hourly["period_start"].equals(
        hourly["computed_at"].dt.truncate("1h").alias("period_start")
    )
    assert (hourly["computed_at"] != hourly["period_start"]).any()
    daily = api.constant_maturity(research_warehouse, None, START, END, (30,), every="1d")
    assert daily["period_start"].equals(
        daily["computed_at"].dt.truncate("1d").alias("period_start")
    )
    every = api.constant_maturity(research_warehouse, None, START, END, (30,), every="snapshot")
    assert "period_start" not in every.columns
