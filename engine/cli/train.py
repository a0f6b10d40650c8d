"""`shrike train`: learn an anomaly model from captures taken as normal traffic."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dpdk_io.errors import CaptureError
from engine.anomaly import MODEL_KINDS, TrainOptions, save_model
from engine.anomaly.training import train_from_captures
from engine.cli.progress import note_first_compile
from engine.config import ConfigError, load_config


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="learn an anomaly model from normal traffic",
        description="Track flows in captures of normal traffic and fit an anomaly model "
        "on their features; the model is written in skops format.",
    )
    p.add_argument(
        "--pcap", nargs="+", required=True, metavar="FILE", help="captures of normal traffic"
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="MODEL", help="model file to write (.skops)"
    )
    p.add_argument("--kind", choices=MODEL_KINDS, default="isolation_forest")
    p.add_argument("--trees", type=int, default=200, help="isolation forest: trees")
    p.add_argument("--max-samples", type=int, default=512, help="isolation forest: rows per tree")
    p.add_argument(
        "--contamination",
        type=float,
        default=0.01,
        help="share of training flows above the decision threshold",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", help="configuration file (flow table settings)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
        options = TrainOptions(
            kind=args.kind,
            n_estimators=args.trees,
            max_samples=args.max_samples,
            contamination=args.contamination,
            seed=args.seed,
        )
    except (ConfigError, ValueError) as exc:
        print(f"shrike train: {exc}", file=sys.stderr)
        return 2
    note_first_compile()

    def said(path: str, rows: int) -> None:
        print(f"{path}: {rows} flows", file=sys.stderr)

    try:
        model = train_from_captures(args.pcap, options, flow_config=cfg.flows, on_capture=said)
        save_model(model, args.output)
    except (CaptureError, OSError, ValueError) as exc:
        print(f"shrike train: {exc}", file=sys.stderr)
        return 1
    s = model.summary
    print(
        f"model {model.version}: {model.kind} on {s['rows']} flows from "
        f"{len(s['sources'])} captures, {len(model.features)} features -> {args.output}"
    )
    return 0
