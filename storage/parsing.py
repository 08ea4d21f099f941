"""Validate a day of archived bodies for a rebuild, keeping each refusal as a value.

A rebuild must go on past a body that today's code refuses (it stays archived and is reported),
so each body becomes either its ``ParsedSummary`` or the exact error ingest would have raised.
"""

from __future__ import annotations

from collections.abc import Sequence

from backquant.errors import InvalidResponseError
from backquant.validation import ParsedSummary, parse_expiry_summary

ParseOutcome = ParsedSummary | InvalidResponseError


def parse_summary(raw: bytes) -> ParseOutcome:
    """The validated summary of an archived body, or the error ingest would have raised."""
    try:
        return parse_expiry_summary(raw)
    except InvalidResponseError as error:
        return error


def parse_summaries(raws: Sequence[bytes]) -> list[ParseOutcome]:
    """``parse_summary`` of each body, in order."""
    return [parse_summary(raw) for raw in raws]
