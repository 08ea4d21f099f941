"""The fast path of validation: a body that follows the contract exactly, decoded in one pass.

Nearly every body BackQuant sends is valid and carries no field the contract does not know. For
those, msgspec decodes and type-checks the bytes in compiled code, and the result is the very
response the pydantic models would build (rows as the same dicts, absent fields absent, the same
``fields_set``): about half the cost of decoding with orjson and validating with pydantic.

The structs below mirror ``backquant.models`` and are deliberately *stricter*: unknown fields,
integers beyond ±2**53, ``3.0`` for an integer, a repeated field with a bad value: anything
msgspec refuses goes to the reference path (``backquant.validation``), which accepts or refuses it
and reports drift and errors exactly as before. So this module can only make validation faster,
never change its verdict; ``tests/contract`` checks both paths agree on generated documents.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
import orjson
from msgspec import UNSET, Raw, Struct, UnsetType

from backquant.expiry_calendar import ExpiryType
from backquant.models import (
    ExpiryRow,
    ExpirySummaryData,
    ExpirySummaryResponse,
    ExpirySummaryTypeCounts,
    V2Meta,
)

# orjson (the reference path) reads integers beyond 64 bits as floats; msgspec keeps them exact.
# Bounding them keeps both paths' values identical: anything larger takes the reference path.
_Int = Annotated[int, msgspec.Meta(ge=-(2**53), le=2**53)]
_OptionalFloat = float | None | UnsetType
_OptionalInt = _Int | None | UnsetType
_OptionalText = str | None | UnsetType


class _Exact(Struct, forbid_unknown_fields=True, kw_only=True):
    """Unknown fields refuse the fast path; ``UNSET`` marks a field the body left out."""


class _VenueOI(_Exact):
    call_oi: float
    put_oi: float
    total_oi: float
    notional_oi_usd: _OptionalFloat = UNSET


class _GexMaxPainBlock(_Exact):
    strike: _OptionalFloat = UNSET
    value: _OptionalFloat = UNSET


class _ExpiryRow(_Exact):
    expiry: str
    type: ExpiryType
    is_anchor: bool
    dte: _OptionalInt = UNSET
    atm_iv: _OptionalFloat = UNSET
    skew_25d: _OptionalFloat = UNSET
    put_25d_iv: _OptionalFloat = UNSET
    call_25d_iv: _OptionalFloat = UNSET
    pcr: _OptionalFloat = UNSET
    call_oi: _OptionalFloat = UNSET
    put_oi: _OptionalFloat = UNSET
    total_oi: _OptionalFloat = UNSET
    net_gex: _OptionalFloat = UNSET
    expiry_date: _OptionalText = UNSET
    notional_oi_usd: _OptionalFloat = UNSET
    max_pain: _GexMaxPainBlock | UnsetType | None = UNSET
    by_venue: dict[str, _VenueOI] | UnsetType | None = UNSET
    by_venue_unattributed: _VenueOI | UnsetType | None = UNSET


class _TypeCounts(_Exact):
    daily: _Int | UnsetType = UNSET
    weekly: _Int | UnsetType = UNSET
    monthly: _Int | UnsetType = UNSET
    quarterly: _Int | UnsetType = UNSET


class _Data(_Exact):
    expiries: list[_ExpiryRow]
    anchor_count: _Int
    type_counts: _TypeCounts


class _Meta(_Exact):
    version: str
    timestamp: str
    request_id: _OptionalText = UNSET
    symbol: _OptionalText = UNSET
    spot_price: _OptionalFloat = UNSET
    computed_at: _OptionalText = UNSET
    freshness_seconds: _OptionalFloat = UNSET
    source: list[str] | UnsetType | None = UNSET
    exchanges_filtered: list[str] | UnsetType | None = UNSET
    # Free-form objects: kept as raw JSON and decoded by orjson, as the reference path does.
    rate_limit: Raw | UnsetType = UNSET
    extra: Raw | UnsetType = UNSET


class _Response(_Exact):
    success: Literal[True]
    data: _Data
    meta: _Meta


_DECODER = msgspec.json.Decoder(_Response)
_FREE_FORM = ("rate_limit", "extra")


def decode_exact(raw: bytes) -> ExpirySummaryResponse | None:
    """The validated response, or None when the body needs the reference path: it may be
    invalid, carry unknown fields, or hold values only that path reads (huge integers)."""
    try:
        decoded = _DECODER.decode(raw)
    # A RecursionError: nesting deeper than msgspec follows; the reference path judges it.
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
        return None
    meta = _present(decoded.meta)
    for name in _FREE_FORM:
        value = meta.get(name)
        if isinstance(value, Raw):
            try:
                document = orjson.loads(memoryview(value))
            except orjson.JSONDecodeError:
                return None
            if document is not None and not isinstance(document, dict):
                return None
            meta[name] = document
    data = decoded.data
    rows: list[ExpiryRow] = msgspec.to_builtins(data.expiries)
    # The rows are already checked, so their model is only constructed; validating the small
    # ones again is cheaper than constructing them, and given models pydantic takes as they are.
    return ExpirySummaryResponse.model_validate(
        {
            "success": True,
            "data": ExpirySummaryData.model_construct(
                expiries=rows,
                anchor_count=data.anchor_count,
                type_counts=ExpirySummaryTypeCounts.model_validate(_present(data.type_counts)),
            ),
            "meta": V2Meta.model_validate(meta),
        }
    )


def _present(struct: Struct) -> dict[str, Any]:
    """The fields the body set (explicit nulls included), as keyword arguments of a model."""
    return {
        name: value
        for name in struct.__struct_fields__
        if (value := getattr(struct, name)) is not UNSET
    }
