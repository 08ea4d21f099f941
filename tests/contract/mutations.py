"""Drawing contract documents and mutating one value anywhere in them (the differential tests)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

DELETE = object()
"""Stands for "remove the field" in ``replaced``."""

# hypothesis-jsonschema draws some schemas (the error envelope's) by filtering; how many draws
# it rejects varies by seed, and is no failure of the models, so that health check is off.
CONTRACT_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False, width=64)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``node`` (dict keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``document`` with the value at ``path`` replaced (or removed: ``DELETE``)."""
    mutated = copy.deepcopy(document)
    parent = mutated
    for part in path[:-1]:
        parent = parent[part]
    if value is DELETE and isinstance(parent, dict):
        del parent[path[-1]]
    elif value is not DELETE:
        parent[path[-1]] = value
    return mutated


def mutations(document: Any, data: st.DataObject) -> Any:
    """``document`` with one value, drawn anywhere, replaced by any JSON value or removed."""
    candidates = paths(document)
    if not candidates:
        return document
    path = data.draw(st.sampled_from(candidates))
    return replaced(document, path, data.draw(st.just(DELETE) | json_values))
