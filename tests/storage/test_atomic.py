"""WriteBatch: files appear only at commit, all of them, and discarded ones never."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from storage.atomic import WriteBatch


def _visible(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_files_appear_only_when_the_batch_commits(tmp_path: Path) -> None:
    batch = WriteBatch()
    batch.add(tmp_path / "a" / "one.bin", b"1")
    batch.add_parquet(tmp_path / "b" / "two.parquet", pl.DataFrame({"x": [1, 2]}))
    assert _visible(tmp_path) == [] and len(batch) == 2
    batch.commit()
    assert _visible(tmp_path) == ["one.bin", "two.parquet"]
    assert (tmp_path / "a" / "one.bin").read_bytes() == b"1"
    assert pl.read_parquet(tmp_path / "b" / "two.parquet")["x"].to_list() == [1, 2]
    assert len(batch) == 0 and not any(p.name.startswith(".") for p in tmp_path.rglob("*"))


def test_discard_since_a_mark_keeps_the_earlier_files(tmp_path: Path) -> None:
    batch = WriteBatch()
    batch.add(tmp_path / "kept.bin", b"k")
    mark = len(batch)
    batch.add(tmp_path / "dropped.bin", b"d")
    batch.discard(since=mark)
    batch.commit()
    assert _visible(tmp_path) == ["kept.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.bin"]
