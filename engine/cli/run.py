"""`shrike run`: run the packet path and the rules over captures or a live source; keep
flows in the store, hand verdicts to the sink, and write alerts as EVE JSON."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from dpdk_io.batch import Source
from dpdk_io.errors import CaptureError
from engine.anomaly.model import ModelError
from engine.cli.progress import note_first_compile, packet_progress
from engine.config import ConfigError, load_config
from engine.detectors.config import DetectorConfigError
from engine.eve import EveWriter
from engine.flows import FlowRecords
from engine.fusion import FusionConfigError
from engine.hybrid import HybridEngine
from engine.match import Matcher, RuleLoadError, compile_ruleset, load_rules
from engine.match.compiler import CompiledRuleset
from engine.match.loading import default_variables
from engine.match.stream import BatchResult, checksum_validator, iter_matches
from engine.match.workers import WorkerError, host_state_rules, iter_matches_sharded
from engine.pipeline import PacketPathStats, freeze_startup_heap, keep_batch_memory
from engine.sinks import Sink, SinkError, open_sink
from engine.sources import SOURCE_KINDS, open_source
from engine.store import FlowStore, StoreError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run Shrike over captures or a live source",
        description=(
            "Decode, track flows, match rules, run the behavioural detectors and the anomaly "
            "model, and fuse them into verdicts; flows and verdicts go to the embedded store "
            "(or verdicts to Elasticsearch with --es-url)."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pcap", nargs="+", metavar="FILE", help="pcap/pcapng files, in order")
    src.add_argument(
        "--source",
        choices=[k for k in SOURCE_KINDS if k != "pcap"],
        help="a DPDK port or live interface (with --input)",
    )
    p.add_argument(
        "--input", help="interface (live) or pcap to replay (dpdk; '-' for dpdk.yaml ports)"
    )
    p.add_argument("--filter", dest="bpf_filter", help="BPF filter (live capture)")
    p.add_argument("--dpdk-config", help="dpdk.yaml to use")
    p.add_argument("--count", type=int, help="stop a live capture after this many packets")
    p.add_argument(
        "--data-dir",
        help="embedded store directory (default: $SHRIKE_DATA_DIR or ~/.local/share/shrike)",
    )
    p.add_argument("--config", help="configuration file (default: config/shrike.yaml)")
    p.add_argument("--rules", nargs="+", metavar="PATH", help=".shrike/.rules files or folders")
    p.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a rule variable, e.g. HOME_NET=any or HTTP_PORTS=[80,8080]",
    )
    p.add_argument("--eve", metavar="FILE", help="write alerts as Suricata EVE JSON lines")
    p.add_argument(
        "--profile", action="store_true", help="print the costliest rules (time, checks, matches)"
    )
    p.add_argument(
        "-k",
        "--checksum-mode",
        choices=["all", "none"],
        default="all",
        help="skip packets with bad checksums (all, the default) or inspect every packet (none)",
    )
    p.add_argument(
        "--model",
        metavar="FILE",
        help="anomaly model from `shrike train` (default: the model shipped with Shrike)",
    )
    p.add_argument("--no-model", action="store_true", help="do not score flows for anomalies")
    p.add_argument(
        "--detectors", metavar="FILE", help="detector settings (default: config/detectors.yaml)"
    )
    p.add_argument(
        "--fusion", metavar="FILE", help="verdict fusion settings (default: config/fusion.yaml)"
    )
    p.add_argument(
        "--es-url",
        help="send verdicts to this Elasticsearch (default: output.elasticsearch.url, "
        "$SHRIKE_ES_URL; without one, verdicts go to the embedded store)",
    )
    p.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        metavar="N",
        help="match each capture's flows in N processes (pcap files; 'auto': one per core). "
        "Alerts and verdicts are those of one process, in the same order",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _worker_count(text: str) -> int:
    if text == "auto":
        return os.cpu_count() or 1
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a count of 1 or more, or 'auto', not {text!r}")
    return n


def _inspector_for(ruleset: CompiledRuleset) -> Any:
    """Stream reassembly and protocol buffers, when some rule reads them."""
    if not ruleset.needs_inspection:
        return None
    from engine.inspect import Inspector

    return Inspector()


class RuleReloader:
    """Recompiles the rules beside the running set on SIGHUP and swaps them in between batches."""

    def __init__(self, paths: list[str], variables: Any, matcher: Matcher) -> None:
        self.paths = paths
        self.variables = variables
        self.matcher = matcher
        self._ready: CompiledRuleset | None = None
        self._lock = threading.Lock()
        self._busy = False
        self.reloads = 0

    def request(self, *_args: object) -> None:
        if self._busy:
            return
        self._busy = True
        threading.Thread(target=self._compile, daemon=True).start()

    def _compile(self) -> None:
        try:
            rules, table, _notes = load_rules(self.paths, self.variables)
            compiled = compile_ruleset(rules, table)
        except (RuleLoadError, OSError) as exc:
            print(f"shrike run: reload failed, keeping the running rules: {exc}", file=sys.stderr)
            self._busy = False
            return
        with self._lock:
            self._ready = compiled
        self._busy = False

    def between_batches(self) -> None:
        if self._ready is None:
            return
        with self._lock:
            compiled, self._ready = self._ready, None
        if compiled is not None:
            if self.matcher.inspector is None:
                self.matcher.inspector = _inspector_for(compiled)
            self.matcher.swap(compiled)
            gc.freeze()  # the new rules, as at start-up (the old ones go by reference counting)
            self.reloads += 1
            print(f"shrike run: reloaded {len(compiled)} rules", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.source and not args.input:
        print(
            "shrike run: --source needs --input (interface name or pcap to replay)", file=sys.stderr
        )
        return 2
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"shrike run: {exc}", file=sys.stderr)
        return 2
    args.flow_config = config.flows
    try:
        store = FlowStore(args.data_dir or config.data_dir)
    except StoreError as exc:
        print(f"shrike run: {exc}", file=sys.stderr)
        return 2
    note_first_compile()
    args.matcher = None
    args.reloader = None
    if args.rules:
        try:
            variables = default_variables(dict(v.split("=", 1) for v in args.var if "=" in v))
            rules, table, notes = load_rules(args.rules, variables)
        except (RuleLoadError, OSError, ValueError) as exc:
            print(f"shrike run: {exc}", file=sys.stderr)
            return 2
        for note in notes:
            print(f"shrike run: {note}", file=sys.stderr)
        compiled = compile_ruleset(rules, table)
        for diag in compiled.diagnostics:
            print(f"shrike run: skipped {diag}", file=sys.stderr)
        summary = compiled.summary()
        print(
            f"rules: {summary['rules']} compiled in {compiled.compile_seconds:.2f}s "
            f"({summary['fast_pattern_rules']} with a fast pattern, "
            f"{summary['slow_path_rules']} slow path, {summary['skipped']} skipped)"
        )
        args.matcher = Matcher(compiled, inspector=_inspector_for(compiled), profile=args.profile)
        if args.workers > 1 and not args.pcap:
            print(
                "shrike run: --workers splits pcap files (--pcap); matching in one process",
                file=sys.stderr,
            )
            args.workers = 1
        held = host_state_rules(compiled)
        if args.workers > 1 and held:
            print(
                f"shrike run: rules {', '.join(map(str, held[:5]))}{' ...' if len(held) > 5 else ''} "
                "keep bits per host, which span flows; matching in one process",
                file=sys.stderr,
            )
            args.workers = 1
        args.reloader = RuleReloader(args.rules, variables, args.matcher)
        if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, args.reloader.request)
    args.checksums = checksum_validator(args.checksum_mode)
    try:
        args.hybrid = HybridEngine.from_files(
            flow_config=config.flows,
            detectors=args.detectors,
            fusion=args.fusion,
            model=args.model,
            use_model=not args.no_model,
        )
    except (DetectorConfigError, FusionConfigError, ModelError, OSError) as exc:
        print(f"shrike run: {exc}", file=sys.stderr)
        return 2
    try:
        args.sink = open_sink(
            config.output, data_dir=args.data_dir or config.data_dir, es_url=args.es_url
        )
    except SinkError as exc:
        print(f"shrike run: {exc}", file=sys.stderr)
        return 2
    args.eve_writer = EveWriter(args.eve) if args.eve else None
    freeze_startup_heap()
    keep_batch_memory()
    targets = [("pcap", f) for f in args.pcap] if args.pcap else [(args.source, args.input)]
    status = 0
    sink: Sink = args.sink
    try:
        with store:
            for kind, target in targets:
                status = max(status, _run_one(kind, target, args, store))
            sink.write_batch(args.hybrid.finish())
            print(f"embedded store: {store.path} ({store.count_flows()} flows in all)")
    finally:
        if args.eve_writer is not None:
            args.eve_writer.close()
        try:
            sink.close()
        except SinkError as exc:
            print(f"shrike run: {exc}", file=sys.stderr)
            status = max(status, 1)
    _print_verdicts(args.hybrid, sink)
    if args.matcher is not None:
        st = args.matcher.stats
        print(
            f"alerts: {st.alerts}; "
            f"{st.candidates} candidates, {st.evaluations} rule evaluations"
            + (
                f"; {st.checksum_skipped} packets with bad checksums skipped"
                if st.checksum_skipped
                else ""
            )
        )
        if args.eve:
            print(f"eve: {args.eve} ({args.eve_writer.written} alerts)")
        if args.profile:
            _print_profile(args.matcher)
    return status


def _print_verdicts(hybrid: HybridEngine, sink: Sink) -> None:
    hs, ss = hybrid.stats, sink.stats
    labels = ", ".join(f"{k} {v}" for k, v in hs.labels.most_common()) or "none"
    print(f"verdicts: {hs.verdicts} ({labels}); {hs.detections} detections")
    where = f"verdicts stored: {ss.delivered} in {sink.location}"
    if ss.dead_lettered:
        files = ", ".join(str(f) for f in sink.dead_letter_files)
        where += f"; {ss.dead_lettered} dead-lettered to {files} (send again: shrike es-replay)"
    print(where)


def _print_profile(matcher: Matcher) -> None:
    rows = matcher.costliest(20)
    total = sum(p.ns for p in matcher.profiles.values()) or 1
    print("rule profile (costliest first)")
    print(
        f"{'#':>3} {'gid:sid:rev':<20} {'checks':>9} {'matches':>8} {'time ms':>10} {'avg us':>8} {'%':>6}"
    )
    for i, (rid, prof) in enumerate(rows, 1):
        rule = next((r.rule for r in matcher.ruleset.rules if r.rule.id == rid), None)
        ident = f"{(rule.gid or 1) if rule else 1}:{rid}:{rule.rev if rule else 1}"
        avg = prof.ns / prof.checks / 1e3 if prof.checks else 0.0
        print(
            f"{i:>3} {ident:<20} {prof.checks:>9} {prof.matches:>8} {prof.ns / 1e6:>10.2f} "
            f"{avg:>8.1f} {100 * prof.ns / total:>6.1f}"
        )


def _records(
    source: Source,
    reopen: Callable[[], Source],
    args: argparse.Namespace,
    stats: PacketPathStats,
    tick: Any,
) -> Iterator[FlowRecords]:
    """Flow records of the source; on the way, alerts go to EVE, and matches, detections
    and anomaly scores are fused into verdicts that go to the sink. With workers, each
    reads the input again from its own `reopen()`."""
    hybrid: HybridEngine = args.hybrid
    sink: Sink = args.sink
    if args.matcher is not None:
        args.matcher.ruleset_name = ",".join(args.rules)
    reload = args.reloader.between_batches if args.reloader else None
    run: Callable[..., Iterator[BatchResult]]
    if args.matcher is not None and args.workers > 1:
        run = partial(iter_matches_sharded, source, reopen, args.matcher, args.workers)
    else:
        run = partial(iter_matches, source, args.matcher)
    results = run(
        args.flow_config,
        stats=stats,
        on_batch=tick,
        checksums=args.checksums,
        before_batch=reload,
    )
    for result in results:
        if result.alerts and args.eve_writer is not None:
            args.eve_writer.write(result.alerts)
        matches = [a.match for a in result.alerts]
        if result.decoded is not None:
            verdicts = hybrid.observe(result.decoded, result.ended, matches)
        else:
            verdicts = hybrid.process_records(result.ended, matches)
        # called every batch, even with nothing: a sink commits partial batches on time
        sink.write_batch(verdicts)
        if len(result.ended):
            yield result.ended
    if args.matcher is not None:
        # what the inspector still held back at the end of input (a body's last section)
        late = args.matcher.finish()
        if late:
            if args.eve_writer is not None:
                args.eve_writer.write(late)
            sink.write_batch(hybrid.process_records(FlowRecords.empty(), [a.match for a in late]))


def _run_one(kind: str, target: str, args: argparse.Namespace, store: FlowStore) -> int:
    stats = PacketPathStats()
    states: Counter[str] = Counter()
    protos: Counter[str] = Counter()
    started = time.perf_counter()
    status = 0
    reopen = partial(
        open_source,
        kind,
        target,
        bpf_filter=args.bpf_filter,
        dpdk_config=args.dpdk_config,
        packet_limit=args.count,
    )
    try:
        source = reopen()
    except (CaptureError, OSError, ValueError) as exc:
        print(f"shrike run: {exc}", file=sys.stderr)
        return 2
    try:
        with source, packet_progress(enabled=not args.no_progress) as tick:
            for records in _records(source, reopen, args, stats, tick):
                store.write_flows(records, source=target)
                states.update(records.conn_states())
                protos.update(str(p) for p in records.columns["proto"].tolist())
    except CaptureError as exc:
        print(f"shrike run: {exc}", file=sys.stderr)
        status = 1
    except (StoreError, SinkError, WorkerError) as exc:
        print(f"shrike run: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    names = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmp6"}
    print(f"{target}: {stats.packets} packets, {stats.flows} flows in {elapsed:.2f}s")
    print(
        "  flows by protocol: "
        + ", ".join(f"{names.get(p, p)} {n}" for p, n in protos.most_common())
    )
    print("  flows by conn_state: " + ", ".join(f"{s} {n}" for s, n in states.most_common()))
    bad = sum(stats.malformed.values())
    if bad or stats.non_ip or stats.evicted:
        detail = ", ".join(f"{k} {v}" for k, v in sorted(stats.malformed.items()))
        print(
            f"  skipped: {bad} malformed ({detail or 'none'}), {stats.non_ip} non-IP; "
            f"{stats.evicted} flows evicted from a full table"
        )
    return status
