"""Snort alerts (Snort 3 `alert_json`, `alert_fast`, Snort 2 unified2) as `engine.events.Match`.

Each alert becomes the same `Match` Shrike's matcher produces (`source` is
`snort`), so ingested alerts take the same verdict and output path.  When the
rules that fired are given (`rules`), titles, classtypes and ATT&CK tags come
from them; otherwise from what the alert record itself carries.  Timestamps
without a year (Snort's default) take `year`; times are read as UTC.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from engine.events import FlowKey, Match
from engine.flows import community_id
from integrations.snort.classifications import PRIORITY_SEVERITY
from integrations.snort.errors import Location, SnortError
from rules import ast

FORMATS = ("alert_json", "alert_fast", "unified2")
PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132, "ip": 0}

RuleIndex = Mapping[tuple[int, int], ast.Rule]


def rule_index(
    rules: Iterator[ast.Rule] | list[ast.Rule] | tuple[ast.Rule, ...],
) -> dict[tuple[int, int], ast.Rule]:
    """(gid, sid) -> rule, for enriching alerts; gid defaults to 1 as in Snort."""
    return {(rule.gid if rule.gid is not None else 1, rule.id): rule for rule in rules}


def detect_format(path: str | Path) -> str:
    """`unified2` for binary files, `alert_json` for JSON lines, else `alert_fast`."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if len(head) >= 8 and int.from_bytes(head[:4], "big") in (2, 7, 72, 104, 105, 110, 111, 112):
        return "unified2"
    if head.lstrip().startswith(b"{"):
        return "alert_json"
    return "alert_fast"


def read_alerts(
    path: str | Path,
    format: str = "auto",
    rules: RuleIndex | None = None,
    year: int | None = None,
) -> Iterator[Match]:
    """Every alert of one file as a Match; bad records raise `SnortError` with their location."""
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in FORMATS:
        raise ValueError(f"unknown alert format {format!r}; expected one of {', '.join(FORMATS)}")
    the_year = year if year is not None else datetime.now(UTC).year
    name = str(path)
    try:
        if fmt == "unified2":
            with open(path, "rb") as binary:
                yield from read_unified2(binary, name, rules)
        else:
            with open(path, encoding="utf-8", errors="replace") as text:
                reader = read_alert_json if fmt == "alert_json" else read_alert_fast
                yield from reader(text, name, rules, the_year)
    except OSError as error:
        raise SnortError(
            f"cannot read alert file: {error.strerror or error}", Location(name)
        ) from error


# ---- shared ------------------------------------------------------------------


_TIME = re.compile(r"(\d{2})/(\d{2})(?:/(\d{2,4}))?-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")


def parse_timestamp(text: str, year: int) -> float:
    """Snort's `MM/DD[/YY]-hh:mm:ss.uuuuuu` as seconds since the epoch (UTC)."""
    match = _TIME.match(text.strip())
    if match is None:
        raise ValueError(f"timestamp {text!r} is not MM/DD[/YY]-hh:mm:ss.ffffff")
    month, day, yy, hour, minute, second, fraction = match.groups()
    full_year = year if yy is None else (int(yy) + 2000 if len(yy) == 2 else int(yy))
    moment = datetime(
        full_year, int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC
    )
    micro = float(f"0.{fraction}") if fraction else 0.0
    return moment.timestamp() + micro


def _endpoint(text: str, has_port: bool) -> tuple[str, int]:
    """`10.0.0.1:80`, `fe80::1:80` (the port is after the last colon), `[2001:db8::1]:80`,
    or a bare address when `has_port` is False (ICMP in alert_fast)."""
    text = text.strip()
    if text.startswith("["):
        address, _, port = text[1:].partition("]:")
        return _address(address), int(port or 0)
    if has_port or text.count(":") == 1:
        address, sep, port = text.rpartition(":")
        if not sep:
            return _address(text), 0
        return _address(address), int(port)
    return _address(text), 0


def _address(text: str) -> str:
    return str(ipaddress.ip_address(text))


def _match(
    *,
    ts: float,
    src: tuple[str, int],
    dst: tuple[str, int],
    proto: int,
    gid: int,
    sid: int,
    rev: int,
    rules: RuleIndex | None,
    title: str | None = None,
    classtype: str | None = None,
    priority: int | None = None,
    packet: int | None = None,
    action: str = "alert",
    app_proto: str | None = None,
    ruleset: str | None = None,
) -> Match:
    rule = rules.get((gid, sid)) if rules else None
    try:
        cid = community_id(src[0], dst[0], proto, src[1], dst[1]) if proto else ""
    except ValueError:
        cid = ""
    if rule is not None:
        title = title or rule.title
        classtype = classtype or rule.classtype
        priority = priority if priority is not None else rule.priority
    severity = (rule.severity if rule is not None else None) or PRIORITY_SEVERITY.get(
        priority or 0, "medium"
    )
    return Match(
        ts=ts,
        flow=FlowKey(src[0], src[1], dst[0], dst[1], proto, cid),
        rule_id=sid,
        title=title or f"Snort rule {gid}:{sid}:{rev}",
        severity=severity,
        rev=rev,
        gid=gid,
        classtype=classtype,
        priority=priority,
        techniques=rule.techniques if rule is not None else (),
        tactics=rule.tactics if rule is not None else (),
        references=tuple(f"{r.kind},{r.value}" for r in rule.references)
        if rule is not None
        else (),
        app_proto=app_proto,
        packet=packet,
        action=action,
        ruleset=ruleset or (rule.span.file if rule is not None and rule.span.line else None),
        source="snort",
    )


def _rule_triple(text: str) -> tuple[int, int, int]:
    parts = text.strip().strip("[]").split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"rule id {text!r} is not gid:sid:rev")
    gid, sid, rev = (int(p) for p in parts)
    return gid, sid, rev


# ---- Snort 3 alert_json --------------------------------------------------------


def read_alert_json(
    lines: IO[str], name: str, rules: RuleIndex | None, year: int
) -> Iterator[Match]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = Location(name, number, 1)
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("record is not a JSON object")
            yield _json_match(record, rules, year)
        except (ValueError, KeyError, TypeError) as error:
            detail = f"missing field {error}" if isinstance(error, KeyError) else str(error)
            raise SnortError(f"bad alert_json record: {detail}", where) from error


def _json_match(record: dict[str, Any], rules: RuleIndex | None, year: int) -> Match:
    gid, sid, rev = _rule_triple(str(record["rule"]))
    if "seconds" in record and "timestamp" not in record:
        ts = float(record["seconds"])
    else:
        ts = parse_timestamp(str(record["timestamp"]), year)
    if "src_ap" in record:
        src = _endpoint(str(record["src_ap"]), has_port=True)
        dst = _endpoint(str(record["dst_ap"]), has_port=True)
    else:  # records configured with separate address and port fields
        src = (_address(str(record["src_addr"])), int(record.get("src_port", 0)))
        dst = (_address(str(record["dst_addr"])), int(record.get("dst_port", 0)))
    proto_name = str(record.get("proto", "")).lower()
    proto = PROTOCOLS.get(proto_name, 0)
    if proto == 1 and ":" in src[0]:
        proto = 58
    priority = record.get("priority")
    service = record.get("service")
    return _match(
        ts=ts,
        src=src,
        dst=dst,
        proto=proto,
        gid=gid,
        sid=sid,
        rev=rev,
        rules=rules,
        title=record.get("msg"),
        classtype=record.get("class") if record.get("class") not in (None, "none") else None,
        priority=int(priority) if priority is not None else None,
        packet=int(record["pkt_num"]) if "pkt_num" in record else None,
        action=str(record.get("action", "alert")),
        app_proto=service if isinstance(service, str) and service not in ("", "unknown") else None,
    )


# ---- alert_fast (Snort 2 and 3) --------------------------------------------------

_FAST = re.compile(
    r"^(?P<ts>\S+)\s+(?:\[(?P<action>[a-z_]+)\]\s+)?\[\*\*\]\s+\[(?P<rule>\d+:\d+:\d+)\]\s+"
    r"(?P<msg>.*?)\s+\[\*\*\]"
    r"(?:\s+\[Classification:\s*(?P<class>[^\]]*)\])?"
    r"(?:\s+\[Priority:\s*(?P<priority>\d+)\])?"
    r"(?:\s+\[AppID:\s*(?P<appid>[^\]]*)\])?"
    r"\s+\{(?P<proto>[^}]+)\}\s+(?P<src>\S+)\s+->\s+(?P<dst>\S+)\s*$"
)


def read_alert_fast(
    lines: IO[str], name: str, rules: RuleIndex | None, year: int
) -> Iterator[Match]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        match = _FAST.match(line.rstrip("\n"))
        if match is None:
            raise SnortError("line is not an alert_fast alert", Location(name, number, 1))
        try:
            gid, sid, rev = _rule_triple(match["rule"])
            msg = match["msg"]
            if len(msg) >= 2 and msg[0] == '"' and msg[-1] == '"':
                msg = msg[1:-1]  # Snort 3 quotes the message
            proto_name = match["proto"].strip().lower()
            proto = PROTOCOLS.get(proto_name, int(proto_name) if proto_name.isdigit() else 0)
            ported = proto in (6, 17, 132)
            src, dst = _endpoint(match["src"], ported), _endpoint(match["dst"], ported)
            if proto == 1 and ":" in src[0]:
                proto = 58
            yield _match(
                ts=parse_timestamp(match["ts"], year),
                src=src,
                dst=dst,
                proto=proto,
                gid=gid,
                sid=sid,
                rev=rev,
                rules=rules,
                title=msg,
                classtype=None,
                priority=int(match["priority"]) if match["priority"] else None,
                action=match["action"] or "alert",
            )
        except ValueError as error:
            raise SnortError(f"bad alert_fast alert: {error}", Location(name, number, 1)) from error


# ---- Snort 2 unified2 (read with idstools) ----------------------------------------


def read_unified2(binary: IO[bytes], name: str, rules: RuleIndex | None) -> Iterator[Match]:
    """Event records of a unified2 file; packet and extra-data records are skipped."""
    from idstools import unified2

    index = 0
    while True:
        offset = binary.tell()
        try:
            record = unified2.read_record(binary)
        except EOFError:
            raise SnortError(
                f"unified2 record {index + 1} at byte {offset} is truncated", Location(name)
            ) from None
        except unified2.UnknownRecordType as error:
            raise SnortError(
                f"unified2 record {index + 1} at byte {offset} has unknown type {error}",
                Location(name),
            ) from None
        except Exception as error:  # idstools raises struct.error and others on damaged records
            raise SnortError(
                f"unified2 record {index + 1} at byte {offset} cannot be decoded: {error}",
                Location(name),
            ) from error
        if record is None:
            return
        index += 1
        if isinstance(record, unified2.Event):
            yield _unified2_match(record, rules)


#: unified2 `blocked`: 0 passed, 1 dropped, 2 would have been dropped (inline test mode).
_BLOCKED = {0: "alert", 1: "drop", 2: "would_drop"}


def _unified2_match(event: Any, rules: RuleIndex | None) -> Match:
    proto = int(event["protocol"])
    return _match(
        ts=event["event-second"] + event["event-microsecond"] / 1e6,
        src=(_address(event["source-ip"]), int(event["sport-itype"])),
        dst=(_address(event["destination-ip"]), int(event["dport-icode"])),
        proto=proto,
        gid=int(event["generator-id"]),
        sid=int(event["signature-id"]),
        rev=int(event["signature-revision"]),
        rules=rules,
        priority=int(event["priority"]) or None,
        action=_BLOCKED.get(int(event.get("blocked", 0)), "alert"),
    )


def match_json(match: Match) -> dict[str, Any]:
    """A Match as a JSON-ready dict (JSON lines output of `shrike ingest-snort`)."""
    flow = match.flow
    return {
        "ts": match.ts,
        "source": match.source,
        "gid": match.gid,
        "rule_id": match.rule_id,
        "rev": match.rev,
        "title": match.title,
        "severity": match.severity,
        "classtype": match.classtype,
        "priority": match.priority,
        "action": match.action,
        "techniques": list(match.techniques),
        "tactics": list(match.tactics),
        "references": list(match.references),
        "app_proto": match.app_proto,
        "packet": match.packet,
        "ruleset": match.ruleset,
        "flow": {
            "src_ip": flow.src_ip,
            "src_port": flow.src_port,
            "dst_ip": flow.dst_ip,
            "dst_port": flow.dst_port,
            "proto": flow.proto,
            "transport": flow.transport,
            "community_id": flow.community_id,
        },
    }
