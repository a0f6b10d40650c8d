"""`shrike flows`: stream flow records of a capture as JSON lines or CSV."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import IO, Any

from dpdk_io.errors import CaptureError
from engine.cli.progress import note_first_compile, packet_progress
from engine.config import ConfigError, load_config
from engine.flows import FEATURES
from engine.pipeline import PacketPathStats, iter_flow_records
from engine.sources import SOURCE_KINDS, open_source

CSV_COLUMNS = (
    "ts",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "proto",
    "ip_proto",
    "community_id",
    "duration",
    "orig_pkts",
    "resp_pkts",
    "orig_ip_bytes",
    "resp_ip_bytes",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "history",
    "end_reason",
    "vlan",
    *FEATURES,
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "flows",
        help="stream flow records of a capture",
        description="Track flows in a capture and write one record per flow as it ends.",
    )
    p.add_argument("input", help="pcap/pcapng file (pcap, dpdk) or interface name (live)")
    p.add_argument("--source", choices=SOURCE_KINDS, default="pcap")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("-o", "--output", help="write here instead of standard output")
    p.add_argument("--filter", dest="bpf_filter", help="BPF filter (live capture)")
    p.add_argument("--dpdk-config", help="dpdk.yaml to use (default: config/dpdk.yaml settings)")
    p.add_argument("--count", type=int, help="stop a live capture after this many packets")
    p.add_argument("--stats", action="store_true", help="print packet-path counters to stderr")
    p.add_argument("--config", help="configuration file (default: config/shrike.yaml)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"shrike flows: {exc}", file=sys.stderr)
        return 2
    try:
        source = open_source(
            args.source,
            args.input,
            bpf_filter=args.bpf_filter,
            dpdk_config=args.dpdk_config,
            packet_limit=args.count,
        )
    except (CaptureError, OSError, ValueError) as exc:
        print(f"shrike flows: {exc}", file=sys.stderr)
        return 2
    note_first_compile()
    out: IO[str] = open(args.output, "w", newline="") if args.output else sys.stdout  # noqa: SIM115
    stats = PacketPathStats()
    writer = None
    if args.format == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
    status = 0
    try:
        with source, packet_progress(enabled=not args.no_progress) as tick:
            for records in iter_flow_records(source, config.flows, stats=stats, on_batch=tick):
                for rec in records.to_dicts():
                    if writer is not None:
                        writer.writerow(rec)
                    else:
                        out.write(json.dumps(rec, separators=(",", ":")))
                        out.write("\n")
    except CaptureError as exc:
        # every good packet before the damage has been processed and written
        print(f"shrike flows: {exc}", file=sys.stderr)
        status = 1
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()
    if args.stats:
        print(json.dumps(stats.as_dict()), file=sys.stderr)
    return status
