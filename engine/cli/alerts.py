"""`shrike alerts`: query verdicts in the embedded store."""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

from engine.config import ConfigError, load_config
from engine.events import LABELS, SEVERITIES
from engine.sinks.errors import SinkError
from engine.sinks.store import AlertQuery, StoredVerdict, VerdictStore
from rules.attack import TECHNIQUE_ID_PATTERN

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "alerts",
        help="query verdicts in the embedded store",
        description="List verdicts from the embedded store, newest first. Times are packet times.",
    )
    p.add_argument("--since", help="only verdicts at most this old (30m, 1h, 7d) or after a time")
    p.add_argument("--until", help="only verdicts before this age or time")
    p.add_argument("--severity", choices=SEVERITIES, help="this severity and above")
    p.add_argument("--technique", help="ATT&CK technique (T1046; T1059 includes T1059.001)")
    p.add_argument("--src", help="source address")
    p.add_argument("--dst", help="destination address")
    p.add_argument("--label", choices=LABELS)
    p.add_argument("--rule", help="rule id (signature id or detector name)")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--prune", action="store_true", help="apply retention first")
    p.add_argument(
        "--data-dir", help="store directory (default: $SHRIKE_DATA_DIR or ~/.local/share/shrike)"
    )
    p.add_argument("--config", help="configuration file (default: config/shrike.yaml)")
    p.set_defaults(func=run)


def parse_time(text: str, *, now: float, option: str) -> float:
    """A duration back from `now` (`90s`, `15m`, `1h`, `7d`, `2w`) or an ISO 8601 time."""
    m = _DURATION.match(text.strip())
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{option}: {text!r} is neither a duration (30s, 15m, 1h, 7d, 2w) "
            "nor an ISO 8601 time (2024-05-01T12:00:00Z)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def build_query(args: argparse.Namespace, now: float) -> AlertQuery:
    """The query the options describe; ValueError names the bad option."""
    for option, value in (("--src", args.src), ("--dst", args.dst)):
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"{option}: {value!r} is not an IP address") from None
    technique = args.technique.upper() if args.technique else None
    if technique is not None and not TECHNIQUE_ID_PATTERN.match(technique):
        raise ValueError(f"--technique: {args.technique!r} is not a technique id like T1046")
    if args.limit < 1:
        raise ValueError("--limit: must be at least 1")
    return AlertQuery(
        since=parse_time(args.since, now=now, option="--since") if args.since else None,
        until=parse_time(args.until, now=now, option="--until") if args.until else None,
        min_severity=args.severity,
        technique=technique,
        src_ip=args.src,
        dst_ip=args.dst,
        label=args.label,
        rule_id=args.rule,
        limit=args.limit,
    )


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        query = build_query(args, time.time())
    except (ConfigError, ValueError) as exc:
        print(f"shrike alerts: {exc}", file=sys.stderr)
        return 2
    try:
        store = VerdictStore(args.data_dir or config.data_dir)
        try:
            if args.prune:
                deleted = store.prune(config.output.store)
                print(f"retention removed {deleted} verdicts", file=sys.stderr)
            rows = store.query(query)
        finally:
            store.close()
    except SinkError as exc:
        print(f"shrike alerts: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        for row in rows:
            sys.stdout.write(json.dumps(row.doc, separators=(",", ":")) + "\n")
    else:
        write_table(rows, sys.stdout)
    return 0


def write_table(rows: list[StoredVerdict], out: IO[str]) -> None:
    header = ("time (UTC)", "severity", "label", "score", "rule", "source", "destination", "attack")
    table = [header]
    for r in rows:
        when = datetime.fromtimestamp(r.ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
        src = _endpoint(r.src_ip, r.src_port)
        dst = _endpoint(r.dst_ip, r.dst_port)
        rule = f"{r.rule_id} {r.rule_name}" if r.rule_id else (r.rule_name or "")
        table.append(
            (
                when,
                r.severity,
                r.label,
                f"{r.score:.0f}",
                _clip(rule, 48),
                src,
                dst,
                ",".join(r.techniques),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    out.write(f"{len(rows)} verdict{'s' if len(rows) != 1 else ''}\n")


def _endpoint(ip: str | None, port: int | None) -> str:
    if not ip:
        return "-"
    if not port:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
