"""Counter-based randomness: every draw is a pure function of (seed, names, counters).

Nothing is simulated forward from a start date. A block of draws comes from a Philox generator
keyed by a hash of its coordinates, and small scattered draws (one per strike, per expiry) come
from a vectorised splitmix64 hash, so the market at any instant can be computed directly and
identically in every process.
"""

from __future__ import annotations

import hashlib
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
UIntArray = npt.NDArray[np.uint64]

_MASK64: Final[int] = (1 << 64) - 1


def key64(seed: int, *parts: object) -> int:
    """A stable 64-bit key for a tuple of coordinates (Python's ``hash`` is salted per process)."""
    text = "|".join([str(seed), *(str(part) for part in parts)]).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def generator(seed: int, *parts: object) -> np.random.Generator:
    """A Philox generator whose stream is determined by ``(seed, *parts)`` alone."""
    text = "|".join([str(seed), *(str(part) for part in parts)]).encode()
    digest = hashlib.blake2b(text, digest_size=16).digest()
    key = np.frombuffer(digest, dtype=np.uint64).copy()
    return np.random.Generator(np.random.Philox(key=key))


def splitmix64(values: UIntArray) -> UIntArray:
    """The splitmix64 finaliser applied elementwise: a fast, well-mixed integer hash."""
    # Array arithmetic on uint64 wraps modulo 2**64 silently, which is what the hash wants.
    z = values + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    result: UIntArray = z ^ (z >> np.uint64(31))
    return result


def hashed_uniform(key: int, counters: npt.ArrayLike) -> FloatArray:
    """Uniforms in (0, 1), one per integer counter, for the stream named by ``key``."""
    ints = np.asarray(counters, dtype=np.int64).astype(np.uint64)
    mixed = splitmix64(np.atleast_1d(ints ^ np.uint64(key & _MASK64)))
    return ((mixed >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def hashed_normal(key: int, counters: npt.ArrayLike) -> FloatArray:
    """Standard normals, one per integer counter (Box–Muller on two hashed uniforms)."""
    ints = np.asarray(counters, dtype=np.int64)
    u1 = hashed_uniform(key, ints * 2)
    u2 = hashed_uniform(key, ints * 2 + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
