"""`shrike demo`: generate the bundled sample traffic and run Shrike over it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.sample import write_sample_pcap
from engine.store import default_data_dir

# The shipped signature library, beside the packages in a source checkout.
SIGNATURES = Path(__file__).resolve().parents[2] / "signatures"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run Shrike on generated sample traffic",
        description=(
            "Write the bundled sample capture into the data directory and run Shrike on it: "
            "the shipped signatures, the behavioural detectors and the anomaly model, "
            "with verdicts in the embedded store."
        ),
    )
    p.add_argument("--data-dir", help="embedded store directory")
    p.set_defaults(func=demo)


def demo(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or str(default_data_dir())
    pcap = f"{data_dir}/sample/sample.pcap"
    n = write_sample_pcap(pcap)
    print(f"sample traffic: {pcap} ({n} packets)")
    # through the real parser, so the demo runs exactly what `shrike run` would
    from engine.cli import main

    argv = ["run", "--pcap", pcap, "--data-dir", data_dir]
    if SIGNATURES.is_dir():
        argv += ["--rules", str(SIGNATURES)]
    status = main(argv)
    if status == 0:
        print(f"see the verdicts: shrike alerts --data-dir {data_dir}")
    return status
