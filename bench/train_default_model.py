"""Train the anomaly model Shrike ships (engine/models/default-flow-model.skops).

The training traffic is the benign half of the real-application captures in
../shared/data/pcaps (nDPI's protocol-classification captures, see that folder's
PROVENANCE.md): every other nDPI capture in name order. The other half, the
Zeek and suricata-verify captures are held out, so bench/verdicts.py can
report how often the model flags traffic it never saw.

    python3 bench/train_default_model.py            # writes the shipped model
    python3 bench/train_default_model.py -o /tmp/m.skops --kind ocsvm
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# run as a script, this folder heads sys.path: no sibling may shadow a standard module
sys.path[0] = str(ROOT)

import argparse  # noqa: E402

from engine.anomaly import DEFAULT_MODEL, MODEL_KINDS, TrainOptions, save_model  # noqa: E402
from engine.anomaly.training import train_from_captures  # noqa: E402

PCAPS = ROOT.parent / "shared" / "data" / "pcaps"


def training_captures(pcaps: Path = PCAPS) -> list[Path]:
    """Every other nDPI capture, in name order (the rest are held out)."""
    ndpi = sorted(p for p in (pcaps / "ndpi").iterdir() if p.suffix in (".pcap", ".pcapng"))
    return ndpi[::2]


def held_out_captures(pcaps: Path = PCAPS) -> list[Path]:
    every = sorted(p for p in pcaps.rglob("*") if p.suffix in (".pcap", ".pcapng"))
    train = set(training_captures(pcaps))
    return [p for p in every if p not in train]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-o", "--output", default=str(DEFAULT_MODEL))
    ap.add_argument("--kind", choices=MODEL_KINDS, default="isolation_forest")
    args = ap.parse_args()
    if not (PCAPS / "ndpi").is_dir():
        print(f"training captures absent: no {PCAPS / 'ndpi'}", file=sys.stderr)
        return 2
    paths = training_captures()
    model = train_from_captures(
        paths,
        TrainOptions(kind=args.kind, n_estimators=100, max_samples=256),
        on_capture=lambda p, n: print(f"{Path(p).name:40s} {n:6d} flows", file=sys.stderr),
    )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    save_model(model, args.output)
    size = Path(args.output).stat().st_size
    print(
        f"{model.version}: {model.summary['rows']} flows from {len(paths)} captures, "
        f"{size / 1024:.0f} KiB -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
