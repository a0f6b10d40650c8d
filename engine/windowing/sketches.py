"""Fixed-size sketches for keys that can explode: HyperLogLog distinct counts and count-min frequencies.

Both take 64-bit hashes (`hash64` / `hash64_array`), so callers hash once and
feed arrays. Errors, for the defaults used by the detectors:

- HyperLogLog with precision p keeps 2**p one-byte registers; its relative
  standard error is 1.04 / sqrt(2**p): 3.3 % at p=10 (1 KiB), 1.6 % at p=12.
  Small cardinalities use linear counting, which is near exact below ~2.5 * 2**p / 10.
- Count-min with width w and depth d over N added counts overestimates a key's
  count by at most e/w * N with probability 1 - exp(-d); it never underestimates.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numba
import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MASK64 = (1 << 64) - 1
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


@numba.njit(cache=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    """splitmix64's output function (wrapping uint64 arithmetic)."""
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    return z ^ (z >> _S31)


@numba.njit(cache=True)
def _splitmix(x: np.ndarray, seed: int) -> None:
    """x[i] = splitmix64(x[i] + golden * (seed + 1)), in place."""
    add = _GOLDEN * np.uint64(seed + 1)
    for i in range(x.shape[0]):
        x[i] = _mix(x[i] + add)


@numba.njit(cache=True)
def _columns(h: np.ndarray, width: int, out: np.ndarray) -> None:
    """out[d, i] = splitmix64(h[i], seed d) % width, for every row d of `out`."""
    w = np.uint64(width)
    for d in range(out.shape[0]):
        add = _GOLDEN * np.uint64(d + 1)
        for i in range(h.shape[0]):
            out[d, i] = _mix(h[i] + add) % w


@numba.njit(cache=True)
def _add_counts(table: np.ndarray, cols: np.ndarray, counts: np.ndarray) -> None:
    for d in range(cols.shape[0]):
        for i in range(cols.shape[1]):
            table[d, cols[d, i]] += counts[i]


def hash64_array(values: np.ndarray, seed: int = 0) -> np.ndarray:
    """splitmix64 of integer values, elementwise (uint64 in, uint64 out): one compiled
    pass, where the same steps as numpy operations cost a dozen passes and their
    temporaries (the detectors hash a few keys at a time, thousands of times)."""
    x = np.asarray(values).astype(np.uint64, copy=True)
    if x.size:
        _splitmix(x.reshape(-1), seed)
    return x


def hash64(item: Any, seed: int = 0) -> int:
    """A stable 64-bit hash of an int, str, bytes or tuple of those (not Python's salted hash)."""
    if isinstance(item, bool | int | np.integer):
        v = int(item) & _MASK64
        return int(hash64_array(np.array([v], dtype=np.uint64), seed)[0])
    if isinstance(item, str):
        data = item.encode("utf-8")
    elif isinstance(item, bytes):
        data = item
    elif isinstance(item, tuple):
        data = repr(item).encode("utf-8")
    else:
        raise TypeError(f"cannot hash {type(item).__name__} for a sketch")
    digest = hashlib.blake2b(data, digest_size=8, salt=seed.to_bytes(16, "little")).digest()
    return int.from_bytes(digest, "little")


def _bit_length(x: np.ndarray) -> np.ndarray:
    """Bit length of each uint64 (0 for 0), without a float round trip."""
    n = np.zeros(x.shape, dtype=np.int64)
    v = x.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        s = np.uint64(shift)
        big = (v >> s) != 0
        n += np.where(big, shift, 0)
        v = np.where(big, v >> s, v)
    return n + (v != 0)


class HyperLogLog:
    """Distinct count of hashed items in 2**precision one-byte registers."""

    __slots__ = ("precision", "registers")

    def __init__(self, precision: int = 10) -> None:
        if not 4 <= precision <= 16:
            raise ValueError(f"HyperLogLog precision must be 4..16, got {precision}")
        self.precision = precision
        self.registers = np.zeros(1 << precision, dtype=np.uint8)

    def add_hashes(self, hashes: np.ndarray) -> None:
        h = np.asarray(hashes, dtype=np.uint64)
        if not h.size:
            return
        p = self.precision
        idx = (h >> np.uint64(64 - p)).astype(np.intp)
        rest = h & np.uint64((1 << (64 - p)) - 1)
        rank = (64 - p) - _bit_length(rest) + 1
        np.maximum.at(self.registers, idx, rank.astype(np.uint8))

    def add(self, item: Any) -> None:
        self.add_hashes(np.array([hash64(item)], dtype=np.uint64))

    def merge(self, other: HyperLogLog) -> None:
        if other.precision != self.precision:
            raise ValueError("cannot merge HyperLogLogs of different precision")
        np.maximum(self.registers, other.registers, out=self.registers)

    def estimate(self) -> float:
        m = float(1 << self.precision)
        alpha = 0.7213 / (1.0 + 1.079 / m)
        z = float(np.sum(np.ldexp(1.0, -self.registers.astype(np.int64))))
        est = alpha * m * m / z
        zeros = int(np.count_nonzero(self.registers == 0))
        if est <= 2.5 * m and zeros:
            return m * math.log(m / zeros)  # linear counting for small sets
        return est

    def snapshot(self) -> dict[str, Any]:
        return {"precision": self.precision, "registers": self.registers.tobytes().hex()}

    @classmethod
    def restore(cls, snap: dict[str, Any]) -> HyperLogLog:
        hll = cls(int(snap["precision"]))
        hll.registers = np.frombuffer(bytes.fromhex(snap["registers"]), dtype=np.uint8).copy()
        return hll


class CountMinSketch:
    """Approximate per-key counts in a depth x width table of counters."""

    __slots__ = ("depth", "table", "total", "width")

    def __init__(self, width: int = 2048, depth: int = 4) -> None:
        if width < 1 or depth < 1:
            raise ValueError("count-min width and depth must be at least 1")
        self.width, self.depth = width, depth
        self.table = np.zeros((depth, width), dtype=np.float64)
        self.total = 0.0

    def columns(self, hashes: np.ndarray) -> np.ndarray:
        """The counter each hashed key uses in each row (depth x keys): the same for
        every sketch of this width and depth, so a caller with several may share it."""
        h = np.ascontiguousarray(hashes, dtype=np.uint64).ravel()
        out = np.empty((self.depth, h.shape[0]), dtype=np.intp)
        _columns(h, self.width, out)
        return out

    def add_hashes(self, hashes: np.ndarray, counts: np.ndarray | float = 1.0) -> None:
        h = np.asarray(hashes, dtype=np.uint64)
        if not h.size:
            return
        # flat, as `columns` gives the keys
        c = np.broadcast_to(np.asarray(counts, dtype=np.float64), h.shape).ravel()
        _add_counts(self.table, self.columns(h), np.ascontiguousarray(c))
        self.total += float(c.sum())

    def estimate_hashes(self, hashes: np.ndarray) -> np.ndarray:
        return self.estimate_columns(self.columns(hashes))

    def estimate_columns(self, cols: np.ndarray) -> np.ndarray:
        """`estimate_hashes` given the keys' `columns`."""
        if not cols.shape[1]:
            return np.zeros(0)
        rows = np.arange(self.depth)[:, None]
        return np.asarray(self.table[rows, cols].min(axis=0))

    def merge(self, other: CountMinSketch) -> None:
        if (other.width, other.depth) != (self.width, self.depth):
            raise ValueError("cannot merge count-min sketches of different shape")
        self.table += other.table
        self.total += other.total

    def snapshot(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "depth": self.depth,
            "total": self.total,
            "table": self.table.tolist(),
        }

    @classmethod
    def restore(cls, snap: dict[str, Any]) -> CountMinSketch:
        cms = cls(int(snap["width"]), int(snap["depth"]))
        cms.table = np.asarray(snap["table"], dtype=np.float64).reshape(cms.depth, cms.width)
        cms.total = float(snap["total"])
        return cms
