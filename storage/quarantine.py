"""Quarantine: bodies termstore refused, kept byte for byte in the lake next to the reason.

A refused body becomes one row of the ``quarantine`` table, committed in the same transaction as
the ingest-log row of its attempt, which names it by ``quarantine_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from backquant.errors import InvalidResponseError, SchemaViolationError
from storage.records import RejectedValueError
from storage.schemas import QUARANTINE_SCHEMA, key_stamp, utc_series


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused body and why."""

    symbol: str
    received_at: datetime
    raw: bytes
    kind: str
    reason: str
    field_path: str | None
    http_status: int | None
    request_id: str | None
    suffix: str = ""
    """``-2``, ``-3`` …: tells apart refusals of one symbol, instant and kind in one batch."""

    @classmethod
    def of(
        cls,
        symbol: str,
        received_at: datetime,
        raw: bytes,
        error: InvalidResponseError | RejectedValueError,
        http_status: int | None,
        request_id: str | None,
    ) -> Refusal:
        """``raw`` refused for ``error``: a body the contract refuses, with the error's message; a
        value termstore refuses, "rejected before storing: …"."""
        path: str | None
        if isinstance(error, RejectedValueError):
            reason, path = f"rejected before storing: {error}", error.field_path
        else:
            reason = str(error)
            path = error.field_path if isinstance(error, SchemaViolationError) else None
        return cls(symbol, received_at, raw, error.kind, reason, path, http_status, request_id)

    @property
    def quarantine_id(self) -> str:
        """``SYMBOL/<received_at stamp>-<kind>``: the key of its quarantine row."""
        return f"{self.symbol}/{key_stamp(self.received_at)}-{self.kind}{self.suffix}"


def quarantine_frame(refusals: list[Refusal]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            pl.Series("quarantine_id", [r.quarantine_id for r in refusals], dtype=pl.String()),
            pl.Series("symbol", [r.symbol for r in refusals], dtype=pl.String()),
            utc_series("received_at", [r.received_at for r in refusals]),
            pl.Series("kind", [r.kind for r in refusals], dtype=pl.String()),
            pl.Series("reason", [r.reason for r in refusals], dtype=pl.String()),
            pl.Series("field_path", [r.field_path for r in refusals], dtype=pl.String()),
            pl.Series("http_status", [r.http_status for r in refusals], dtype=pl.Int32()),
            pl.Series("request_id", [r.request_id for r in refusals], dtype=pl.String()),
            pl.Series("body", [r.raw for r in refusals], dtype=pl.Binary()),
        ],
        schema=QUARANTINE_SCHEMA,
    )
