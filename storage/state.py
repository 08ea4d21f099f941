"""Tier state: which symbol-days are cold, which hot hours are rolled up, and what is dirty.

A symbol-day is cold once its four cold files are written and this file says so; the catalog
then reads that day from the cold tier only, and every other day from the hot tier. Each rebuild
writes its cold files under a new generation name and this file names the current one, so
replacing a cold day's files is one atomic step (this file's rename), never table by table. The
watermark is the newest cold day of a symbol. A tick that lands in a cold day marks it dirty so
the day gets rebuilt.

Hot hours work the same way one level down (storage/rollup.py): once a stream's hour is rolled
up, this file names the generation of its roll-up files and the catalog reads that hour from
them instead of the tick files. A tick that writes into a rolled hour marks it dirty first, and
the hour is rolled again. The file is rewritten atomically, and only by the lock-holding writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import orjson

from storage.atomic import atomic_write_bytes
from storage.layout import STREAM_TABLES, Layout

STATE_FORMAT = 1
HourKey = tuple[str, datetime]
"""(stream, start of the UTC hour); streams are ``storage.layout.STREAM_TABLES``'s keys."""


class StateCorruptError(RuntimeError):
    """state/tiers.json cannot be read."""


@dataclass
class SymbolState:
    cold_days: dict[date, datetime] = field(default_factory=dict)
    """Cold day → when it was committed (hot files of that day are deleted after a grace)."""
    dirty_days: set[date] = field(default_factory=set)
    generations: dict[date, str] = field(default_factory=dict)
    """Cold day → generation of its cold files (absent: files named without one)."""
    rolled_hours: dict[HourKey, str] = field(default_factory=dict)
    """Rolled-up hot hour → generation of its roll-up files."""
    dirty_hours: set[HourKey] = field(default_factory=set)
    """Rolled hours that received tick files after their roll-up: to be rolled again."""

    def rolled_on(self, stream: str, day: date) -> dict[datetime, str]:
        """The stream's rolled hours of a UTC day → their generation."""
        return {
            hour: name
            for (of_stream, hour), name in self.rolled_hours.items()
            if of_stream == stream and hour.date() == day
        }


@dataclass
class TierState:
    symbols: dict[str, SymbolState] = field(default_factory=dict)

    def of(self, symbol: str) -> SymbolState:
        return self.symbols.setdefault(symbol, SymbolState())

    def is_cold(self, symbol: str, day: date) -> bool:
        return day in self.of(symbol).cold_days

    def watermark(self, symbol: str) -> date | None:
        cold = self.of(symbol).cold_days
        return max(cold) if cold else None

    def mark_cold(
        self, symbol: str, day: date, committed_at: datetime, generation: str | None = None
    ) -> None:
        entry = self.of(symbol)
        entry.cold_days[day] = committed_at
        entry.dirty_days.discard(day)
        if generation is None:
            entry.generations.pop(day, None)
        else:
            entry.generations[day] = generation
        # The day is read from the cold tier now; its hot hours no longer matter.
        entry.rolled_hours = {
            key: name for key, name in entry.rolled_hours.items() if key[1].date() != day
        }
        entry.dirty_hours = {key for key in entry.dirty_hours if key[1].date() != day}

    def mark_rolled(self, symbol: str, key: HourKey, generation: str) -> None:
        entry = self.of(symbol)
        entry.rolled_hours[key] = generation
        entry.dirty_hours.discard(key)

    def mark_hour_dirty(self, symbol: str, key: HourKey) -> bool:
        """Mark a rolled hour dirty; True when that changed anything."""
        entry = self.of(symbol)
        if key not in entry.rolled_hours or key in entry.dirty_hours:
            return False
        entry.dirty_hours.add(key)
        return True

    def generation(self, symbol: str, day: date) -> str | None:
        return self.of(symbol).generations.get(day)

    def mark_dirty(self, symbol: str, day: date) -> bool:
        """Mark a cold day dirty; True when that changed anything."""
        entry = self.of(symbol)
        if day in entry.dirty_days:
            return False
        entry.dirty_days.add(day)
        return True

    def dirty(self) -> list[tuple[str, date]]:
        return sorted(
            (symbol, day) for symbol, entry in self.symbols.items() for day in entry.dirty_days
        )

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "format": STATE_FORMAT,
                "symbols": {
                    symbol: {
                        "watermark": (wm.isoformat() if (wm := self.watermark(symbol)) else None),
                        "cold_days": {
                            day.isoformat(): at.isoformat()
                            for day, at in sorted(entry.cold_days.items())
                        },
                        "dirty_days": sorted(day.isoformat() for day in entry.dirty_days),
                        "generations": {
                            day.isoformat(): name for day, name in sorted(entry.generations.items())
                        },
                        "rolled_hours": {
                            stream: {
                                hour.isoformat(): name
                                for (of_stream, hour), name in sorted(entry.rolled_hours.items())
                                if of_stream == stream
                            }
                            for stream in STREAM_TABLES
                        },
                        "dirty_hours": [
                            [stream, hour.isoformat()] for stream, hour in sorted(entry.dirty_hours)
                        ],
                    }
                    for symbol, entry in sorted(self.symbols.items())
                },
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_json(cls, data: bytes) -> TierState:
        document = orjson.loads(data)
        state = cls()
        for symbol, entry in document["symbols"].items():
            state.symbols[symbol] = SymbolState(
                cold_days={
                    date.fromisoformat(day): datetime.fromisoformat(at)
                    for day, at in entry["cold_days"].items()
                },
                dirty_days={date.fromisoformat(day) for day in entry["dirty_days"]},
                generations={
                    date.fromisoformat(day): str(name)
                    for day, name in entry.get("generations", {}).items()
                },
                rolled_hours={
                    (stream, datetime.fromisoformat(hour)): str(name)
                    for stream, hours in entry.get("rolled_hours", {}).items()
                    for hour, name in hours.items()
                },
                dirty_hours={
                    (str(stream), datetime.fromisoformat(hour))
                    for stream, hour in entry.get("dirty_hours", [])
                },
            )
        return state


def load_state(layout: Layout) -> TierState:
    path = layout.state_file
    if not path.exists():
        return TierState()
    try:
        return TierState.from_json(path.read_bytes())
    except (ValueError, KeyError, TypeError) as exc:
        raise StateCorruptError(
            f"{path} is unreadable ({type(exc).__name__}: {exc}). It is only ever replaced "
            "atomically, so this is outside damage: restore it from a backup, or delete it and "
            "rebuild every day (termstore rebuild --start ... --end ...)"
        ) from None


def save_state(layout: Layout, state: TierState) -> None:
    atomic_write_bytes(layout.state_file, state.to_json())
