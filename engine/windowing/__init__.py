"""Event-time windowing for detectors and rule `window` clauses: sliding windows and sketches."""

from __future__ import annotations

from engine.windowing.sketched import SketchedWindow
from engine.windowing.sketches import CountMinSketch, HyperLogLog, hash64, hash64_array
from engine.windowing.window import AGGREGATES, EventClock, SlidingWindow, WindowSpec, WindowStats

__all__ = [
    "AGGREGATES",
    "CountMinSketch",
    "EventClock",
    "HyperLogLog",
    "SketchedWindow",
    "SlidingWindow",
    "WindowSpec",
    "WindowStats",
    "hash64",
    "hash64_array",
]
