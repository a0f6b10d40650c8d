"""A sliding window of count-min sketches: per-key counts in fixed memory however many keys there are.

Used where keys can explode (every spoofed source of a flood): the window keeps
`panes` count-min sketches of `width` x `depth` counters, so memory is
`panes * width * depth * 8` bytes whatever the key count. A key's estimate is
the sum of its per-pane estimates; it never undercounts and overcounts by at
most e/width of the events in the window with probability 1 - exp(-depth) per pane.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.windowing.sketches import CountMinSketch
from engine.windowing.window import EventClock


class SketchedWindow:
    """Approximate per-key event counts over the last `duration` seconds of event time."""

    def __init__(
        self,
        duration: float,
        *,
        panes: int = 10,
        width: int = 2048,
        depth: int = 4,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not duration > 0:
            raise ValueError(f"window duration must be positive, got {duration}")
        if panes < 1:
            raise ValueError("window panes must be at least 1")
        self.duration, self.panes, self.width, self.depth = duration, panes, width, depth
        self._clock: Callable[[], float] = clock if clock is not None else EventClock()
        self._own_clock = clock is None
        self._panes: deque[tuple[int, CountMinSketch]] = deque()
        self.late_events = 0

    def _index(self, ts: float) -> int:
        return math.floor(ts * self.panes / self.duration)

    def add_hashes(self, ts: float, hashes: np.ndarray, counts: np.ndarray | float = 1.0) -> None:
        """Add events (all in the pane of `ts`) for the hashed keys."""
        if self._own_clock:
            assert isinstance(self._clock, EventClock)
            self._clock.observe(ts)
        now = max(self._clock(), ts)
        idx, oldest = self._index(ts), self._index(now) - self.panes + 1
        if idx < oldest:
            self.late_events += int(np.size(hashes))
            return
        while self._panes and self._panes[0][0] < oldest:
            self._panes.popleft()
        sketch = next((s for i, s in self._panes if i == idx), None)
        if sketch is None:
            sketch = CountMinSketch(self.width, self.depth)
            self._panes.append((idx, sketch))
            self._panes = deque(sorted(self._panes, key=lambda p: p[0]))
        sketch.add_hashes(hashes, counts)

    def estimate_hashes(self, hashes: np.ndarray) -> np.ndarray:
        now = self._clock()
        oldest = self._index(now) - self.panes + 1 if math.isfinite(now) else -(2**62)
        out = np.zeros(np.size(hashes))
        live = [sketch for i, sketch in self._panes if i >= oldest]
        if live:
            cols = live[0].columns(hashes)  # the panes share their width and depth
            for sketch in live:
                out += sketch.estimate_columns(cols)
        return out

    def snapshot(self) -> dict[str, Any]:
        return {
            "now": self._clock() if self._own_clock else None,
            "late_events": self.late_events,
            "panes": [[i, s.snapshot()] for i, s in self._panes],
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self._panes = deque((int(i), CountMinSketch.restore(s)) for i, s in snap["panes"])
        self.late_events = int(snap["late_events"])
        if self._own_clock and snap.get("now") is not None:
            assert isinstance(self._clock, EventClock)
            self._clock.observe(float(snap["now"]))
