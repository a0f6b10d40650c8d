"""Beaconing: connections from one host to one service at regular intervals (T1071)."""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

import numpy as np

from engine.detectors.base import AddressSet, Cooldown, Detector, FlowView, Groups, Tagging, ip_text
from engine.detectors.config import BeaconConfig
from engine.events import Detection
from engine.windowing import EventClock

RING = 32  # connection start times kept per key


class BeaconDetector(Detector):
    """Per (source, destination, protocol, port): the spread of intervals between connection starts.

    Memory is bounded: `max_keys` keys (least recently seen evicted), each a ring
    of the last 32 start times inside the window.
    """

    name = "beaconing"
    windowed = ("cooldown",)

    def __init__(self, cfg: BeaconConfig, clock: EventClock) -> None:
        self.cfg = cfg
        self.starts: OrderedDict[tuple[int, ...], deque[float]] = OrderedDict()
        self.ignore = np.array(sorted(cfg.ignore_ports), dtype=np.int64)
        self.cooldown = Cooldown(cfg.window, cfg.max_keys)
        self.allow = AddressSet(cfg.allow, "beaconing.allow")
        self.evicted = 0
        self.tag = Tagging(self.name, cfg.severity, ("T1071",), ("command-and-control",))

    def observe_flows(self, view: FlowView) -> list[Detection]:
        out: list[Detection] = []
        if not view.n:
            return out
        c = view.c
        keep = np.flatnonzero(
            np.isin(c["proto"], (6, 17)) & ~np.isin(c["dport"], self.ignore) & (c["orig_pkts"] > 0)
        )
        names = ("src_hi", "src_lo", "dst_hi", "dst_lo", "proto", "dport")
        cols = [c[k][keep] for k in names]
        g = Groups(*cols)
        keys = list(zip(*(g.firsts(col) for col in cols), strict=True))
        starts = g.lists(c["ts"][keep])
        need = self.cfg.min_connections
        for k in range(g.n):
            key: tuple[int, ...] = keys[k]
            ring = self.starts.get(key)
            if ring is None:
                ring = self.starts[key] = deque(maxlen=RING)
                if len(self.starts) > self.cfg.max_keys:
                    self.starts.popitem(last=False)
                    self.evicted += 1
            else:
                self.starts.move_to_end(key)
            s = g.starts[k]
            ring.extend(starts[s : s + g.counts[k]])
            if len(ring) >= need:
                self._check(key, out)
        return out

    def _check(self, key: tuple[int, ...], out: list[Detection]) -> None:
        times = np.sort(np.fromiter(self.starts[key], dtype=np.float64))
        times = times[times >= times[-1] - self.cfg.window]
        if len(times) < self.cfg.min_connections:
            return
        gaps = np.diff(times)
        mean = float(gaps.mean())
        if mean < self.cfg.min_interval:
            return
        cv = float(gaps.std() / mean)
        if cv > self.cfg.max_cv:
            return
        t = float(times[-1])
        src, dst = ip_text(key[0], key[1]), ip_text(key[2], key[3])
        if not self.cooldown.ready(key, t) or src in self.allow:
            return
        self.cooldown.fire(key, t)
        proto = "tcp" if key[4] == 6 else "udp"
        out.append(
            self.tag.detection(
                t,
                src,
                f"Beaconing from {src} to {dst} {proto}/{key[5]}: {len(times)} connections "
                f"every {mean:.1f} s (variation {cv:.1%})",
                score=float(min(1.0, 0.6 + 0.4 * (1 - cv / max(self.cfg.max_cv, 1e-9)))),
                window_start=float(times[0]),
                evidence={
                    "target": f"{dst}:{key[5]}",
                    "connections": len(times),
                    "interval_s": round(mean, 3),
                    "cv": round(cv, 4),
                },
            )
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            **super().snapshot(),
            "starts": [[list(k), list(v)] for k, v in self.starts.items()],
            "evicted": self.evicted,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self.starts = OrderedDict((tuple(k), deque(v, maxlen=RING)) for k, v in snap["starts"])
        super().restore(snap)
        self.evicted = int(snap["evicted"])
