"""Bundled sample traffic: a small, deterministic capture Shrike generates for itself with scapy.

It holds the kinds of conversations a sensor sees every minute (web sessions,
DNS, pings, NTP) and a few it should notice (a SYN port scan, rejected
connections, a DNS lookup of a long random-looking name), so `shrike demo`
has something real to chew on without any download.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

CLIENTS = ("192.168.10.21", "192.168.10.22", "192.168.10.35", "192.168.10.40")
SERVERS = ("93.184.216.34", "151.101.1.69", "140.82.112.3")
RESOLVER = "192.168.10.1"
SCANNER = "203.0.113.66"
START = 1_700_000_000.0


def build_sample_packets(seed: int = 7) -> list[Any]:
    """The sample capture's packets, with timestamps set, in time order."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.layers.ntp import NTP
    from scapy.packet import Raw

    rnd = random.Random(seed)
    pkts = []
    eth_c = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:fe")
    eth_s = Ether(src="02:00:00:00:00:fe", dst="02:00:00:00:00:01")

    def emit(t: float, p: Any) -> None:
        p.time = t
        pkts.append(p)

    t = START
    for n in range(40):  # web sessions
        c, s = rnd.choice(CLIENTS), rnd.choice(SERVERS)
        sp = 40000 + n
        cs, ss = rnd.randrange(1 << 31), rnd.randrange(1 << 31)
        q = rnd.randrange(50, 400)
        req = b"GET /index.html?q=" + str(q).encode() + b" HTTP/1.1\r\nHost: example.org\r\n\r\n"
        body = b"HTTP/1.1 200 OK\r\nContent-Length: 512\r\n\r\n" + bytes(
            rnd.randrange(256) for _ in range(512)
        )
        rtt = rnd.uniform(0.01, 0.08)
        emit(t, eth_c / IP(src=c, dst=s) / TCP(sport=sp, dport=80, flags="S", seq=cs))
        emit(
            t + rtt,
            eth_s / IP(src=s, dst=c) / TCP(sport=80, dport=sp, flags="SA", seq=ss, ack=cs + 1),
        )
        emit(
            t + rtt + 0.001,
            eth_c / IP(src=c, dst=s) / TCP(sport=sp, dport=80, flags="A", seq=cs + 1, ack=ss + 1),
        )
        emit(
            t + rtt + 0.002,
            eth_c
            / IP(src=c, dst=s)
            / TCP(sport=sp, dport=80, flags="PA", seq=cs + 1, ack=ss + 1)
            / Raw(req),
        )
        emit(
            t + 2 * rtt + 0.01,
            eth_s
            / IP(src=s, dst=c)
            / TCP(sport=80, dport=sp, flags="PA", seq=ss + 1, ack=cs + 1 + len(req))
            / Raw(body),
        )
        emit(
            t + 2 * rtt + 0.011,
            eth_c
            / IP(src=c, dst=s)
            / TCP(sport=sp, dport=80, flags="FA", seq=cs + 1 + len(req), ack=ss + 1 + len(body)),
        )
        emit(
            t + 3 * rtt + 0.012,
            eth_s
            / IP(src=s, dst=c)
            / TCP(sport=80, dport=sp, flags="FA", seq=ss + 1 + len(body), ack=cs + 2 + len(req)),
        )
        emit(
            t + 3 * rtt + 0.013,
            eth_c
            / IP(src=c, dst=s)
            / TCP(sport=sp, dport=80, flags="A", seq=cs + 2 + len(req), ack=ss + 2 + len(body)),
        )
        t += rnd.uniform(0.2, 1.5)
    t2 = START
    for n in range(30):  # DNS lookups
        c = rnd.choice(CLIENTS)
        name = rnd.choice(("example.org", "github.com", "python.org", "debian.org"))
        if n == 17:
            name = (
                "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(48))
                + ".tunnel.example"
            )
        qid = rnd.randrange(65536)
        sp = 50000 + n
        emit(
            t2,
            eth_c
            / IP(src=c, dst=RESOLVER)
            / UDP(sport=sp, dport=53)
            / DNS(id=qid, rd=1, qd=DNSQR(qname=name)),
        )
        emit(
            t2 + 0.02,
            eth_s
            / IP(src=RESOLVER, dst=c)
            / UDP(sport=53, dport=sp)
            / DNS(
                id=qid,
                qr=1,
                ra=1,
                qd=DNSQR(qname=name),
                an=DNSRR(rrname=name, rdata="93.184.216.34"),
            ),
        )
        t2 += rnd.uniform(0.5, 2.0)
    for n in range(8):  # pings
        c = CLIENTS[n % len(CLIENTS)]
        emit(
            START + 3 + n,
            eth_c / IP(src=c, dst="8.8.8.8") / ICMP(type=8, id=100 + n, seq=1) / Raw(b"x" * 56),
        )
        emit(
            START + 3.03 + n,
            eth_s / IP(src="8.8.8.8", dst=c) / ICMP(type=0, id=100 + n, seq=1) / Raw(b"x" * 56),
        )
    for n in range(4):  # NTP
        c = CLIENTS[n]
        emit(
            START + 5 + n,
            eth_c / IP(src=c, dst="129.6.15.28") / UDP(sport=123, dport=123) / NTP(mode=3),
        )
        emit(
            START + 5.05 + n,
            eth_s / IP(src="129.6.15.28", dst=c) / UDP(sport=123, dport=123) / NTP(mode=4),
        )
    victim = "192.168.10.40"
    for n, port in enumerate(range(20, 120)):  # a SYN scan: closed ports answer RST
        ts = START + 20 + n * 0.01
        emit(
            ts,
            eth_s
            / IP(src=SCANNER, dst=victim)
            / TCP(sport=61000, dport=port, flags="S", seq=1000 + n),
        )
        if port not in (22, 80):
            emit(
                ts + 0.0005,
                eth_c
                / IP(src=victim, dst=SCANNER)
                / TCP(sport=port, dport=61000, flags="RA", seq=0, ack=1001 + n),
            )
        else:
            emit(
                ts + 0.0005,
                eth_c
                / IP(src=victim, dst=SCANNER)
                / TCP(sport=port, dport=61000, flags="SA", seq=5000, ack=1001 + n),
            )
            emit(
                ts + 0.0009,
                eth_s
                / IP(src=SCANNER, dst=victim)
                / TCP(sport=61000, dport=port, flags="R", seq=1001 + n),
            )
    pkts.sort(key=lambda p: float(p.time))
    return pkts


def write_sample_pcap(path: str | Path, seed: int = 7) -> int:
    """Write the sample capture; returns the number of packets."""
    from scapy.utils import wrpcap

    pkts = build_sample_packets(seed)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    wrpcap(str(path), pkts)
    return len(pkts)
