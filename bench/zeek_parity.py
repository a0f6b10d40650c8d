#!/usr/bin/env python3
"""Zeek parity: Shrike flow records against Zeek's conn.log for every trace in shared/data/zeek.

usage: bench/zeek_parity.py [ZEEK_DIR] [--details]

Prints, per trace, the share of Zeek connections whose packets, IP bytes and
conn_state Shrike reproduces exactly (matched on the 5-tuple), then the totals.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dpdk_io.pcap import PcapSource
from engine.pipeline import iter_flow_records
from integrations.zeek.parity import ParityResult, compare

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "zeek"


def run(zeek_dir: Path) -> list[ParityResult]:
    index = json.loads((zeek_dir / "index.json").read_text())
    results = []
    for pair in index["pairs"]:
        flows: list[dict[str, Any]] = []
        with PcapSource(zeek_dir / pair["trace"]) as src:
            for recs in iter_flow_records(src):
                flows.extend(recs.to_dicts())
        results.append(compare(pair["trace"], zeek_dir / pair["conn_log"], flows))
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("zeek_dir", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--details", action="store_true", help="print every mismatch")
    args = ap.parse_args()
    if not (args.zeek_dir / "index.json").exists():
        print(f"no index.json under {args.zeek_dir}", file=sys.stderr)
        return 2
    results = run(args.zeek_dir)
    print(f"{'trace':58} {'conns':>5} {'pkts':>7} {'bytes':>7} {'state':>7}")
    tot = ParityResult(trace="total")
    for r in results:
        print(
            f"{r.trace:58} {r.zeek_conns:5d} {r.share(r.packets_equal):7.1%} "
            f"{r.share(r.bytes_equal):7.1%} {r.share(r.state_equal):7.1%}"
        )
        tot.zeek_conns += r.zeek_conns
        tot.packets_equal += r.packets_equal
        tot.bytes_equal += r.bytes_equal
        tot.state_equal += r.state_equal
        if args.details:
            for m in r.mismatches:
                print("    ", m)
    print(
        f"{'TOTAL':58} {tot.zeek_conns:5d} {tot.share(tot.packets_equal):7.1%} "
        f"{tot.share(tot.bytes_equal):7.1%} {tot.share(tot.state_equal):7.1%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
