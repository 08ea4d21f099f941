"""Quarantine keeps every refused body next to its reason, and never overwrites another one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from storage.layout import Layout
from storage.quarantine import quarantine_body

AT = datetime(2026, 3, 2, 12, 0, 5, tzinfo=UTC)


def _quarantine(layout: Layout, raw: bytes, reason: str) -> Path:
    return quarantine_body(
        layout,
        symbol="SOLUSDT",
        received_at=AT,
        raw=raw,
        kind="not_json",
        reason=reason,
        field_path=None,
        http_status=200,
        request_id="req_1",
    )


def test_different_bodies_refused_at_the_same_instant_both_stay(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    first = _quarantine(layout, b"{truncated", "first")
    second = _quarantine(layout, b"<html>", "second")
    assert first != second
    assert first.read_bytes() == b"{truncated"
    assert second.read_bytes() == b"<html>"
    for body, reason in ((first, "first"), (second, "second")):
        document = orjson.loads(body.with_suffix(".json").read_bytes())
        assert document["reason"] == reason
        assert document["body_file"] == body.name


def test_the_same_body_again_reuses_its_file(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    assert _quarantine(layout, b"{truncated", "x") == _quarantine(layout, b"{truncated", "x")
    assert len(list(layout.quarantine_day_dir("SOLUSDT", AT.date()).glob("*.body"))) == 1
