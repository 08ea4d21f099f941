"""Quarantine: bodies termstore refused, kept byte for byte next to the reason they were refused."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson

from storage.atomic import atomic_write_bytes
from storage.layout import Layout, key_stamp, utc_day


def quarantine_body(
    layout: Layout,
    *,
    symbol: str,
    received_at: datetime,
    raw: bytes,
    kind: str,
    reason: str,
    field_path: str | None,
    http_status: int | None,
    request_id: str | None,
) -> Path:
    """Keep ``raw`` and a JSON reason; returns the body's path. The reason is written last, so
    a reason file always has its body."""
    directory = layout.quarantine_day_dir(symbol, utc_day(received_at))
    stem = _free_stem(directory, f"{key_stamp(received_at)}-{kind}", raw)
    body_path = directory / f"{stem}.body"
    atomic_write_bytes(body_path, raw)
    reason_document = {
        "symbol": symbol,
        "received_at": received_at.isoformat(),
        "kind": kind,
        "reason": reason,
        "field_path": field_path,
        "http_status": http_status,
        "request_id": request_id,
        "body_file": body_path.name,
        "body_bytes": len(raw),
    }
    atomic_write_bytes(
        directory / f"{stem}.json", orjson.dumps(reason_document, option=orjson.OPT_INDENT_2)
    )
    return body_path


def _free_stem(directory: Path, base: str, raw: bytes) -> str:
    """``base``, or ``base-2``, ``base-3`` …: two different bodies refused for the same reason at
    the same instant both stay; the same body again reuses its file."""
    candidate, number = base, 1
    while (path := directory / f"{candidate}.body").exists() and path.read_bytes() != raw:
        number += 1
        candidate = f"{base}-{number}"
    return candidate
