"""Validate many bodies at once (a rebuilt day, a bulk import), keeping each refusal as a value.

A rebuild must go on past a body that today's code refuses (it stays archived and is reported),
so each body becomes either its ``ParsedSummary`` or the exact error ingest would have raised.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

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
    with gc_paused():
        return [parse_summary(raw) for raw in raws]


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block.

    A day of validated bodies is hundreds of thousands of live objects (one pydantic model per
    venue row). While they accumulate, every young-generation collection walks the survivors
    again, which multiplied the cost of parsing a day several times. Nothing here builds
    reference cycles, so reference counting frees everything; collection resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
