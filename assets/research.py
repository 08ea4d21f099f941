"""``research_daily``: the research layer's daily partition, downstream of ``expiry_history``.

Materialising a day writes its hourly sample (the ``hourly_sample`` lake table: what makes a year
of hourly constant-maturity series fast) and attaches the day's closing constant-maturity table
and the four standard charts, which the asset page shows inline (see ``chart_metadata``). It
runs by itself after each ``expiry_history`` partition lands (nightly, backfills), and
backfills like any partitioned asset.
"""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import dagster as dg
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

from assets.history import HISTORY_ASSET
from assets.metadata import column_schema, describe, frame_metadata
from assets.resources import WarehouseResource

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

        window = context.partition_time_window
        first: date = window.start.date()
        last: date = (window.end - timedelta(seconds=1)).date()
        store = warehouse.open()
        days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
        written = materialise_days(store, days)
        closing = api.daily_constant_maturity(store, None, first, last + timedelta(days=1))
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
        at = min(window.end.astimezone(UTC), datetime.now(UTC)) - timedelta(seconds=1)
        charts = render_charts(store, at=at)
        context.log.info(
            f"hourly sample: {sum(d.rows for d in written)} rows over {len(written)} days; "
            f"charts as of {at:%Y-%m-%d %H:%M}"
        )
        metadata: dict[str, dg.MetadataValue] = {
            "days": dg.MetadataValue.text(f"{first} … {last}" if first != last else str(first)),
            "hourly_sample_rows": dg.MetadataValue.json(
                {day.day.isoformat(): day.rows for day in written}
            ),
            "cm_30d_daily": frame_metadata(closing_30d),
            "dagster/row_count": dg.MetadataValue.int(closing.height),
            "charts_as_of": dg.MetadataValue.timestamp(at),
        }
        key = str(first) if first == last else f"{first}_{last}"
        metadata.update(
            chart_metadata(context.instance, Path(warehouse.home) / "charts", key, charts)
        )
        return dg.MaterializeResult(metadata=metadata)

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
