"""ARP scans (T1018) and ARP cache poisoning (T1557.002), from the decoder's ARP rows."""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

import numpy as np

from engine.detectors.base import (
    AddressSet,
    Cooldown,
    Detector,
    PacketView,
    Tagging,
    address_hash,
    group,
    ip_text,
    mac_text,
    members,
    saturating,
)
from engine.detectors.config import ArpScanConfig, ArpSpoofConfig
from engine.events import Detection
from engine.windowing import EventClock, SlidingWindow, WindowSpec

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def _split_allow(entries: tuple[str, ...], what: str) -> tuple[AddressSet, frozenset[str]]:
    macs = frozenset(e.lower() for e in entries if _MAC.match(e))
    return AddressSet([e for e in entries if not _MAC.match(e)], what), macs


class ArpScanDetector(Detector):
    """One sender asking for many distinct addresses."""

    name = "arp_scan"
    windowed = ("targets", "cooldown")

    def __init__(self, cfg: ArpScanConfig, clock: EventClock) -> None:
        self.cfg = cfg
        self.targets = SlidingWindow(WindowSpec(cfg.window, max_keys=cfg.max_keys), clock)
        self.cooldown = Cooldown(cfg.window, cfg.max_keys)
        self.allow, self.allow_macs = _split_allow(cfg.allow, "arp_scan.allow")
        self.tag = Tagging(self.name, cfg.severity, ("T1018",), ("discovery",))

    def observe_packets(self, view: PacketView) -> list[Detection]:
        out: list[Detection] = []
        arp = view.arp
        if not len(arp):
            return out
        req = arp[(arp["arp_op"] == 1) & (arp["src"][:, 1] != arp["dst"][:, 1])]
        if not len(req):
            return out
        ts = req["ts"] / 1e9
        dst_h = address_hash(req["dst"][:, 0], req["dst"][:, 1])
        first, inv = group(req["src_mac"], req["src"][:, 1])
        for g, idx in enumerate(members(inv, len(first))):
            f = req[first[g]]
            key = (int(f["src_mac"]), int(f["src"][1]))
            t = float(ts[idx].max())
            self.targets.add_summary(key, t, len(idx), 0.0, 0, 0, dst_h[idx])
            n = self.targets.aggregate(key, "distinct")
            if n < self.cfg.min_targets or not self.cooldown.ready(key, t):
                continue
            sender, mac = ip_text(int(f["src"][0]), int(f["src"][1])), mac_text(key[0])
            if sender in self.allow or mac in self.allow_macs:
                continue
            self.cooldown.fire(key, t)
            out.append(
                self.tag.detection(
                    t,
                    sender,
                    f"ARP scan from {sender} ({mac}): {int(n)} addresses asked for",
                    score=saturating(n, self.cfg.min_targets),
                    window_start=t - self.cfg.window,
                    evidence={"mac": mac, "targets": int(n), "window_s": self.cfg.window},
                )
            )
        return out


class ArpSpoofDetector(Detector):
    """One MAC claiming several addresses in replies, or an address whose MAC changes."""

    name = "arp_spoof"
    windowed = ("claims", "cooldown")

    def __init__(self, cfg: ArpSpoofConfig, clock: EventClock) -> None:
        self.cfg = cfg
        self.claims = SlidingWindow(WindowSpec(cfg.window, max_keys=cfg.max_keys), clock)
        self.cooldown = Cooldown(cfg.window, cfg.max_keys)
        self.allow, self.allow_macs = _split_allow(cfg.allow, "arp_spoof.allow")
        self.bindings: OrderedDict[int, int] = OrderedDict()  # IPv4 (mapped lo) -> MAC
        self.tag = Tagging(
            self.name, cfg.severity, ("T1557.002",), ("credential-access", "collection")
        )

    def observe_packets(self, view: PacketView) -> list[Detection]:
        out: list[Detection] = []
        arp = view.arp
        if not len(arp):
            return out
        ts = arp["ts"] / 1e9
        # binding changes, in packet order (few ARP rows per batch)
        for k in range(len(arp)):
            ip_lo, mac = int(arp["src"][k, 1]), int(arp["src_mac"][k])
            if ip_lo & 0xFFFFFFFF == 0 or mac == 0:
                continue  # probes carry sender address 0.0.0.0
            old = self.bindings.get(ip_lo)
            self.bindings[ip_lo] = mac
            self.bindings.move_to_end(ip_lo)
            while len(self.bindings) > self.cfg.max_keys:
                self.bindings.popitem(last=False)
            if old is not None and old != mac:
                addr = ip_text(0, ip_lo)
                self._emit(
                    ("change", addr),
                    addr,
                    mac,
                    float(ts[k]),
                    out,
                    f"ARP binding of {addr} changed from {mac_text(old)} to {mac_text(mac)}",
                    0.8,
                    {"previous_mac": mac_text(old), "mac": mac_text(mac)},
                )
        replies = np.flatnonzero(arp["arp_op"] == 2)
        if not len(replies):
            return out
        rep = arp[replies]
        ip_h = address_hash(rep["src"][:, 0], rep["src"][:, 1])
        first, inv = group(rep["src_mac"])
        for g, idx in enumerate(members(inv, len(first))):
            mac = int(rep["src_mac"][first[g]])
            t = float(ts[replies[idx]].max())
            self.claims.add_summary(mac, t, len(idx), 0.0, 0, 0, ip_h[idx])
            claimed = self.claims.aggregate(mac, "distinct")
            replies_n = self.claims.aggregate(mac, "count")
            if claimed >= self.cfg.min_claimed and replies_n >= self.cfg.min_replies:
                addrs = sorted({ip_text(0, int(x)) for x in rep["src"][idx, 1]})
                self._emit(
                    ("claims", mac),
                    addrs[0],
                    mac,
                    t,
                    out,
                    f"ARP poisoning: {mac_text(mac)} claims {int(claimed)} addresses "
                    f"({', '.join(addrs[:4])}) in {int(replies_n)} replies",
                    saturating(claimed, self.cfg.min_claimed),
                    {"mac": mac_text(mac), "addresses": addrs[:16], "replies": int(replies_n)},
                )
        return out

    def _emit(
        self,
        ckey: tuple[Any, ...],
        key: str,
        mac: int,
        ts: float,
        out: list[Detection],
        title: str,
        score: float,
        evidence: dict[str, Any],
    ) -> None:
        if (
            mac_text(mac) in self.allow_macs
            or key in self.allow
            or not self.cooldown.ready(ckey, ts)
        ):
            return
        self.cooldown.fire(ckey, ts)
        evidence["window_s"] = self.cfg.window
        out.append(
            self.tag.detection(
                ts, key, title, score=score, window_start=ts - self.cfg.window, evidence=evidence
            )
        )

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "bindings": [[k, v] for k, v in self.bindings.items()]}

    def restore(self, snap: dict[str, Any]) -> None:
        super().restore(snap)
        self.bindings = OrderedDict((int(k), int(v)) for k, v in snap["bindings"])
