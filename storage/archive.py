"""The raw archive: every stored response verbatim, with the fetch metadata a rebuild needs.

A loose record is one gzip file per response, ``<key>.rec.gz``; its first line is the fetch
metadata as JSON (orjson never writes a raw newline) and the rest is the body exactly as received,
so ``zcat rec.gz | tail -n +2`` prints the response. Rebuilding a day packs its records into one
zstd Parquet file (``<day>.pack.parquet``: key, fetch metadata, body) and then drops the loose
files, so a year is ~1,460 packs rather than two million small files.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Final

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from backquant.frames import UTC_US, FetchMeta, parse_instant, utc_series
from storage.atomic import atomic_write_bytes, parquet_bytes, unlink_durably
from storage.layout import Layout, key_stamp, utc_day

RECORD_FORMAT: Final[int] = 1
PACK_COMPRESSION_LEVEL: Final[int] = 1
PACK_SCHEMA: Final = pl.Schema({"computed_at": UTC_US, "fetch": pl.String(), "body": pl.Binary()})


@dataclass(frozen=True, slots=True)
class DaySize:
    """A symbol-day's archived records and body bytes, estimated cheaply (``Archive.day_size``)."""

    records: int
    body_bytes: int
    """Uncompressed bytes of the packed bodies, plus the loose files' gzipped sizes."""


class ArchiveCorruptError(RuntimeError):
    """An archive file cannot be read back; the message names the file."""


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """One archived response: its key, how it was fetched and the body as received."""

    symbol: str
    computed_at: datetime
    fetch: FetchMeta
    raw: bytes


def encode_record(record: ArchiveRecord) -> bytes:
    header = orjson.dumps(
        {
            "format": RECORD_FORMAT,
            "symbol": record.symbol,
            "computed_at": record.computed_at.isoformat(),
            "fetch": record.fetch.to_json_dict(),
        }
    )
    # mtime=0 keeps the file a pure function of its content.
    return gzip.compress(header + b"\n" + record.raw, compresslevel=6, mtime=0)


def decode_record(data: bytes, source: Path) -> ArchiveRecord:
    try:
        payload = gzip.decompress(data)
        header_bytes, _, raw = payload.partition(b"\n")
        header = orjson.loads(header_bytes)
        return ArchiveRecord(
            symbol=str(header["symbol"]),
            computed_at=parse_instant(str(header["computed_at"]), "computed_at"),
            fetch=FetchMeta.from_json_dict(header["fetch"]),
            raw=raw,
        )
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise ArchiveCorruptError(
            f"archive record {source} cannot be read ({type(exc).__name__}: {exc}); move it "
            "aside and rebuild the day"
        ) from None


def _fetch_json(fetch: FetchMeta) -> str:
    """``orjson.dumps(fetch.to_json_dict())``, byte for byte, without ``dataclasses.asdict``
    (it deep-copies every header value: half the cost of packing a day)."""
    document = {
        "symbol": fetch.symbol,
        "status": fetch.status,
        "started_at": fetch.started_at,
        "finished_at": fetch.finished_at,
        "attempts": fetch.attempts,
        "headers": fetch.headers,
    }
    return orjson.dumps(document).decode()


class Archive:
    """Reads and writes the raw archive of one warehouse home."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def contains(self, symbol: str, computed_at: datetime) -> bool:
        """True when the key is archived, loose or packed."""
        if self.layout.archive_record(symbol, computed_at).exists():
            return True
        pack = self.layout.archive_pack(symbol, utc_day(computed_at))
        if not pack.exists():
            return False
        keys = pl.read_parquet(pack, columns=["computed_at"]).get_column("computed_at")
        return bool((keys == computed_at).any())

    def write(self, record: ArchiveRecord) -> Path:
        path = self.layout.archive_record(record.symbol, record.computed_at)
        atomic_write_bytes(path, encode_record(record))
        return path

    def read(self, symbol: str, computed_at: datetime) -> ArchiveRecord | None:
        path = self.layout.archive_record(symbol, computed_at)
        if path.exists():
            return decode_record(path.read_bytes(), path)
        for record in self._read_pack(symbol, utc_day(computed_at)):
            if record.computed_at == computed_at:
                return record
        return None

    def loose_files(self, symbol: str, day: date) -> list[Path]:
        day_dir = self.layout.archive_day_dir(symbol, day)
        if not day_dir.is_dir():
            return []
        return sorted(path for path in day_dir.glob("*.rec.gz") if not path.name.startswith("."))

    def day_size(self, symbol: str, day: date) -> DaySize:
        """Roughly what a symbol-day holds, from the pack's footer and the loose files' sizes
        (a key both loose and packed counts twice; an unreadable pack counts 0, reading the day
        says why). Used to schedule work, never to decide what is stored."""
        pack = self.layout.archive_pack(symbol, day)
        try:
            metadata = pq.read_metadata(pack)
            body = metadata.schema.to_arrow_schema().get_field_index("body")
            packed_bytes = sum(
                metadata.row_group(group).column(body).total_uncompressed_size
                for group in range(metadata.num_row_groups)
            )
            packed = metadata.num_rows
        except (OSError, ValueError, pa.ArrowException):
            packed = packed_bytes = 0
        loose = self.loose_files(symbol, day)
        return DaySize(
            records=packed + len(loose),
            body_bytes=packed_bytes + sum(path.stat().st_size for path in loose),
        )

    def read_day(self, symbol: str, day: date) -> list[ArchiveRecord]:
        """Every record of a symbol-day, deduplicated by key, in key order."""
        by_key: dict[datetime, ArchiveRecord] = {}
        for record in self._read_pack(symbol, day):
            by_key.setdefault(record.computed_at, record)
        for path in self.loose_files(symbol, day):
            record = decode_record(path.read_bytes(), path)
            by_key.setdefault(record.computed_at, record)
        return [by_key[key] for key in sorted(by_key)]

    def pack_day(
        self, symbol: str, day: date, records: list[ArchiveRecord], *, rewrite: bool = False
    ) -> None:
        """Pack a day's records (all of them, in key order) into one file, then drop the loose
        files it now holds. Without loose files the pack already holds the day, so it is only
        rewritten when ``rewrite`` says records were added another way (a bulk import)."""
        loose = self.loose_files(symbol, day)
        if not loose and not rewrite:
            return
        frame = pl.DataFrame(
            [
                utc_series("computed_at", [record.computed_at for record in records]),
                pl.Series("fetch", [_fetch_json(record.fetch) for record in records]),
                pl.Series("body", [record.raw for record in records], dtype=pl.Binary()),
            ],
            schema=PACK_SCHEMA,
        )
        # zstd level 1: faster than the default and, on these bodies, smaller too.
        data = parquet_bytes(frame, compression_level=PACK_COMPRESSION_LEVEL)
        atomic_write_bytes(self.layout.archive_pack(symbol, day), data)
        packed = {key_stamp(record.computed_at) for record in records}
        unlink_durably([path for path in loose if path.name.split(".rec")[0] in packed])
        day_dir = self.layout.archive_day_dir(symbol, day)
        if day_dir.is_dir() and not any(day_dir.iterdir()):
            day_dir.rmdir()

    def days(self, symbol: str) -> list[date]:
        """The UTC days for which the symbol has any archived response."""
        root = self.layout.archive_symbol_dir(symbol)
        if not root.is_dir():
            return []
        found: set[date] = set()
        for entry in root.iterdir():
            name = entry.name.removesuffix(".pack.parquet")
            try:
                found.add(date.fromisoformat(name))
            except ValueError:
                continue
        return sorted(found)

    def _read_pack(self, symbol: str, day: date) -> list[ArchiveRecord]:
        pack = self.layout.archive_pack(symbol, day)
        if not pack.exists():
            return []
        try:
            frame = pl.read_parquet(pack)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise ArchiveCorruptError(
                f"archive pack {pack} cannot be read ({exc}); restore it from a backup"
            ) from None
        return [
            ArchiveRecord(
                symbol=symbol,
                computed_at=computed_at,
                fetch=FetchMeta.from_json_dict(orjson.loads(fetch)),
                raw=body,
            )
            for computed_at, fetch, body in frame.iter_rows()
        ]
