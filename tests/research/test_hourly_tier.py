"""The materialised hourly tier equals on-the-fly sampling, and goes stale when a day changes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from storage import Warehouse
from storage.research.hourly_tier import hourly_sources, materialise_months
from storage.state import load_state, save_state
from tests.research.conftest import all_cases
from tests.research.helpers import Snapshot, write_cold_day, write_hot

ORDER = ["symbol", "computed_at", "position"]


def _expected_hours(cases: list[Snapshot]) -> set[tuple[str, datetime]]:
    last: dict[tuple[str, datetime], datetime] = {}
    for s in cases:
        hour = s.computed_at.replace(minute=0, second=0, microsecond=0)
        key = (s.symbol, hour)
        last[key] = max(last.get(key, s.computed_at), s.computed_at)
    return {(symbol, at) for (symbol, _), at in last.items()}


def test_materialised_equals_on_the_fly_and_goes_stale(tmp_path: Path) -> None:
    cold, hot = all_cases()
    with Warehouse.open(tmp_path / "home") as warehouse:
        write_cold_day(warehouse, "BTCUSDT", date(2026, 3, 1), cold)
        for snapshot in hot:
            write_hot(warehouse, snapshot)
        warehouse.refresh_catalog()
        query = "SELECT * FROM expiries_hourly"
        live = warehouse.sql(query).sort(ORDER)
        keys = set(live.select("symbol", "computed_at").unique().iter_rows())
        assert keys == _expected_hours(cold + hot)

        written = materialise_months(warehouse, [(2026, 3)])
        assert [(w.symbol, w.days) for w in written] == [("BTCUSDT", 1)]
        sources = hourly_sources(warehouse.layout, load_state(warehouse.layout))
        assert sources.materialised == [written[0].path]
        assert all("cold" not in path.parts for path in sources.on_the_fly)
        stored = warehouse.sql(query).sort(ORDER)
        assert stored.select(live.columns).equals(live)

        # The day is recommitted (a rebuild): the month file no longer counts.
        state = load_state(warehouse.layout)
        state.mark_cold("BTCUSDT", date(2026, 3, 1), datetime.now(UTC))
        save_state(warehouse.layout, state)
        warehouse.refresh_catalog()
        stale = hourly_sources(warehouse.layout, load_state(warehouse.layout))
        assert stale.materialised == []
        again = warehouse.sql(query).sort(ORDER)
        assert again.select(live.columns).equals(live)
