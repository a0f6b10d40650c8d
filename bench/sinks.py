"""Benchmark: verdicts per second into the embedded store and through the Elasticsearch sink.

    python bench/sinks.py [--store-verdicts 20000] [--es-verdicts 10000] [--repeats 3]

Each figure is the median of the repeats, with a peer measured in the same run:

- embedded store: `StoreSink` (WAL, one transaction per batch, technique table,
  ECS document kept) against a naive writer that inserts the same ECS document
  and columns with one transaction per verdict.
- Elasticsearch: `ElasticsearchSink` (queue, sender thread, batches, retries)
  against a plain loop of `elasticsearch.helpers.bulk` over `to_ecs` documents,
  both into the same local HTTP server that speaks the bulk API (the test
  suite's, in a process of its own, with its mapping checks off so the client
  side is what is timed).
- encoding alone (`to_ecs` + JSON), the floor both sinks share.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# import from the repository root, not from bench/ (whose module names may shadow the stdlib)
sys.path[0] = str(ROOT)
sys.path.insert(0, str(ROOT / "tests" / "engine" / "sinks"))

from elasticsearch import helpers  # noqa: E402

from engine.ecs import to_ecs  # noqa: E402
from engine.events import (  # noqa: E402
    AnomalyScore,
    Contribution,
    Detection,
    FlowKey,
    Match,
    Verdict,
)
from engine.sinks.base import encode  # noqa: E402
from engine.sinks.config import ElasticsearchConfig, StoreConfig  # noqa: E402
from engine.sinks.deadletter import DeadLetterFile  # noqa: E402
from engine.sinks.elasticsearch import ElasticsearchSink, build_client  # noqa: E402
from engine.sinks.store import StoreSink  # noqa: E402
from integrations.elastic.setup import es_setup  # noqa: E402

STREAM = "logs-shrike.alert-default"
TECHNIQUES = ("T1046", "T1105", "T1071.001", "T1595.001", "T1059.001", "T1048")


def make_verdicts(n: int, seed: int = 7) -> list[Verdict]:
    """A mix like a busy sensor's: two thirds signatures (some with an anomaly score), the rest
    behavioural detections and pure anomalies."""
    rng = random.Random(seed)
    out: list[Verdict] = []
    t0 = 1_714_564_800.0
    for i in range(n):
        ts = t0 + i * 0.01
        flow = FlowKey(
            f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            rng.randrange(1024, 65535),
            f"192.0.2.{rng.randrange(1, 255)}",
            rng.choice((22, 53, 80, 443, 445, 3389)),
            rng.choice((6, 6, 6, 17)),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        )
        tech = rng.choice(TECHNIQUES)
        kind = i % 3
        if kind < 2:
            m = Match(
                ts,
                flow,
                9_000_000 + rng.randrange(500),
                f"Signature {rng.randrange(500)}",
                rng.choice(("low", "medium", "high")),
                classtype="trojan-activity",
                techniques=(tech,),
                references=("url,example.com/rule",),
                app_proto=rng.choice(("http", "tls", "dns", None)),
                packet=i,
            )
            anomaly = (
                AnomalyScore(ts, flow, rng.random(), 0.7, "iforest", "3", ("bytes z=5.0",))
                if kind == 1
                else None
            )
            out.append(
                Verdict(
                    ts,
                    rng.uniform(30, 95),
                    "malicious",
                    m.severity,
                    flow=flow,
                    techniques=(tech,),
                    contributions=(Contribution("signature", m.title, "rule matched", 60.0),),
                    matches=(m,),
                    anomaly=anomaly,
                )
            )
        else:
            d = Detection(
                ts,
                "port_scan",
                flow.src_ip,
                "TCP SYN scan from one source",
                "medium",
                0.8,
                techniques=("T1046",),
                window_start=ts - 60,
                evidence={"distinct_ports": rng.randrange(25, 2000), "window_s": 60},
            )
            out.append(
                Verdict(
                    ts,
                    55.0,
                    "suspicious",
                    "medium",
                    host=flow.src_ip,
                    techniques=("T1046",),
                    contributions=(Contribution("detection", "port_scan", "many ports", 55.0),),
                    detections=(d,),
                )
            )
    return out


# ---- peers -------------------------------------------------------------------------------


def naive_sqlite(path: Path, verdicts: list[Verdict], *, wal: bool = False) -> None:
    """One INSERT and one COMMIT per verdict, same document as the store keeps; SQLite's
    default journal and syncing unless `wal`."""
    db = sqlite3.connect(path)
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS naive (id INTEGER PRIMARY KEY, ts REAL, severity TEXT, "
        "label TEXT, score REAL, src_ip TEXT, techniques TEXT, doc TEXT)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS naive_ts ON naive(ts)")
    for v in verdicts:
        doc = json.dumps(to_ecs(v), separators=(",", ":"))
        src = v.flow.src_ip if v.flow else v.host
        with db:
            db.execute(
                "INSERT INTO naive (ts, severity, label, score, src_ip, techniques, doc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (v.ts, v.severity, v.label, v.score, src, " ".join(v.techniques), doc),
            )
    db.close()


def store_sink(path: Path, verdicts: list[Verdict]) -> None:
    with StoreSink(
        StoreConfig(), data_dir=path.parent, dead_letter=DeadLetterFile(path.parent / "dead")
    ) as sink:
        for i in range(0, len(verdicts), 256):
            sink.write_batch(verdicts[i : i + 256])


def es_sink(url: str, namespace: str, verdicts: list[Verdict]) -> None:
    cfg = ElasticsearchConfig(url=url, batch_docs=500, namespace=namespace)
    with ElasticsearchSink(cfg, dead_letter=DeadLetterFile("/dev/null")) as sink:
        for i in range(0, len(verdicts), 256):
            sink.write_batch(verdicts[i : i + 256])
    if sink.stats.delivered != len(verdicts):
        raise SystemExit(f"ES sink delivered {sink.stats.delivered} of {len(verdicts)}")


def plain_bulk(url: str, namespace: str, verdicts: list[Verdict]) -> None:
    client = build_client(ElasticsearchConfig(url=url))
    index = f"logs-shrike.alert-{namespace}"
    actions = (
        {"_op_type": "create", "_index": index, "_id": str(i), "_source": to_ecs(v)}
        for i, v in enumerate(verdicts)
    )
    ok, errors = helpers.bulk(client, actions, chunk_size=500, raise_on_error=False)
    client.close()
    if ok != len(verdicts):
        raise SystemExit(f"helpers.bulk indexed {ok} of {len(verdicts)}: {errors[:1]}")


def encode_only(verdicts: list[Verdict]) -> None:
    for v in verdicts:
        encode(v)


# ---- harness -----------------------------------------------------------------------------


def timed(repeats: int, prepare: Callable[[], object], run: Callable[[object], None]) -> float:
    samples = []
    for _ in range(repeats):
        state = prepare()
        t = time.perf_counter()
        run(state)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--store-verdicts", type=int, default=20_000)
    ap.add_argument("--naive-verdicts", type=int, default=2_000)
    ap.add_argument("--es-verdicts", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    rows: list[tuple[str, int, float]] = []
    store_v = make_verdicts(args.store_verdicts)
    naive_v = store_v[: args.naive_verdicts]
    es_v = make_verdicts(args.es_verdicts, seed=11)

    rows.append(
        (
            "encode only (to_ecs + JSON)",
            len(store_v),
            timed(args.repeats, lambda: None, lambda _s: encode_only(store_v)),
        )
    )

    def fresh_db() -> Path:
        return Path(tempfile.mkdtemp(prefix="shrike-bench-")) / "shrike.db"

    rows.append(
        (
            "store: StoreSink (batched, WAL)",
            len(store_v),
            timed(args.repeats, fresh_db, lambda p: store_sink(p, store_v)),
        )
    )  # type: ignore[arg-type]
    rows.append(
        (
            "store peer: one commit per verdict",
            len(naive_v),
            timed(args.repeats, fresh_db, lambda p: naive_sqlite(p, naive_v)),  # type: ignore[arg-type]
        )
    )
    rows.append(
        (
            "store peer: one commit per verdict, WAL",
            len(store_v),
            timed(args.repeats, fresh_db, lambda p: naive_sqlite(p, store_v, wal=True)),  # type: ignore[arg-type]
        )
    )

    # the server runs in a process of its own, as a cluster would, so that its work does not
    # compete with the client's for this interpreter's lock
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "engine" / "sinks" / "esfake.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        client = build_client(ElasticsearchConfig(url=url))
        es_setup(client, data_stream=STREAM, where=url)
        client.close()
        runs = iter(range(1_000_000))
        rows.append(
            (
                "ES: ElasticsearchSink -> local bulk server",
                len(es_v),
                timed(args.repeats, lambda: f"sink{next(runs)}", lambda ns: es_sink(url, ns, es_v)),
            )
        )
        rows.append(
            (
                "ES peer: plain helpers.bulk loop",
                len(es_v),
                timed(
                    args.repeats, lambda: f"peer{next(runs)}", lambda ns: plain_bulk(url, ns, es_v)
                ),
            )
        )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)

    print(f"median of {args.repeats} runs; verdicts/s (higher is better)\n")
    print(f"{'writer':<44} {'verdicts':>9} {'seconds':>9} {'verdicts/s':>11}")
    for name, n, secs in rows:
        print(f"{name:<44} {n:>9} {secs:>9.3f} {n / secs:>11,.0f}")
    rate = {name: n / secs for name, n, secs in rows}
    print()
    store = rate["store: StoreSink (batched, WAL)"]
    print(
        f"store vs one commit per verdict: {store / rate['store peer: one commit per verdict']:.1f}x"
    )
    print(
        "store vs one commit per verdict, WAL: "
        f"{store / rate['store peer: one commit per verdict, WAL']:.2f}x"
    )
    print(
        "ES sink vs plain helpers.bulk: "
        f"{rate['ES: ElasticsearchSink -> local bulk server'] / rate['ES peer: plain helpers.bulk loop']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
