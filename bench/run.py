"""Whole-pipeline throughput of `shrike run`'s packet path: pcap -> decode -> flows -> matcher.

For each ruleset (none, the Snort 3 community rules, ET Open) and each worker
count every run happens in a fresh process; the table gives the median packets/s
of N runs, the peak RSS (the largest process's, with workers) and the rule
compile time. With `--workers 1,2` each ruleset is also matched with its flows
sharded across two processes (`shrike run --workers 2`). When a `snort` binary is
on PATH it runs in the same script on the same capture for the ratio; otherwise
the reference figures are quoted. Snort 3 takes one capture file on one packet
thread, so the ratio for several workers compares wall-clock rates on one file.

    python3 ../shared/bench/make_bench_pcap.py /tmp/bench.pcap
    python3 bench/run.py /tmp/bench.pcap [--runs 3] [--limit PACKETS] [--rulesets none,community,et] [--workers 1,2]
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds a script named like a standard-library module; keep it off the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "rulesets"
RULESETS = {
    "none": [],
    "community": [DATA / "snort3-community" / "snort3-community.rules"],
    "et": sorted((DATA / "et-open-snort-2.9.0").glob("*.rules")),
}
SNORT_REFERENCE = {"none": 430_000, "community": 300_000}


def one_run(pcap: str, ruleset: str, limit: int | None, workers: int = 1) -> dict[str, float]:
    """Run the pipeline once in this process (and its workers); return packets, seconds,
    compile time, alerts."""
    sys.path.insert(0, str(ROOT))
    from engine.decode import decode
    from engine.flows import FlowTable, FlowTableConfig
    from engine.match import Matcher, compile_ruleset, load_rules
    from engine.match.loading import default_variables
    from engine.match.stream import BatchResult, checksum_validator, iter_matches
    from engine.match.workers import iter_matches_sharded
    from engine.pipeline import PacketPathStats, freeze_startup_heap, keep_batch_memory
    from engine.sources import open_source

    checksums = checksum_validator("all")
    assert checksums is not None

    compile_s = 0.0
    rules_n = 0
    matcher = None
    if RULESETS[ruleset]:
        t0 = time.perf_counter()
        rules, table, _ = load_rules(
            RULESETS[ruleset], default_variables({"HOME_NET": "any", "EXTERNAL_NET": "any"})
        )
        compiled = compile_ruleset(rules, table)
        compile_s = time.perf_counter() - t0
        rules_n = len(compiled)
        inspector = None
        if compiled.needs_inspection:
            from engine.inspect import Inspector

            inspector = Inspector()
        matcher = Matcher(compiled, inspector=inspector)
    else:
        from engine.match.compiler import compile_ruleset as empty

        matcher = Matcher(empty([]))
    # warm up: the compiled packet kernels load from their cache on first use; that
    # one-off cost belongs to start-up, not to the throughput
    with open_source("pcap", pcap) as source:
        first = source.next_batch()
    if first is not None:
        decoded = decode(first)
        warm = Matcher(matcher.ruleset, inspector=matcher.inspector)
        warm.scan(first, decoded, FlowTable().update(decoded), checksums(first, decoded))
    stats = PacketPathStats()
    alerts = 0
    if matcher.inspector is not None:
        from engine.inspect import Inspector

        matcher.inspector = Inspector()
    freeze_startup_heap()  # as `shrike run` does before the packets flow
    keep_batch_memory()
    t0 = time.perf_counter()
    with open_source("pcap", pcap) as source:
        sharded = None
        results: Iterator[BatchResult]
        if workers > 1:
            results = sharded = iter_matches_sharded(
                source,
                lambda: open_source("pcap", pcap),
                matcher,
                workers,
                FlowTableConfig(),
                stats=stats,
                checksums=checksums,
            )
        else:
            results = iter_matches(
                source, matcher, FlowTableConfig(), stats=stats, checksums=checksums
            )
        for result in results:
            alerts += len(result.alerts)
            if limit and stats.packets >= limit:
                break
        if sharded is not None:
            sharded.close()  # the workers end (and count in RUSAGE_CHILDREN) with the loop
    elapsed = time.perf_counter() - t0
    rss_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {
        "packets": stats.packets,
        "seconds": elapsed,
        "compile_s": compile_s,
        "rules": rules_n,
        "alerts": alerts,
        "rss_mb": rss_kb / 1024,
    }


def snort_run(pcap: str, ruleset: str) -> float | None:
    snort = shutil.which("snort")
    if snort is None:
        return None
    cmd = [
        snort,
        "-q",
        "-r",
        pcap,
        "-A",
        "none",
        "--lua",
        "search_engine={search_method='hyperscan'}",
    ]
    for f in RULESETS[ruleset]:
        cmd += ["-R", str(f)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=False, capture_output=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("pcap")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--limit", type=int, help="stop after this many packets")
    ap.add_argument("--rulesets", default="none,community,et")
    ap.add_argument(
        "--workers", default="1", help="worker counts to measure, e.g. 1,2 (rules only)"
    )
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",") if w]
    if args.one:
        print(json.dumps(one_run(args.pcap, args.one, args.limit, counts[0])))
        return 0
    if not Path(args.pcap).exists():
        print(
            f"bench/run.py: {args.pcap} not found (make it with make_bench_pcap.py)",
            file=sys.stderr,
        )
        return 2
    names = [n for n in args.rulesets.split(",") if n]
    sys.path.insert(0, str(ROOT))
    from rules import _compiled

    print(f"capture {args.pcap}, {args.runs} runs each, limit {args.limit or 'none'}")
    print(f"build: {_compiled.status()}")  # the inspector and matcher run compiled or not
    print(
        f"{'ruleset':<10} {'workers':>7} {'rules':>6} {'compile s':>9} {'packets':>9} "
        f"{'median pps':>11} {'runs pps':<28} {'peak RSS MB':>11} {'alerts':>7} "
        f"{'snort pps':>10} {'ratio':>6}"
    )
    for name in names:
        if any(not Path(f).exists() for f in RULESETS[name]):
            print(f"{name:<10} ruleset files absent, skipped")
            continue
        ways = [w for w in counts if w == 1 or RULESETS[name]]  # no rules: nothing to shard
        results: dict[int, list[dict[str, float]]] = {w: [] for w in ways}
        for _ in range(args.runs):  # worker counts in turn, so a slow spell hits each alike
            for w in ways:
                cmd = [sys.executable, __file__, args.pcap, "--one", name, "--workers", str(w)]
                if args.limit:
                    cmd += ["--limit", str(args.limit)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                results[w].append(json.loads(out.strip().splitlines()[-1]))
        snort_s = snort_run(args.pcap, name)
        for w, runs in results.items():
            pps = [r["packets"] / r["seconds"] for r in runs]
            med = statistics.median(pps)
            snort_pps: float | None
            if snort_s is not None:
                snort_pps = runs[0]["packets"] / snort_s
                snort_txt = f"{snort_pps:>10.0f}"
            else:
                snort_pps = SNORT_REFERENCE.get(name)
                snort_txt = f"{snort_pps:>9}*" if snort_pps else f"{'n/a':>10}"
            ratio = f"{med / snort_pps:>6.2f}" if snort_pps else f"{'n/a':>6}"
            print(
                f"{name:<10} {w:>7} {runs[0]['rules']:>6} "
                f"{statistics.median(r['compile_s'] for r in runs):>9.2f} "
                f"{runs[0]['packets']:>9} {med:>11.0f} {' '.join(f'{p:.0f}' for p in pps):<28} "
                f"{max(r['rss_mb'] for r in runs):>11.0f} {runs[0]['alerts']:>7} {snort_txt} {ratio}"
            )
    if shutil.which("snort") is None:
        print(
            "* no snort binary on PATH: reference figures quoted (Snort 3 with Hyperscan, "
            "~300k pps with the community rules, ~430k with none)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
