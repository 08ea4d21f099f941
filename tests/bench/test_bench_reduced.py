"""The benchmarks at a reduced size: the code ``make bench`` runs, on a few minutes of the day
corpus, checked for what each benchmark's figures rely on.

Timings are not asserted (they belong to ``make bench``); what is asserted is that the
contenders did the same work (termstore stores as many expiry rows as the no-logic limit
explodes and dlt unpacks; every lake setup stores the same rows), the live path, the bulk path
and a rebuild store identical rows, the year corpus's clones are the real days moved by whole
weeks, the timed queries return the same rows as their naive twins over raw rows, and a day of
ticks with hourly maintenance, or one maintenance of many ticks, keeps every row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import orjson
import polars as pl
import psycopg
import pytest
from polars.testing import assert_frame_equal

from backquant.symbols import SUPPORTED_SYMBOLS
from bench.catalog_bench import QUERIES, catalog_growth, snapshot_growth, tick_anatomy
from bench.catalog_copies import PostgresCatalogCopy, SqliteCatalogCopy
from bench.common import CACHE_ENV
from bench.corpus import (
    DAY,
    DayCorpus,
    YearCorpus,
    build_year,
    day_corpus,
    fetched_bodies,
    tick_outcomes,
)
from bench.day_bench import bench_day_over_loopback, bench_maintenance
from bench.ingest_bench import (
    dlt_pipeline,
    physical_limit,
    rebuild_and_bytes,
    termstore_bulk,
    termstore_live,
)
from bench.lakes import LOCAL, POSTGRES_LOCAL_DATA, SETUPS, Services, lake_config
from bench.query_bench import bench_year
from bench.tick_bench import bench_loopback, commit_per_setup
from storage import Warehouse
from storage.bulk import bulk_ingest
from storage.lake import open_lake
from storage.lake_config import LakeConfig
from storage.schemas import SUMMARY_TABLES
from tests.support.services import PostgresServer, S3Server

TICKS = 6
BODIES = TICKS * len(SUPPORTED_SYMBOLS)
COMPARED_TABLES = (*SUMMARY_TABLES, "responses", "ingest_log")
ORDER = {
    "snapshots": "symbol, computed_at",
    "expiries": "symbol, computed_at, position",
    "venue_oi": "symbol, computed_at, expiry, venue",
    "responses": "symbol, computed_at",
    "ingest_log": "symbol, started_at",
    "hourly_sample": "symbol, computed_at, position",
}


CORPUS_MINUTES = 150
"""The day corpus's first two and a half hours: whole hours to sample, and a part hour."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DayCorpus]:
    """The day corpus's first minutes, built in a cache of the test's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("bench-cache")))
        yield day_corpus(CORPUS_MINUTES)


def _expiry_rows(bodies: list[bytes]) -> int:
    return sum(len(orjson.loads(body)["data"]["expiries"]) for body in bodies)


def _tables(home: Path, tables: tuple[str, ...] = COMPARED_TABLES) -> dict[str, pl.DataFrame]:
    with Warehouse.open(home) as warehouse:
        return {t: warehouse.sql(f"SELECT * FROM {t} ORDER BY {ORDER[t]}") for t in tables}


def test_the_day_corpus_is_one_tick_a_minute_for_the_four_symbols(corpus: DayCorpus) -> None:
    bodies = [orjson.loads(body)["meta"] for body in corpus.bodies()]
    assert corpus.responses == len(bodies) == CORPUS_MINUTES * len(SUPPORTED_SYMBOLS)
    assert [meta["symbol"] for meta in bodies[:4]] == list(SUPPORTED_SYMBOLS)
    computed = [datetime.fromisoformat(meta["computed_at"]) for meta in bodies[::4]]
    assert computed[0] == datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    assert {later - earlier for earlier, later in pairwise(computed)} == {timedelta(minutes=1)}


def test_bulk_live_rebuild_and_the_physical_limit_store_the_same_rows(
    corpus: DayCorpus, tmp_path: Path
) -> None:
    bodies = corpus.bodies()[:BODIES]
    ndjson = tmp_path / "bodies.ndjson"
    ndjson.write_bytes(b"\n".join(bodies) + b"\n")
    (tmp_path / "limit").mkdir()

    limit = physical_limit(ndjson, tmp_path / "limit")
    bulk = termstore_bulk(fetched_bodies(bodies), tmp_path / "bulk")
    live = termstore_live(bodies, tmp_path / "live", TICKS)
    rebuilt = rebuild_and_bytes(fetched_bodies(bodies), tmp_path / "rebuilt")

    assert limit["responses"] == bulk["responses"] == live["responses"] == BODIES
    assert limit["expiry_rows"] == _expiry_rows(bodies)
    stored = _tables(tmp_path / "bulk")
    assert stored["expiries"].height == limit["expiry_rows"]
    assert sorted(stored["responses"]["body"].to_list()) == sorted(bodies)
    for table, frame in _tables(tmp_path / "live").items():
        assert_frame_equal(frame, stored[table], check_exact=True)
    after_rebuilds = _tables(tmp_path / "rebuilt", SUMMARY_TABLES)
    for table in SUMMARY_TABLES:
        assert_frame_equal(after_rebuilds[table], stored[table], check_exact=True)
    # The bytes figures count what the lake holds.
    assert rebuilt["bytes"]["expiry_rows"] == limit["expiry_rows"]
    assert rebuilt["bytes"]["responses"] == BODIES
    assert rebuilt["lake_tables_after_import_and_maintenance"]["expiry_rows"]["data_files"] == 1


def test_dlt_loads_every_body_and_every_expiry_row(corpus: DayCorpus, tmp_path: Path) -> None:
    pytest.importorskip("dlt", reason="dlt is in the bench dependency group (make bench)")
    bodies = corpus.bodies()[:BODIES]

    result = dlt_pipeline(bodies, tmp_path)

    assert result["responses"] == BODIES
    tables = result["tables"]
    assert tables["expiry_summary"] == BODIES
    assert tables["expiry_summary__data__expiries"] == _expiry_rows(bodies)


def test_every_lake_setup_stores_the_same_rows(
    corpus: DayCorpus, tmp_path: Path, postgres_server: PostgresServer, s3_server: S3Server
) -> None:
    prepared = tick_outcomes(corpus.bodies(), 3)

    seconds, first, normalised, warehouses = commit_per_setup(
        prepared, SETUPS, Services(postgres_server, s3_server), tmp_path
    )
    try:
        expiries = {
            setup: warehouse.sql(f"SELECT * FROM expiries ORDER BY {ORDER['expiries']}")
            for setup, warehouse in warehouses.items()
        }
        configs = {setup: warehouse.config for setup, warehouse in warehouses.items()}
    finally:
        for warehouse in warehouses.values():
            warehouse.close()

    assert set(first) == set(SETUPS)
    assert all(len(values) == 2 for values in seconds.values())
    assert len(normalised) == 2
    assert configs["postgres_s3"].catalog_kind == "postgres"
    assert configs["postgres_s3"].data_path.startswith("s3://")
    assert configs["sqlite_s3"].catalog_kind == "sqlite"
    assert configs["postgres_local_data"].data_path.startswith(str(tmp_path))
    reference = expiries["local"]
    assert reference.height == _expiry_rows(corpus.bodies()[: 3 * len(SUPPORTED_SYMBOLS)])
    for frame in expiries.values():
        assert_frame_equal(frame, reference, check_exact=True)


def _write_ticks(corpus: DayCorpus, ticks: int) -> Callable[[Warehouse, list[date]], float]:
    """A ``write_days`` for ``build_year``: the corpus's first ticks of its one day."""

    def write(warehouse: Warehouse, days: list[date]) -> float:
        assert days == [DAY]
        report = bulk_ingest(warehouse, fetched_bodies(corpus.bodies()[: ticks * 4]))
        return report.seconds

    return write


def test_clones_are_the_real_day_moved_by_whole_weeks_and_queries_match_naive_sql(
    corpus: DayCorpus, tmp_path: Path
) -> None:
    home = tmp_path / "year"
    ticks = CORPUS_MINUTES
    manifest = build_year(home, [DAY], 2, write_days=_write_ticks(corpus, ticks))
    year = YearCorpus(home, (DAY,), int(manifest["cloned_days"]), manifest)

    assert year.first_day == DAY - timedelta(weeks=2)
    real = _tables(home, ("snapshots", "expiries", "venue_oi", "hourly_sample"))
    assert real["snapshots"].height == 3 * ticks * len(SUPPORTED_SYMBOLS)
    assert real["hourly_sample"].height > 0
    for table, frame in real.items():
        keys = ORDER[table].split(", ")
        on_day = frame.filter(pl.col("computed_at").dt.date() == DAY)
        week_before = frame.filter(pl.col("computed_at").dt.date() == DAY - timedelta(weeks=1))
        moved = _moved(on_day, timedelta(weeks=-1)).sort(keys)
        assert_frame_equal(week_before.sort(keys), moved, check_exact=True)
    # Each month is one file per table after the build's maintenance: the two cloned days
    # (February) in one, the real day (March) in the other.
    assert manifest["tables"]["expiry_rows"]["data_files"] == 2

    results = bench_year(year, attach_runs=1, process_runs=1, runs=1)

    compared = {
        name: value
        for name, value in results.items()
        if isinstance(value, dict) and "same_rows_as_naive" in value
    }
    assert set(compared) >= {
        "latest_term_structure",
        "hourly_cm_30d_btc",
        "daily_cm_4_symbols",
        "daily_cm_30d_from_hourly_sample",
    }
    for name, value in compared.items():
        assert value["same_rows_as_naive"], name
        assert value["rows"] > 0, name
    # The hourly series covers all three days: the clones are queried like real days.
    assert results["hourly_cm_30d_btc"]["rows"] == 3 * 3
    assert results["latest_term_structure"]["rows"] == _expiry_rows(
        corpus.bodies()[(ticks - 1) * 4 : ticks * 4]
    )
    assert results["bytes"]["expiry_rows"] == real["expiries"].height


def _moved(frame: pl.DataFrame, shift: timedelta) -> pl.DataFrame:
    """``frame`` with every instant, date and expiry token moved by ``shift``, in polars: an
    implementation independent of the corpus's SQL."""
    changes = [
        (pl.col(name) + shift).alias(name)
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime | pl.Date)
    ]
    if "expiry" in frame.columns:
        token = pl.col("expiry").str.to_date("%d%b%y", strict=False)
        moved = (token + shift).dt.strftime("%d%b%y").str.to_uppercase()
        changes.append(pl.coalesce(moved, pl.col("expiry")).alias("expiry"))
    return frame.with_columns(changes)


def test_ticks_over_loopback_and_a_day_with_hourly_maintenance_keep_every_row(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    ticks = 6
    loopback = bench_loopback(2, tmp_path / "tick")
    assert loopback["ingest_once_4_symbols"]["runs"] == 2
    services = Services(postgres_server, None)
    for setup in (LOCAL, POSTGRES_LOCAL_DATA):
        lake = lake_config(setup, tmp_path / setup, services, f"day-{setup}")
        day = bench_day_over_loopback(lake, ticks, maintain_every=3)

        assert day["ticks"] == ticks, setup
        assert len(day["maintenance_each_hour"]) == 2
        tables = day["lake_at_end_of_day"]
        assert tables["snapshots"]["rows"] == tables["responses"]["rows"] == ticks * 4
        assert tables["ingest_log"]["rows"] == ticks * 4
        # The last maintenance merged the day's tick files: one file per table (one month).
        assert tables["expiry_rows"]["data_files"] == tables["responses"]["data_files"] == 1
        assert (day["catalog_file_bytes"] is None) == (setup == POSTGRES_LOCAL_DATA)


def test_maintenance_of_landed_ticks_keeps_every_row_and_leaves_one_file_per_table(
    corpus: DayCorpus, tmp_path: Path
) -> None:
    ticks = 8
    home = tmp_path / "landed"
    result = bench_maintenance(home, corpus.bodies(), ticks)

    assert result["ticks_landed"] == ticks
    assert result["rows_unchanged"]
    before, after = result["lake_before"], result["lake_after"]
    assert before["expiry_rows"]["data_files"] == ticks
    assert before["expiry_rows"]["rows"] == _expiry_rows(corpus.bodies()[: ticks * 4])
    assert all(after[t]["data_files"] <= 1 for t in after)
    # The run a retention period later deleted every merged-away file from the disk.
    assert result["local_data_files_on_disk_after"] == sum(after[t]["data_files"] for t in after)


def test_the_catalog_bench_logs_each_tick_and_query_and_extra_rows_change_no_answer(
    corpus: DayCorpus, tmp_path: Path
) -> None:
    ticks = tick_anatomy(tmp_path / "ticks", warm=2, timed=2, logged=2)

    assert ticks["tick"]["runs"] == 2
    assert ticks["catalog_statements_per_tick"] > 0
    # The commit is the one statement that writes the catalog: snapshot, files, their stats.
    assert "ducklake_snapshot" in ticks["slowest_statement"]["starts"]
    assert ticks["slowest_statement"]["starts"].startswith("INSERT INTO")
    assert ticks["catalog_rows_after"]["ducklake_snapshot"] > 6

    later = tick_outcomes(corpus.bodies(), 8)[6:]
    copy = SqliteCatalogCopy(tmp_path / "ticks", tmp_path / "olden")
    olden = snapshot_growth(copy, later, [0, 50], tmp_path / "profile.json")
    assert olden["extra_50"]["snapshot_rows"] == olden["extra_0"]["snapshot_rows"] + 50
    assert olden["extra_50"]["tick"]["runs"] == 2
    assert olden["extra_50"]["latest_term_structure"]["catalog_statements"] > 0

    copy = SqliteCatalogCopy(tmp_path / "ticks", tmp_path / "growth")
    growth = catalog_growth(copy, [0, 1000], runs=1, profile=tmp_path / "profile.json")

    plain, grown = growth["extra_0"], growth["extra_1000"]
    stats = "ducklake_file_column_stats"
    assert grown["catalog_rows"][stats] == plain["catalog_rows"][stats] + 1000
    assert grown["same_answers_as_without_extra_rows"]
    for query in QUERIES:
        assert plain[query]["catalog_statements"] > 0, query


def test_a_catalog_copied_into_postgres_describes_the_same_lake(
    corpus: DayCorpus, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    tick_anatomy(tmp_path / "ticks", warm=3, timed=1, logged=1)
    profile = tmp_path / "profile.json"
    lite = catalog_growth(
        SqliteCatalogCopy(tmp_path / "ticks", tmp_path / "lite"), [0], runs=1, profile=profile
    )
    copy = PostgresCatalogCopy(tmp_path / "ticks", tmp_path, postgres_server, "copied_catalog")
    assert copy.config.catalog_kind == "postgres"
    growth = catalog_growth(copy, [0, 500], runs=1, profile=profile)

    plain, grown = growth["extra_0"], growth["extra_500"]
    stats = "ducklake_file_column_stats"
    assert plain["catalog_rows"] == lite["extra_0"]["catalog_rows"]
    assert grown["catalog_rows"][stats] == plain["catalog_rows"][stats] + 500
    assert grown["same_answers_as_without_extra_rows"]
    source = LakeConfig.from_env(home=tmp_path / "ticks", env={})
    with (
        open_lake(copy.config, read_only=True) as pg,
        open_lake(source, read_only=True) as sqlite,
    ):
        for query in QUERIES.values():
            answer = pg.execute(query).fetchall()
            assert answer and answer == sqlite.execute(query).fetchall(), query

    # Ticks land on the copy too, and each level starts again from the source's rows.
    later = tick_outcomes(corpus.bodies(), 7)[5:]
    olden = snapshot_growth(copy, later, [0, 30], profile)
    assert olden["extra_30"]["snapshot_rows"] == olden["extra_0"]["snapshot_rows"] + 30
    assert olden["extra_0"]["snapshot_rows"] == plain["catalog_rows"]["ducklake_snapshot"] + 2
    # The copy keeps the source's settings: its ticks wrote files, nothing into the catalog.
    with psycopg.connect(copy.dsn) as catalog:
        inlined = catalog.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename ~ '^ducklake_inlined_data_[0-9]'"
        ).fetchone()
        limit = catalog.execute(
            "SELECT value FROM ducklake_metadata WHERE key = 'data_inlining_row_limit'"
        ).fetchall()
    assert inlined == (0,) and limit == [("0",)]
