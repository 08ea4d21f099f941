"""Validators for the project's extract of BackQuant's published schemas."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

EXTRACT = Path(__file__).resolve().parent / "backquant-v2-schemas.json"


@cache
def _document() -> dict[str, Any]:
    return json.loads(EXTRACT.read_text())


def schema_for(name: str) -> dict[str, Any]:
    """A self-contained schema whose root is ``components.schemas[name]``."""
    return {"$ref": f"#/components/schemas/{name}", "components": _document()["components"]}


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema_for(name))


def errors(name: str, instance: Any) -> list[str]:
    """Every contract violation of ``instance`` as ``path: message`` lines (empty when valid)."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator(name).iter_errors(instance)
    ]


def closed_schema(name: str) -> dict[str, Any]:
    """``schema_for(name)`` with no unknown fields allowed in any object that lists its
    properties, and ``success`` required: documents an exact decoder should accept."""
    components = copy.deepcopy(_document()["components"])
    for schema in components["schemas"].values():
        if "properties" in schema:
            schema["additionalProperties"] = False
    response = components["schemas"]["ExpirySummaryResponse"]
    response["required"] = [*response["required"], "success"]
    return {"$ref": f"#/components/schemas/{name}", "components": components}
