"""Behavioural detectors over event-time sliding windows, built from one config and run as a set.

`DetectorSet.from_config(cfg)` builds every enabled detector; `observe(x)` takes
a `DecodedBatch` (packet-level detectors: floods, ARP, DNS, ICMP unreachables,
SSH banners) or `FlowRecords` (flow-level detectors: scans, sweeps, brute
force, reflection, fan-in, beaconing, exfiltration) and returns the
`Detection`s they raised. Time is the packets' own (an `EventClock` fed by
packet timestamps, or one injected), so a capture replays identically, and
`snapshot()`/`restore()` carry all state across restarts.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from engine.decode import DecodedBatch
from engine.detectors.arp import ArpScanDetector, ArpSpoofDetector
from engine.detectors.base import NS, Detector, FlowView, PacketView
from engine.detectors.beacon import BeaconDetector
from engine.detectors.brute import BruteForceDetector
from engine.detectors.config import (
    DetectorConfigError,
    DetectorsConfig,
    load_detectors_config,
)
from engine.detectors.dns import DnsTunnelDetector
from engine.detectors.exfil import ExfiltrationDetector
from engine.detectors.flood import FanInDetector, FloodDetector, ReflectionDetector
from engine.detectors.scan import HostSweepDetector, PortScanDetector
from engine.events import Detection
from engine.flows import FlowRecords
from engine.windowing import EventClock


def time_slices(decoded: DecodedBatch, seconds: float) -> list[DecodedBatch]:
    """The batch's rows cut where packet time crosses a multiple of `seconds` (in row order)."""
    rows = decoded.rows
    if not len(rows):
        return []
    idx = rows["ts"] // int(seconds * NS)
    cuts = np.flatnonzero(idx[1:] != idx[:-1]) + 1
    if not len(cuts):
        return [decoded]
    bounds = [0, *cuts.tolist(), len(rows)]
    zero = np.zeros_like(decoded.malformed)
    return [
        DecodedBatch(
            decoded.batch,
            rows[a:b],
            decoded.malformed if a == 0 else zero,
            decoded.other if a == 0 else 0,
            decoded.fragments if a == 0 else 0,
        )
        for a, b in itertools.pairwise(bounds)
    ]


__all__ = [
    "DetectorConfigError",
    "DetectorSet",
    "DetectorsConfig",
    "build_detectors",
    "load_detectors_config",
    "time_slices",
]


def build_detectors(cfg: DetectorsConfig, clock: EventClock) -> list[Detector]:
    """Every enabled detector, sharing one clock."""
    made: list[tuple[bool, Any]] = [
        (cfg.port_scan.enabled, lambda: PortScanDetector(cfg.port_scan, clock)),
        (cfg.host_sweep.enabled, lambda: HostSweepDetector(cfg.host_sweep, clock)),
        (cfg.syn_flood.enabled, lambda: FloodDetector("syn", cfg.syn_flood, clock)),
        (cfg.udp_flood.enabled, lambda: FloodDetector("udp", cfg.udp_flood, clock)),
        (cfg.icmp_flood.enabled, lambda: FloodDetector("icmp", cfg.icmp_flood, clock)),
        (cfg.reflection.enabled, lambda: ReflectionDetector(cfg.reflection, clock)),
        (cfg.fan_in_ddos.enabled, lambda: FanInDetector(cfg.fan_in_ddos, clock)),
        (cfg.brute_force.enabled, lambda: BruteForceDetector(cfg.brute_force, clock)),
        (cfg.dns_tunnel.enabled, lambda: DnsTunnelDetector(cfg.dns_tunnel, clock)),
        (cfg.beaconing.enabled, lambda: BeaconDetector(cfg.beaconing, clock)),
        (cfg.exfiltration.enabled, lambda: ExfiltrationDetector(cfg.exfiltration, clock)),
        (cfg.arp_scan.enabled, lambda: ArpScanDetector(cfg.arp_scan, clock)),
        (cfg.arp_spoof.enabled, lambda: ArpSpoofDetector(cfg.arp_spoof, clock)),
    ]
    return [make() for enabled, make in made if enabled]


class DetectorSet:
    """The configured detectors run side by side over packets and ended flows."""

    def __init__(
        self, detectors: list[Detector], clock: EventClock, slice_seconds: float = 1.0
    ) -> None:
        if not slice_seconds > 0:
            raise ValueError("slice_seconds must be positive")
        self.detectors = detectors
        self.clock = clock
        self.slice_seconds = slice_seconds

    @classmethod
    def from_config(
        cls, cfg: DetectorsConfig | None = None, clock: EventClock | None = None
    ) -> DetectorSet:
        clk = clock if clock is not None else EventClock()
        return cls(build_detectors(cfg or DetectorsConfig(), clk), clk)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.detectors)

    def observe(self, item: DecodedBatch | FlowRecords) -> list[Detection]:
        if isinstance(item, DecodedBatch):
            return self.observe_packets(item)
        if isinstance(item, FlowRecords):
            return self.observe_flows(item)
        raise TypeError(f"detectors observe DecodedBatch or FlowRecords, not {type(item).__name__}")

    def observe_packets(self, decoded: DecodedBatch) -> list[Detection]:
        """Packet-level detectors, over the batch cut into slices of `slice_seconds` of packet time.

        A capture batch can span minutes; slicing lets the clock (and so every
        window) advance with the packets rather than jump once per batch.
        """
        out: list[Detection] = []
        for part in time_slices(decoded, self.slice_seconds):
            rows = part.rows
            self.clock.observe(float(rows["ts"].max()) / NS)
            view = PacketView(part)
            for d in self.detectors:
                out.extend(d.observe_packets(view))
        return out

    def observe_flows(self, records: FlowRecords) -> list[Detection]:
        if not len(records):
            return []
        c = records.columns
        self.clock.observe(float(np.max(c["ts"] + c["duration"])))
        view = FlowView(records, self.clock.now())
        out: list[Detection] = []
        for d in self.detectors:
            out.extend(d.observe_flows(view))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {
            "now": self.clock.now(),
            "detectors": {d.name: d.snapshot() for d in self.detectors},
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self.clock.observe(float(snap["now"]))
        for d in self.detectors:
            if d.name in snap["detectors"]:
                d.restore(snap["detectors"][d.name])
