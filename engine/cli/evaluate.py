"""`shrike evaluate`: measure anomaly models on labelled data (ROC AUC, PR AUC, recall at 1% FPR)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from dpdk_io.errors import CaptureError
from engine.anomaly import MODEL_KINDS, ModelError, Scorer
from engine.anomaly.evaluation import ModelRun, capture_run, nslkdd_runs
from engine.anomaly.metrics import write_plots
from engine.anomaly.nslkdd import NslKddError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="measure anomaly models on labelled data",
        description="Score labelled data and print ROC AUC, PR AUC and recall at 1%% "
        "false-positive rate; write a ROC curve and score histograms as PNG. Either "
        "--nsl-kdd DIR (train each model kind on KDDTrain+ normal records, score "
        "KDDTest+), or --model with --benign and --attack captures (every flow of an "
        "attack capture counts as an attack).",
    )
    p.add_argument("--nsl-kdd", metavar="DIR", help="folder with KDDTrain+.txt and KDDTest+.txt")
    p.add_argument(
        "--kind",
        nargs="+",
        choices=MODEL_KINDS,
        default=list(MODEL_KINDS),
        help="model kinds to train for --nsl-kdd (default: all)",
    )
    p.add_argument("--model", help="flow model to evaluate on captures (default: the shipped one)")
    p.add_argument(
        "--benign", nargs="+", default=[], metavar="PCAP", help="captures of normal traffic"
    )
    p.add_argument("--attack", nargs="+", default=[], metavar="PCAP", help="captures of attacks")
    p.add_argument(
        "-o",
        "--output",
        default="evaluation",
        metavar="DIR",
        help="folder for roc.png and scores-*.png (default: ./evaluation)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.nsl_kdd and (args.benign or args.attack):
        print("shrike evaluate: use --nsl-kdd or --benign/--attack, not both", file=sys.stderr)
        return 2
    try:
        if args.nsl_kdd:
            labels, runs = nslkdd_runs(args.nsl_kdd, args.kind)
            title = "NSL-KDD KDDTest+"
        elif args.benign and args.attack:
            scorer = Scorer.load(args.model)
            labels, one = capture_run(scorer.model, args.benign, args.attack)
            runs = [one]
            title = "captures"
        else:
            print(
                "shrike evaluate: give --nsl-kdd DIR, or --benign and --attack captures",
                file=sys.stderr,
            )
            return 2
    except (NslKddError, ModelError, CaptureError, OSError, ValueError) as exc:
        print(f"shrike evaluate: {exc}", file=sys.stderr)
        return 1
    print_table(labels, runs)
    written = write_plots(labels, {r.name: r.scores for r in runs}, Path(args.output), title)
    for path in written:
        print(f"wrote {path}")
    return 0


def print_table(labels: np.ndarray, runs: list[ModelRun]) -> None:
    pos = int(np.sum(labels))
    print(f"{len(labels)} records: {pos} attack, {len(labels) - pos} normal")
    print(f"{'model':18s} {'ROC AUC':>8s} {'PR AUC':>8s} {'recall@1%FPR':>13s}")
    for r in runs:
        e = r.evaluation
        print(f"{r.name:18s} {e.roc_auc:8.4f} {e.pr_auc:8.4f} {e.recall_at_1pct_fpr:13.4f}")
