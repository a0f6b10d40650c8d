#!/usr/bin/env python3
"""Flow-table memory under a random-source SYN flood: resident memory stays flat.

usage: bench/flood_memory.py [--packets 4000000] [--max-flows 262144]

Feeds SYNs from random IPv4 sources (every packet a new flow) through decode and
the flow table in batches of 65,536 and prints resident memory as it goes, next
to a plain dict keyed by 5-tuple (the peer: what an unbounded tracker grows to).
"""

from __future__ import annotations

import argparse
import resource
import sys

import numpy as np

from dpdk_io.batch import LinkType, PacketBatch
from engine.decode import decode
from engine.flows import FlowTable, FlowTableConfig

BATCH = 65_536
TEMPLATE = bytes.fromhex(
    "020000000002"
    "020000000001"
    "0800"  # Ethernet
    "450000280000400040060000"
    "00000000"
    "c0a80001"  # IPv4, src patched per packet
    "d4310050"
    "00000001"
    "00000000"
    "5002ffff"
    "00000000"  # TCP SYN to port 80
)


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def flood_batch(rng: np.random.Generator, first: int, t0: int) -> PacketBatch:
    n = BATCH
    frame = np.frombuffer(TEMPLATE, dtype=np.uint8)
    data = np.tile(frame, n)
    srcs = rng.integers(1 << 24, 0xDFFFFFFF, n, dtype=np.uint32).astype(">u4").view(np.uint8)
    view = data.reshape(n, len(TEMPLATE))
    view[:, 26:30] = srcs.reshape(n, 4)
    sports = rng.integers(1024, 65535, n, dtype=np.uint16).astype(">u2").view(np.uint8)
    view[:, 34:36] = sports.reshape(n, 2)
    offsets = np.arange(n, dtype=np.int64) * len(TEMPLATE)
    lens = np.full(n, len(TEMPLATE), dtype=np.int32)
    ts = t0 + np.arange(n, dtype=np.int64) * 1_000  # 1 Mpps
    return PacketBatch(data, offsets, lens, lens.copy(), ts, LinkType.ETHERNET, first)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=4_000_000)
    ap.add_argument("--max-flows", type=int, default=262_144)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    table = FlowTable(FlowTableConfig(max_flows=args.max_flows))
    table.update(decode(flood_batch(rng, 0, 0)))  # load the compiled kernels
    base = rss_mib()
    print(f"{'packets':>10} {'shrike RSS MiB':>15} {'evicted':>10} {'dict RSS MiB':>13}")
    sent, t0, marks = 0, 1_000_000_000, []
    while sent < args.packets:
        ev = table.update(decode(flood_batch(rng, sent, t0 + sent * 1_000)))
        del ev
        sent += BATCH
        if sent % (BATCH * 8) == 0 or sent >= args.packets:
            marks.append((sent, rss_mib(), table.stats().evicted))
    # the peer: an unbounded dict of per-flow counters, in the same process afterwards
    peer: dict[tuple[int, int, int, int, int], list[int]] = {}
    before = rss_mib()
    peer_marks = []
    for k in range(len(marks)):
        upto = marks[k][0]
        while len(peer) < upto:
            src = int(rng.integers(1 << 24, 0xDFFFFFFF))
            peer[(src, 0xC0A80001, 1024 + len(peer) % 60000, 80, 6)] = [1, 40, 0, 0]
        peer_marks.append(rss_mib() - before)
    for (n, rss, evicted), grown in zip(marks, peer_marks, strict=True):
        print(f"{n:10d} {rss:15.1f} {evicted:10d} {grown:13.1f}")
    print(
        f"shrike RSS after warm-up {base:.1f} MiB; growth over the flood "
        f"{marks[-1][1] - marks[0][1]:+.1f} MiB with {args.max_flows} flow slots"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
