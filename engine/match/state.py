"""Matcher state that outlives a packet: TCP/UDP session state per flow, flowbits and
xbits, threshold and detection_filter counters, and rule `window` aggregations.

Flow-table slots are reused, so every row gets a generation number from
`session_kernel`; state kept per flow is keyed by (slot, generation) and starts
afresh when a slot's generation changes.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from engine.match.conditions import COMPARISONS
from engine.match.kernels import session_kernel
from engine.windowing import SlidingWindow, WindowSpec
from rules import ast


class SessionState:
    """Established state, generations and packet directions for every flow-table slot."""

    def __init__(self, slots: int, *, midstream: bool = True, async_oneside: bool = False) -> None:
        self.midstream = midstream
        self.async_oneside = async_oneside
        self.state = np.zeros(slots, dtype=np.int64)
        self.gen = np.zeros(slots, dtype=np.int64)

    def update(
        self,
        row_flow: np.ndarray,
        row_dir: np.ndarray,
        row_new: np.ndarray,
        proto: np.ndarray,
        tcp_flags: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: established (uint8), generation (int64) and direction (int8)."""
        n = row_flow.shape[0]
        if n and int(row_flow.max(initial=-1)) >= self.state.shape[0]:
            grow = int(row_flow.max()) + 1
            self.state = np.concatenate([self.state, np.zeros(grow, dtype=np.int64)])
            self.gen = np.concatenate([self.gen, np.zeros(grow, dtype=np.int64)])
        est = np.zeros(n, dtype=np.uint8)
        gen = np.zeros(n, dtype=np.int64)
        direction = row_dir.astype(np.int8, copy=True)
        if n:
            session_kernel(
                row_flow.astype(np.int64, copy=False),
                row_dir.astype(np.int8, copy=False),
                row_new.astype(np.int8, copy=False),
                proto,
                tcp_flags,
                self.midstream,
                self.async_oneside,
                self.state,
                self.gen,
                est,
                gen,
                direction,
            )
        return est, gen, direction


_U32 = 1 << 32


@dataclass(slots=True)
class BitStore:
    """Flowbits per flow (keyed by slot and generation) and xbits per tracked address."""

    flows: dict[int, tuple[int, set[str]]] = field(default_factory=dict)
    hosts: dict[tuple[str, Hashable], dict[str, float]] = field(default_factory=dict)
    ints: dict[int, tuple[int, dict[str, int]]] = field(default_factory=dict)

    def flow_ints(self, slot: int, gen: int) -> dict[str, int]:
        """The flow's `flowint` variables (slot and generation, like its flowbits)."""
        entry = self.ints.get(slot)
        if entry is None or entry[0] != gen:
            values: dict[str, int] = {}
            self.ints[slot] = (gen, values)
            return values
        return entry[1]

    def change_int(self, values: dict[str, int], change: ast.Flowint) -> None:
        """Apply a `flowint` change as Suricata does: a name as the value reads that
        variable (0 when unset); `+` on an unset variable sets it, `-` leaves it unset;
        values wrap as 32-bit unsigned numbers."""
        target = change.value
        amount = values.get(target, 0) if isinstance(target, str) else int(target or 0)
        current = values.get(change.name)
        if change.operator == "=":
            values[change.name] = amount % _U32
        elif change.operator == "+":
            values[change.name] = ((current or 0) + amount) % _U32
        elif change.operator == "-" and current is not None:
            values[change.name] = (current - amount) % _U32

    def flow_bits(self, slot: int, gen: int) -> set[str]:
        entry = self.flows.get(slot)
        if entry is None or entry[0] != gen:
            bits: set[str] = set()
            self.flows[slot] = (gen, bits)
            return bits
        return entry[1]

    def host_bits(self, track: str, key: Hashable, now: float) -> set[str]:
        entry = self.hosts.get((track, key))
        if not entry:
            return set()
        return {name for name, expiry in entry.items() if expiry >= now}

    def set_host_bit(
        self, track: str, key: Hashable, name: str, now: float, expire: int | None
    ) -> None:
        self.hosts.setdefault((track, key), {})[name] = now + (expire or 3600)

    def unset_host_bit(self, track: str, key: Hashable, name: str) -> None:
        self.hosts.get((track, key), {}).pop(name, None)


@dataclass(slots=True)
class ThresholdState:
    """Snort/Suricata `threshold` and `detection_filter` counters by tracking key."""

    counters: dict[tuple[int, int, Hashable], list[float]] = field(default_factory=dict)
    #: distinct values seen by a `unique` detection_filter, per counter slot and window
    distinct: dict[tuple[int, int, Hashable], tuple[float, set[Hashable]]] = field(
        default_factory=dict
    )

    def allow(
        self,
        rule_key: int,
        th_index: int,
        th: ast.Threshold,
        key: Hashable,
        ts: float,
        value: Hashable = None,
    ) -> bool:
        """Record one match (with `value`, the field a `unique` filter counts); whether
        it may alert."""
        slot = (rule_key, th_index, key)
        if th.kind == "backoff":
            return self._backoff(slot, th)
        if th.unique is not None:
            return self._distinct(slot, th, ts, value)
        entry = self.counters.get(slot)
        if entry is None or ts - entry[0] >= th.seconds:
            entry = [ts, 0.0]
            self.counters[slot] = entry
        entry[1] += 1
        count = int(entry[1])
        if th.kind == "limit":
            return count <= th.count
        if th.kind == "threshold":
            if count >= th.count:
                entry[0] = ts
                entry[1] = 0
                return True
            return False
        if th.kind == "both":
            return count == th.count
        # detection_filter: alert on every match after `count` in the window
        return count > th.count

    def _backoff(self, slot: tuple[int, int, Hashable], th: ast.Threshold) -> bool:
        """Suricata's backoff: alert on match `count`, then each time the number of
        matches reaches the next `count * multiplier**k`."""
        entry = self.counters.get(slot)
        if entry is None:
            entry = [0.0, float(th.count)]  # (matches so far, the match that alerts next)
            self.counters[slot] = entry
        entry[0] += 1
        if entry[0] < entry[1]:
            return False
        entry[1] *= th.multiplier or 1
        return True

    def _distinct(
        self, slot: tuple[int, int, Hashable], th: ast.Threshold, ts: float, value: Hashable
    ) -> bool:
        """A `detection_filter` with `unique`: alert once more than `count` distinct
        values of the field were seen in the window that began at the first of them."""
        started = self.distinct.get(slot)
        if started is None or ts - started[0] >= th.seconds:
            started = (ts, set())
            self.distinct[slot] = started
        if value is not None:
            started[1].add(value)
        return len(started[1]) > th.count


@dataclass(slots=True)
class WindowState:
    """Rule `window` clauses on the shared windowing core (`engine.windowing`): one
    `SlidingWindow` per rule and clause, keyed by the clause's group key.

    The core slides pane by pane (`WindowSpec.panes` per window), so a window covers
    its last `duration` seconds to within one pane width, as detectors' windows do.
    A clause fires once for a group key when its aggregate passes, then stays quiet
    for that key for one window length (a scan is one alert, not one per probe).
    """

    windows: dict[tuple[int, ast.Window], SlidingWindow] = field(default_factory=dict)
    fired: dict[tuple[int, ast.Window, Hashable], float] = field(default_factory=dict)

    def observe(
        self, rule_key: int, window: ast.Window, key: Hashable, value: object, ts: float
    ) -> bool:
        """Add one matching event; whether the aggregate now passes the comparison."""
        sw = self.windows.get((rule_key, window))
        if sw is None:
            sw = SlidingWindow(WindowSpec(duration=window.duration.seconds))
            self.windows[(rule_key, window)] = sw
        fn = window.aggregate.function
        if fn == "count":
            sw.add(key, ts)
        elif fn == "distinct":
            sw.add(key, ts, item=_item(value))
        else:
            if isinstance(value, int | float) and not isinstance(value, bool):
                sw.add(key, ts, value=float(value))
            if sw.aggregate(key, "count") == 0:
                return False  # no numeric value to aggregate yet
        if not COMPARISONS[window.operator](sw.aggregate(key, fn), window.threshold):
            return False
        last = self.fired.get((rule_key, window, key))
        if last is not None and ts - last < window.duration.seconds:
            return False
        self.fired[(rule_key, window, key)] = ts
        return True


def _item(value: object) -> int | str | bytes | tuple[object, ...]:
    """The item a `distinct` aggregate counts (anything other than an int, str, bytes or
    tuple by its text)."""
    if isinstance(value, int | str | bytes | tuple):
        return value
    if isinstance(value, set | frozenset | list):
        return tuple(sorted(map(repr, value)))
    return repr(value)
