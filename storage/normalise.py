"""From validated expiry summaries to the polars frames of storage.schemas, column-wise.

Three tables come out of a response: ``snapshots`` (one row per symbol × computed_at),
``expiries`` (one row per listed expiry) and ``venue_oi`` (one row per venue per expiry, the
unattributed remainder included). Every column is derived from the body and the fetch metadata
only (no "now"), so normalising the same archived response again yields identical rows: rebuilds
rely on that. Values the contract allows but that are absurd or unsafe (``storage.checks``) raise
``RejectedValueError`` so the caller can quarantine the body with the reason.

Why column-wise: a rebuild or a bulk import normalises a day (1,440 responses, ~50,000 expiry
rows, ~370,000 venue rows) at once. Validation hands over expiry rows and venue entries as plain
dicts, and polars converts them to columns natively (``pl.from_dicts``); Python only walks the
rows to list the venues. Bounds are checked per column (``Rule.violated``); only when a check
fails does ``checks.first_rejection`` walk the values one by one to name the first refused field.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, Final

import polars as pl

from backquant.errors import InvalidResponseError
from backquant.expiry_calendar import SECONDS_PER_YEAR
from backquant.models import ExpiryRow, VenueOI
from backquant.validation import ParsedSummary
from storage.checks import (
    EXPIRY_RULES,
    VENUE_FIELDS,
    VENUE_RULES,
    Rule,
    calendar,
    check_venue_name,
    first_rejection,
    snapshot_row,
)
from storage.records import FetchMeta, RejectedValueError, SummaryFrames
from storage.schemas import (
    EXPIRIES_SCHEMA,
    SNAPSHOTS_SCHEMA,
    UNATTRIBUTED_VENUE,
    UTC_US,
    utc_micros,
    utc_series,
)

_FLOAT = pl.Float64()
_MAX_PAIN: Final = {"max_pain_strike": "strike", "max_pain_value": "value"}
_ROW_FLOATS: Final = tuple(
    rule.column for rule in EXPIRY_RULES if rule.column not in {"dte", *_MAX_PAIN}
)
_ROW_SCHEMA: Final = pl.Schema(
    {
        "expiry": pl.String(),
        "type": pl.String(),
        "is_anchor": pl.Boolean(),
        "expiry_date": pl.String(),
        "max_pain": pl.Struct({"strike": _FLOAT, "value": _FLOAT}),
        "dte": pl.Int64(),
        **{field: _FLOAT for field in _ROW_FLOATS},
    }
)
"""What ``pl.from_dicts`` reads of each expiry row (other keys are ignored). ``dte`` is read as
Int64 and checked before it is cast to Int32; the listed ``expiry_date`` is renamed
``expiry_date_listed``, as the column of that name is the date ``storage.checks.calendar``
resolves."""
_VENUE_VALUES_SCHEMA: Final = pl.Schema({field: _FLOAT for field in VENUE_FIELDS})
_CALENDAR_SCHEMA: Final = pl.Schema(
    {
        "expiry": pl.String(),
        "expiry_date_listed": pl.String(),
        "calendar_type": pl.String(),
        "expiry_date": pl.Int32(),
        "expiry_at": pl.Int64(),
    }
)
"""One row per distinct (token, listed date): its calendar, times as epoch days/microseconds."""
_EPOCH_DAY: Final = date(1970, 1, 1)


class _Batch:
    """What a batch of responses contributes to each table, gathered in one pass.

    Expiry rows and venue entries are kept as the dicts validation built; per body only the
    snapshot row, and per row only the venue listing, are Python work.
    """

    def __init__(self) -> None:
        self.snapshots: list[dict[str, Any]] = []
        self.rows: list[ExpiryRow] = []
        self.row_body: list[int] = []
        self.positions: list[int] = []
        self.body_keys: dict[str, list[Any]] = {"symbol": [], "computed_at": [], "spot_price": []}
        self.venue_row: list[int] = []
        self.venue_names: list[str] = []
        self.venue_values: list[VenueOI] = []

    def add(self, parsed: ParsedSummary, fetch: FetchMeta) -> None:
        snapshot = snapshot_row(parsed, fetch)
        rows = parsed.response.data.expiries
        if len({row["expiry"] for row in rows}) != len(rows):
            raise RejectedValueError("an expiry is listed twice", field_path="data.expiries")
        body = len(self.snapshots)
        self.snapshots.append(snapshot)
        self.body_keys["symbol"].append(fetch.symbol)
        self.body_keys["computed_at"].append(utc_micros(snapshot["computed_at"]))
        self.body_keys["spot_price"].append(snapshot["spot_price"])
        self.row_body.extend(itertools.repeat(body, len(rows)))
        self.positions.extend(range(len(rows)))
        for index, row in enumerate(rows, start=len(self.rows)):
            self._add_venues(index, row)
        self.rows.extend(rows)

    def _add_venues(self, index: int, row: ExpiryRow) -> None:
        """Named venues sorted by name, then the unattributed remainder."""
        by_venue = row.get("by_venue")
        if by_venue:
            names = sorted(by_venue)
            self.venue_row.extend(itertools.repeat(index, len(names)))
            self.venue_names.extend(names)
            self.venue_values.extend(map(by_venue.__getitem__, names))
        unattributed = row.get("by_venue_unattributed")
        if unattributed is not None:
            self.venue_row.append(index)
            self.venue_names.append(UNATTRIBUTED_VENUE)
            self.venue_values.append(unattributed)

    def frames(self) -> SummaryFrames:
        expiries = self._expiries()
        venue_oi = self._venue_oi(expiries.select("symbol", "computed_at", "expiry"))
        snapshots = pl.DataFrame(
            [
                _snapshot_column(name, dtype, self.snapshots)
                for name, dtype in SNAPSHOTS_SCHEMA.items()
            ]
        )
        return SummaryFrames(snapshots, expiries, venue_oi)

    def _expiries(self) -> pl.DataFrame:
        rows = (
            pl.from_dicts(self.rows, schema=_ROW_SCHEMA)
            .rename({"expiry_date": "expiry_date_listed"})
            .with_columns(
                pl.col("max_pain").struct.field(field).alias(column)
                for column, field in _MAX_PAIN.items()
            )
            .drop("max_pain")
        )
        bodies = pl.DataFrame(
            self.body_keys,
            schema={"symbol": pl.String(), "computed_at": pl.Int64(), "spot_price": _FLOAT},
        )
        body_columns = bodies[pl.Series(self.row_body, dtype=pl.UInt32())]
        joined = pl.concat(
            [
                body_columns,
                rows,
                pl.Series("position", self.positions, dtype=pl.Int16()).to_frame(),
            ],
            how="horizontal",
        ).join(
            _calendars(rows),
            on=["expiry", "expiry_date_listed"],
            how="left",
            nulls_equal=True,
            maintain_order="left",
        )
        if _violates(joined, EXPIRY_RULES):
            raise RejectedValueError("a value is out of bounds", field_path="data.expiries")
        return joined.with_columns(_years_to_expiry(joined)).select(
            pl.col(name).cast(dtype) for name, dtype in EXPIRIES_SCHEMA.items()
        )

    def _venue_oi(self, keys: pl.DataFrame) -> pl.DataFrame:
        for name in set(self.venue_names):
            check_venue_name(name, "data.expiries[].by_venue")
        venues = pl.Series("venue", self.venue_names, dtype=pl.String())
        values = pl.from_dicts(self.venue_values, schema=_VENUE_VALUES_SCHEMA)
        if _violates(values, VENUE_RULES):
            raise RejectedValueError("a value is out of bounds", field_path="data.expiries")
        return pl.concat(
            [
                keys[pl.Series(self.venue_row, dtype=pl.UInt32())],
                venues.to_frame(),
                (venues == UNATTRIBUTED_VENUE).alias("is_unattributed").to_frame(),
                values,
            ],
            how="horizontal",
        )


def _calendars(rows: pl.DataFrame) -> pl.DataFrame:
    """The calendar of each distinct (token, listed date) of the batch: a day lists a few dozen."""
    pairs = rows.select("expiry", "expiry_date_listed").unique().rows()
    resolved = []
    for token, listed in pairs:
        kind, expiry_date, expiry_at = calendar(token, listed, "data.expiries[]")
        resolved.append(
            (
                token,
                listed,
                kind,
                None if expiry_date is None else (expiry_date - _EPOCH_DAY).days,
                None if expiry_at is None else utc_micros(expiry_at),
            )
        )
    return pl.DataFrame(resolved, schema=_CALENDAR_SCHEMA, orient="row")


def _years_to_expiry(frame: pl.DataFrame) -> pl.Series:
    """``(expiry_at - computed_at).total_seconds() / SECONDS_PER_YEAR``, bit for bit.

    In numpy: polars divides a long column by a constant as a multiplication by its reciprocal,
    which can differ from true division in the last bit. The microsecond difference is exact in
    a float64 (it is below 2**53), so each division rounds once, as in Python.
    """
    micros = (frame["expiry_at"] - frame["computed_at"]).cast(_FLOAT).to_numpy()
    years = micros / 1_000_000 / SECONDS_PER_YEAR
    # A token with no date has no expiry_at: NaN in numpy, null again here.
    return pl.Series("years_to_expiry", years, dtype=_FLOAT, nan_to_null=True)


def _violates(frame: pl.DataFrame, rules: tuple[Rule, ...]) -> bool:
    """Whether any value breaks a rule; ``first_rejection`` then finds which, in document order."""
    return any(frame.select(rule.violated() for rule in rules).row(0))


def _snapshot_column(name: str, dtype: pl.DataType, rows: list[dict[str, Any]]) -> pl.Series:
    """One snapshot column. A list column is built from its distinct values and gathered: a
    day repeats the same few lists, and polars converts each Python list on its own (slow)."""
    values = [row[name] for row in rows]
    if dtype == UTC_US:
        return utc_series(name, values)
    if not isinstance(dtype, pl.List):
        return pl.Series(name, values, dtype=dtype)
    distinct: dict[tuple[str, ...] | None, int] = {}
    positions = [
        distinct.setdefault(None if v is None else tuple(v), len(distinct)) for v in values
    ]
    lists = [None if value is None else list(value) for value in distinct]
    return pl.Series(name, lists, dtype=dtype).gather(positions)


def normalise_many(items: Iterable[tuple[ParsedSummary, FetchMeta]]) -> SummaryFrames:
    """Normalise responses into the three tables, in input order.

    Builds each table column-wise and checks the bounds per column (a day of responses at once
    is what makes rebuilds fast). Raises RejectedValueError for the first unsafe or absurd value
    in document order, naming its field.
    """
    batch_items = list(items)
    batch = _Batch()
    try:
        for parsed, fetch in batch_items:
            batch.add(parsed, fetch)
        return batch.frames()
    except (RejectedValueError, pl.exceptions.PolarsError, OverflowError):
        # A value polars cannot hold (an integer beyond 64 bits) is refused like any other.
        raise first_rejection(batch_items) from None


def normalise(parsed: ParsedSummary, fetch: FetchMeta) -> SummaryFrames:
    """Normalise one response."""
    return normalise_many([(parsed, fetch)])


def normalise_batch(
    items: Sequence[tuple[ParsedSummary | InvalidResponseError, FetchMeta]],
) -> tuple[SummaryFrames, dict[int, InvalidResponseError | RejectedValueError]]:
    """The accepted bodies' rows, in input order, and each refused body's refusal by its index
    (a body validation refused keeps that error). One batch when all are accepted (the polars
    overhead is per call); when any is refused, each is normalised on its own, so each gets its
    own rows or reason."""
    refused: dict[int, InvalidResponseError | RejectedValueError] = {}
    valid: list[tuple[int, ParsedSummary, FetchMeta]] = []
    for index, (parsed, fetch) in enumerate(items):
        if isinstance(parsed, InvalidResponseError):
            refused[index] = parsed
        else:
            valid.append((index, parsed, fetch))
    try:
        return normalise_many((parsed, fetch) for _, parsed, fetch in valid), refused
    except RejectedValueError:
        pass
    accepted: list[SummaryFrames] = []
    for index, parsed, fetch in valid:
        try:
            accepted.append(normalise(parsed, fetch))
        except RejectedValueError as error:
            refused[index] = error
    return SummaryFrames.concat(accepted), refused
