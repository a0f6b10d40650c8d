"""Port scans (one source, one host, many ports) and host sweeps (one source, many hosts, one port): T1046, T1018."""

from __future__ import annotations

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
from engine.detectors.config import HostSweepConfig, PortScanConfig
from engine.events import Detection
from engine.windowing import EventClock, SlidingWindow, WindowSpec, hash64_array

TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58


def _no_data(view: FlowView) -> np.ndarray:
    """Flows where neither side sent payload: refused, unanswered or abandoned attempts."""
    c = view.c
    tcp = (c["proto"] == TCP) & (c["orig_bytes"] == 0) & (c["resp_bytes"] == 0)
    udp = (c["proto"] == UDP) & (c["resp_pkts"] == 0)
    return (tcp | udp) & (c["orig_pkts"] > 0)


class PortScanDetector(Detector):
    """Many ports of one host probed by one source, half-open handshakes, or unreachable replies."""

    name = "port_scan"
    windowed = ("ports", "half_open", "unreachable", "cooldown")

    def __init__(self, cfg: PortScanConfig, clock: EventClock) -> None:
        self.cfg = cfg
        spec = WindowSpec(cfg.window, max_keys=cfg.max_keys)
        self.ports = SlidingWindow(spec, clock)
        self.half_open = SlidingWindow(spec, clock)
        self.unreachable = SlidingWindow(spec, clock)
        self.cooldown = Cooldown(cfg.window, cfg.max_keys)
        self.allow = AddressSet(cfg.allow, "port_scan.allow")
        self.tag = Tagging(self.name, cfg.severity, ("T1046",), ("discovery",))

    def observe_flows(self, view: FlowView) -> list[Detection]:
        out: list[Detection] = []
        if not view.n:
            return out
        c = view.c
        attempt = _no_data(view)
        if attempt.any():
            self._count(view, np.flatnonzero(attempt), out)
        tcp_quiet = (c["proto"] == TCP) & (c["orig_bytes"] == 0) & (c["resp_bytes"] == 0)
        if tcp_quiet.any():
            aborted = tcp_quiet & view.history_starts(("Sh",))
            aborted &= np.fromiter(("R" in h and "F" not in h for h in view.history), bool, view.n)
            if aborted.any():
                self._half_open(view, np.flatnonzero(aborted), out)
        return out

    def _count(self, view: FlowView, rows: np.ndarray, out: list[Detection]) -> None:
        c = view.c
        cols = [c[k][rows] for k in ("src_hi", "src_lo", "dst_hi", "dst_lo")]
        g = Groups(*cols)
        port_h = g.lists(
            hash64_array(
                c["proto"][rows].astype(np.uint64) << np.uint64(16)
                | c["dport"][rows].astype(np.uint64)
            )
        )
        keys = list(zip(*(g.firsts(col) for col in cols), strict=True))
        times = g.max_of(view.end[rows])
        need = self.cfg.min_ports
        found = self.ports.add_batch(keys, times, g.counts, "distinct", items=port_h)
        for k in np.flatnonzero(np.asarray(found) >= need).tolist():
            distinct = found[k]
            self._emit(
                keys[k],
                times[k],
                out,
                "ports",
                distinct,
                need,
                f"{int(distinct)} ports probed without a conversation",
            )

    def _half_open(self, view: FlowView, rows: np.ndarray, out: list[Detection]) -> None:
        c = view.c
        cols = [c[k][rows] for k in ("src_hi", "src_lo", "dst_hi", "dst_lo")]
        g = Groups(*cols)
        keys = list(zip(*(g.firsts(col) for col in cols), strict=True))
        times = g.max_of(view.end[rows])
        for k in range(g.n):
            self.half_open.add_summary(keys[k], times[k], g.counts[k], 0.0, 0.0, 0.0)
            n = self.half_open.aggregate(keys[k], "count")
            if n >= self.cfg.min_half_open:
                self._emit(
                    keys[k],
                    times[k],
                    out,
                    "half_open",
                    n,
                    self.cfg.min_half_open,
                    f"{int(n)} handshakes answered and then reset by the source (SYN scan)",
                )

    def observe_packets(self, view: PacketView) -> list[Detection]:
        out: list[Detection] = []
        ip = view.ip
        if not len(ip):
            return out
        unreach = ((ip["proto"] == ICMP) & (ip["icmp_type"] == 3)) | (
            (ip["proto"] == ICMP6) & (ip["icmp_type"] == 1)
        )
        if not unreach.any():
            return out
        rows = np.flatnonzero(unreach)
        u = ip[rows]
        # the receiver of the unreachable replies is the one probing
        cols = [u["dst"][:, 0], u["dst"][:, 1], u["src"][:, 0], u["src"][:, 1]]
        g = Groups(*cols)
        keys = list(zip(*(g.firsts(col) for col in cols), strict=True))
        times = g.max_of(view.ts[rows])
        for k in range(g.n):
            self.unreachable.add_summary(keys[k], times[k], g.counts[k], 0.0, 0.0, 0.0)
            n = self.unreachable.aggregate(keys[k], "count")
            if n >= self.cfg.min_unreachable:
                self._emit(
                    keys[k],
                    times[k],
                    out,
                    "unreachable",
                    n,
                    self.cfg.min_unreachable,
                    f"{int(n)} ICMP unreachable replies: probing closed ports or protocols",
                )
        return out

    def _emit(
        self,
        key: tuple[int, int, int, int],
        ts: float,
        out: list[Detection],
        what: str,
        value: float,
        threshold: float,
        why: str,
    ) -> None:
        src, dst = ip_text(key[0], key[1]), ip_text(key[2], key[3])
        if not self.cooldown.ready((src, dst), ts) or src in self.allow:
            return
        self.cooldown.fire((src, dst), ts)
        out.append(
            self.tag.detection(
                ts,
                src,
                f"Port scan of {dst} from {src}: {why}",
                score=saturating(value, threshold),
                window_start=ts - self.cfg.window,
                evidence={"target": dst, what: int(value), "window_s": self.cfg.window},
            )
        )


class HostSweepDetector(Detector):
    """One source probing many hosts on one port, or pinging many hosts."""

    name = "host_sweep"
    windowed = ("hosts", "cooldown")

    def __init__(self, cfg: HostSweepConfig, clock: EventClock) -> None:
        self.cfg = cfg
        self.hosts = SlidingWindow(WindowSpec(cfg.window, max_keys=cfg.max_keys), clock)
        self.cooldown = Cooldown(cfg.window, cfg.max_keys)
        self.allow = AddressSet(cfg.allow, "host_sweep.allow")
        self.tag = Tagging(self.name, cfg.severity, ("T1018", "T1046"), ("discovery",))

    def observe_flows(self, view: FlowView) -> list[Detection]:
        out: list[Detection] = []
        if not view.n:
            return out
        c = view.c
        echo = ((c["proto"] == ICMP) & (c["sport"] == 8)) | (
            (c["proto"] == ICMP6) & (c["sport"] == 128)
        )
        probe = _no_data(view) | echo
        if not probe.any():
            return out
        rows = np.flatnonzero(probe)
        is_echo = echo[rows]
        port = np.where(is_echo, -1, c["dport"][rows].astype(np.int64))
        cols = [c["src_hi"][rows], c["src_lo"][rows], c["proto"][rows].astype(np.int64), port]
        g = Groups(*cols)
        dst_h = g.lists(address_hash(c["dst_hi"][rows], c["dst_lo"][rows]))
        keys = list(zip(*(g.firsts(col) for col in cols), strict=True))
        times = g.max_of(view.end[rows])
        need = self.cfg.min_hosts
        found = self.hosts.add_batch(keys, times, g.counts, "distinct", items=dst_h)
        for k in np.flatnonzero(np.asarray(found) >= need).tolist():
            key, ts, n = keys[k], times[k], found[k]
            src = ip_text(key[0], key[1])
            if not self.cooldown.ready(key, ts) or src in self.allow:
                continue
            self.cooldown.fire(key, ts)
            proto, dport = key[2], key[3]
            what = "ICMP echo" if dport == -1 else f"{'tcp' if proto == TCP else 'udp'}/{dport}"
            out.append(
                self.tag.detection(
                    ts,
                    src,
                    f"Host sweep from {src}: {int(n)} hosts probed with {what}",
                    score=saturating(n, need),
                    window_start=ts - self.cfg.window,
                    evidence={"probe": what, "hosts": int(n), "window_s": self.cfg.window},
                )
            )
        return out
