#!/usr/bin/env python3
"""Packet-path throughput: pcap -> decode -> flow records, against nfstream on the same capture.

usage: bench/flows.py [PCAP] [--runs 3] [--skip-nfstream] [--skip-dpdk]

PCAP defaults to /tmp/bench.pcap, built by
`python3 ../shared/bench/make_bench_pcap.py /tmp/bench.pcap`. Each figure is the
median of --runs runs in this process after one warm-up (so the JIT-compiled
kernels are loaded, not compiled, while timed). Peers in the same run: nfstream
(statistical_analysis=True, n_dissections=0) and, where DPDK is built, DPDK
rx-only delivery through a net_pcap vdev (bench/dpdk_rx.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dpdk_io.pcap import PcapSource
from engine.decode import decode
from engine.flows import FlowTable

HERE = Path(__file__).resolve().parent


def shrike_flows(pcap: str) -> tuple[float, int, int]:
    """(seconds, packets, flows) of one pcap -> decode -> flow records pass."""
    t0 = time.perf_counter()
    table = FlowTable()
    packets = flows = 0
    with PcapSource(pcap) as src:
        for batch in src:
            packets += len(batch)
            ev = table.update(decode(batch))
            flows += len(ev.ended)
    flows += len(table.flush())
    return time.perf_counter() - t0, packets, flows


def pcap_rx_only(pcap: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    with PcapSource(pcap) as src:
        for batch in src:
            n += len(batch)
    return time.perf_counter() - t0, n


def decode_only(pcap: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    with PcapSource(pcap) as src:
        for batch in src:
            decode(batch)
            n += len(batch)
    return time.perf_counter() - t0, n


_NFSTREAM = """
import sys, time
from nfstream import NFStreamer
t = time.perf_counter()
flows = sum(1 for _ in NFStreamer(source=sys.argv[1], statistical_analysis=True, n_dissections=0))
print(time.perf_counter() - t, flows)
"""


def nfstream_run(pcap: str) -> tuple[float, int] | None:
    proc = subprocess.run([sys.executable, "-c", _NFSTREAM, pcap], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"nfstream failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    secs, flows = proc.stdout.split()
    return float(secs), int(flows)


def dpdk_rx(pcap: str) -> float | None:
    """DPDK rx-only packets/s of one run in a fresh process (bench/dpdk_rx.py), or None."""
    sys.path.insert(0, str(HERE))
    try:
        import dpdk_rx as bench_dpdk  # bench/dpdk_rx.py

        return bench_dpdk.measure_rx(pcap)
    except Exception as exc:  # no DPDK here is a row left out, not a failure
        print(f"DPDK rx-only unavailable: {exc}", file=sys.stderr)
        return None
    finally:
        sys.path.remove(str(HERE))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap", nargs="?", default="/tmp/bench.pcap")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-nfstream", action="store_true")
    ap.add_argument("--skip-dpdk", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(args.pcap):
        print(
            f"{args.pcap} not found; build it with: python3 ../shared/bench/make_bench_pcap.py "
            f"{args.pcap}",
            file=sys.stderr,
        )
        return 2
    shrike_flows(args.pcap)  # warm-up: load the compiled kernels
    rows: list[tuple[str, float, str]] = []
    runs = [shrike_flows(args.pcap) for _ in range(args.runs)]
    packets, flows = runs[0][1], runs[0][2]
    sh = statistics.median(r[0] for r in runs)
    rows.append(("shrike pcap -> decode -> flows", packets / sh, f"{flows} flows"))
    rx = statistics.median(pcap_rx_only(args.pcap)[0] for _ in range(args.runs))
    rows.append(("shrike pcap rx-only", packets / rx, ""))
    dec = statistics.median(decode_only(args.pcap)[0] for _ in range(args.runs))
    rows.append(("shrike pcap -> decode", packets / dec, ""))
    if not args.skip_dpdk:
        rates = [r for r in (dpdk_rx(args.pcap) for _ in range(args.runs)) if r]
        if rates:
            rows.append(("shrike DPDK rx-only (net_pcap vdev)", statistics.median(rates), ""))
    nf_pps = None
    if not args.skip_nfstream:
        nf = [r for r in (nfstream_run(args.pcap) for _ in range(args.runs)) if r]
        if nf:
            secs = statistics.median(r[0] for r in nf)
            nf_pps = packets / secs
            rows.append(
                ("nfstream (statistical_analysis, no dissection)", nf_pps, f"{nf[0][1]} flows")
            )
    print(f"capture: {args.pcap} ({packets} packets), median of {args.runs}")
    print(f"{'pipeline':50} {'packets/s':>14} {'vs nfstream':>12}  note")
    for name, pps, note in rows:
        ratio = f"{pps / nf_pps:11.1f}x" if nf_pps else f"{'-':>12}"
        print(f"{name:50} {pps:14,.0f} {ratio}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
