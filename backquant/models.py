"""Typed models of the published BackQuant v2 contract for the expiry summary.

They follow ``components.schemas`` of BackQuant's OpenAPI 3.1 document (2.7): required fields are
required, nullable fields default to None, types are checked strictly (no "12" for 12, no 1 for
true). Unknown fields are allowed and kept so that ``drift`` can report them; the raw body is
archived verbatim anyway. ``meta.version`` is a plain string: real responses say newer versions
than the schema's "2.0".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict

from backquant.expiry_calendar import ExpiryType


def _integral_float_to_int(value: Any) -> Any:
    # JSON Schema counts 3.0 as an integer; strict pydantic would not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_integral_float_to_int)]


class ContractModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=True, allow_inf_nan=False)


class VenueOI(ContractModel):
    """One venue's open interest for one expiry, coin units."""

    call_oi: float
    put_oi: float
    total_oi: float
    notional_oi_usd: float | None = None


class GexMaxPainBlock(ContractModel):
    """Max pain: the settlement strike paying holders least, and that payout in USD."""

    strike: float | None = None
    value: float | None = None


class ExpiryRow(ContractModel):
    """One listed expiry of the summary."""

    expiry: str
    type: ExpiryType
    is_anchor: bool
    dte: JsonInt | None = None
    atm_iv: float | None = None
    skew_25d: float | None = None
    put_25d_iv: float | None = None
    call_25d_iv: float | None = None
    pcr: float | None = None
    call_oi: float | None = None
    put_oi: float | None = None
    total_oi: float | None = None
    net_gex: float | None = None
    expiry_date: str | None = None
    notional_oi_usd: float | None = None
    max_pain: GexMaxPainBlock | None = None
    by_venue: dict[str, VenueOI] | None = None
    by_venue_unattributed: VenueOI | None = None


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
