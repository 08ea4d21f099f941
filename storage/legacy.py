"""Reading a warehouse written by termstore's previous on-disk layout, so it can be imported.

That layout kept every stored response under ``<home>/archive/<SYMBOL>/``: loose records
``<day>/<key>.rec.gz`` (gzip; the first line the fetch metadata as JSON, the rest the body as
received) and packed days ``<day>.pack.parquet`` (columns ``computed_at``, ``fetch`` (JSON) and
``body``). Both hold the same fetch metadata the lake's ``responses`` table keeps, so every
response becomes a ``FetchedBody`` for ``storage.bulk.bulk_ingest`` and its rows are rebuilt
with today's code. Its hot/cold Parquet tiers are derived from the archive and are not read.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import orjson
import polars as pl

from backquant.symbols import SUPPORTED_SYMBOLS
from storage.bulk import FetchedBody
from storage.errors import ArchiveCorruptError
from storage.records import FetchMeta

_ADVICE = "move the file aside (it is not imported) and run the import again"


def _record(path: Path) -> FetchedBody:
    try:
        payload = gzip.decompress(path.read_bytes())
        header_bytes, _, raw = payload.partition(b"\n")
        fetch = FetchMeta.from_json_dict(orjson.loads(header_bytes)["fetch"])
    except (OSError, EOFError, ValueError, KeyError, TypeError) as error:
        raise ArchiveCorruptError(
            f"the archived record {path} cannot be read ({type(error).__name__}: {error})",
            advice=_ADVICE,
        ) from None
    return FetchedBody(fetch, raw)


def _pack(path: Path) -> Iterator[FetchedBody]:
    try:
        frame = pl.read_parquet(path, columns=["fetch", "body"])
        bodies = [
            FetchedBody(FetchMeta.from_json_dict(orjson.loads(fetch)), body)
            for fetch, body in frame.iter_rows()
        ]
    except (OSError, ValueError, KeyError, TypeError, pl.exceptions.PolarsError) as error:
        raise ArchiveCorruptError(
            f"the archive pack {path} cannot be read ({type(error).__name__}: {error})",
            advice=_ADVICE,
        ) from None
    yield from bodies


def is_legacy_home(path: Path) -> bool:
    return (path / "archive").is_dir()


def legacy_days(home: Path) -> list[tuple[str, str]]:
    """(symbol, day) of every archived day, in order."""
    found: set[tuple[str, str]] = set()
    for symbol in SUPPORTED_SYMBOLS:
        root = home / "archive" / symbol
        if root.is_dir():
            found.update((symbol, entry.name[:10]) for entry in root.iterdir())
    return sorted(found)


def legacy_bodies(home: Path, symbol: str, day: str) -> Iterator[FetchedBody]:
    """Every archived response of one symbol-day, packed and loose (duplicates are dropped by
    the import, which keeps the first body of a key)."""
    root = home / "archive" / symbol
    pack = root / f"{day}.pack.parquet"
    if pack.is_file():
        yield from _pack(pack)
    loose = root / day
    if loose.is_dir():
        for path in sorted(loose.glob("*.rec.gz")):
            yield _record(path)
