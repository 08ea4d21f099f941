"""One Dagster resource per external system: BackQuant and the lake.

They live in ``assets`` because the assets use them and the wiring in ``pipelines`` builds them;
imports only ever run from ``pipelines`` to ``assets``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field, PrivateAttr

from backquant.config import ApiKey, ClientConfig, RetryPolicy
from backquant.symbols import SUPPORTED_SYMBOLS
from storage.lake_config import CATALOG_ENV, DATA_PATH_ENV, HOME_ENV, LakeConfig, redact

if TYPE_CHECKING:
    from collections.abc import Iterator

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

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, "***" if name == "api_key" and value else value

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
    """The termstore lake: its catalog and data path, as ``termstore doctor`` shows them.

    ``catalog`` may hold a database password, so the code location passes it as
    ``EnvVar("TERMSTORE_CATALOG")`` (the UI shows the variable's name, never its value); S3
    credentials are read by the lake from the standard ``AWS_*`` variables."""

    home: str = Field(description="Local directory for the writer lock and the default lake.")
    catalog: str = Field(
        default="", description="DuckLake catalog (TERMSTORE_CATALOG); empty: a file in home."
    )
    data_path: str = Field(
        default="", description="Data files (TERMSTORE_DATA_PATH); empty: the lake's own."
    )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact(value) if name == "catalog" and value else value

    def config(self) -> LakeConfig:
        env = {
            **os.environ,
            HOME_ENV: self.home,
            CATALOG_ENV: self.catalog,
            DATA_PATH_ENV: self.data_path,
        }
        return LakeConfig.from_env(env=env)

    # Typed Any: storage.warehouse (DuckDB, polars) loads when a step opens the lake, not when
    # the code location loads the resource class.
    _opened: Any = PrivateAttr(default=None)

    def open(self) -> Warehouse:
        """The lake for this step; one handle per step, closed when the step ends."""
        from storage.warehouse import Warehouse

        if self._opened is None:
            self._opened = Warehouse(self.config())
        opened: Warehouse = self._opened
        return opened

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._opened is not None:
            self._opened.close()
            self._opened = None
