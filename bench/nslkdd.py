"""Anomaly models on NSL-KDD: train on the normal records of KDDTrain+, score KDDTest+.

Prints ROC AUC, PR AUC and recall at 1 % false-positive rate per model kind,
the median over seeds, and the training time. NSL-KDD is read with its own 41
features (symbolic ones one-hot encoded), through the same scaling and models
as flow features.

    python3 bench/nslkdd.py [--data ../shared/data/nsl-kdd] [--seeds 3] [--plots DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# run as a script, this folder heads sys.path: no sibling may shadow a standard module
sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import statistics  # noqa: E402

from engine.anomaly import MODEL_KINDS  # noqa: E402
from engine.anomaly.evaluation import nslkdd_runs  # noqa: E402
from engine.anomaly.metrics import write_plots  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "nsl-kdd"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--plots", help="write roc.png and score histograms here")
    args = ap.parse_args()
    if not (Path(args.data) / "KDDTrain+.txt").is_file():
        print(f"NSL-KDD absent: no KDDTrain+.txt under {args.data}", file=sys.stderr)
        return 2
    per_kind: dict[str, list] = {k: [] for k in MODEL_KINDS}
    labels = None
    for seed in range(args.seeds):
        labels, runs = nslkdd_runs(args.data, MODEL_KINDS, seed=seed)
        for r in runs:
            per_kind[r.name].append(r)
    assert labels is not None
    first = per_kind[MODEL_KINDS[0]][0]
    print(
        f"KDDTest+: {len(labels)} records, {int(labels.sum())} attacks; trained on "
        f"{first.train_rows} normal KDDTrain+ records; median of {args.seeds} seeds\n"
    )
    print("| model | ROC AUC | PR AUC | recall at 1% FPR | train s |")
    print("|---|---:|---:|---:|---:|")
    for kind, runs in per_kind.items():
        med = statistics.median
        print(
            f"| {kind} | {med(r.evaluation.roc_auc for r in runs):.4f} "
            f"| {med(r.evaluation.pr_auc for r in runs):.4f} "
            f"| {med(r.evaluation.recall_at_1pct_fpr for r in runs):.4f} "
            f"| {med(r.train_seconds for r in runs):.1f} |"
        )
    if args.plots:
        curves = {kind: runs[0].scores for kind, runs in per_kind.items()}
        for path in write_plots(labels, curves, args.plots, "NSL-KDD KDDTest+"):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
