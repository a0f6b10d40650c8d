"""Flow records per second through the detectors, the anomaly scorer and fusion.

Flow records of a capture are collected first (not timed); then each stage runs
over the same record batches, fresh state each repeat, and the median of the
repeats is reported. The peer is a plain Python implementation of three of the
detectors (port scan, host sweep, brute force) the way one writes them first:
a dict per key holding a deque of (time, item) events pruned on every event.
Shrike's own three are timed alone beside it.

    python3 ../shared/bench/make_bench_pcap.py /tmp/bench.pcap
    python3 bench/detectors.py /tmp/bench.pcap [--max-flows 200000] [--repeats 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# run as a script, this folder heads sys.path: no sibling may shadow a standard module
sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import defaultdict, deque  # noqa: E402
from collections.abc import Callable  # noqa: E402

from engine.anomaly import Scorer  # noqa: E402
from engine.detectors import DetectorsConfig, DetectorSet  # noqa: E402
from engine.detectors.base import ip_text  # noqa: E402
from engine.flows import FlowRecords  # noqa: E402
from engine.fusion import Fuser  # noqa: E402
from engine.hybrid import HybridEngine  # noqa: E402
from engine.pipeline import iter_flow_records  # noqa: E402
from engine.sources import open_source  # noqa: E402

LOGIN = frozenset(DetectorsConfig().brute_force.ports)


class NaivePeer:
    """Port scan, host sweep and brute force over per-record Python dicts."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self.ports: dict[tuple[str, str], deque[tuple[float, int]]] = defaultdict(deque)
        self.hosts: dict[tuple[str, int, int], deque[tuple[float, str]]] = defaultdict(deque)
        self.logins: dict[tuple[str, str, int], deque[float]] = defaultdict(deque)
        self.fired: set[tuple[str, ...]] = set()

    def observe(self, records: FlowRecords) -> int:
        c = {k: v.tolist() for k, v in records.columns.items()}
        fired = 0
        for i in range(len(records)):
            src = ip_text(c["src_hi"][i], c["src_lo"][i])
            dst = ip_text(c["dst_hi"][i], c["dst_lo"][i])
            t = c["ts"][i] + c["duration"][i]
            proto, dport = c["proto"][i], c["dport"][i]
            quiet = c["orig_pkts"][i] > 0 and (
                (proto == 6 and c["orig_bytes"][i] == 0 and c["resp_bytes"][i] == 0)
                or (proto == 17 and c["resp_pkts"][i] == 0)
            )
            if quiet:
                q = self.ports[(src, dst)]
                q.append((t, dport))
                while q and q[0][0] < t - self.window:
                    q.popleft()
                if len({p for _, p in q}) >= 15 and ("scan", src, dst) not in self.fired:
                    self.fired.add(("scan", src, dst))
                    fired += 1
                h = self.hosts[(src, proto, dport)]
                h.append((t, dst))
                while h and h[0][0] < t - self.window:
                    h.popleft()
                if len({d for _, d in h}) >= 15 and ("sweep", src, str(dport)) not in self.fired:
                    self.fired.add(("sweep", src, str(dport)))
                    fired += 1
            if proto == 6 and dport in LOGIN:
                lq = self.logins[(src, dst, dport)]
                lq.append(t)
                while lq and lq[0] < t - self.window:
                    lq.popleft()
                if len(lq) >= 10 and ("brute", src, dst) not in self.fired:
                    self.fired.add(("brute", src, dst))
                    fired += 1
        return fired


def only(names: set[str]) -> DetectorsConfig:
    cfg = DetectorsConfig()
    changes = {
        f.name: dataclasses.replace(getattr(cfg, f.name), enabled=f.name in names)
        for f in dataclasses.fields(cfg)
    }
    return dataclasses.replace(cfg, **changes)


def timed(
    batches: list[FlowRecords], make: Callable[[], Callable[[FlowRecords], object]], repeats: int
) -> tuple[float, object]:
    times, last = [], None
    for _ in range(repeats):
        step = make()
        t0 = time.perf_counter()
        for b in batches:
            last = step(b)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), last


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("pcap")
    ap.add_argument("--max-flows", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    batches: list[FlowRecords] = []
    total = 0
    with open_source("pcap", args.pcap) as src:
        for recs in iter_flow_records(src):
            batches.append(recs)
            total += len(recs)
            if total >= args.max_flows:
                break
    print(
        f"{total} flow records in {len(batches)} batches from {args.pcap}; median of {args.repeats} runs\n"
    )

    three = only({"port_scan", "host_sweep", "brute_force"})
    scorer = Scorer.load()
    stages: list[tuple[str, Callable[[], Callable[[FlowRecords], object]]]] = [
        ("peer: naive dict-per-key (3 detectors)", lambda: NaivePeer().observe),
        ("shrike: same 3 detectors", lambda: DetectorSet.from_config(three).observe_flows),
        ("shrike: all 13 detectors", lambda: DetectorSet.from_config().observe_flows),
        ("shrike: anomaly scorer alone", lambda: scorer.score),
        (
            "shrike: detectors + scorer + fusion",
            lambda: HybridEngine(scorer=scorer, fuser=Fuser()).process_records,
        ),
    ]
    print(f"| {'stage':40s} | {'seconds':>8s} | {'records/s':>10s} | vs peer |")
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 12}|---------|")
    base = None
    for name, make in stages:
        secs, _ = timed(batches, make, args.repeats)
        rate = total / secs
        base = base or rate
        print(f"| {name:40s} | {secs:8.3f} | {rate:10,.0f} | {rate / base:6.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
