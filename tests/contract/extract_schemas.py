"""Extract the schemas termstore validates against from BackQuant's OpenAPI document.

Keeps structure only (types, required, enums, defaults, refs) and drops every description, title
and example, so the project's tests run without ../shared. One deliberate relaxation: the
contract pins ``V2Meta.version`` to the constant "2.0", but live responses report newer versions,
so the extract drops that ``const``.

    python tests/contract/extract_schemas.py [path/to/openapi-v2.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOTS = (
    "ExpirySummaryResponse",
    "ExpirySummaryData",
    "ExpiryRow",
    "VenueOI",
    "GexMaxPainBlock",
    "ExpirySummaryTypeCounts",
    "V2Meta",
    "V2Error",
    "V2ErrorEnvelope",
)
STRUCTURAL_KEYS = {
    "type",
    "properties",
    "required",
    "enum",
    "const",
    "default",
    "items",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "additionalProperties",
}
HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[2] / "shared" / "backquant" / "openapi-v2.json"
TARGET = HERE / "backquant-v2-schemas.json"


def strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (strip(value) if key != "properties" else {k: strip(v) for k, v in value.items()})
            for key, value in node.items()
            if key in STRUCTURAL_KEYS
        }
    if isinstance(node, list):
        return [strip(item) for item in node]
    return node


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"].rsplit("/", 1)[-1])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= refs(item)
    return found


def extract(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    wanted, queue = set(), list(ROOTS)
    while queue:
        name = queue.pop()
        if name not in wanted:
            wanted.add(name)
            queue.extend(refs(schemas[name]))
    extracted = {name: strip(schemas[name]) for name in sorted(wanted)}
    extracted["V2Meta"]["properties"]["version"].pop("const", None)
    return {
        "source": "BackQuant OpenAPI components.schemas, structure only",
        "openapi_info_version": document["info"]["version"],
        "components": {"schemas": extracted},
    }


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    extracted = extract(json.loads(source.read_text()))
    TARGET.write_text(json.dumps(extracted, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(extracted['components']['schemas'])} schemas to {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
