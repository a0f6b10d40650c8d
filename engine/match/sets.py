"""Address and port sets of rule headers, resolved and ready for scalar and vectorized tests.

Addresses are 128-bit integers with IPv4 mapped into ::ffff:0:0/96, the same
layout the decoder gives (`src`/`dst` as two big-endian uint64 halves).
"""

from __future__ import annotations

import bisect
import ipaddress
from dataclasses import dataclass

import numpy as np

from rules import ast
from rules.variables import VariableTable

_FULL = 1 << 128
_V4_BASE = 0xFFFF << 32
_U64 = 1 << 64


class HeaderError(ValueError):
    """A rule header that cannot be resolved (a bad address, a port outside 0-65535)."""


def _network(text: str) -> tuple[int, int]:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise HeaderError(f"bad address {text!r}: {exc}") from None
    lo = int(net.network_address)
    size = net.num_addresses
    if net.version == 4:
        lo += _V4_BASE
    return lo, lo + size


def _union(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _complement(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    at = 0
    for lo, hi in intervals:
        if lo > at:
            out.append((at, lo))
        at = max(at, hi)
    if at < _FULL:
        out.append((at, _FULL))
    return out


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return _complement(_union(_complement(a) + _complement(b)))


def _address_intervals(node: ast.Address) -> list[tuple[int, int]]:
    if isinstance(node, ast.AnyAddress):
        return [(0, _FULL)]
    if isinstance(node, ast.IpAddress):
        if node.network.lower() == "any":
            return [(0, _FULL)]
        return [_network(node.network)]
    if isinstance(node, ast.NegatedAddress):
        return _complement(_union(_address_intervals(node.inner)))
    if isinstance(node, ast.AddressList):
        positive = [i for i in node.items if not isinstance(i, ast.NegatedAddress)]
        negative = [i for i in node.items if isinstance(i, ast.NegatedAddress)]
        result = (
            _union([iv for i in positive for iv in _address_intervals(i)])
            if positive
            else [(0, _FULL)]
        )
        for neg in negative:
            result = _intersect(result, _union(_address_intervals(neg)))
        return result
    raise HeaderError(f"unresolved address {node!r}")


@dataclass(frozen=True, slots=True)
class AddressSet:
    """A union of disjoint address intervals [lo, hi)."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @classmethod
    def from_ast(cls, node: ast.Address, variables: VariableTable) -> AddressSet | None:
        """The set, or None when it holds every address (no test needed)."""
        intervals = _union(_address_intervals(variables.expand_address(node)))
        if intervals == [(0, _FULL)]:
            return None
        return cls(tuple(lo for lo, _ in intervals), tuple(hi for _, hi in intervals))

    def __contains__(self, address: int) -> bool:
        i = bisect.bisect_right(self.starts, address) - 1
        return i >= 0 and address < self.ends[i]

    def mask(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Vectorized membership of addresses given as (hi, lo) uint64 halves."""
        out = np.zeros(hi.shape[0], dtype=bool)
        low_half = hi == 0
        if low_half.any():
            # intervals clipped to the addresses whose top half is zero (all of IPv4)
            s64 = [s for s, e in zip(self.starts, self.ends, strict=True) if s < _U64]
            e64 = [min(e, _U64) for s, e in zip(self.starts, self.ends, strict=True) if s < _U64]
            if s64:
                sa = np.array(s64, dtype=np.uint64)
                ea = np.array(
                    [e - 1 for e in e64], dtype=np.uint64
                )  # inclusive ends fit in 64 bits
                vals = lo[low_half]
                idx = np.searchsorted(sa, vals, side="right") - 1
                ok = idx >= 0
                idx_c = np.clip(idx, 0, None)
                out[low_half] = ok & (vals <= ea[idx_c])
        rest = np.nonzero(~low_half)[0]
        for i in rest.tolist():
            out[i] = ((int(hi[i]) << 64) | int(lo[i])) in self
        return out


def address_int(hi: int, lo: int) -> int:
    return (hi << 64) | lo


def _port_fill(node: ast.Port, bitmap: np.ndarray) -> None:
    if isinstance(node, ast.AnyPort):
        bitmap[:] = True
    elif isinstance(node, ast.PortNumber):
        if not 0 <= node.number <= 65535:
            raise HeaderError(f"port {node.number} is outside 0-65535")
        bitmap[node.number] = True
    elif isinstance(node, ast.PortRange):
        lo = 0 if node.low is None else node.low
        hi = 65535 if node.high is None else node.high
        if not (0 <= lo <= 65535 and 0 <= hi <= 65535):
            raise HeaderError(f"port range {lo}..{hi} is outside 0-65535")
        bitmap[lo : hi + 1] = True
    elif isinstance(node, ast.NegatedPort):
        inner = np.zeros(65536, dtype=bool)
        _port_fill(node.inner, inner)
        bitmap |= ~inner
    elif isinstance(node, ast.PortList):
        positive = [i for i in node.items if not isinstance(i, ast.NegatedPort)]
        negative = [i for i in node.items if isinstance(i, ast.NegatedPort)]
        acc = np.zeros(65536, dtype=bool)
        if positive:
            for item in positive:
                _port_fill(item, acc)
        else:
            acc[:] = True
        for neg in negative:
            excluded = np.zeros(65536, dtype=bool)
            _port_fill(neg.inner, excluded)
            acc &= ~excluded
        bitmap |= acc
    else:
        raise HeaderError(f"unresolved port {node!r}")


def port_bitmap(node: ast.Port, variables: VariableTable) -> np.ndarray:
    """A bool[65536] of the ports `node` admits."""
    bitmap = np.zeros(65536, dtype=bool)
    _port_fill(variables.expand_port(node), bitmap)
    return bitmap
