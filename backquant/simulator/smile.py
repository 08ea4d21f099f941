"""Raw SVI smiles and the 25-delta points, vectorised over expiries (no per-strike loops).

Total variance in log-moneyness k = ln(K/F):  w(k) = a + b·(ρ(k − m) + sqrt((k − m)² + s²)).
``a`` is chosen so that w(0) = ATM²·T, i.e. the ATM vol is exactly the model's ATM level.

The 25Δ strikes use the *unadjusted Black–Scholes forward delta* with r = 0:
call delta N(d1) = 0.25 (k > 0) and put delta N(d1) − 1 = −0.25, i.e. N(d1) = 0.75 (k < 0),
with d1 = (−k + σ(k)²T/2) / (σ(k)√T), solved by vectorised bisection on a bracket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from backquant.simulator.rng import FloatArray

IndexArray = npt.NDArray[np.int64]

_BISECTION_STEPS: Final[int] = 34
"""Halvings of a bracket a few ATM s.d. wide: far below the published 4-decimal precision."""
CALL_DELTA: Final[float] = 0.25
PUT_DELTA_AS_N_D1: Final[float] = 0.75


@dataclass(frozen=True, slots=True)
class SviSmiles:
    """SVI parameters for n expiries (arrays of shape (n,)) and their times to expiry in years."""

    a: FloatArray
    b: FloatArray
    rho: FloatArray
    m: FloatArray
    s: FloatArray
    t: FloatArray

    @classmethod
    def calibrate(
        cls,
        atm_vol: FloatArray,
        t: FloatArray,
        *,
        b_per_sqrt_year: float,
        s_per_sqrt_year: float,
        rho: FloatArray,
    ) -> SviSmiles:
        """Smiles through the given ATM vols (fractions), with domain.md's shape scaling."""
        sqrt_t = np.sqrt(t)
        b = b_per_sqrt_year * sqrt_t
        # Lee's moment bound: the wing slope b(1 + |ρ|) must stay ≤ 2.
        b = np.minimum(b, 1.9 / (1.0 + np.abs(rho)))
        s = s_per_sqrt_year * sqrt_t
        m = np.zeros_like(t)
        a = atm_vol * atm_vol * t - b * (-rho * m + np.sqrt(m * m + s * s))
        return cls(a=a, b=b, rho=rho, m=m, s=s, t=t)

    def total_variance(self, k: FloatArray, index: IndexArray | None = None) -> FloatArray:
        """w(k); ``k`` is (n,) or (n, j) per expiry, or flat with ``index`` naming each expiry."""
        a, b, rho, m, s = self.a, self.b, self.rho, self.m, self.s
        if index is not None:
            a, b, rho, m, s = a[index], b[index], rho[index], m[index], s[index]
        elif k.ndim == 2:
            a, b, rho, m, s = (x[:, None] for x in (a, b, rho, m, s))
        x = k - m
        w: FloatArray = a + b * (rho * x + np.sqrt(x * x + s * s))
        return w

    def vol(self, k: FloatArray, index: IndexArray | None = None) -> FloatArray:
        """Implied vol (fraction) at log-moneyness ``k``; same shapes as ``total_variance``."""
        t = self.t if index is None else self.t[index]
        if index is None and k.ndim == 2:
            t = t[:, None]
        result: FloatArray = np.sqrt(np.maximum(self.total_variance(k, index), 1e-12) / t)
        return result

    def call_delta(self, k: FloatArray) -> FloatArray:
        """Forward call delta N(d1) at log-moneyness ``k`` (shape (n,)), r = 0."""
        w = np.maximum(self.total_variance(k), 1e-12)
        root_w = np.sqrt(w)
        delta: FloatArray = ndtr((-k + 0.5 * w) / root_w)
        return delta

    def solve_25d(self) -> tuple[FloatArray, FloatArray]:
        """Log-moneyness of the 25Δ put and 25Δ call per expiry (one bisection for both)."""
        n = self.t.size
        width = 8.0 * np.sqrt(np.maximum(self.total_variance(np.zeros_like(self.t)), 1e-8))
        zeros = np.zeros(n)
        both = self._stacked()
        low = np.concatenate((-width, zeros))
        high = np.concatenate((zeros, width))
        target = np.concatenate((np.full(n, PUT_DELTA_AS_N_D1), np.full(n, CALL_DELTA)))
        # N(d1) falls as k rises, so each root is where the delta crosses its target downwards.
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (low + high)
            above = both.call_delta(mid) > target
            low = np.where(above, mid, low)
            high = np.where(above, high, mid)
        root = 0.5 * (low + high)
        return root[:n], root[n:]

    def _stacked(self) -> SviSmiles:
        """The same smiles twice over, so put and call roots are solved in one vector."""
        return SviSmiles(
            *(np.concatenate((x, x)) for x in (self.a, self.b, self.rho, self.m, self.s, self.t))
        )
