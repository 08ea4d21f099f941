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

_BISECTION_STEPS: Final[int] = 48
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
        """Log-moneyness of the 25Δ put and 25Δ call per expiry."""
        width = 8.0 * np.sqrt(np.maximum(self.total_variance(np.zeros_like(self.t)), 1e-8))
        call_k = self._bisect(np.zeros_like(self.t), width, CALL_DELTA)
        put_k = self._bisect(-width, np.zeros_like(self.t), PUT_DELTA_AS_N_D1)
        return put_k, call_k

    def _bisect(self, low: FloatArray, high: FloatArray, target: float) -> FloatArray:
        # N(d1) falls as k rises, so the root is where call_delta crosses ``target`` downwards.
        low, high = low.copy(), high.copy()
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (low + high)
            above = self.call_delta(mid) > target
            low = np.where(above, mid, low)
            high = np.where(above, high, mid)
        root: FloatArray = 0.5 * (low + high)
        return root
