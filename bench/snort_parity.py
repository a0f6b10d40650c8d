"""Snort parity: Shrike and Snort 3 on the same captures with the same rules.

For every capture of ../shared/data that Snort 3 was run on (snort3-reference,
see its PROVENANCE.md), run Shrike with the Snort 3 community ruleset
(HOME_NET and EXTERNAL_NET = any, checksums verified, as Snort was run) and
compare alerts by (sid, packet number). Prints a table per capture with alerts
found both ways, only by Snort and only by Shrike, then the shares matched.

    python3 bench/snort_parity.py [--data DIR] [--limit N] [--show-missed]
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds a script named like a standard-library module; keep it off the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.match import Matcher, compile_ruleset, load_rules  # noqa: E402
from engine.match.compiler import CompiledRuleset  # noqa: E402
from engine.match.loading import default_variables  # noqa: E402
from engine.match.stream import checksum_validator, iter_matches  # noqa: E402
from engine.sources import open_source  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CAPTURE_DIRS = ("attack-pcaps", "pcaps", "suricata-verify", "zeek")


def capture_index(data: Path) -> dict[str, Path]:
    """Reference file stem (capture path with '/' as '_') -> capture path."""
    out: dict[str, Path] = {}
    for sub in CAPTURE_DIRS:
        base = data / sub
        if not base.exists():
            continue
        for p in base.rglob("*"):
            if p.suffix in (".pcap", ".pcapng", ".cap") and p.is_file():
                out[str(p.relative_to(data)).replace("/", "_")] = p
    return out


def reference_alerts(path: Path) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            gid, sid, _rev = rec["rule"].split(":")
            if gid == "1":
                out.add((int(sid), int(rec["pkt_num"])))
    return out


def shrike_alerts(capture: Path, ruleset: CompiledRuleset) -> set[tuple[int, int]]:
    inspector = None
    if ruleset.needs_inspection:
        from engine.inspect import Inspector

        inspector = Inspector()
    matcher = Matcher(ruleset, inspector=inspector)
    out: set[tuple[int, int]] = set()
    with open_source("pcap", str(capture)) as source:
        for result in iter_matches(source, matcher, checksums=checksum_validator("all")):
            for a in result.alerts:
                if a.match.packet is not None:
                    out.add((a.match.rule_id, a.match.packet))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--limit", type=int, help="only the first N captures")
    ap.add_argument("--show-missed", action="store_true", help="list unmatched alerts by sid")
    args = ap.parse_args(argv)
    ref_dir = args.data / "snort3-reference"
    rules_file = args.data / "rulesets" / "snort3-community" / "snort3-community.rules"
    if not ref_dir.exists() or not rules_file.exists():
        print(f"snort parity: data absent ({ref_dir} or {rules_file} missing)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    variables = default_variables({"HOME_NET": "any", "EXTERNAL_NET": "any"})
    rules, table, _notes = load_rules([rules_file], variables)
    ruleset = compile_ruleset(rules, table)
    print(
        f"rules: {len(ruleset)} compiled from {rules_file.name} in {time.perf_counter() - t0:.1f}s "
        f"({len(ruleset.diagnostics)} skipped)"
    )
    index = capture_index(args.data)
    refs = {p.name.removesuffix(".alert_json"): p for p in ref_dir.glob("*.alert_json")}
    names = sorted(set(index) | set(refs))
    if args.limit:
        names = names[: args.limit]
    both_total = snort_total = shrike_total = 0
    missed: Counter[int] = Counter()
    extra: Counter[int] = Counter()
    print(f"{'capture':<70} {'snort':>6} {'shrike':>6} {'both':>6}")
    for name in names:
        if name not in index:
            print(f"{name:<70} capture not found", file=sys.stderr)
            continue
        ref = reference_alerts(refs[name]) if name in refs else set()
        try:
            got = shrike_alerts(index[name], ruleset)
        except Exception as exc:  # a capture Shrike cannot read counts as no alerts
            print(f"{name:<70} error: {exc}", file=sys.stderr)
            got = set()
        both = ref & got
        both_total += len(both)
        snort_total += len(ref)
        shrike_total += len(got)
        missed.update(sid for sid, _ in ref - got)
        extra.update(sid for sid, _ in got - ref)
        if ref or got:
            print(f"{name[:70]:<70} {len(ref):>6} {len(got):>6} {len(both):>6}")
    if args.show_missed:
        print("only Snort (sid: alerts):", dict(missed.most_common(30)))
        print("only Shrike (sid: alerts):", dict(extra.most_common(30)))
    recall = both_total / snort_total if snort_total else 1.0
    precision = both_total / shrike_total if shrike_total else 1.0
    print(f"Snort alerts also raised by Shrike: {both_total}/{snort_total} ({100 * recall:.1f}%)")
    print(
        f"Shrike alerts also raised by Snort: {both_total}/{shrike_total} ({100 * precision:.1f}%)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
