"""Values as a person reads them, in the UI's metadata tables and the CLI's tables.

Rounding here is for display only: the lake, and the machine formats of ``termstore sql`` (csv,
json, parquet), keep every digit. No heavy import: the CLI and the code location load this.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Final

SIGNIFICANT_BELOW_ONE: Final[int] = 4
"""Digits kept for a magnitude under 1 (0.04384 years, a put/call ratio of 0.8734)."""
DECIMALS_FROM_ONE: Final[int] = 2
"""Decimals kept from 1 up: vol points, USD and coins read well to the hundredth."""


def display_number(value: float) -> str:
    """A float rounded for reading: two decimals from 1 up, four significant digits below."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    magnitude = abs(value)
    if magnitude == 0 or magnitude >= 1:
        return f"{value:.{DECIMALS_FROM_ONE}f}"
    decimals = SIGNIFICANT_BELOW_ONE - 1 - math.floor(math.log10(magnitude))
    return f"{value:.{decimals}f}"


def display_value(value: object, *, null: str = "") -> str:
    """Any cell as text: floats rounded, instants without a zero fraction, lists joined, binary
    values as their size; ``null`` for a missing value."""
    if value is None:
        return null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return display_number(value)
    if isinstance(value, datetime):
        text = value.isoformat(sep=" ", timespec="microseconds" if value.microsecond else "seconds")
        return text.removesuffix("+00:00") + (" UTC" if text.endswith("+00:00") else "")
    if isinstance(value, date | time | timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value):,} bytes>"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ", ".join(display_value(item, null="null") for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{key}: {display_value(item, null='null')}" for key, item in value.items())
        return "{" + ", ".join(pairs) + "}"
    return " ".join(str(value).splitlines())
