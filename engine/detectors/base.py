"""What every behavioural detector shares: batch views of packets and flows, grouping, and emission.

Detectors see decoded packet rows (`PacketView`) and ended flows (`FlowView`)
a batch at a time. They group rows by key with numpy, feed one summary per key
and batch into their windows, and emit a `Detection` when a key crosses its
threshold; a key that fired stays quiet for one window (its cooldown), so a
scan gives one detection per window rather than one per probe.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.decode import KIND_ARP, KIND_IP, DecodedBatch
from engine.events import Detection, FlowKey
from engine.flows import FlowRecords, community_id, group, ip_text
from engine.windowing import hash64_array

NS = 1_000_000_000
_V4_PREFIX = 0x0000FFFF00000000


def mac_text(mac: int) -> str:
    return ":".join(f"{(mac >> s) & 0xFF:02x}" for s in range(40, -1, -8))


def address_hash(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """One 64-bit hash per address (for distinct counts and sketches)."""
    with np.errstate(over="ignore"):
        return hash64_array(
            hash64_array(np.asarray(hi, dtype=np.uint64)) ^ np.asarray(lo, dtype=np.uint64)
        )


class AddressSet:
    """Addresses and networks (an allow-list of known scanners, a home network)."""

    __slots__ = ("networks", "text")

    def __init__(self, entries: Iterable[str], what: str = "address list") -> None:
        nets = []
        for entry in entries:
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{what}: {entry!r} is not an address or network") from None
        self.networks = tuple(nets)
        self.text = tuple(entries)

    def __contains__(self, address: str) -> bool:
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)


class PacketView:
    """The IP and ARP rows of one decoded batch, with times in seconds."""

    __slots__ = ("arp", "batch", "ip", "ts")

    def __init__(self, decoded: DecodedBatch) -> None:
        rows = decoded.rows
        self.batch = decoded.batch
        self.ip = rows[rows["kind"] == KIND_IP]
        self.arp = rows[rows["kind"] == KIND_ARP]
        self.ts = self.ip["ts"] / NS

    def payload_prefix(self, rows: np.ndarray, n: int) -> np.ndarray:
        """The first n payload bytes of each row (zero-padded where the payload is shorter)."""
        out = np.zeros((len(rows), n), dtype=np.uint8)
        if not len(rows):
            return out
        data = self.batch.data
        start = self.batch.offsets[rows["pkt"]] + rows["payload_off"]
        end = self.batch.offsets[rows["pkt"]] + self.batch.caplens[rows["pkt"]]
        avail = np.minimum(np.minimum(rows["payload_len"], end - start), n)
        for k in range(n):
            ok = avail > k
            out[ok, k] = data[start[ok] + k]
        return out


class FlowView:
    """Ended flows of one batch, with the columns detectors use; `now` is the event time they ended."""

    __slots__ = ("c", "end", "history", "n", "records")

    def __init__(self, records: FlowRecords, now: float = -np.inf) -> None:
        self.records = records
        self.c = records.columns
        self.history = records.history
        self.n = len(records)
        # a flow counts at the event time it ended: its last packet, or the packet
        # time at which the table closed it (idle timeouts end flows late), so
        # flow-level windows see records in time order
        self.end = np.maximum(self.c["ts"] + self.c["duration"], now)

    def flow_key(self, i: int) -> FlowKey:
        c = self.c
        shi, slo, dhi, dlo = (int(c[k][i]) for k in ("src_hi", "src_lo", "dst_hi", "dst_lo"))
        src, dst = ip_text(shi, slo), ip_text(dhi, dlo)
        proto, sport, dport = int(c["proto"][i]), int(c["sport"][i]), int(c["dport"][i])
        return FlowKey(src, sport, dst, dport, proto, community_id(src, dst, proto, sport, dport))

    def src(self, i: int) -> str:
        return ip_text(int(self.c["src_hi"][i]), int(self.c["src_lo"][i]))

    def dst(self, i: int) -> str:
        return ip_text(int(self.c["dst_hi"][i]), int(self.c["dst_lo"][i]))

    def history_starts(self, prefixes: tuple[str, ...]) -> np.ndarray:
        return np.fromiter((h.startswith(prefixes) for h in self.history), dtype=bool, count=self.n)


class Cooldown:
    """Keys that fired recently; a key is quiet for `seconds` after firing. Bounded."""

    __slots__ = ("_fired", "max_keys", "seconds")

    def __init__(self, seconds: float, max_keys: int = 65_536) -> None:
        self.seconds, self.max_keys = seconds, max_keys
        self._fired: OrderedDict[Hashable, float] = OrderedDict()

    def ready(self, key: Hashable, ts: float) -> bool:
        last = self._fired.get(key)
        return last is None or ts - last >= self.seconds

    def fire(self, key: Hashable, ts: float) -> None:
        self._fired[key] = ts
        self._fired.move_to_end(key)
        while len(self._fired) > self.max_keys:
            self._fired.popitem(last=False)

    def snapshot(self) -> list[list[Any]]:
        return [[list(k) if isinstance(k, tuple) else k, t] for k, t in self._fired.items()]

    def restore(self, snap: list[list[Any]]) -> None:
        self._fired = OrderedDict(
            (tuple(k) if isinstance(k, list) else k, float(t)) for k, t in snap
        )


@dataclass(frozen=True, slots=True)
class Tagging:
    """How a detector labels what it emits."""

    name: str
    severity: str
    techniques: tuple[str, ...]
    tactics: tuple[str, ...]

    def detection(
        self,
        ts: float,
        key: str,
        title: str,
        *,
        score: float = 1.0,
        flow: FlowKey | None = None,
        window_start: float | None = None,
        evidence: dict[str, Any] | None = None,
        techniques: tuple[str, ...] | None = None,
        key_role: str = "source",
    ) -> Detection:
        return Detection(
            ts=float(ts),
            detector=self.name,
            key=key,
            title=title,
            severity=self.severity,
            score=float(min(1.0, max(0.0, score))),
            techniques=self.techniques if techniques is None else techniques,
            tactics=self.tactics,
            flow=flow,
            window_start=window_start,
            key_role=key_role,
            evidence=evidence or {},
        )


def saturating(value: float, threshold: float) -> float:
    """A 0..1 confidence: 0.6 at the threshold, rising towards 1 as value grows past it."""
    if threshold <= 0:
        return 1.0
    ratio = value / threshold
    return float(min(1.0, 0.6 + 0.4 * (1.0 - 1.0 / max(ratio, 1.0))))


Clock = Callable[[], float]


def members(inverse: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row indices of each group, from `group`'s inverse."""
    if not len(inverse):
        return []
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=n_groups)
    return np.split(order, np.cumsum(counts)[:-1])


class Detector:
    """A behavioural detector: sees packet rows and ended flows, returns detections.

    Subclasses override what they need; state lives in windows and cooldowns
    that `snapshot()`/`restore()` carry across restarts.
    """

    name = "detector"
    #: Attributes holding state with their own snapshot()/restore() (windows,
    #: cooldowns); the default snapshot is theirs, keyed by attribute name.
    windowed: tuple[str, ...] = ()

    def observe_packets(self, view: PacketView) -> list[Detection]:
        return []

    def observe_flows(self, view: FlowView) -> list[Detection]:
        return []

    def snapshot(self) -> dict[str, Any]:
        return {name: getattr(self, name).snapshot() for name in self.windowed}

    def restore(self, snap: dict[str, Any]) -> None:
        for name in self.windowed:
            getattr(self, name).restore(snap[name])


class Groups:
    """Rows grouped by key columns, with per-group reductions done in numpy.

    Detectors loop over groups in Python; everything per row stays vectorized,
    and per-group values come out as plain lists (cheap to index in the loop).
    """

    __slots__ = ("counts", "first", "inverse", "n", "order", "starts")

    def __init__(self, *columns: np.ndarray) -> None:
        first, inv = group(*columns)
        self.n = len(first)
        self.first = first
        self.inverse = inv
        self.order = np.argsort(inv, kind="stable")
        counts = np.bincount(inv, minlength=self.n)
        self.counts: list[int] = counts.tolist()
        self.starts: list[int] = (np.cumsum(counts) - counts).tolist()

    def max_of(self, values: np.ndarray) -> list[float]:
        out = np.full(self.n, -np.inf)
        np.maximum.at(out, self.inverse, values)
        return out.tolist()

    def sum_of(self, values: np.ndarray) -> list[float]:
        return np.bincount(self.inverse, weights=values, minlength=self.n).tolist()

    def firsts(self, values: np.ndarray) -> list[Any]:
        """The value of each group's first row."""
        return values[self.first].tolist()

    def lists(self, values: np.ndarray) -> list[Any]:
        """Values in group order; group g is `[starts[g] : starts[g] + counts[g]]`."""
        return values[self.order].tolist()

    def rows(self, g: int) -> np.ndarray:
        s = self.starts[g]
        return self.order[s : s + self.counts[g]]
