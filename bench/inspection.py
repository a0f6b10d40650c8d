#!/usr/bin/env python3
"""Inspection throughput: reassembly and application parsing per packet, against dpkt's parsers on the same payloads.

usage: bench/inspection.py [PCAP] [--limit 200000] [--runs 3] [--skip-dpkt]

PCAP defaults to /tmp/bench.pcap, built by
`python3 ../shared/bench/make_bench_pcap.py /tmp/bench.pcap`. The first --limit
packets are decoded and assigned to flows once, untimed; the timed part is the
`Inspector.packet` call for every TCP row and every UDP row with payload (what
the matcher hands it). Each figure is the median of --runs runs after one
warm-up. The peer, in the same run, is dpkt (`pip install dpkt`, the `bench`
extra) parsing the same payloads statelessly, one packet at a time: HTTP
requests and responses with `dpkt.http`, DNS with `dpkt.dns`, TLS records with
`dpkt.ssl` — less work than Shrike's (no reassembly, no bodies across packets),
so it is an upper bound for a per-packet parser in Python.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from dpdk_io.pcap import PcapSource
from engine.decode import F_LATER_FRAGMENT, KIND_IP, decode
from engine.flows import FlowTable
from engine.inspect import Inspector, InspectStats
from engine.inspect.checksum import bad_checksum_rows
from engine.inspect.http import METHODS

Call = tuple[int, bool, bool, int, int, int, int, int, bytes, int]


def load(pcap: str, limit: int) -> tuple[list[Call], int, float]:
    """The inspector calls for the first `limit` packets, the packet count, and the
    seconds checksum verification took over those batches."""
    calls: list[Call] = []
    table = FlowTable()
    packets = 0
    checksum_s = 0.0
    with PcapSource(pcap) as src:
        for batch in src:
            if packets >= limit:
                break
            decoded = decode(batch)
            ev = table.update(decoded)
            t0 = time.perf_counter()
            bad = bad_checksum_rows(decoded)
            checksum_s += time.perf_counter() - t0
            rows = decoded.rows
            keep = (
                (rows["kind"] == KIND_IP)
                & (ev.row_flow >= 0)
                & ((rows["proto"] == 6) | ((rows["proto"] == 17) & (rows["payload_len"] > 0)))
                & ((rows["flags"] & F_LATER_FRAGMENT) == 0)
                & (rows["pkt"] < limit - packets)
                & ~bad
            )
            new = ev.row_new if ev.row_new.shape[0] == rows.shape[0] else np.zeros(len(rows))
            for i in np.flatnonzero(keep):
                r = rows[i]
                p = int(r["pkt"])
                start = int(batch.offsets[p])
                lo = start + int(r["payload_off"])
                hi = min(lo + int(r["payload_len"]), start + int(batch.caplens[p]))
                calls.append(
                    (
                        int(ev.row_flow[i]),
                        bool(new[i]),
                        int(ev.row_dir[i]) == 0,
                        int(r["proto"]),
                        int(r["sport"]),
                        int(r["dport"]),
                        int(r["tcp_flags"]),
                        int(r["tcp_seq"]),
                        batch.data[lo:hi].tobytes() if hi > lo else b"",
                        int(r["ts"]),
                    )
                )
            packets += min(len(batch), limit - packets)
    return calls, packets, checksum_s


def shrike(calls: list[Call]) -> tuple[float, InspectStats, int]:
    insp = Inspector()
    buffers = 0
    t0 = time.perf_counter()
    packet = insp.packet
    for c in calls:
        ctx = packet(*c)
        if ctx.buffers:
            buffers += 1
    return time.perf_counter() - t0, insp.stats(), buffers


def dpkt_peer(calls: list[Call]) -> tuple[float, int]:
    import dpkt

    starts = tuple(m + b" " for m in METHODS)
    parsed = 0
    t0 = time.perf_counter()
    for c in calls:
        payload = c[8]
        if not payload:
            continue
        try:
            if c[3] == 17:
                if c[4] in (53, 5353) or c[5] in (53, 5353):
                    dpkt.dns.DNS(payload)
                    parsed += 1
            elif payload.startswith(starts):
                dpkt.http.Request(payload)
                parsed += 1
            elif payload.startswith(b"HTTP/1."):
                dpkt.http.Response(payload)
                parsed += 1
            elif payload[0] == 0x16 and payload[1:2] == b"\x03":
                dpkt.ssl.tls_multi_factory(payload)
                parsed += 1
        except (dpkt.UnpackError, ValueError, IndexError, KeyError):
            pass
    return time.perf_counter() - t0, parsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap", nargs="?", default="/tmp/bench.pcap")
    ap.add_argument("--limit", type=int, default=200_000, help="packets to read")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-dpkt", action="store_true")
    args = ap.parse_args(argv)

    calls, packets, checksum_s = load(args.pcap, args.limit)
    payload_bytes = sum(len(c[8]) for c in calls)
    print(
        f"capture: {args.pcap}: {packets:,} packets, {len(calls):,} inspector calls, "
        f"{payload_bytes / 1e6:.1f} MB payload"
    )
    print(f"checksum verification: {packets / checksum_s:,.0f} packets/s (compiled, batch)")

    shrike(calls)  # warm-up
    times = []
    stats = None
    buffers = 0
    for _ in range(args.runs):
        t, stats, buffers = shrike(calls)
        times.append(t)
    t = statistics.median(times)
    print()
    print(f"{'engine':<34}{'calls/s':>12}{'MB/s':>9}{'time s':>9}")
    print(
        f"{'shrike Inspector.packet':<34}{len(calls) / t:>12,.0f}"
        f"{payload_bytes / t / 1e6:>9.1f}{t:>9.2f}"
    )
    if not args.skip_dpkt:
        try:
            import dpkt  # noqa: F401
        except ImportError:
            print("dpkt: not installed (pip install dpkt), peer skipped")
        else:
            dpkt_peer(calls)
            dt = [dpkt_peer(calls) for _ in range(args.runs)]
            td = statistics.median(x[0] for x in dt)
            print(
                f"{'dpkt per-packet parse (peer)':<34}{len(calls) / td:>12,.0f}"
                f"{payload_bytes / td / 1e6:>9.1f}{td:>9.2f}   ({dt[0][1]:,} payloads parsed)"
            )
    assert stats is not None
    print()
    print(f"packets with new buffers: {buffers:,}")
    print("inspector stats:", ", ".join(f"{k}={v:,}" for k, v in vars_of(stats).items() if v))
    return 0


def vars_of(stats: InspectStats) -> dict[str, int]:
    return {k: getattr(stats, k) for k in stats.__dataclass_fields__}


if __name__ == "__main__":
    sys.exit(main())
