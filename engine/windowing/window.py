"""Keyed event-time sliding windows with count/sum/distinct/min/max/avg and bounded memory.

A window of `duration` seconds is cut into `panes` equal panes; each key keeps
one small summary per pane (count, sum, min, max and a distinct-items set that
turns into a HyperLogLog past `exact_distinct` items). An aggregate merges the
panes still inside the window, so the window slides pane by pane: it covers
the last `duration` seconds to within one pane width (`duration / panes`).

Time is event time: the newest timestamp seen, from the injected clock (an
`EventClock` fed by packet timestamps by default), so a capture replays the
same way every time. Events older than the window are dropped and counted.
Memory is bounded: at most `max_keys` keys (the least recently updated key is
evicted and counted), at most `panes` panes per key, and each pane's distinct
set is at most `exact_distinct` hashes or one HyperLogLog of 2**hll_precision bytes.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.windowing.sketches import HyperLogLog, hash64

#: The aggregate functions a window computes (the rule language's `window` clause uses these names).
AGGREGATES: tuple[str, ...] = ("count", "sum", "distinct", "min", "max", "avg")


class EventClock:
    """Event time: the newest timestamp observed so far (seconds)."""

    __slots__ = ("_now",)

    def __init__(self, start: float = -math.inf) -> None:
        self._now = start

    def observe(self, ts: float) -> None:
        if ts > self._now:
            self._now = ts

    def now(self) -> float:
        return self._now

    def __call__(self) -> float:
        return self._now


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """How long a window is and how much memory it may use."""

    duration: float
    panes: int = 10
    max_keys: int = 65_536
    exact_distinct: int = 128
    hll_precision: int = 10

    def __post_init__(self) -> None:
        if not self.duration > 0:
            raise ValueError(f"window duration must be positive, got {self.duration}")
        if not 1 <= self.panes <= 1000:
            raise ValueError(f"window panes must be 1..1000, got {self.panes}")
        if self.max_keys < 1:
            raise ValueError("window max_keys must be at least 1")
        if self.exact_distinct < 0:
            raise ValueError("window exact_distinct must not be negative")
        if not 4 <= self.hll_precision <= 16:
            raise ValueError("window hll_precision must be 4..16")

    @property
    def pane_width(self) -> float:
        return self.duration / self.panes


@dataclass(slots=True)
class WindowStats:
    keys: int = 0
    evicted_keys: int = 0
    late_events: int = 0


class _Pane:
    __slots__ = ("count", "hll", "index", "items", "vmax", "vmin", "vsum")

    def __init__(self, index: int) -> None:
        self.index = index
        self.count = 0
        self.vsum = 0.0
        self.vmin = math.inf
        self.vmax = -math.inf
        self.items: set[int] | None = None
        self.hll: HyperLogLog | None = None

    def add_hashes(self, hashes: Sequence[int] | np.ndarray, spec: WindowSpec) -> None:
        if self.hll is not None:
            self.hll.add_hashes(np.asarray(hashes, dtype=np.uint64))
            return
        if self.items is None:
            self.items = set()
        self.items.update(hashes.tolist() if isinstance(hashes, np.ndarray) else hashes)
        if len(self.items) > spec.exact_distinct:
            self.hll = HyperLogLog(spec.hll_precision)
            self.hll.add_hashes(np.fromiter(self.items, dtype=np.uint64, count=len(self.items)))
            self.items = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "count": self.count,
            "sum": self.vsum,
            "min": self.vmin,
            "max": self.vmax,
            "items": sorted(self.items) if self.items is not None else None,
            "hll": self.hll.snapshot() if self.hll is not None else None,
        }

    @classmethod
    def restore(cls, snap: dict[str, Any]) -> _Pane:
        pane = cls(int(snap["index"]))
        pane.count = int(snap["count"])
        pane.vsum = float(snap["sum"])
        pane.vmin = float(snap["min"])
        pane.vmax = float(snap["max"])
        pane.items = set(snap["items"]) if snap["items"] is not None else None
        pane.hll = HyperLogLog.restore(snap["hll"]) if snap["hll"] is not None else None
        return pane


class SlidingWindow:
    """Per-key sliding aggregates over event time, bounded in keys and panes."""

    def __init__(self, spec: WindowSpec, clock: Callable[[], float] | None = None) -> None:
        self.spec = spec
        self._clock: Callable[[], float] = clock if clock is not None else EventClock()
        self._own_clock = clock is None
        self._keys: OrderedDict[Hashable, deque[_Pane]] = OrderedDict()
        self._stats = WindowStats()
        self._width = spec.pane_width

    # -- time -------------------------------------------------------------

    def _pane_index(self, ts: float) -> int:
        return math.floor(ts / self._width)

    def _oldest_live(self, now: float) -> int:
        """The oldest pane index still inside the window at time `now` (no time yet: any)."""
        if not math.isfinite(now):
            return -(2**62)
        return self._pane_index(now) - self.spec.panes + 1

    def now(self) -> float:
        return self._clock()

    # -- updates ----------------------------------------------------------

    def add(self, key: Hashable, ts: float, value: float = 1.0, item: Any | None = None) -> bool:
        """Add one event; False if it was older than the window (dropped, counted)."""
        hashes = [hash64(item)] if item is not None else None
        return self.add_summary(key, ts, 1, value, value, value, hashes)

    def add_summary(
        self,
        key: Hashable,
        ts: float,
        count: int,
        total: float,
        vmin: float,
        vmax: float,
        item_hashes: list[int] | np.ndarray | None = None,
    ) -> bool:
        """Add `count` events of one key at once (all in the pane of `ts`): the batch fast path."""
        if self._own_clock:
            assert isinstance(self._clock, EventClock)
            self._clock.observe(ts)
        now = max(self._clock(), ts)
        idx = math.floor(ts / self._width)
        oldest = math.floor(now / self._width) - self.spec.panes + 1
        if idx < oldest:
            self._stats.late_events += count
            return False
        panes = self._keys.get(key)
        if panes is None:
            panes = deque()
            self._keys[key] = panes
            if len(self._keys) > self.spec.max_keys:
                self._keys.popitem(last=False)
                self._stats.evicted_keys += 1
        else:
            self._keys.move_to_end(key)
        while panes and panes[0].index < oldest:
            panes.popleft()
        pane = self._pane_for(panes, idx)
        pane.count += count
        pane.vsum += total
        pane.vmin = min(pane.vmin, vmin)
        pane.vmax = max(pane.vmax, vmax)
        if item_hashes is not None and len(item_hashes):
            pane.add_hashes(item_hashes, self.spec)
        return True

    def add_batch(
        self,
        keys: Sequence[Hashable],
        times: Sequence[float],
        counts: Sequence[int],
        function: str,
        *,
        totals: Sequence[float] | None = None,
        items: Sequence[int] | None = None,
    ) -> list[float]:
        """Add one summary per key (the batch fast path) and return `function` for each key after.

        It keeps counts, sums and distinct items (not min/max: use `add_summary` for those).

        `items`, when given, holds every key's item hashes back to back, `counts[k]`
        of them for key k, in key order (what `Groups.lists` produces).
        """
        if function not in ("count", "sum", "avg", "distinct"):
            raise ValueError(f"add_batch answers count, sum, avg or distinct, not {function!r}")
        if self._own_clock and times:
            assert isinstance(self._clock, EventClock)
            self._clock.observe(max(times))
        width, n_panes, spec = self._width, self.spec.panes, self.spec
        table, stats, floor = self._keys, self._stats, math.floor
        clock_now = self._clock()
        out: list[float] = []
        pos = 0
        for k, key in enumerate(keys):
            ts, cnt = times[k], counts[k]
            total = totals[k] if totals is not None else 0.0
            now = ts if ts > clock_now else clock_now
            idx = floor(ts / width)
            oldest = floor(now / width) - n_panes + 1
            hashes = items[pos : pos + cnt] if items is not None else None
            pos += cnt
            if idx < oldest:
                stats.late_events += cnt
                out.append(self.aggregate(key, function))
                continue
            panes = table.get(key)
            if panes is None:
                pane = _Pane(idx)
                panes = deque((pane,))
                table[key] = panes
                if len(table) > spec.max_keys:
                    table.popitem(last=False)
                    stats.evicted_keys += 1
            else:
                table.move_to_end(key)
                while panes and panes[0].index < oldest:
                    panes.popleft()
                pane = self._pane_for(panes, idx)
            pane.count += cnt
            pane.vsum += total
            if hashes:
                pane.add_hashes(hashes, spec)
            if len(panes) == 1:  # the common case: answer from the one pane
                if function == "count":
                    out.append(float(pane.count))
                    continue
                if function == "distinct" and pane.hll is None:
                    out.append(float(len(pane.items or ())))
                    continue
                if function == "sum":
                    out.append(pane.vsum)
                    continue
            out.append(self.aggregate(key, function))
        return out

    @staticmethod
    def _pane_for(panes: deque[_Pane], idx: int) -> _Pane:
        if not panes or panes[-1].index < idx:
            pane = _Pane(idx)
            panes.append(pane)
            return pane
        for k in range(len(panes) - 1, -1, -1):  # an out-of-order event: find or insert its pane
            p = panes[k]
            if p.index == idx:
                return p
            if p.index < idx:
                pane = _Pane(idx)
                panes.insert(k + 1, pane)
                return pane
        pane = _Pane(idx)
        panes.appendleft(pane)
        return pane

    # -- queries ----------------------------------------------------------

    def _live(self, key: Hashable) -> deque[_Pane] | list[_Pane]:
        panes = self._keys.get(key)
        if not panes:
            return []
        oldest = self._oldest_live(self._clock())
        if panes[0].index >= oldest:  # panes are in time order: all live
            return panes
        return [p for p in panes if p.index >= oldest]

    def aggregate(self, key: Hashable, function: str) -> float:
        """The aggregate over the key's events inside the window (0 for no events)."""
        panes = self._live(key)
        if function == "count":
            return float(sum(p.count for p in panes))
        if function == "sum":
            return float(sum(p.vsum for p in panes))
        if function == "avg":
            n = sum(p.count for p in panes)
            return sum(p.vsum for p in panes) / n if n else 0.0
        if function == "min":
            return min((p.vmin for p in panes), default=0.0) if panes else 0.0
        if function == "max":
            return max((p.vmax for p in panes), default=0.0) if panes else 0.0
        if function == "distinct":
            return self._distinct(panes)
        raise ValueError(f"unknown window aggregate {function!r}; expected one of {AGGREGATES}")

    def _distinct(self, panes: deque[_Pane] | list[_Pane]) -> float:
        if len(panes) == 1 and panes[0].hll is None:
            return float(len(panes[0].items or ()))
        if all(p.hll is None for p in panes):
            seen: set[int] = set()
            for p in panes:
                if p.items:
                    seen |= p.items
            return float(len(seen))
        merged = HyperLogLog(self.spec.hll_precision)
        for p in panes:
            if p.hll is not None:
                merged.merge(p.hll)
            elif p.items:
                merged.add_hashes(np.fromiter(p.items, dtype=np.uint64, count=len(p.items)))
        return merged.estimate()

    def keys(self) -> Iterator[Hashable]:
        return iter(list(self._keys))

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    # -- housekeeping -----------------------------------------------------

    def expire(self) -> int:
        """Forget keys with no event inside the window; returns how many went.

        Keys are in least-recently-updated order, so this stops at the first live key.
        """
        oldest = self._oldest_live(self._clock())
        gone = 0
        while self._keys:
            panes = next(iter(self._keys.values()))
            if panes and panes[-1].index >= oldest:
                break
            self._keys.popitem(last=False)
            gone += 1
        return gone

    def stats(self) -> WindowStats:
        return WindowStats(len(self._keys), self._stats.evicted_keys, self._stats.late_events)

    def snapshot(self) -> dict[str, Any]:
        """Plain-data state (keys must be JSON-friendly: str, int or tuples of those)."""
        return {
            "now": self._clock() if self._own_clock else None,
            "evicted_keys": self._stats.evicted_keys,
            "late_events": self._stats.late_events,
            "keys": [
                [_key_out(k), [p.snapshot() for p in panes]] for k, panes in self._keys.items()
            ],
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Replace this window's state with a snapshot taken from a window of the same spec."""
        self._keys.clear()
        for key, panes in snap["keys"]:
            self._keys[_key_in(key)] = deque(_Pane.restore(p) for p in panes)
        self._stats = WindowStats(0, int(snap["evicted_keys"]), int(snap["late_events"]))
        if self._own_clock and snap.get("now") is not None:
            assert isinstance(self._clock, EventClock)
            self._clock.observe(float(snap["now"]))


def _key_out(key: Hashable) -> Any:
    return list(map(_key_out, key)) if isinstance(key, tuple) else key


def _key_in(key: Any) -> Hashable:
    return tuple(map(_key_in, key)) if isinstance(key, list) else key
