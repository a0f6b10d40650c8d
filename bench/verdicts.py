"""Verdicts on labelled attack captures and on benign captures.

For each capture in ../shared/data/attack-pcaps (labels.csv): the verdicts and
whether one carries the labelled ATT&CK technique (or a sub-technique of it).
For the benign captures in ../shared/data/pcaps: verdicts per 10k flows by
label, split into the captures the shipped model was trained on and the held-out
ones (bench/train_default_model.py).

    python3 bench/verdicts.py [--model MODEL] [--no-model]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# run as a script, this folder heads sys.path: no sibling may shadow a standard module
sys.path[0] = str(ROOT)
sys.path.append(str(ROOT / "bench"))

import argparse  # noqa: E402
import csv  # noqa: E402
from collections import Counter  # noqa: E402

from engine.anomaly import Scorer  # noqa: E402
from engine.events import LABELS, Verdict  # noqa: E402
from engine.hybrid import HybridEngine, HybridStats, run_hybrid  # noqa: E402
from engine.sources import open_source  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def analyse(path: Path, scorer: Scorer | None) -> tuple[list[Verdict], HybridStats]:
    engine = HybridEngine(scorer=scorer)
    with open_source("pcap", str(path)) as src:
        verdicts = list(run_hybrid(src, engine))
    return verdicts, engine.stats


def carries(verdicts: list[Verdict], technique: str) -> bool:
    """A verdict tagged with the technique itself or one of its sub-techniques."""
    return any(
        t == technique or t.startswith(technique + ".") for v in verdicts for t in v.techniques
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", help="anomaly model (default: the shipped one)")
    ap.add_argument("--no-model", action="store_true", help="detectors only")
    args = ap.parse_args()
    if not (DATA / "attack-pcaps" / "labels.csv").is_file():
        print(f"shared data absent: no {DATA / 'attack-pcaps' / 'labels.csv'}", file=sys.stderr)
        return 2
    scorer = None if args.no_model else Scorer.load(args.model)
    print("## Attack captures\n")
    print("| capture | label | verdicts | labelled technique carried | techniques |")
    print("|---|---|---:|---|---|")
    hit = total = 0
    with (DATA / "attack-pcaps" / "labels.csv").open() as fh:
        for row in csv.DictReader(fh):
            verdicts, _ = analyse(DATA / "attack-pcaps" / row["file"], scorer)
            tech = row["attack_technique"]
            techs = sorted({t for v in verdicts for t in v.techniques})
            ok = carries(verdicts, tech) if tech else None
            if tech:
                total += 1
                hit += bool(ok)
            mark = "n/a (unlabelled)" if ok is None else ("yes" if ok else "NO")
            print(
                f"| {row['file']} | {tech or '-'} | {len(verdicts)} | {mark} | {', '.join(techs)} |"
            )
    print(f"\n{hit}/{total} labelled captures yield a verdict carrying their technique.\n")

    from train_default_model import held_out_captures, training_captures

    groups = {"trained on": training_captures(), "held out": held_out_captures()}
    print("## Benign captures: verdicts per 10k flows\n")
    print("| captures | files | flows | " + " | ".join(LABELS[:-1]) + " | detections by detector |")
    print("|---|---:|---:|" + "---:|" * (len(LABELS) - 1) + "---|")
    for name, paths in groups.items():
        flows = 0
        labels: Counter[str] = Counter()
        dets: Counter[str] = Counter()
        for p in paths:
            _, st = analyse(p, scorer)
            flows += st.flows
            labels.update(st.labels)
            dets.update(st.detectors)
        rates = " | ".join(f"{1e4 * labels[lab] / max(flows, 1):.1f}" for lab in LABELS[:-1])
        det_text = ", ".join(f"{k} {v}" for k, v in dets.most_common()) or "-"
        print(f"| {name} | {len(paths)} | {flows} | {rates} | {det_text} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
