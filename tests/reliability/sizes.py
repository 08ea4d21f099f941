"""Reduced sizes for ``make test`` and full sizes under ``make soak``, as pytest parameters."""

from __future__ import annotations

import pytest


def sized(reduced: int, full: int) -> pytest.MarkDecorator:
    """Parametrise a test over ``reduced`` (always) and ``full`` (only with ``-m soak``)."""
    return pytest.mark.parametrize(
        "size",
        [
            pytest.param(reduced, id=f"reduced-{reduced}"),
            # Full sizes run for minutes: lift the suite-wide 300 s per-test timeout.
            pytest.param(
                full, id=f"soak-{full}", marks=[pytest.mark.soak, pytest.mark.timeout(3600)]
            ),
        ],
    )
