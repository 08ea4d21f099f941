"""Typed models of the published BackQuant v2 contract for the expiry summary.

They follow ``components.schemas`` of BackQuant's OpenAPI 3.1 document (2.7): required fields are
required, nullable fields default to None, types are checked strictly (no "12" for 12, no 1 for
true). Unknown fields are allowed and kept so that ``drift`` can report them; the raw body is
archived verbatim anyway. ``meta.version`` is a plain string: real responses say newer versions
than the schema's "2.0".

The per-expiry objects (``ExpiryRow``, ``GexMaxPainBlock``, ``VenueOI``) are TypedDicts, validated
as strictly as the models but built as plain dicts: a day holds ~50,000 expiry rows and ~370,000
venue entries, pydantic builds dicts at a third of the cost of model instances, and normalisation
hands the dicts to polars as they are. (``typing_extensions``' TypedDict: pydantic needs it below
Python 3.12.)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, BeforeValidator, ConfigDict
from typing_extensions import TypedDict

from backquant.expiry_calendar import ExpiryType


def _integral_float_to_int(value: Any) -> Any:
    # JSON Schema counts 3.0 as an integer; strict pydantic would not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_integral_float_to_int)]


CONTRACT_CONFIG = ConfigDict(extra="allow", frozen=True, strict=True, allow_inf_nan=False)


class ContractModel(BaseModel):
    model_config = CONTRACT_CONFIG


class VenueOI(TypedDict):
    """One venue's open interest for one expiry, coin units: ``by_venue["okx"]["call_oi"]``."""

    __pydantic_config__ = CONTRACT_CONFIG  # type: ignore[misc]
    call_oi: float
    put_oi: float
    total_oi: float
    notional_oi_usd: NotRequired[float | None]


class GexMaxPainBlock(TypedDict):
    """Max pain: the settlement strike paying holders least, and that payout in USD."""

    __pydantic_config__ = CONTRACT_CONFIG  # type: ignore[misc]
    strike: NotRequired[float | None]
    value: NotRequired[float | None]


class ExpiryRow(TypedDict):
    """One listed expiry of the summary. Optional fields may be absent: read them with ``.get``."""

    __pydantic_config__ = CONTRACT_CONFIG  # type: ignore[misc]
    expiry: str
    type: ExpiryType
    is_anchor: bool
    dte: NotRequired[JsonInt | None]
    atm_iv: NotRequired[float | None]
    skew_25d: NotRequired[float | None]
    put_25d_iv: NotRequired[float | None]
    call_25d_iv: NotRequired[float | None]
    pcr: NotRequired[float | None]
    call_oi: NotRequired[float | None]
    put_oi: NotRequired[float | None]
    total_oi: NotRequired[float | None]
    net_gex: NotRequired[float | None]
    expiry_date: NotRequired[str | None]
    notional_oi_usd: NotRequired[float | None]
    max_pain: NotRequired[GexMaxPainBlock | None]
    by_venue: NotRequired[dict[str, VenueOI] | None]
    by_venue_unattributed: NotRequired[VenueOI | None]


class ExpirySummaryTypeCounts(ContractModel):
    daily: JsonInt = 0
    weekly: JsonInt = 0
    monthly: JsonInt = 0
    quarterly: JsonInt = 0


class ExpirySummaryData(ContractModel):
    expiries: list[ExpiryRow]
    anchor_count: JsonInt
    type_counts: ExpirySummaryTypeCounts


class V2Meta(ContractModel):
    """The meta block of every v2 response; only version and timestamp are required."""

    version: str
    timestamp: str
    request_id: str | None = None
    symbol: str | None = None
    spot_price: float | None = None
    computed_at: str | None = None
    freshness_seconds: float | None = None
    source: list[str] | None = None
    exchanges_filtered: list[str] | None = None
    rate_limit: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None


class ExpirySummaryResponse(ContractModel):
    success: Literal[True] = True
    data: ExpirySummaryData
    meta: V2Meta


class V2Error(ContractModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class V2ErrorEnvelope(ContractModel):
    success: Literal[False] = False
    error: V2Error
    meta: V2Meta
