"""The symbols and venues BackQuant v2 serves for the expiry summary."""

from __future__ import annotations

from typing import Final

SUPPORTED_SYMBOLS: Final[tuple[str, ...]] = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "HYPEUSDT")
VENUES: Final[tuple[str, ...]] = (
    "deribit",
    "bybit",
    "okx",
    "binance",
    "derive",
    "thalex",
    "delta_india",
    "delta",
)
