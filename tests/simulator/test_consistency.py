"""Every published number follows from the model's own chain, and the calendar fields are right."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from scipy.stats import norm

from backquant.expiry_calendar import classify, settlement_instant
from backquant.simulator.market import Market, bucket_start
from backquant.simulator.spot import bucket_of
from backquant.symbols import VENUES
from tests.simulator.helpers import cases

CASES = cases(range(3), 4)


@pytest.fixture(scope="module")
def markets() -> dict[int, Market]:
    return {seed: Market(seed) for seed in range(3)}


@pytest.mark.parametrize(("seed", "symbol", "at"), CASES)
def test_totals_ratios_and_venue_split_add_up(markets, seed, symbol, at):
    body = markets[seed].expiry_summary(symbol, at)
    spot = body["meta"]["spot_price"]
    assert spot > 0
    for row in body["data"]["expiries"]:
        assert row["total_oi"] == pytest.approx(row["call_oi"] + row["put_oi"], abs=1e-6)
        assert row["notional_oi_usd"] == pytest.approx(row["total_oi"] * spot, rel=1e-9, abs=0.01)
        if row["call_oi"] > 0:
            assert row["pcr"] == pytest.approx(row["put_oi"] / row["call_oi"], rel=1e-5)
        if row["skew_25d"] is not None:
            assert row["skew_25d"] == pytest.approx(
                row["put_25d_iv"] - row["call_25d_iv"], abs=1e-6
            )
        assert set(row["by_venue"]) == set(VENUES)
        residual = row["by_venue_unattributed"] or {"call_oi": 0.0, "put_oi": 0.0}
        for side in ("call_oi", "put_oi"):
            venues = sum(v[side] for v in row["by_venue"].values())
            assert venues + residual[side] == pytest.approx(row[side], abs=1e-6)
        for venue in row["by_venue"].values():
            assert venue["total_oi"] == pytest.approx(venue["call_oi"] + venue["put_oi"], abs=1e-6)
            assert venue["notional_oi_usd"] == pytest.approx(venue["total_oi"] * spot, abs=0.01)


@pytest.mark.parametrize(("seed", "symbol", "at"), CASES)
def test_calendar_fields_and_counts(markets, seed, symbol, at):
    body = markets[seed].expiry_summary(symbol, at)
    data = body["data"]
    computed_at = bucket_start(bucket_of(at))
    assert body["meta"]["computed_at"] == computed_at.isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
    rows = data["expiries"]
    dtes = [row["dte"] for row in rows]
    assert dtes == sorted(dtes)
    for row in rows:
        expected = classify(row["expiry"])
        assert row["type"] == expected.type != "unknown"
        assert row["is_anchor"] is expected.is_anchor
        assert row["expiry_date"] == expected.expiry_date.isoformat()
        assert row["dte"] == (expected.expiry_date - computed_at.date()).days
        assert settlement_instant(expected.expiry_date) > computed_at
    assert data["anchor_count"] == sum(row["is_anchor"] for row in rows)
    for kind in ("daily", "weekly", "monthly", "quarterly"):
        assert data["type_counts"][kind] == sum(row["type"] == kind for row in rows)


@pytest.mark.parametrize(("seed", "symbol", "at"), CASES[::3])
def test_max_pain_minimises_payout_over_the_chain(markets, seed, symbol, at):
    market = markets[seed]
    rows = market.expiry_summary(symbol, at)["data"]["expiries"]
    chain = market.chain(symbol, at)
    for position, row in enumerate(rows):
        mask = chain.expiry_index == position
        strikes = chain.strike[mask].tolist()
        calls, puts = chain.call_oi[mask].tolist(), chain.put_oi[mask].tolist()
        payouts = [
            sum(
                c * max(p - k, 0.0) + q * max(k - p, 0.0)
                for k, c, q in zip(strikes, calls, puts, strict=True)
            )
            for p in strikes
        ]
        if row["max_pain"] is None:
            assert sum(calls) + sum(puts) == 0
            continue
        best = min(payouts)
        assert row["max_pain"]["value"] == pytest.approx(best, abs=0.01)
        first_best = strikes[next(i for i, v in enumerate(payouts) if math.isclose(v, best))]
        assert row["max_pain"]["strike"] == first_best


@pytest.mark.parametrize(("seed", "symbol", "at"), CASES[::3])
def test_gex_is_calls_minus_puts_from_black_scholes_gamma(markets, seed, symbol, at):
    market = markets[seed]
    body = market.expiry_summary(symbol, at)
    chain = market.chain(symbol, at)
    spot = body["meta"]["spot_price"]
    t = chain.surface.t_years
    for position, row in enumerate(body["data"]["expiries"]):
        mask = chain.expiry_index == position
        k = np.log(chain.strike[mask] / spot)
        sigma = chain.surface.smiles.vol(k, chain.expiry_index[mask])
        root_t = math.sqrt(t[position])
        d1 = (-k + 0.5 * sigma**2 * t[position]) / (sigma * root_t)
        gamma = norm.pdf(d1) / (spot * sigma * root_t)
        per_coin = gamma * spot**2 * 0.01
        call_gex = float(np.sum(per_coin * chain.call_oi[mask]))
        put_gex = float(np.sum(per_coin * chain.put_oi[mask]))
        assert call_gex >= 0 and put_gex >= 0
        assert row["net_gex"] == pytest.approx(call_gex - put_gex, rel=1e-6, abs=0.02)


@pytest.mark.parametrize(("seed", "symbol", "at"), CASES[::2])
def test_25_delta_points_and_skew_sign_follow_the_smile(markets, seed, symbol, at):
    market = markets[seed]
    body = market.expiry_summary(symbol, at)
    smiles = market.chain(symbol, at).surface.smiles
    atm_w = smiles.total_variance(np.zeros(len(smiles.t)))
    for position, row in enumerate(body["data"]["expiries"]):
        t = float(smiles.t[position])
        assert row["atm_iv"] == pytest.approx(100 * math.sqrt(atm_w[position] / t), abs=1e-3)
        # Brute force, independent of the simulator's bisection: scan log-moneyness on a fine
        # grid on each side of the money and find where the forward delta N(d1) hits the target.
        for field, target, side in (("call_25d_iv", 0.25, 1.0), ("put_25d_iv", 0.75, -1.0)):
            if row[field] is None:
                continue
            ks = side * np.linspace(0.0, 6.0, 60001) * math.sqrt(atm_w[position])
            vols = smiles.vol(ks, np.full(ks.size, position))
            d1 = (-ks + 0.5 * vols**2 * t) / (vols * math.sqrt(t))
            idx = int(np.argmin(np.abs(norm.cdf(d1) - target)))
            assert row[field] == pytest.approx(vols[idx] * 100, abs=0.02)
        rho = smiles.rho[position]
        if row["skew_25d"] is not None and abs(rho) > 0.4:
            # Negative rho = put wing richer = positive skew_25d (BackQuant's put − call sign).
            assert math.copysign(1, row["skew_25d"]) == -math.copysign(1, rho)


def test_total_variance_never_decreases_with_tenor(markets):
    for seed, symbol, at in CASES:
        smiles = markets[seed].chain(symbol, at).surface.smiles
        w0 = smiles.total_variance(np.zeros(len(smiles.t)))
        assert np.all(np.diff(w0) >= -1e-12)


def test_expiry_disappears_at_0800_utc_on_its_date(markets):
    market = markets[0]
    settle = settlement_instant(classify("27MAR26").expiry_date)
    before = [
        r["expiry"]
        for r in market.expiry_summary("BTCUSDT", settle - timedelta(seconds=31))["data"][
            "expiries"
        ]
    ]
    after = [r["expiry"] for r in market.expiry_summary("BTCUSDT", settle)["data"]["expiries"]]
    assert "27MAR26" in before
    assert "27MAR26" not in after
