"""Magnitudes over many seeds stay within the ranges of ../shared/domain.md (see its notes)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from backquant.simulator.market import Market

SEEDS = range(16)


@pytest.fixture(scope="module")
def samples() -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = defaultdict(list)
    for seed in SEEDS:
        market = Market(seed)
        for step in range(6):
            at = datetime(2025, 2, 1, tzinfo=UTC) + timedelta(days=53 * step + 7 * seed, hours=seed)
            for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "HYPEUSDT"):
                found[symbol].append(market.expiry_summary(symbol, at))
    return found


def _near(rows, dte):
    return min(rows, key=lambda row: abs(row["dte"] - dte))


def test_listing_depth_per_symbol(samples):
    for body in samples["BTCUSDT"] + samples["ETHUSDT"]:
        rows = body["data"]["expiries"]
        assert 10 <= len(rows) <= 12
        assert 270 <= max(row["dte"] for row in rows) <= 366
        assert body["data"]["type_counts"]["quarterly"] >= 3
    assert max(len(b["data"]["expiries"]) for b in samples["SOLUSDT"]) <= 8
    assert max(len(b["data"]["expiries"]) for b in samples["HYPEUSDT"]) <= 5


def test_btc_atm_levels_term_structure_and_skew(samples):
    atm30 = np.array([_near(b["data"]["expiries"], 30)["atm_iv"] for b in samples["BTCUSDT"]])
    assert np.percentile(atm30, 10) >= 30 and np.percentile(atm30, 90) <= 90
    assert 38 <= np.median(atm30) <= 58
    slopes = [
        _near(b["data"]["expiries"], 180)["atm_iv"] - _near(b["data"]["expiries"], 30)["atm_iv"]
        for b in samples["BTCUSDT"]
    ]
    upward = np.mean([s > 0 for s in slopes])
    assert 0.55 <= upward < 1.0  # usually upward sloping, sometimes inverted
    skews = [_near(b["data"]["expiries"], 30)["skew_25d"] for b in samples["BTCUSDT"]]
    skews = np.array([s for s in skews if s is not None])
    assert skews.min() >= -8 and skews.max() <= 15
    assert np.percentile(skews, 90) > 0 > np.percentile(skews, 10)


def test_eth_trades_above_btc_vol(samples):
    gaps = [
        _near(e["data"]["expiries"], 30)["atm_iv"] - _near(b["data"]["expiries"], 30)["atm_iv"]
        for b, e in zip(samples["BTCUSDT"], samples["ETHUSDT"], strict=True)
    ]
    assert 8 <= np.median(gaps) <= 22


def test_open_interest_scale_anchors_and_pcr(samples):
    btc_total = np.array(
        [sum(r["total_oi"] for r in b["data"]["expiries"]) for b in samples["BTCUSDT"]]
    )
    assert np.percentile(btc_total, 5) >= 200_000 and np.percentile(btc_total, 95) <= 480_000
    eth_total = np.array(
        [sum(r["total_oi"] for r in b["data"]["expiries"]) for b in samples["ETHUSDT"]]
    )
    assert 900_000 <= np.median(eth_total) <= 2_000_000
    ratios = []
    for body in samples["BTCUSDT"]:
        rows = body["data"]["expiries"]
        weekly = [r["total_oi"] for r in rows if r["type"] == "weekly"]
        anchors = [r["total_oi"] for r in rows if r["is_anchor"] and r["dte"] <= 120]
        if weekly and anchors:
            ratios.append(np.mean(anchors) / np.mean(weekly))
    assert 5 <= np.median(ratios) <= 10
    pcrs = [r["pcr"] for b in samples["BTCUSDT"] for r in b["data"]["expiries"] if r["pcr"]]
    assert min(pcrs) >= 0.29 and max(pcrs) <= 1.51  # 0.3–1.5 before 0.1-coin rounding
    btc_usd = np.median(
        [sum(r["notional_oi_usd"] for r in b["data"]["expiries"]) for b in samples["BTCUSDT"]]
    )
    for small in ("SOLUSDT", "HYPEUSDT"):
        usd = np.median(
            [sum(r["notional_oi_usd"] for r in b["data"]["expiries"]) for b in samples[small]]
        )
        assert usd < btc_usd / 50  # orders of magnitude smaller in USD


def test_btc_book_gex_in_range(samples):
    books = np.array([sum(r["net_gex"] for r in b["data"]["expiries"]) for b in samples["BTCUSDT"]])
    assert 2e7 <= np.median(np.abs(books)) <= 3e8
    assert np.percentile(np.abs(books), 80) <= 4e8


def test_hype_is_thin_with_nulls(samples):
    rows = [r for b in samples["HYPEUSDT"] for r in b["data"]["expiries"]]
    assert any(r["skew_25d"] is None for r in rows)
    assert any(r["by_venue_unattributed"] is not None for r in rows)
    assert all(r["by_venue"]["okx"]["total_oi"] == 0 for r in rows)
