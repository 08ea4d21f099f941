"""The benchmarks at a reduced size: the code ``make bench`` runs, on a few minutes of the day
corpus, checked for what each benchmark's figures rely on.

Timings are not asserted (they belong to ``make bench``); what is asserted is that the contenders
did the same work: termstore stores as many expiry rows as the no-logic limit explodes, the live
path and the bulk path store identical rows, the catalog and the naive glob answer every query
with the same rows, and a day of live ticks rolls its hours up without losing a row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from backquant.symbols import SUPPORTED_SYMBOLS
from bench.common import CACHE_ENV
from bench.corpus import DAY, DayCorpus, YearCorpus, day_corpus
from bench.day_bench import run_day
from bench.ingest_bench import physical_limit, termstore_backfill, termstore_live
from bench.query_bench import bench_naive_vs_catalog
from storage import Warehouse

TICKS = 6
BODIES = TICKS * len(SUPPORTED_SYMBOLS)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DayCorpus]:
    """The day corpus, built in a cache of the test's own (~10 s)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("bench-cache")))
        yield day_corpus()


def _expiry_rows(bodies: list[bytes]) -> int:
    return sum(len(orjson.loads(body)["data"]["expiries"]) for body in bodies)


def _expiries(home: Path) -> pl.DataFrame:
    warehouse = Warehouse.open(home)
    try:
        return warehouse.sql("SELECT * FROM expiries ORDER BY symbol, computed_at, position")
    finally:
        warehouse.close()


def test_the_day_corpus_is_a_day_of_ticks_for_the_four_symbols(corpus: DayCorpus) -> None:
    bodies = corpus.bodies()
    assert corpus.responses == len(bodies) == 1440 * len(SUPPORTED_SYMBOLS)
    first_tick = [orjson.loads(body)["meta"]["symbol"] for body in bodies[: len(SUPPORTED_SYMBOLS)]]
    assert first_tick == list(SUPPORTED_SYMBOLS)


def test_backfill_live_and_the_physical_limit_store_the_same_rows(
    corpus: DayCorpus, tmp_path: Path
) -> None:
    bodies = corpus.bodies()[:BODIES]
    ndjson = tmp_path / "bodies.ndjson"
    ndjson.write_bytes(b"\n".join(bodies) + b"\n")
    for name in ("limit", "backfill", "live"):
        (tmp_path / name).mkdir()

    limit = physical_limit(ndjson, tmp_path / "limit")
    backfill = termstore_backfill(bodies, tmp_path / "backfill", None)
    live = termstore_live(bodies, tmp_path / "live", TICKS)

    assert limit["responses"] == backfill["responses"] == live["responses"] == BODIES
    assert limit["expiry_rows"] == _expiry_rows(bodies)
    stored = _expiries(tmp_path / "backfill")
    assert stored.height == limit["expiry_rows"]
    assert_frame_equal(stored, _expiries(tmp_path / "live"))


def test_the_catalog_and_the_naive_glob_answer_every_query_alike(
    corpus: DayCorpus, tmp_path: Path
) -> None:
    home = tmp_path / "year" / "home"
    termstore_backfill(corpus.bodies()[: 30 * len(SUPPORTED_SYMBOLS)], home, None)
    year = YearCorpus(home, (DAY,), 0, {})

    comparison = bench_naive_vs_catalog(year)

    assert comparison["naive_files"] == 30 * len(SUPPORTED_SYMBOLS)
    assert comparison["days"] == [DAY.isoformat()]
    answers = {name: value for name, value in comparison.items() if isinstance(value, dict)}
    assert len(answers) >= 4
    for name, answer in answers.items():
        assert answer["same_row_count"], name
        assert answer["rows"] > 0, name


def test_a_day_of_live_ticks_rolls_its_first_hour_up_and_keeps_every_row(
    corpus: DayCorpus, tmp_path: Path
) -> None:
    ticks = 70  # the first hour rolls up once a tick is 5 minutes past its end
    result = run_day(tmp_path / "home", ticks, grace_s=0.0)

    assert result["ticks"] == ticks
    assert result["hours_rolled"] >= 1
    assert result["expiry_rows_visible"] == _expiry_rows(
        corpus.bodies()[: ticks * len(SUPPORTED_SYMBOLS)]
    )
    # An hour of tick files became one roll-up per symbol: far fewer files than ticks.
    assert result["hot_files_listed_at_end_of_day"]["expiries"] < ticks
