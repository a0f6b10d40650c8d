"""DPDK rx-only delivery rate on a capture, beside plain-read peers; `measure_rx` gives one run's rate.

Usage: python bench/dpdk_rx.py [PCAP] [--runs N] [--no-check]

Each run is a fresh process (EAL starts once per process) and times only the
delivery loop (`next_batch()` until the capture is done), not EAL start-up.
Peers, timed the same way: scapy's RawPcapReader and Shrike's own pcap reader.
Unless --no-check, one more untimed pass checks that the DPDK source and the
pcap reader deliver the same packets (bytes, captured lengths, timestamps), the
inputs flow records are computed from. Wire lengths of snaplen-truncated
records are reported apart: net_pcap passes DPDK only the captured bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_PCAP = "/tmp/bench.pcap"
TARGET_PPS = 2_000_000
REPO = Path(__file__).resolve().parents[1]
PEERS = {
    "dpdk": "DPDK net_pcap, rx only",
    "scapy": "scapy RawPcapReader",
    "pcap": "Shrike pcap reader",
}


def _run_dpdk(pcap: str) -> tuple[int, float]:
    from dpdk_io.dpdk import DpdkSource

    with DpdkSource.from_config(pcap=pcap) as source:
        packets = 0
        start = time.perf_counter()
        while (batch := source.next_batch()) is not None:
            packets += len(batch)
        return packets, time.perf_counter() - start


def _run_scapy(pcap: str) -> tuple[int, float]:
    from scapy.utils import RawPcapReader

    packets = 0
    start = time.perf_counter()
    with RawPcapReader(pcap) as reader:
        for _record in reader:
            packets += 1
    return packets, time.perf_counter() - start


def _run_pcap(pcap: str) -> tuple[int, float]:
    from dpdk_io.pcap import PcapSource

    packets = 0
    start = time.perf_counter()
    with PcapSource(pcap) as source:
        while (batch := source.next_batch()) is not None:
            packets += len(batch)
    return packets, time.perf_counter() - start


def _packet_digest(batches: object) -> dict[str, object]:
    """Digests of every packet's bytes, captured lengths, timestamps and wire lengths, batch-independent."""
    hashes = {name: hashlib.sha256() for name in ("bytes", "caplens", "timestamps", "wirelens")}
    packets = 0
    for batch in batches:  # type: ignore[attr-defined]
        if len(batch) == 0:
            continue
        caplens = batch.caplens.astype(np.int64)
        starts = np.cumsum(caplens) - caplens
        gather = (
            np.arange(int(caplens.sum()))
            - np.repeat(starts, caplens)
            + np.repeat(batch.offsets, caplens)
        )
        hashes["bytes"].update(batch.data[gather].tobytes())
        hashes["caplens"].update(caplens.tobytes())
        hashes["timestamps"].update(batch.timestamps.astype(np.int64).tobytes())
        hashes["wirelens"].update(batch.wirelens.astype(np.int64).tobytes())
        packets += len(batch)
    return {"packets": packets, **{name: h.hexdigest() for name, h in hashes.items()}}


def _digest_of(kind: str, pcap: str) -> dict[str, object]:
    if kind == "dpdk":
        from dpdk_io.dpdk import DpdkSource

        with DpdkSource.from_config(pcap=pcap) as source:
            return _packet_digest(iter(source.next_batch, None))
    from dpdk_io.pcap import PcapSource

    with PcapSource(pcap) as reader:
        return _packet_digest(iter(reader.next_batch, None))


def _child(kind: str, pcap: str, check: bool) -> dict[str, object]:
    if check:
        return _digest_of(kind, pcap)
    runner = {"dpdk": _run_dpdk, "scapy": _run_scapy, "pcap": _run_pcap}[kind]
    packets, seconds = runner(pcap)
    return {"packets": packets, "seconds": seconds}


def _spawn(kind: str, pcap: str, *, check: bool = False) -> dict[str, object]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, pcap]
    if check:
        command.append("--check-child")
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{kind} run failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_rx(pcap: str) -> float:
    """Packets per second the DPDK source delivers from `pcap` in one fresh process (delivery loop only)."""
    result = _spawn("dpdk", pcap)
    return float(result["packets"]) / float(result["seconds"])  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pcap", nargs="?", default=DEFAULT_PCAP)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--no-check", action="store_true", help="skip the DPDK-vs-pcap packet identity pass"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--check-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child is not None:
        print(json.dumps(_child(args.child, args.pcap, args.check_child)))
        return 0

    pcap = str(Path(args.pcap).resolve())
    if not Path(pcap).is_file():
        print(
            f"error: {pcap} not found (build it: python3 /work/shared/bench/make_bench_pcap.py {pcap})",
            file=sys.stderr,
        )
        return 2
    print(
        f"capture: {pcap} ({Path(pcap).stat().st_size / 1e6:.1f} MB), {args.runs} fresh-process runs each"
    )
    print(f"{'source':<26} {'packets':>9} {'runs (Mpps)':<24} {'median Mpps':>11}")
    medians: dict[str, float] = {}
    for kind, label in PEERS.items():
        try:
            runs = [_spawn(kind, pcap) for _ in range(args.runs)]
        except RuntimeError as exc:
            print(f"{label:<26} unavailable: {str(exc).splitlines()[-1]}")
            continue
        rates = [float(r["packets"]) / float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
        medians[kind] = statistics.median(rates)
        shown = " ".join(f"{r / 1e6:.2f}" for r in rates)
        print(f"{label:<26} {runs[0]['packets']:>9} {shown:<24} {medians[kind] / 1e6:>11.2f}")
    if "dpdk" in medians:
        verdict = "met" if medians["dpdk"] >= TARGET_PPS else "NOT met"
        print(f"target: DPDK rx-only >= {TARGET_PPS / 1e6:.1f} Mpps: {verdict}")
        if "scapy" in medians:
            print(f"DPDK / scapy RawPcapReader: {medians['dpdk'] / medians['scapy']:.1f}x")
    if not args.no_check:
        try:
            dpdk, reader = _spawn("dpdk", pcap, check=True), _spawn("pcap", pcap, check=True)
        except RuntimeError as exc:
            print(f"identity check unavailable: {str(exc).splitlines()[-1]}")
        else:
            fields = ("packets", "bytes", "caplens", "timestamps")
            same = [f for f in fields if dpdk[f] == reader[f]]
            differ = [f for f in fields if dpdk[f] != reader[f]]
            print(
                f"DPDK vs pcap reader, {dpdk['packets']} packets: identical {', '.join(same) or 'nothing'}"
                + (f"; DIFFER: {', '.join(differ)}" if differ else "")
            )
            if dpdk["wirelens"] != reader["wirelens"]:
                # net_pcap passes DPDK only the captured bytes of a record (see docs/capture.md).
                print("wire lengths differ: the capture has snaplen-truncated records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
