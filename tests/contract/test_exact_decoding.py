"""The fast path (backquant.exact_decoding) never changes what validation decides or builds.

Differential: every body goes through ``parse_expiry_summary`` (fast path first) and through
``parse_with_models`` (orjson + pydantic, the reference). Their outcomes must be identical: the
same error with the same message, or the same response value for value (``1`` is not ``1.0``,
``-0.0`` is not ``0.0``), the same fields set, the same drift and warnings.
"""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from pydantic import BaseModel

from backquant import exact_decoding
from backquant.errors import InvalidResponseError
from backquant.exact_decoding import decode_exact
from backquant.models import (
    ExpiryRow,
    ExpirySummaryData,
    ExpirySummaryResponse,
    ExpirySummaryTypeCounts,
    GexMaxPainBlock,
    V2Meta,
    VenueOI,
)
from backquant.simulator.market import Market
from backquant.symbols import SUPPORTED_SYMBOLS
from backquant.validation import ParsedSummary, parse_expiry_summary, parse_with_models
from tests.contract.mutations import CONTRACT_SETTINGS, mutations
from tests.contract.schemas import closed_schema
from tests.support.bodies import summary_document

Outcome = tuple[Any, ...]


def _fields_set(model: BaseModel) -> dict[str, Any]:
    """The fields each nested model was given, as pydantic records them."""
    nested = {
        name: _fields_set(value)
        for name in sorted(model.model_fields_set)
        if isinstance(value := getattr(model, name), BaseModel)
    }
    return {"set": sorted(model.model_fields_set), **nested}


def outcome(parse: Any, raw: bytes) -> Outcome:
    try:
        parsed: ParsedSummary = parse(raw)
    except InvalidResponseError as error:
        return ("refused", type(error).__name__, str(error))
    exact = json.dumps(parsed.response.model_dump(), sort_keys=True)
    return ("accepted", exact, _fields_set(parsed.response), parsed.drift, parsed.warnings)


def assert_same_outcome(raw: bytes) -> Outcome:
    fast = outcome(parse_expiry_summary, raw)
    assert fast == outcome(parse_with_models, raw), raw[:300]
    return fast


def encoded(document: Any) -> bytes:
    # The standard library writes integers of any size; orjson stops at 64 bits.
    return json.dumps(document, allow_nan=False).encode()


def test_simulated_bodies_take_the_fast_path_and_match_the_models() -> None:
    market = Market(seed=11)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    for step in range(24):
        symbol = SUPPORTED_SYMBOLS[step % len(SUPPORTED_SYMBOLS)]
        raw = market.expiry_summary_bytes(symbol, start + timedelta(minutes=61 * step))
        assert decode_exact(raw) is not None, symbol
        assert assert_same_outcome(raw)[0] == "accepted"


@CONTRACT_SETTINGS
@given(from_schema(closed_schema("ExpirySummaryResponse")), st.data())
def test_fast_path_and_models_agree_on_generated_and_mutated_documents(
    document: Any, data: st.DataObject
) -> None:
    """Documents without unknown fields (most take the fast path), then one value changed."""
    assert_same_outcome(encoded(document))
    assert_same_outcome(encoded(mutations(document, data)))


@CONTRACT_SETTINGS
@given(st.data())
def test_fast_path_and_models_agree_on_mutated_realistic_documents(data: st.DataObject) -> None:
    document = summary_document()
    for _ in range(data.draw(st.integers(1, 3))):
        document = mutations(document, data)
    assert_same_outcome(encoded(document))


def _inserted(raw: bytes, after: bytes, fragment: str) -> bytes:
    at = raw.index(after) + len(after)
    return raw[:at] + fragment.encode() + b", " + raw[at:]


def _row_with(field: str, value: str, *, earlier: str | None = None) -> bytes:
    """A realistic body whose first expiry row has ``field`` as the raw JSON ``value``
    (after an ``earlier`` occurrence of the same field, if given)."""
    document = summary_document()
    document["data"]["expiries"][0].pop(field, None)
    fragment = f'"{field}": {value}'
    if earlier is not None:
        fragment = f'"{field}": {earlier}, {fragment}'
    return _inserted(encoded(document), b'"expiries": [{', fragment)


def _meta_with(field: str, value: str) -> bytes:
    document = summary_document()
    document["meta"].pop(field, None)
    return _inserted(encoded(document), b'"meta": {', f'"{field}": {value}')


def _with_venue(name: str) -> bytes:
    document = summary_document()
    by_venue = document["data"]["expiries"][0]["by_venue"]
    by_venue[name] = {"call_oi": 1.0, "put_oi": 2.0, "total_oi": 3.0}
    return encoded(document)


_VENUE = '{"call_oi": 1.0, "put_oi": 1.0, "total_oi": 2.0}'
EDGE_CASES: dict[str, bytes] = {
    "unknown row field (drift)": _row_with("new_metric", "1.5"),
    "unknown venue (drift)": _with_venue("newex"),
    "integral float for an integer": _row_with("dte", "3.0"),
    "integer beyond 2**53": _row_with("dte", str(2**60)),
    "integer beyond 64 bits": _row_with("dte", str(10**22)),
    "integer for a float": _row_with("atm_iv", "50"),
    "negative zero": _row_with("atm_iv", "-0.0"),
    "long decimal": _row_with("atm_iv", "0.1000000000000000055511151231257827"),
    "exponent": _row_with("atm_iv", "5E1"),
    "underflow": _row_with("atm_iv", "1e-400"),
    "overflow": _row_with("atm_iv", "1e400"),
    "NaN literal": _row_with("atm_iv", "NaN"),
    "explicit null": _row_with("atm_iv", "null"),
    "absent optional field": _row_with("atm_iv", "null").replace(b'"atm_iv": null, ', b""),
    "repeated field, bad then good": _row_with("atm_iv", "50.0", earlier='"x"'),
    "repeated field, both good": _row_with("atm_iv", "50.0", earlier="40.0"),
    "repeated venue": _inserted(
        _with_venue("okx"), b'"by_venue": {', f'"okx": {_VENUE.replace("1.0", "9.0")}'
    ),
    "lone surrogate": _row_with("expiry_date", '"\\ud800"'),
    "escaped text": _row_with("expiry_date", '"2026-03-0\\u0033"'),
    "huge meta rate_limit integer": _meta_with("rate_limit", f'{{"limit": {10**22}}}'),
    "meta rate_limit not an object": _meta_with("rate_limit", "[1]"),
    "meta extra null": _meta_with("extra", "null"),
    "unknown meta field (drift)": _meta_with("region", '"eu"'),
    "success false": encoded(summary_document() | {"success": False}),
    "success missing": encoded({k: v for k, v in summary_document().items() if k != "success"}),
    "not an object": b"[1, 2]",
    "invalid UTF-8": encoded(summary_document()).replace(b'"meta"', b'"meta\xff"', 1),
    "byte order mark": b"\xef\xbb\xbf" + encoded(summary_document()),
    "trailing garbage": encoded(summary_document()) + b" x",
    "trailing whitespace": encoded(summary_document()) + b"\n ",
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_fast_path_and_models_agree_on_edge_cases(name: str) -> None:
    assert_same_outcome(EDGE_CASES[name])


def test_edge_cases_exercise_both_paths() -> None:
    """The cases above are only worth something if some take the fast path and some do not."""
    taken = {name: decode_exact(raw) is not None for name, raw in EDGE_CASES.items()}
    assert (
        taken["integer for a float"] and taken["explicit null"] and taken["unknown venue (drift)"]
    )
    assert not taken["unknown row field (drift)"] and not taken["integral float for an integer"]
    assert not taken["integer beyond 2**53"] and not taken["success missing"]


@pytest.mark.parametrize(
    ("struct", "model"),
    [
        (exact_decoding._Response, ExpirySummaryResponse),
        (exact_decoding._Data, ExpirySummaryData),
        (exact_decoding._TypeCounts, ExpirySummaryTypeCounts),
        (exact_decoding._Meta, V2Meta),
        (exact_decoding._ExpiryRow, ExpiryRow),
        (exact_decoding._GexMaxPainBlock, GexMaxPainBlock),
        (exact_decoding._VenueOI, VenueOI),
    ],
)
def test_fast_path_knows_every_field_of_the_models(struct: type, model: type) -> None:
    """A field added to a model but not here would send every body down the slow path."""
    names = model.model_fields if issubclass(model, BaseModel) else typing.get_type_hints(model)
    assert set(struct.__struct_fields__) == set(names)
