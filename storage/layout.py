"""Where everything lives under ``TERMSTORE_HOME``, and the file names built from keys.

    <home>/
      archive/<SYMBOL>/<YYYY-MM-DD>/<key>.rec.gz      one verbatim response + its fetch metadata
      archive/<SYMBOL>/<YYYY-MM-DD>.pack.parquet      a rebuilt day's responses packed in one file
      quarantine/<SYMBOL>/<YYYY-MM-DD>/<stamp>-<kind>.body / .json   rejected bodies and reasons
      hot/<table>/<SYMBOL>/<YYYY-MM-DD>/<key>.parquet one immutable file per table × symbol × tick
      hot/<table>/<SYMBOL>/<YYYY-MM-DD>/hours/<HH>.<gen>.parquet  an hour of tick files rolled
                                                      into one; state/tiers.json names the <gen>
      cold/<table>/<SYMBOL>/<YYYY-MM-DD>.<gen>.parquet  one sorted zstd file per table × symbol ×
                                                      day; state/tiers.json names the live <gen>
      latest/<SYMBOL>/<key>.parquet                   the newest snapshot's expiries per symbol
      schema/<table>.parquet                          zero-row files that fix each view's schema
      state/tiers.json                                cold days, watermark, dirty days per symbol
      state/writer.lock                               held by the single writer (ingest, rebuild)
      state/tick-journal.parquet                      log rows of a tick not yet committed
      warehouse.duckdb                                the catalog: views only

Symbols are checked against the supported list before they become a path component, and keys
are formatted from parsed datetimes, so nothing from a response body can steer a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

from storage.schemas import check_symbol

TABLES: Final[tuple[str, ...]] = ("snapshots", "expiries", "venue_oi", "ingest_log")
SUMMARY_TABLES: Final[tuple[str, ...]] = ("snapshots", "expiries", "venue_oi")
STREAM_TABLES: Final[dict[str, tuple[str, ...]]] = {
    "summary": SUMMARY_TABLES,
    "log": ("ingest_log",),
}
"""Hot tables grouped by the instant their files are keyed by: the summary tables by the
snapshot's computed_at (and rolled up together, complete ticks only), ingest_log by the fetch's
started_at."""


def stream_of(table: str) -> str:
    return "log" if table == "ingest_log" else "summary"


CATALOG_NAME: Final[str] = "warehouse.duckdb"
_KEY_FORMAT: Final[str] = "%Y%m%dT%H%M%S.%fZ"


def key_stamp(instant: datetime) -> str:
    """``2026-03-02T12:00:30Z`` → ``20260302T120030.000000Z``: sortable and path-safe."""
    return instant.astimezone(UTC).strftime(_KEY_FORMAT)


def parse_key_stamp(stamp: str) -> datetime:
    return datetime.strptime(stamp, _KEY_FORMAT).replace(tzinfo=UTC)


def utc_day(instant: datetime) -> date:
    return instant.astimezone(UTC).date()


def utc_hour(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


_HOUR_PREFIX_LENGTH: Final[int] = len("20260302T13")


def hour_prefix(hour: datetime) -> str:
    """The start every key stamp of that UTC hour shares: ``20260302T13``."""
    return key_stamp(hour)[:_HOUR_PREFIX_LENGTH]


def rollup_name(hour: datetime, generation: str) -> str:
    return f"{hour.astimezone(UTC):%H}.{generation}.parquet"


def name_hour_prefix(name: str) -> str:
    """The hour prefix of a hot tick file's name (``hour_prefix`` of its key)."""
    return name[:_HOUR_PREFIX_LENGTH]


@dataclass(frozen=True, slots=True)
class Layout:
    """Absolute paths of a warehouse home."""

    home: Path

    @property
    def catalog(self) -> Path:
        return self.home / CATALOG_NAME

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "tiers.json"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "writer.lock"

    @property
    def tick_journal(self) -> Path:
        return self.state_dir / "tick-journal.parquet"

    def schema_file(self, table: str) -> Path:
        return self.home / "schema" / f"{table}.parquet"

    def archive_day_dir(self, symbol: str, day: date) -> Path:
        return self.home / "archive" / check_symbol(symbol) / day.isoformat()

    def archive_record(self, symbol: str, computed_at: datetime) -> Path:
        day_dir = self.archive_day_dir(symbol, utc_day(computed_at))
        return day_dir / f"{key_stamp(computed_at)}.rec.gz"

    def archive_pack(self, symbol: str, day: date) -> Path:
        return self.home / "archive" / check_symbol(symbol) / f"{day.isoformat()}.pack.parquet"

    def archive_symbol_dir(self, symbol: str) -> Path:
        return self.home / "archive" / check_symbol(symbol)

    def quarantine_day_dir(self, symbol: str, day: date) -> Path:
        return self.home / "quarantine" / check_symbol(symbol) / day.isoformat()

    def hot_symbol_dir(self, table: str, symbol: str) -> Path:
        return self.home / "hot" / table / check_symbol(symbol)

    def hot_day_dir(self, table: str, symbol: str, day: date) -> Path:
        return self.hot_symbol_dir(table, symbol) / day.isoformat()

    def hot_file(self, table: str, symbol: str, instant: datetime) -> Path:
        return self.hot_day_dir(table, symbol, utc_day(instant)) / f"{key_stamp(instant)}.parquet"

    def hot_hours_dir(self, table: str, symbol: str, day: date) -> Path:
        return self.hot_day_dir(table, symbol, day) / "hours"

    def rollup_file(self, table: str, symbol: str, hour: datetime, generation: str) -> Path:
        """``hours/<HH>.<generation>.parquet`` in the hour's hot day directory."""
        directory = self.hot_hours_dir(table, symbol, utc_day(hour))
        return directory / rollup_name(hour, generation)

    def cold_dir(self, table: str, symbol: str) -> Path:
        return self.home / "cold" / table / check_symbol(symbol)

    def cold_file(self, table: str, symbol: str, day: date, generation: str | None = None) -> Path:
        """``<day>.<generation>.parquet`` as a rebuild writes it (``<day>.parquet`` without)."""
        stem = f"{day.isoformat()}.{generation}" if generation else day.isoformat()
        return self.cold_dir(table, symbol) / f"{stem}.parquet"

    def latest_dir(self, symbol: str) -> Path:
        return self.home / "latest" / check_symbol(symbol)

    def latest_file(self, symbol: str, computed_at: datetime) -> Path:
        return self.latest_dir(symbol) / f"{key_stamp(computed_at)}.parquet"
