"""The client's models accept exactly what BackQuant's published schemas accept.

A differential test: hypothesis draws documents from the extracted JSON schemas, mutates one value
anywhere in them, and checks that jsonschema and the pydantic models give the same verdict.
"""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from backquant.models import (
    ExpiryRow,
    ExpirySummaryResponse,
    V2ErrorEnvelope,
    V2Meta,
    VenueOI,
)
from tests.contract.mutations import CONTRACT_SETTINGS, DELETE, mutations, replaced
from tests.contract.schemas import errors, schema_for
from tests.support.bodies import summary_document

MODELS: dict[str, pydantic.TypeAdapter[Any]] = {
    name: pydantic.TypeAdapter(model)
    for name, model in {
        "ExpirySummaryResponse": ExpirySummaryResponse,
        "ExpiryRow": ExpiryRow,
        "VenueOI": VenueOI,
        "V2Meta": V2Meta,
        "V2ErrorEnvelope": V2ErrorEnvelope,
    }.items()
}


def model_accepts(name: str, instance: Any) -> bool:
    try:
        MODELS[name].validate_python(instance)
    except pydantic.ValidationError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_accept_every_document_the_schema_generates(name: str) -> None:
    @CONTRACT_SETTINGS
    @given(from_schema(schema_for(name)))
    def check(instance: Any) -> None:
        assert errors(name, instance) == []
        assert model_accepts(name, instance), instance

    check()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_and_schema_agree_on_mutated_documents(name: str) -> None:
    @CONTRACT_SETTINGS
    @given(from_schema(schema_for(name)), st.data())
    def check(instance: Any, data: st.DataObject) -> None:
        mutated = mutations(instance, data)
        schema_accepts = errors(name, mutated) == []
        assert model_accepts(name, mutated) is schema_accepts, mutated

    check()


def test_realistic_body_is_valid_for_both() -> None:
    document = summary_document()
    assert errors("ExpirySummaryResponse", document) == []
    assert model_accepts("ExpirySummaryResponse", document)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("data", "expiries", 0, "atm_iv"), "48.5"),
        (("data", "expiries", 0, "is_anchor"), 1),
        (("data", "expiries", 0, "type"), "biweekly"),
        (("data", "expiries", 0, "dte"), 7.5),
        (("data", "anchor_count"), None),
        (("data", "expiries", 0, "by_venue", "deribit", "call_oi"), None),
        (("meta", "timestamp"), 1_700_000_000),
        (("meta", "source"), "deribit"),
    ],
)
def test_wrong_types_are_rejected_by_both(path: tuple[Any, ...], value: Any) -> None:
    mutated = replaced(summary_document(), path, value)
    assert errors("ExpirySummaryResponse", mutated)
    assert not model_accepts("ExpirySummaryResponse", mutated)


@pytest.mark.parametrize(
    "path",
    [
        ("data",),
        ("meta",),
        ("data", "expiries"),
        ("data", "anchor_count"),
        ("data", "expiries", 0, "expiry"),
        ("data", "expiries", 0, "type"),
        ("data", "expiries", 0, "is_anchor"),
        ("meta", "version"),
        ("meta", "timestamp"),
    ],
)
def test_missing_required_fields_are_rejected_by_both(path: tuple[Any, ...]) -> None:
    mutated = replaced(summary_document(), path, DELETE)
    assert errors("ExpirySummaryResponse", mutated)
    assert not model_accepts("ExpirySummaryResponse", mutated)


def test_newer_meta_version_is_accepted() -> None:
    document = summary_document()
    document["meta"]["version"] = "2.9.1"
    assert model_accepts("ExpirySummaryResponse", document)
