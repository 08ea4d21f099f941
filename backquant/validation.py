"""From raw body bytes to a typed response, or an exception that says exactly what is wrong."""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic
from typing_extensions import is_typeddict

from backquant.errors import EnvelopeError, NotJSONError, SchemaViolationError
from backquant.exact_decoding import decode_exact
from backquant.headers import ResponseHeaders
from backquant.models import ContractModel, ExpiryRow, ExpirySummaryResponse, V2ErrorEnvelope
from backquant.symbols import VENUES
from backquant.units import ivs_look_like_fractions

IV_AS_FRACTIONS_WARNING = "ivs_look_like_fractions"


@dataclass(frozen=True, slots=True)
class ParsedSummary:
    """A validated expiry summary with what validation noticed along the way."""

    response: ExpirySummaryResponse
    drift: tuple[str, ...]
    """Paths of fields the contract does not know (``data.expiries[].new_field``)."""
    warnings: tuple[str, ...]


def format_location(loc: tuple[int | str, ...]) -> str:
    """``("data", "expiries", 2, "atm_iv")`` → ``data.expiries[2].atm_iv``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _decode(raw: bytes, status: int | None, headers: ResponseHeaders | None) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        preview = raw[:80].decode("utf-8", errors="replace")
        raise NotJSONError(
            f"response body is not valid JSON ({exc.msg} at byte {exc.pos}; "
            f"{len(raw)} bytes starting {preview!r})",
            raw=raw,
            status=status,
            headers=headers,
        ) from None


def parse_expiry_summary(
    raw: bytes, *, status: int | None = None, headers: ResponseHeaders | None = None
) -> ParsedSummary:
    """Validate a 2xx expiry-summary body against the contract.

    Raises NotJSONError, EnvelopeError (not ``{success: true, data, meta}``) or
    SchemaViolationError (with the failing field's path). A body that follows the contract
    exactly takes the compiled fast path (``backquant.exact_decoding``), others this one.
    """
    exact = decode_exact(raw)
    if exact is not None:
        rows = exact.data.expiries
        return ParsedSummary(exact, tuple(sorted(_venue_drift(rows))), _warnings(rows))
    return parse_with_models(raw, status=status, headers=headers)


def parse_with_models(
    raw: bytes, *, status: int | None = None, headers: ResponseHeaders | None = None
) -> ParsedSummary:
    """The reference path of ``parse_expiry_summary``: orjson, then the pydantic models. Finds
    drift and says exactly what is wrong; every body the fast path declines comes here."""
    document = _decode(raw, status, headers)
    request_id = headers.request_id if headers else None
    if not isinstance(document, dict) or not {"data", "meta"} <= document.keys():
        found = sorted(document) if isinstance(document, dict) else type(document).__name__
        raise EnvelopeError(
            f"response is not a BackQuant envelope: expected an object with success, data and "
            f"meta, found {found}",
            raw=raw,
            status=status,
            request_id=request_id,
            headers=headers,
        )
    if document.get("success") is not True:
        raise EnvelopeError(
            f"a {status} response has success={document.get('success')!r}; expected true",
            raw=raw,
            status=status,
            request_id=request_id,
            headers=headers,
        )
    try:
        response = ExpirySummaryResponse.model_validate(document)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        path = format_location(tuple(first["loc"]))
        raise SchemaViolationError(
            f"response violates the expiry-summary contract at {path}: {first['msg']} "
            f"({exc.error_count()} problem(s) in all)",
            raw=raw,
            field_path=path,
            status=status,
            request_id=response_request_id(document) or request_id,
            headers=headers,
        ) from None
    warnings = _warnings(response.data.expiries)
    return ParsedSummary(response=response, drift=find_drift(document), warnings=warnings)


def _warnings(rows: list[ExpiryRow]) -> tuple[str, ...]:
    if ivs_look_like_fractions(row.get("atm_iv") for row in rows):
        return (IV_AS_FRACTIONS_WARNING,)
    return ()


def parse_error_envelope(raw: bytes) -> V2ErrorEnvelope | None:
    """The error envelope of a non-2xx body, or None when the body is not one."""
    try:
        return V2ErrorEnvelope.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, pydantic.ValidationError):
        return None


def response_request_id(document: dict[str, Any]) -> str | None:
    meta = document.get("meta")
    value = meta.get("request_id") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def find_drift(document: Mapping[str, Any]) -> tuple[str, ...]:
    """Sorted unique paths of unknown fields (and unknown venues) anywhere in a decoded body
    that validated as an ``ExpirySummaryResponse``.

    Works on the decoded dict, not the models: per model, the unknown fields are the keys its
    field names do not cover (exactly pydantic's ``model_extra``), and every object at one path
    (each expiry row, each venue) is checked in one set operation.
    """
    found: set[str] = set()
    _collect_extra([document], ExpirySummaryResponse, "", found)
    return tuple(sorted(found | _venue_drift(document["data"]["expiries"])))


def _venue_drift(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """Paths of the venues the contract does not name (``data.expiries[].by_venue.newex``)."""
    named: set[str] = set().union(*(row.get("by_venue") or () for row in rows))
    return {f"data.expiries[].by_venue.{venue}" for venue in named.difference(VENUES)}


_ONE, _LIST, _DICT = "one", "list", "dict"


@dataclass(frozen=True, slots=True)
class _Shape:
    """A model's field names, and the fields that hold models (how, and which model)."""

    known: frozenset[str]
    children: tuple[tuple[str, str, type], ...]


def _is_contract_object(annotation: object) -> bool:
    return is_typeddict(annotation) or (
        isinstance(annotation, type) and issubclass(annotation, ContractModel)
    )


def _held_model(annotation: object) -> tuple[str, type] | None:
    """How a field's type holds a contract object (a ContractModel or a TypedDict such as
    VenueOI): itself, a list of, a dict of, if it does."""
    if _is_contract_object(annotation):
        assert isinstance(annotation, type)
        return _ONE, annotation
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list and arguments:
        inner = _held_model(arguments[0])
        return (_LIST, inner[1]) if inner and inner[0] == _ONE else None
    if origin is dict and len(arguments) == 2:
        inner = _held_model(arguments[1])
        return (_DICT, inner[1]) if inner and inner[0] == _ONE else None
    # Optional[X] and other unions: the one member that holds a model.
    held = [found for argument in arguments if (found := _held_model(argument)) is not None]
    return held[0] if held else None


def _field_types(model: type) -> dict[str, object]:
    if issubclass(model, ContractModel):
        return {name: info.annotation for name, info in model.model_fields.items()}
    return dict(typing.get_type_hints(model))  # a TypedDict


@functools.cache
def _shape(model: type) -> _Shape:
    fields = _field_types(model)
    children = []
    for name, annotation in fields.items():
        held = _held_model(annotation)
        if held is not None:
            children.append((name, *held))
    return _Shape(known=frozenset(fields), children=tuple(children))


def _collect_extra(
    objects: list[Mapping[str, Any]], model: type, path: str, found: set[str]
) -> None:
    """Unknown keys of every object at ``path`` (all validated as ``model``), then below."""
    shape = _shape(model)
    for name in set().union(*objects) - shape.known:
        found.add(f"{path}.{name}" if path else name)
    for name, how, child_model in shape.children:
        child = f"{path}.{name}" if path else name
        values = [value for item in objects if (value := item.get(name)) is not None]
        if how == _LIST:
            values, child = [entry for value in values for entry in value], f"{child}[]"
        elif how == _DICT:
            values, child = [entry for value in values for entry in value.values()], f"{child}.*"
        if values:
            _collect_extra(values, child_model, child, found)
