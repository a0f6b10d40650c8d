"""Floods (SYN, UDP, ICMP) at one destination, reflection and fan-in DDoS: T1498, T1499."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.detectors.base import (
    AddressSet,
    Cooldown,
    Detector,
    FlowView,
    Groups,
    PacketView,
    Tagging,
    address_hash,
    ip_text,
    saturating,
)
from engine.detectors.config import FanInConfig, FloodConfig, ReflectionConfig
from engine.events import Detection
from engine.windowing import EventClock, SketchedWindow, SlidingWindow, WindowSpec

TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58

_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "syn": ("SYN", ("T1498.001", "T1499.001")),
    "udp": ("UDP", ("T1498.001",)),
    "icmp": ("ICMP echo", ("T1498.001",)),
}


def _flood_rows(ip: np.ndarray, kind: str) -> np.ndarray:
    if kind == "syn":
        return (ip["proto"] == TCP) & ((ip["tcp_flags"] & 0x12) == 0x02)
    if kind == "udp":
        return ip["proto"] == UDP
    return ((ip["proto"] == ICMP) & (ip["icmp_type"] == 8)) | (
        (ip["proto"] == ICMP6) & (ip["icmp_type"] == 128)
    )


class FloodDetector(Detector):
    """Packets of one kind at one destination: many in the window, or many from one source.

    Per destination the window is exact (with a distinct-source count); per
    source and destination pair, a key space spoofing can blow up, it is a
    windowed count-min sketch of fixed size.
    """

    windowed = ("victims", "pairs", "cooldown")

    def __init__(self, kind: str, cfg: FloodConfig, clock: EventClock) -> None:
        self.kind, self.cfg = kind, cfg
        self.name = f"{kind}_flood"
        self.what, techniques = _KINDS[kind]
        self.victims = SlidingWindow(WindowSpec(cfg.window, max_keys=cfg.max_keys), clock)
        self.pairs = SketchedWindow(
            cfg.window, width=cfg.sketch_width, depth=cfg.sketch_depth, clock=clock
        )
        self.cooldown = Cooldown(cfg.window, cfg.max_keys)
        self.allow = AddressSet(cfg.allow, f"{self.name}.allow")
        self.tag = Tagging(self.name, cfg.severity, techniques, ("impact",))

    def observe_packets(self, view: PacketView) -> list[Detection]:
        out: list[Detection] = []
        ip = view.ip
        if not len(ip):
            return out
        sel = np.flatnonzero(_flood_rows(ip, self.kind))
        if not len(sel):
            return out
        r = ip[sel]
        ts = view.ts[sel]
        src_h = address_hash(r["src"][:, 0], r["src"][:, 1])
        dst_h = address_hash(r["dst"][:, 0], r["dst"][:, 1])
        g = Groups(r["dst"][:, 0], r["dst"][:, 1])
        keys = list(zip(g.firsts(r["dst"][:, 0]), g.firsts(r["dst"][:, 1]), strict=True))
        times, nbytes = g.max_of(ts), g.sum_of(r["ip_len"].astype(np.float64))
        srcs = g.lists(src_h)
        found = self.victims.add_batch(keys, times, g.counts, "count", totals=nbytes, items=srcs)
        for k in np.flatnonzero(np.asarray(found) >= self.cfg.min_packets).tolist():
            key, t, n = keys[k], times[k], found[k]
            victim = ip_text(*key)
            sources = int(self.victims.aggregate(key, "distinct"))
            self._emit(
                ("dst", victim),
                victim,
                t,
                out,
                f"{self.what} flood against {victim}: {int(n)} packets in "
                f"{self.cfg.window:g} s from {sources} sources",
                saturating(n, self.cfg.min_packets),
                {
                    "packets": int(n),
                    "sources": sources,
                    "bytes": int(self.victims.aggregate(key, "sum")),
                    "window_s": self.cfg.window,
                },
            )
        # single-source floods: count-min over (source, destination)
        with np.errstate(over="ignore"):
            pair_h = src_h * np.uint64(0x9E3779B97F4A7C15) ^ dst_h
        uniq, pos = np.unique(pair_h, return_index=True)
        counts = np.bincount(np.searchsorted(uniq, pair_h), minlength=len(uniq))
        self.pairs.add_hashes(float(ts.max()), uniq, counts.astype(np.float64))
        est = self.pairs.estimate_hashes(uniq)
        for k in np.flatnonzero(est >= self.cfg.min_single_source).tolist():
            f = r[pos[k]]
            src = ip_text(int(f["src"][0]), int(f["src"][1]))
            dst = ip_text(int(f["dst"][0]), int(f["dst"][1]))
            self._emit(
                ("pair", src, dst),
                dst,
                float(ts.max()),
                out,
                f"{self.what} flood against {dst} from {src}: about {int(est[k])} packets "
                f"in {self.cfg.window:g} s",
                saturating(float(est[k]), self.cfg.min_single_source),
                {"source": src, "packets_estimate": int(est[k]), "window_s": self.cfg.window},
                allow_check=src,
            )
        return out

    def _emit(
        self,
        ckey: tuple[str, ...],
        victim: str,
        ts: float,
        out: list[Detection],
        title: str,
        score: float,
        evidence: dict[str, Any],
        allow_check: str | None = None,
    ) -> None:
        if not self.cooldown.ready(ckey, ts):
            return
        if allow_check is not None and allow_check in self.allow:
            return
        self.cooldown.fire(ckey, ts)
        out.append(
            self.tag.detection(
                ts,
                victim,
                title,
                score=score,
                window_start=ts - self.cfg.window,
                evidence=evidence,
                key_role="destination",
            )
        )


class ReflectionDetector(Detector):
    """Unsolicited responses (SYN-ACKs, RSTs, UDP from amplifier ports) at one victim from many hosts."""

    name = "reflection"
    windowed = ("victims", "cooldown")

    def __init__(self, cfg: ReflectionConfig, clock: EventClock) -> None:
        self.cfg = cfg
        self.victims = SlidingWindow(WindowSpec(cfg.window, max_keys=cfg.max_keys), clock)
        self.cooldown = Cooldown(cfg.window, cfg.max_keys)
        self.ports = np.array(sorted(cfg.udp_ports), dtype=np.int64)
        self.tag = Tagging(self.name, cfg.severity, ("T1498.002",), ("impact",))

    def observe_flows(self, view: FlowView) -> list[Detection]:
        out: list[Detection] = []
        if not view.n:
            return out
        c = view.c
        proto = c["proto"]
        # flipped flows: the victim is the originator that never sent anything
        unsolicited = (
            (c["orig_pkts"] == 0)
            & (c["resp_pkts"] > 0)
            & ((proto == TCP) | ((proto == UDP) & np.isin(c["dport"], self.ports)))
        )
        # unflipped: a reflector on an amplifier port as originator, never answered
        sent = (proto == UDP) & (c["resp_pkts"] == 0) & np.isin(c["sport"], self.ports)
        rows = np.flatnonzero(unsolicited | sent)
        if not len(rows):
            return out
        flip = unsolicited[rows]
        v_hi = np.where(flip, c["src_hi"][rows], c["dst_hi"][rows])
        v_lo = np.where(flip, c["src_lo"][rows], c["dst_lo"][rows])
        r_h = address_hash(
            np.where(flip, c["dst_hi"][rows], c["src_hi"][rows]),
            np.where(flip, c["dst_lo"][rows], c["src_lo"][rows]),
        )
        npkts = np.where(flip, c["resp_pkts"][rows], c["orig_pkts"][rows]).astype(np.float64)
        g = Groups(v_hi, v_lo)
        keys = list(zip(g.firsts(v_hi), g.firsts(v_lo), strict=True))
        times, pk, refl = g.max_of(view.end[rows]), g.sum_of(npkts), g.lists(r_h)
        for k in range(g.n):
            key, t, cnt, st = keys[k], times[k], g.counts[k], g.starts[k]
            self.victims.add_summary(key, t, cnt, pk[k], 0, 0, refl[st : st + cnt])
            n = self.victims.aggregate(key, "distinct")
            responses = self.victims.aggregate(key, "sum")
            victim = ip_text(*key)
            if n < self.cfg.min_reflectors and responses < self.cfg.min_responses:
                continue
            if not self.cooldown.ready(victim, t):
                continue
            self.cooldown.fire(victim, t)
            out.append(
                self.tag.detection(
                    t,
                    victim,
                    key_role="destination",
                    title=f"Reflection attack on {victim}: {int(responses)} unsolicited responses "
                    f"from {int(n)} hosts",
                    score=max(
                        saturating(n, self.cfg.min_reflectors),
                        saturating(responses, self.cfg.min_responses),
                    ),
                    window_start=t - self.cfg.window,
                    evidence={
                        "reflectors": int(n),
                        "responses": int(responses),
                        "window_s": self.cfg.window,
                    },
                )
            )
        return out


class FanInDetector(Detector):
    """Unanswered connection attempts at one destination from many distinct sources."""

    name = "fan_in_ddos"
    windowed = ("victims", "cooldown")

    def __init__(self, cfg: FanInConfig, clock: EventClock) -> None:
        self.cfg = cfg
        self.victims = SlidingWindow(WindowSpec(cfg.window, max_keys=cfg.max_keys), clock)
        self.cooldown = Cooldown(cfg.window, cfg.max_keys)
        self.tag = Tagging(self.name, cfg.severity, ("T1498",), ("impact",))

    def observe_flows(self, view: FlowView) -> list[Detection]:
        out: list[Detection] = []
        if not view.n:
            return out
        c = view.c
        attempt = (c["orig_pkts"] > 0) & (c["resp_bytes"] == 0) & (c["orig_bytes"] == 0)
        attempt &= ((c["proto"] == TCP) & (c["syn"] > 0)) | (
            (c["proto"] == UDP) & (c["resp_pkts"] == 0)
        )
        rows = np.flatnonzero(attempt)
        if not len(rows):
            return out
        src_h = address_hash(c["src_hi"][rows], c["src_lo"][rows])
        hi, lo = c["dst_hi"][rows], c["dst_lo"][rows]
        g = Groups(hi, lo)
        keys = list(zip(g.firsts(hi), g.firsts(lo), strict=True))
        times, srcs = g.max_of(view.end[rows]), g.lists(src_h)
        found = self.victims.add_batch(keys, times, g.counts, "distinct", items=srcs)
        for k in np.flatnonzero(np.asarray(found) >= self.cfg.min_sources).tolist():
            key, t, n = keys[k], times[k], found[k]
            victim = ip_text(*key)
            if not self.cooldown.ready(victim, t):
                continue
            self.cooldown.fire(victim, t)
            attempts = int(self.victims.aggregate(key, "count"))
            out.append(
                self.tag.detection(
                    t,
                    victim,
                    key_role="destination",
                    title=f"Fan-in DDoS on {victim}: {attempts} unanswered attempts from {int(n)} sources",
                    score=saturating(n, self.cfg.min_sources),
                    window_start=t - self.cfg.window,
                    evidence={"sources": int(n), "attempts": attempts, "window_s": self.cfg.window},
                )
            )
        return out
