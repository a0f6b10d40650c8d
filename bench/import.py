"""Benchmark: Snort/Suricata rule import speed, with idstools' bare parse of the same files beside it.

    python bench/import.py [--ruleset et-open-suricata-5.0] [--repeats 5]

Reads every `.rules` file of one ruleset in ../shared/data/rulesets into
memory, then times, on one CPU, (a) idstools.rule.parse_fileobj over the text
(tokenizing only: header and option list, no meaning) and (b) Shrike's import
(tokenize, translate every option into the AST, build the report).  Prints
the median over the repeats in rules/s, and the ratio.  File reading is
outside the timed part for both.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path; its other scripts'
# names (e.g. a bench module called like a standard module) must not shadow the library.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import io
import os
import statistics
import time
from collections.abc import Callable

SHARED_RULESETS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rulesets"


def _pin_one_cpu() -> None:
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})


def _time(work: Callable[[], int], repeats: int) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ruleset", default="et-open-suricata-5.0")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    folder = SHARED_RULESETS / args.ruleset
    files = sorted(folder.glob("*.rules"))
    if not files:
        print(f"no .rules files under {folder}", file=sys.stderr)
        return 2
    texts = [(str(p), p.read_text(encoding="utf-8", errors="surrogateescape")) for p in files]

    import idstools.rule

    from integrations.snort.importer import import_text

    def idstools_parse() -> int:
        return sum(len(idstools.rule.parse_fileobj(io.StringIO(text))) for _, text in texts)

    def shrike_import() -> int:
        return sum(len(import_text(text, name).rules) for name, text in texts)

    _pin_one_cpu()
    shrike_import()  # warm caches (regex compilation, imports)
    peer_time, peer_rules = _time(idstools_parse, args.repeats)
    own_time, own_rules = _time(shrike_import, args.repeats)

    print(f"ruleset {args.ruleset}: {len(files)} files, median of {args.repeats} runs, one CPU")
    print(f"{'what':<44} {'rules':>7} {'seconds':>9} {'rules/s':>9}")
    print("-" * 72)
    rows = [
        ("idstools.rule.parse_fileobj (tokenize only)", peer_rules, peer_time),
        ("shrike import (tokenize + translate to AST)", own_rules, own_time),
    ]
    for label, count, seconds in rows:
        print(f"{label:<44} {count:>7} {seconds:>9.3f} {count / seconds:>9.0f}")
    print(f"shrike / idstools speed: {(own_rules / own_time) / (peer_rules / peer_time):.2f}x")
    if own_rules != peer_rules:
        print(
            f"note: idstools returned {peer_rules} rules, Shrike {own_rules} "
            "(idstools skips rules it cannot parse, such as Snort 3 rules without addresses)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
