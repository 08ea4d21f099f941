"""One Dagster resource per external system: BackQuant and the warehouse."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from backquant.config import ApiKey, ClientConfig, RetryPolicy
from backquant.symbols import SUPPORTED_SYMBOLS
from storage.warehouse import Warehouse


class BackQuantResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """BackQuant v2. The key comes from ``EnvVar("BACKQUANT_API_KEY")`` and is never shown."""

    api_key: str = Field(description="BackQuant API key; set through BACKQUANT_API_KEY only.")
    base_url: str = "https://api.backquant.com"
    symbols: list[str] = Field(default_factory=lambda: list(SUPPORTED_SYMBOLS))
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    retry_deadline_s: float = 45.0
    simulated: bool = Field(
        default=False, description="True when base_url is termstore's local simulator."
    )

    def client_config(self) -> ClientConfig:
        return ClientConfig(
            base_url=self.base_url,
            api_key=ApiKey(self.api_key),
            symbols=tuple(self.symbols),
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            retry=RetryPolicy(deadline_s=self.retry_deadline_s),
        )


class WarehouseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The termstore warehouse at ``TERMSTORE_HOME``."""

    home: str = Field(description="Warehouse root directory (TERMSTORE_HOME).")

    def open(self) -> Warehouse:
        return Warehouse.open(Path(self.home))
