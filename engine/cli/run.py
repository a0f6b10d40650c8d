"""`shrike run`: run the packet path over captures or a live source and keep results in the store."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import Any

from dpdk_io.errors import CaptureError
from engine.cli.progress import note_first_compile, packet_progress
from engine.config import ConfigError, load_config
from engine.pipeline import PacketPathStats, iter_flow_records
from engine.sources import SOURCE_KINDS, open_source
from engine.store import FlowStore, StoreError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run Shrike over captures or a live source",
        description="Decode, track flows and store the results in the embedded store.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pcap", nargs="+", metavar="FILE", help="pcap/pcapng files, in order")
    src.add_argument(
        "--source",
        choices=[k for k in SOURCE_KINDS if k != "pcap"],
        help="a DPDK port or live interface (with --input)",
    )
    p.add_argument(
        "--input", help="interface (live) or pcap to replay (dpdk; '-' for dpdk.yaml ports)"
    )
    p.add_argument("--filter", dest="bpf_filter", help="BPF filter (live capture)")
    p.add_argument("--dpdk-config", help="dpdk.yaml to use")
    p.add_argument("--count", type=int, help="stop a live capture after this many packets")
    p.add_argument(
        "--data-dir",
        help="embedded store directory (default: $SHRIKE_DATA_DIR or ~/.local/share/shrike)",
    )
    p.add_argument("--config", help="configuration file (default: config/shrike.yaml)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.source and not args.input:
        print(
            "shrike run: --source needs --input (interface name or pcap to replay)", file=sys.stderr
        )
        return 2
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"shrike run: {exc}", file=sys.stderr)
        return 2
    args.flow_config = config.flows
    try:
        store = FlowStore(args.data_dir or config.data_dir)
    except StoreError as exc:
        print(f"shrike run: {exc}", file=sys.stderr)
        return 2
    note_first_compile()
    targets = [("pcap", f) for f in args.pcap] if args.pcap else [(args.source, args.input)]
    status = 0
    with store:
        for kind, target in targets:
            status = max(status, _run_one(kind, target, args, store))
        print(f"embedded store: {store.path} ({store.count_flows()} flows in all)")
    return status


def _run_one(kind: str, target: str, args: argparse.Namespace, store: FlowStore) -> int:
    stats = PacketPathStats()
    states: Counter[str] = Counter()
    protos: Counter[str] = Counter()
    started = time.perf_counter()
    status = 0
    try:
        source = open_source(
            kind,
            target,
            bpf_filter=args.bpf_filter,
            dpdk_config=args.dpdk_config,
            packet_limit=args.count,
        )
    except (CaptureError, OSError, ValueError) as exc:
        print(f"shrike run: {exc}", file=sys.stderr)
        return 2
    try:
        with source, packet_progress(enabled=not args.no_progress) as tick:
            for records in iter_flow_records(source, args.flow_config, stats=stats, on_batch=tick):
                store.write_flows(records, source=target)
                states.update(records.conn_states())
                protos.update(str(p) for p in records.columns["proto"].tolist())
    except CaptureError as exc:
        print(f"shrike run: {exc}", file=sys.stderr)
        status = 1
    except StoreError as exc:
        print(f"shrike run: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    names = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmp6"}
    print(f"{target}: {stats.packets} packets, {stats.flows} flows in {elapsed:.2f}s")
    print(
        "  flows by protocol: "
        + ", ".join(f"{names.get(p, p)} {n}" for p, n in protos.most_common())
    )
    print("  flows by conn_state: " + ", ".join(f"{s} {n}" for s, n in states.most_common()))
    bad = sum(stats.malformed.values())
    if bad or stats.non_ip or stats.evicted:
        detail = ", ".join(f"{k} {v}" for k, v in sorted(stats.malformed.items()))
        print(
            f"  skipped: {bad} malformed ({detail or 'none'}), {stats.non_ip} non-IP; "
            f"{stats.evicted} flows evicted from a full table"
        )
    return status
