"""From raw body bytes to a typed response, or an exception that says exactly what is wrong."""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic

from backquant.errors import EnvelopeError, NotJSONError, SchemaViolationError
from backquant.headers import ResponseHeaders
from backquant.models import ContractModel, ExpirySummaryResponse, V2ErrorEnvelope
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
    SchemaViolationError (with the failing field's path).
    """
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
    warnings: list[str] = []
    if ivs_look_like_fractions(row.atm_iv for row in response.data.expiries):
        warnings.append(IV_AS_FRACTIONS_WARNING)
    return ParsedSummary(response=response, drift=find_drift(response), warnings=tuple(warnings))


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


def find_drift(response: ExpirySummaryResponse) -> tuple[str, ...]:
    """Sorted unique paths of unknown fields (and unknown venues) anywhere in the response."""
    found: set[str] = set()
    _collect_extra(response, "", found)
    for row in response.data.expiries:
        for venue in row.by_venue or {}:
            if venue not in VENUES:
                found.add(f"data.expiries[].by_venue.{venue}")
    return tuple(sorted(found))


def _mentions_model(annotation: object) -> bool:
    """True when a field's type can hold a ContractModel (directly, in a list, dict or union)."""
    if isinstance(annotation, type) and issubclass(annotation, ContractModel):
        return True
    return any(_mentions_model(argument) for argument in typing.get_args(annotation))


@functools.cache
def _nested_fields(model: type[ContractModel]) -> tuple[str, ...]:
    # Only these fields can carry drift below them; walking the scalar ones is wasted time
    # (a day of 1,440 bodies spent as long here as in validation itself).
    return tuple(
        name for name, info in model.model_fields.items() if _mentions_model(info.annotation)
    )


def _collect_extra(model: ContractModel, path: str, found: set[str]) -> None:
    for name in model.model_extra or {}:
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
