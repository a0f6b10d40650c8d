"""DNS tunnelling: many long, high-entropy or voluminous query names under one domain (T1071.004, T1048)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from engine.detectors.base import (
    AddressSet,
    Cooldown,
    Detector,
    PacketView,
    Tagging,
    ip_text,
    saturating,
)
from engine.detectors.config import DnsTunnelConfig
from engine.events import Detection
from engine.windowing import EventClock, SlidingWindow, WindowSpec, hash64

UDP = 17
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "gov", "ac", "edu", "ne", "or", "go"})


def query_name(payload: bytes) -> str | None:
    """The first question's name of a DNS query message, lower case; None if it is not one."""
    if len(payload) < 17:
        return None
    flags = int.from_bytes(payload[2:4], "big")
    qdcount = int.from_bytes(payload[4:6], "big")
    if flags & 0x8000 or qdcount < 1:  # a response, or no question
        return None
    labels: list[str] = []
    pos, total = 12, 0
    while pos < len(payload):
        n = payload[pos]
        if n == 0:
            return ".".join(labels) if labels else None
        if n & 0xC0 or pos + 1 + n > len(payload):
            return None  # queries never compress their first name
        labels.append(payload[pos + 1 : pos + 1 + n].decode("ascii", "replace").lower())
        total += n + 1
        if total > 255:
            return None
        pos += 1 + n
    return None


def split_domain(name: str) -> tuple[str, str]:
    """(the part left of the registered domain, the registered domain), by a small suffix heuristic."""
    labels = name.split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    if len(labels) <= keep:
        return "", name
    return ".".join(labels[:-keep]), ".".join(labels[-keep:])


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


class DnsTunnelDetector(Detector):
    """Per client and registered domain: distinct names, their length, entropy and volume."""

    name = "dns_tunnel"
    windowed = ("lengths", "entropies", "cooldown")

    def __init__(self, cfg: DnsTunnelConfig, clock: EventClock) -> None:
        self.cfg = cfg
        spec = WindowSpec(cfg.window, max_keys=cfg.max_keys)
        self.lengths = SlidingWindow(spec, clock)
        self.entropies = SlidingWindow(spec, clock)
        self.cooldown = Cooldown(cfg.window, cfg.max_keys)
        self.allow = AddressSet(cfg.allow, "dns_tunnel.allow")
        self.allow_domains = tuple(d.lower().strip(".") for d in cfg.allow_domains)
        self.tag = Tagging(
            self.name, cfg.severity, ("T1071.004", "T1048"), ("command-and-control", "exfiltration")
        )

    def observe_packets(self, view: PacketView) -> list[Detection]:
        out: list[Detection] = []
        ip = view.ip
        if not len(ip):
            return out
        sel = np.flatnonzero((ip["proto"] == UDP) & (ip["dport"] == 53) & (ip["payload_len"] >= 17))
        if not len(sel):
            return out
        rows = ip[sel]
        batch = view.batch
        for k, r in enumerate(rows):
            start = int(batch.offsets[r["pkt"]]) + int(r["payload_off"])
            end = min(
                start + int(r["payload_len"]),
                int(batch.offsets[r["pkt"]]) + int(batch.caplens[r["pkt"]]),
            )
            name = query_name(batch.data[start:end].tobytes())
            if name is None:
                continue
            sub, domain = split_domain(name)
            if not sub or self._allowed(domain):
                continue
            client = ip_text(int(r["src"][0]), int(r["src"][1]))
            key = (client, domain)
            t = float(view.ts[sel[k]])
            h = [hash64(name)]
            self.lengths.add_summary(key, t, 1, float(len(sub)), len(sub), len(sub), h)
            ent = entropy(sub.replace(".", ""))
            self.entropies.add_summary(key, t, 1, ent, ent, ent)
            self._check(key, t, out)
        return out

    def _allowed(self, domain: str) -> bool:
        return any(domain == d or domain.endswith("." + d) for d in self.allow_domains)

    def _check(self, key: tuple[str, str], t: float, out: list[Detection]) -> None:
        names = self.lengths.aggregate(key, "distinct")
        if names < self.cfg.min_names:
            return
        mean_len = self.lengths.aggregate(key, "avg")
        mean_ent = self.entropies.aggregate(key, "avg")
        volume = self.lengths.aggregate(key, "sum")
        reasons = []
        if mean_len >= self.cfg.min_label_length:
            reasons.append(f"mean subdomain length {mean_len:.0f}")
        if mean_ent >= self.cfg.min_entropy:
            reasons.append(f"entropy {mean_ent:.2f} bits/char")
        if volume >= self.cfg.min_bytes:
            reasons.append(f"{int(volume)} bytes of names")
        client, domain = key
        if not reasons or not self.cooldown.ready(key, t) or client in self.allow:
            return
        self.cooldown.fire(key, t)
        score = max(
            saturating(mean_len, self.cfg.min_label_length),
            saturating(mean_ent, self.cfg.min_entropy),
            saturating(volume, self.cfg.min_bytes),
        )
        out.append(
            self.tag.detection(
                t,
                client,
                f"DNS tunnelling from {client} via {domain}: {int(names)} names, "
                + ", ".join(reasons),
                score=score * min(1.0, len(reasons) / 2 + 0.5),
                window_start=t - self.cfg.window,
                evidence={
                    "domain": domain,
                    "names": int(names),
                    "mean_length": round(mean_len, 1),
                    "mean_entropy": round(mean_ent, 2),
                    "name_bytes": int(volume),
                    "window_s": self.cfg.window,
                },
            )
        )
