"""Outbound volume: a home host sending far more to one outside host than it receives (T1048)."""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from typing import Any

import numpy as np

from engine.detectors.base import (
    AddressSet,
    Cooldown,
    Detector,
    FlowView,
    Groups,
    Tagging,
    ip_text,
    saturating,
)
from engine.detectors.config import ExfilConfig
from engine.events import Detection
from engine.windowing import EventClock, SlidingWindow, WindowSpec


def in_networks(hi: np.ndarray, lo: np.ndarray, networks: tuple[Any, ...]) -> np.ndarray:
    """Which addresses (two uint64 halves, IPv4 mapped) fall in any of the networks."""
    hi = np.asarray(hi, dtype=np.uint64)
    lo = np.asarray(lo, dtype=np.uint64)
    out = np.zeros(len(hi), dtype=bool)
    v4 = (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))
    for net in networks:
        if net.version == 4:
            mask = np.uint64((0xFFFFFFFF << (32 - net.prefixlen)) & 0xFFFFFFFF)
            base = np.uint64(int(net.network_address))
            out |= v4 & ((lo & mask) == base)
        else:
            value = int(net.network_address)
            full = ((1 << 128) - 1) ^ ((1 << (128 - net.prefixlen)) - 1)
            mhi, mlo = np.uint64(full >> 64), np.uint64(full & ((1 << 64) - 1))
            out |= (
                ~v4
                & ((hi & mhi) == np.uint64(value >> 64))
                & ((lo & mlo) == np.uint64(value & ((1 << 64) - 1)))
            )
    return out


class HostBaseline:
    """Per-host totals over tumbling periods of event time, with an EWMA mean and variance
    of the closed periods (empty periods count as zero, at most 10 in a row). Bounded:
    `max_keys` hosts, least recently seen evicted."""

    def __init__(self, period: float, alpha: float, max_keys: int) -> None:
        self.period, self.alpha, self.max_keys = period, alpha, max_keys
        # host -> [period index, current total, mean, variance, closed periods]
        self.hosts: OrderedDict[tuple[int, int], list[float]] = OrderedDict()

    def add(self, key: tuple[int, int], ts: float, amount: float) -> list[float]:
        idx = math.floor(ts / self.period)
        st = self.hosts.get(key)
        if st is None:
            st = self.hosts[key] = [idx, 0.0, 0.0, 0.0, 0]
            if len(self.hosts) > self.max_keys:
                self.hosts.popitem(last=False)
        else:
            self.hosts.move_to_end(key)
            if idx > st[0]:
                self._close(st, st[1])
                for _ in range(min(int(idx - st[0]) - 1, 10)):
                    self._close(st, 0.0)
                st[0], st[1] = idx, 0.0
        st[1] += amount
        return st

    def _close(self, st: list[float], total: float) -> None:
        if st[4] == 0:
            st[2], st[3] = total, 0.0
        else:
            d = total - st[2]
            st[2] += self.alpha * d
            st[3] = (1 - self.alpha) * (st[3] + self.alpha * d * d)
        st[4] += 1


class ExfiltrationDetector(Detector):
    """Bytes sent from a home address to one outside address over the window, and the out/in ratio."""

    name = "exfiltration"
    windowed = ("sent", "received", "cooldown")

    def __init__(self, cfg: ExfilConfig, clock: EventClock) -> None:
        self.cfg = cfg
        spec = WindowSpec(cfg.window, max_keys=cfg.max_keys)
        self.sent = SlidingWindow(spec, clock)
        self.received = SlidingWindow(spec, clock)
        self.cooldown = Cooldown(cfg.window, cfg.max_keys)
        self.allow = AddressSet(cfg.allow, "exfiltration.allow")
        try:
            self.home = tuple(ipaddress.ip_network(n, strict=False) for n in cfg.home_nets)
        except ValueError as exc:
            raise ValueError(f"exfiltration.home_nets: {exc}") from None
        self.tag = Tagging(self.name, cfg.severity, ("T1048",), ("exfiltration",))
        self.baseline = HostBaseline(cfg.window, cfg.baseline_alpha, cfg.max_keys)

    def observe_flows(self, view: FlowView) -> list[Detection]:
        out: list[Detection] = []
        if not view.n:
            return out
        c = view.c
        outbound = in_networks(c["src_hi"], c["src_lo"], self.home) & ~in_networks(
            c["dst_hi"], c["dst_lo"], self.home
        )
        rows = np.flatnonzero(outbound & (c["orig_bytes"] > 0))
        if not len(rows):
            return out
        cols = [c[k][rows] for k in ("src_hi", "src_lo", "dst_hi", "dst_lo")]
        g = Groups(*cols)
        keys = list(zip(*(g.firsts(col) for col in cols), strict=True))
        times = g.max_of(view.end[rows])
        sent_b = g.sum_of(c["orig_bytes"][rows].astype(np.float64))
        got_b = g.sum_of(c["resp_bytes"][rows].astype(np.float64))
        self._baseline(c, rows, view.end[rows], out)
        outs = self.sent.add_batch(keys, times, g.counts, "sum", totals=sent_b)
        ins = self.received.add_batch(keys, times, g.counts, "sum", totals=got_b)
        for k in np.flatnonzero(np.asarray(outs) >= self.cfg.min_bytes).tolist():
            key, t, total_out, total_in = keys[k], times[k], outs[k], ins[k]
            ratio = total_out / max(total_in, 1.0)
            if total_out < self.cfg.min_bytes or ratio < self.cfg.min_ratio:
                continue
            src, dst = ip_text(key[0], key[1]), ip_text(key[2], key[3])
            if not self.cooldown.ready(key, t) or src in self.allow:
                continue
            self.cooldown.fire(key, t)
            out.append(
                self.tag.detection(
                    t,
                    src,
                    f"Outbound volume from {src} to {dst}: {total_out / 1e6:.1f} MB sent, "
                    f"{ratio:.0f}x what came back, in {self.cfg.window:g} s",
                    score=saturating(total_out, self.cfg.min_bytes),
                    window_start=t - self.cfg.window,
                    evidence={
                        "target": dst,
                        "bytes_out": int(total_out),
                        "bytes_in": int(total_in),
                        "flows": int(self.sent.aggregate(key, "count")),
                        "window_s": self.cfg.window,
                    },
                )
            )
        return out

    def _baseline(
        self, c: dict[str, np.ndarray], rows: np.ndarray, end: np.ndarray, out: list[Detection]
    ) -> None:
        """Each home host's bytes out this period against its own usual."""
        cfg = self.cfg
        g = Groups(c["src_hi"][rows], c["src_lo"][rows])
        his, los = g.firsts(c["src_hi"][rows]), g.firsts(c["src_lo"][rows])
        times = g.max_of(end)
        sent = g.sum_of(c["orig_bytes"][rows].astype(np.float64))
        for k in range(g.n):
            key = (his[k], los[k])
            st = self.baseline.add(key, times[k], sent[k])
            current, mean, std, seen = st[1], st[2], math.sqrt(st[3]), st[4]
            if seen < cfg.min_baseline_windows:
                continue
            need = max(
                cfg.min_anomaly_bytes, mean + cfg.baseline_z * std, cfg.baseline_factor * mean
            )
            if current < need:
                continue
            src, t = ip_text(*key), times[k]
            if not self.cooldown.ready(("host", src), t) or src in self.allow:
                continue
            self.cooldown.fire(("host", src), t)
            z = (current - mean) / std if std > 0 else float("inf")
            out.append(
                self.tag.detection(
                    t,
                    src,
                    f"Outbound volume anomaly from {src}: {current / 1e6:.1f} MB out this "
                    f"{cfg.window:g} s, usually {mean / 1e6:.2f} MB",
                    score=saturating(current, need),
                    window_start=float(st[0]) * cfg.window,
                    evidence={
                        "bytes_out": int(current),
                        "usual_bytes": int(mean),
                        "z": round(z, 1) if math.isfinite(z) else None,
                        "windows_seen": int(seen),
                        "window_s": cfg.window,
                    },
                )
            )

    def snapshot(self) -> dict[str, Any]:
        return {
            **super().snapshot(),
            "baseline": [[list(k), v] for k, v in self.baseline.hosts.items()],
        }

    def restore(self, snap: dict[str, Any]) -> None:
        super().restore(snap)
        self.baseline.hosts = OrderedDict(
            ((int(k[0]), int(k[1])), list(v)) for k, v in snap["baseline"]
        )
