"""``research_daily``: the research layer's daily partition, downstream of ``expiry_history``.

Materialising a day writes its hourly sample (the ``hourly_sample`` lake table: what makes a year
of hourly constant-maturity series fast) and attaches the day's closing constant-maturity table
and the four standard charts, which the asset page shows inline (see ``chart_metadata``). It
runs by itself after each ``expiry_history`` partition lands (nightly, backfills), and
backfills like any partitioned asset.
"""

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

import dagster as dg
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

from assets.history import HISTORY_ASSET, partition_days
from assets.metadata import column_schema, describe, frame_metadata
from assets.resources import WarehouseResource

if TYPE_CHECKING:
    import polars as pl

RESEARCH_ASSET: Final[str] = "research_daily"
MAX_DAYS_PER_RUN: Final[int] = 7
CHART_TITLES: Final[dict[str, str]] = {
    "term_structure": "ATM IV term structure: now vs 1 and 7 days before",
    "cm_30d_atm_iv": "30d constant-maturity ATM IV (hourly, 30 days)",
    "skew_25d": "30d 25Δ skew, put − call (hourly, 30 days)",
    "oi_by_expiry": "Open interest by expiry, anchors marked",
}
RESEARCH_DESCRIPTION = (
    "Constant-maturity ATM/25Δ IVs (1–180d), forward vols, term-structure shape, daily term "
    "structure and CM OHLC, OPEX series. A partition writes its days' hourly sample (the "
    "`hourly_sample` lake table behind `expiries_hourly`) and attaches the charts; the series "
    "themselves are lake views (today included) and storage.research functions."
)
AFTER_HISTORY: Final = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after each expiry_history partition")
"""Like ``eager()`` but for every partition, not just the latest: backfilled and rebuilt days
must refresh their hourly sample too."""


CHART_LOG_DIR: Final[str] = "termstore_charts"
"""Where the charts go under the instance's compute-log directory ($DAGSTER_HOME/storage)."""


def chart_metadata(
    instance: dg.DagsterInstance, fallback_dir: Path, key: str, charts: dict[str, bytes]
) -> dict[str, dg.MetadataValue]:
    """Each chart as a PNG file, shown inline on the asset page.

    Dagster 1.13 has no image metadata type, and its asset page renders a Markdown value in
    place only when it is under 1,000 characters (longer ones sit behind "[Show Markdown]"), so
    a chart cannot travel inside the metadata. It can be a file the webserver serves: its
    ``/logs/<path>/<extension>`` route returns any file under the local compute-log directory,
    so a short ``![title](/logs/…/png)`` shows the chart on the page. With another compute-log
    manager the files go to ``fallback_dir`` and the metadata gives their path.
    """
    manager = instance.compute_log_manager
    local = manager if isinstance(manager, LocalComputeLogManager) else None
    metadata: dict[str, dg.MetadataValue] = {}
    version = int(datetime.now(UTC).timestamp())  # a new materialisation, a new image URL
    directory = fallback_dir / key
    for name, png in charts.items():
        if local is not None:
            path = Path(local.get_captured_local_path([CHART_LOG_DIR, key, name], "png"))
        else:
            path = directory / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        directory = path.parent
        title = CHART_TITLES[name]
        metadata[f"chart_{name}"] = (
            dg.MetadataValue.md(
                f"**{title}**\n\n![{title}](/logs/{CHART_LOG_DIR}/{key}/{name}/png?v={version})"
            )
            if local is not None
            else dg.MetadataValue.path(str(path))
        )
    metadata["charts_dir"] = dg.MetadataValue.path(str(directory))
    return metadata


def charts_as_of(day: date) -> datetime:
    """The instant a day's charts show: the day's last second, or now for today."""
    end = datetime.combine(day + timedelta(days=1), time(0), UTC)
    return min(end, datetime.now(UTC)) - timedelta(seconds=1)


def day_metadata(
    day: date, sampled_rows: int, closing: "pl.DataFrame", at: datetime
) -> dict[str, dg.MetadataValue]:
    """One partition's metadata but its charts: the day's hourly sample rows and its closing
    constant-maturity rows (the 30d tenor shown)."""
    closing_30d = closing.filter(closing["tenor_days"] == 30).select(
        "symbol",
        "day",
        "open_atm_iv",
        "high_atm_iv",
        "low_atm_iv",
        "close_atm_iv",
        "close_rr_25d",
        "close_bf_25d",
        "close_skew_25d",
        "snapshots",
    )
    return {
        "days": dg.MetadataValue.text(day.isoformat()),
        "hourly_sample_rows": dg.MetadataValue.json({day.isoformat(): sampled_rows}),
        "cm_30d_daily": frame_metadata(closing_30d),
        "dagster/row_count": dg.MetadataValue.int(closing.height),
        "charts_as_of": dg.MetadataValue.timestamp(at),
    }


def build_research_asset(
    *, partitions_def: dg.DailyPartitionsDefinition, simulated: bool
) -> dg.AssetsDefinition:
    @dg.asset(
        name=RESEARCH_ASSET,
        group_name="research",
        deps=[HISTORY_ASSET],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN),
        automation_condition=AFTER_HISTORY,
        description=describe(RESEARCH_DESCRIPTION, simulated=simulated),
        kinds={"polars", "duckdb", "ducklake"},
        owners=["team:termstore"],
        tags={"layer": "research"},
        # What a partition writes: the hourly_sample table (the expiries columns).
        metadata={"dagster/column_schema": column_schema("hourly_sample")},
    )
    def research_daily(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:  # type: ignore[type-arg]
        from assets.charts import render_charts
        from storage.research import api
        from storage.research.hourly_tier import materialise_days

        days = partition_days(context)
        store = warehouse.open()
        sampled = {item.day: item.rows for item in materialise_days(store, list(days.values()))}
        closing = api.daily_constant_maturity(
            store, None, min(days.values()), max(days.values()) + timedelta(days=1)
        )
        # A run of several days records one materialization per day: each gets its own day's
        # sample, closing table and charts, not the run's.
        for key, day in days.items():
            at = charts_as_of(day)
            metadata = day_metadata(day, sampled[day], closing.filter(closing["day"] == day), at)
            charts = render_charts(store, at=at)
            fallback_dir = Path(warehouse.home) / "charts"
            metadata.update(chart_metadata(context.instance, fallback_dir, key, charts))
            context.add_asset_metadata(metadata, partition_key=key)
        context.log.info(
            f"hourly sample: {sum(sampled.values())} rows over {len(sampled)} days; charts of "
            f"{', '.join(days)}"
        )
        return dg.MaterializeResult()

    return research_daily


research_job = dg.define_asset_job(
    "research",
    selection=[RESEARCH_ASSET],
    description="Materialise research_daily partitions (hourly sample + charts).",
)
research_automation = dg.AutomationConditionSensorDefinition(
    "research_after_history",
    target=dg.AssetSelection.assets(RESEARCH_ASSET),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Materialises research_daily partitions after their expiry_history partition.",
)
