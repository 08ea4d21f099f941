"""Validate a day of archived bodies for a rebuild: the checks of ``parse_expiry_summary``, faster.

``parse_expiry_summary`` finds drift (unknown fields) by walking every field of every model,
which over a day of 1,440 bodies costs about half as much as the pydantic validation itself. Here
each model class is inspected once for the fields that can hold nested models, and only those are
walked. Everything else is the same: the same decoder, envelope check, model and warnings. A body
that fails anywhere goes through ``parse_expiry_summary`` itself, so its error (kind, message,
field path) is exactly the one ingest reports. tests/storage/test_parsing.py checks both agree.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Sequence

import orjson
import pydantic

from backquant.errors import InvalidResponseError
from backquant.models import ContractModel, ExpirySummaryResponse
from backquant.symbols import VENUES
from backquant.units import ivs_look_like_fractions
from backquant.validation import IV_AS_FRACTIONS_WARNING, ParsedSummary, parse_expiry_summary

ParseOutcome = ParsedSummary | InvalidResponseError


def _mentions_model(annotation: object) -> bool:
    """True when a field's type can hold a ContractModel (directly, in a list, dict or union)."""
    if isinstance(annotation, type) and issubclass(annotation, ContractModel):
        return True
    return any(_mentions_model(argument) for argument in typing.get_args(annotation))


@functools.cache
def _nested_fields(model: type[ContractModel]) -> tuple[str, ...]:
    """The fields of ``model`` that can hold nested models; the rest never carry drift."""
    return tuple(
        name for name, info in model.model_fields.items() if _mentions_model(info.annotation)
    )


def _collect_extra(model: ContractModel, path: str, found: set[str]) -> None:
    # Same paths as backquant.validation.find_drift: "a.b", "a.list[].x", "a.dict.*.x".
    for name in model.__pydantic_extra__ or {}:
        found.add(f"{path}.{name}" if path else name)
    for name in _nested_fields(type(model)):
        value = getattr(model, name)
        child = f"{path}.{name}" if path else name
        if isinstance(value, ContractModel):
            _collect_extra(value, child, found)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, ContractModel):
                    _collect_extra(item, f"{child}[]", found)
        elif isinstance(value, dict):
            for item in value.values():
                if isinstance(item, ContractModel):
                    _collect_extra(item, f"{child}.*", found)


def fast_drift(response: ExpirySummaryResponse) -> tuple[str, ...]:
    """What ``find_drift`` returns for ``response``: sorted unknown field and venue paths."""
    found: set[str] = set()
    _collect_extra(response, "", found)
    for row in response.data.expiries:
        for venue in row.by_venue or {}:
            if venue not in VENUES:
                found.add(f"data.expiries[].by_venue.{venue}")
    return tuple(sorted(found))


def _exact(raw: bytes) -> ParseOutcome:
    try:
        return parse_expiry_summary(raw)
    except InvalidResponseError as error:
        return error


def parse_summary(raw: bytes) -> ParseOutcome:
    """The validated summary of an archived body, or the error ingest would have raised."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _exact(raw)
    if (
        not isinstance(document, dict)
        or not {"data", "meta"} <= document.keys()
        or document.get("success") is not True
    ):
        return _exact(raw)
    try:
        response = ExpirySummaryResponse.model_validate(document)
    except pydantic.ValidationError:
        return _exact(raw)
    warnings = (
        (IV_AS_FRACTIONS_WARNING,)
        if ivs_look_like_fractions(row.atm_iv for row in response.data.expiries)
        else ()
    )
    return ParsedSummary(response=response, drift=fast_drift(response), warnings=warnings)


def parse_summaries(raws: Sequence[bytes]) -> list[ParseOutcome]:
    """``parse_summary`` of each body, in order."""
    return [parse_summary(raw) for raw in raws]
