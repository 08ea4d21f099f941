"""Reduced sizes for ``make test`` and full sizes under ``make soak``, as pytest parameters."""

from __future__ import annotations

import pytest


def sized(
    reduced: int,
    full: int,
    *,
    full_timeout_s: int = 3600,
    reduced_timeout_s: int | None = None,
) -> pytest.MarkDecorator:
    """Parametrise a test over ``reduced`` (always) and ``full`` (only with ``-m soak``);
    ``reduced_timeout_s`` lifts the suite-wide per-test timeout for the reduced size too."""
    reduced_marks = [] if reduced_timeout_s is None else [pytest.mark.timeout(reduced_timeout_s)]
    return pytest.mark.parametrize(
        "size",
        [
            pytest.param(reduced, id=f"reduced-{reduced}", marks=reduced_marks),
            # Full sizes run for minutes: lift the suite-wide 300 s per-test timeout.
            pytest.param(
                full,
                id=f"soak-{full}",
                marks=[pytest.mark.soak, pytest.mark.timeout(full_timeout_s)],
            ),
        ],
    )
