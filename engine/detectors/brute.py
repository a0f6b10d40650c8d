"""Brute force against login services: many connections from one source to one service (T1110.001)."""

from __future__ import annotations

from collections import OrderedDict
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
    ip_text,
    saturating,
)
from engine.detectors.config import BruteForceConfig
from engine.events import Detection
from engine.windowing import EventClock, SlidingWindow, WindowSpec

TCP = 6
_SSH = np.frombuffer(b"SSH-", dtype=np.uint8)
SERVICE_NAMES = {21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 110: "pop3", 143: "imap",
                 389: "ldap", 445: "smb", 1433: "mssql", 3306: "mysql", 3389: "rdp",
                 5432: "postgres", 5900: "vnc", 5985: "winrm", 5986: "winrm"}  # fmt: skip


class BruteForceDetector(Detector):
    """Repeated connections to a login port, or to any server that spoke SSH."""

    name = "brute_force"
    windowed = ("attempts", "cooldown")

    def __init__(self, cfg: BruteForceConfig, clock: EventClock) -> None:
        self.cfg = cfg
        self.ports = np.array(sorted(cfg.ports), dtype=np.int64)
        self.attempts = SlidingWindow(WindowSpec(cfg.window, max_keys=cfg.max_keys), clock)
        self.cooldown = Cooldown(cfg.window, cfg.max_keys)
        self.allow = AddressSet(cfg.allow, "brute_force.allow")
        # servers seen speaking SSH, bounded: (hi, lo, port)
        self.ssh_servers: OrderedDict[tuple[int, int, int], None] = OrderedDict()
        self.tag = Tagging(self.name, cfg.severity, ("T1110.001",), ("credential-access",))

    def observe_packets(self, view: PacketView) -> list[Detection]:
        if not self.cfg.detect_ssh_banner or not len(view.ip):
            return []
        ip = view.ip
        cand = np.flatnonzero((ip["proto"] == TCP) & (ip["payload_len"] >= 4))
        if not len(cand):
            return []
        rows = ip[cand]
        prefix = view.payload_prefix(rows, 4)
        hit = np.all(prefix == _SSH, axis=1)
        for r in rows[hit]:
            # both ends send a banner; the server is the end on the lower port
            if int(r["sport"]) <= int(r["dport"]):
                server = (int(r["src"][0]), int(r["src"][1]), int(r["sport"]))
            else:
                server = (int(r["dst"][0]), int(r["dst"][1]), int(r["dport"]))
            self.ssh_servers[server] = None
            self.ssh_servers.move_to_end(server)
            while len(self.ssh_servers) > self.cfg.max_keys:
                self.ssh_servers.popitem(last=False)
        return []

    def observe_flows(self, view: FlowView) -> list[Detection]:
        out: list[Detection] = []
        if not view.n:
            return out
        c = view.c
        tcp = c["proto"] == TCP
        login = tcp & np.isin(c["dport"], self.ports)
        if self.ssh_servers:
            extra = np.fromiter(
                (
                    (int(h), int(lo), int(p)) in self.ssh_servers
                    for h, lo, p in zip(c["dst_hi"], c["dst_lo"], c["dport"], strict=True)
                ),
                dtype=bool,
                count=view.n,
            )
            login |= tcp & extra
        rows = np.flatnonzero(login)
        if not len(rows):
            return out
        cols = [c[k][rows] for k in ("src_hi", "src_lo", "dst_hi", "dst_lo", "dport")]
        g = Groups(*cols)
        keys = list(zip(*(g.firsts(col) for col in cols), strict=True))
        times = g.max_of(view.end[rows])
        found = self.attempts.add_batch(keys, times, g.counts, "count")
        for k in np.flatnonzero(np.asarray(found) >= self.cfg.min_attempts).tolist():
            key, t, n = keys[k], times[k], found[k]
            src, dst, port = ip_text(key[0], key[1]), ip_text(key[2], key[3]), key[4]
            if not self.cooldown.ready(key, t) or src in self.allow:
                continue
            self.cooldown.fire(key, t)
            service = (
                "ssh"
                if (key[2], key[3], port) in self.ssh_servers
                else SERVICE_NAMES.get(port, "login")
            )
            out.append(
                self.tag.detection(
                    t,
                    src,
                    f"Brute force against {service} on {dst}:{port} from {src}: "
                    f"{int(n)} connections in {self.cfg.window:g} s",
                    score=saturating(n, self.cfg.min_attempts),
                    window_start=t - self.cfg.window,
                    evidence={
                        "target": f"{dst}:{port}",
                        "service": service,
                        "connections": int(n),
                        "window_s": self.cfg.window,
                    },
                )
            )
        return out

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "ssh_servers": [list(k) for k in self.ssh_servers]}

    def restore(self, snap: dict[str, Any]) -> None:
        super().restore(snap)
        self.ssh_servers = OrderedDict((tuple(k), None) for k in snap["ssh_servers"])
