"""Snort alerts (alert_json, alert_fast, unified2) turned into Shrike matches."""

from __future__ import annotations

import ipaddress
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.events import Match
from engine.flows import community_id
from integrations.snort.alerts import detect_format, read_alerts, rule_index
from integrations.snort.errors import SnortError
from integrations.snort.importer import import_text

REFERENCE = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "snort3-reference"

RULES = import_text(
    'alert icmp any any -> any any (msg:"PROTOCOL-ICMP Unusual PING detected"; itype:8; '
    "metadata:mitre_technique_id T1018, mitre_tactic_id TA0007; classtype:successful-recon-limited; "
    "priority:2; sid:29456; rev:3;)\n",
    "community.rules",
).rules


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# ---- alert_json ---------------------------------------------------------------


def test_alert_json_record_becomes_a_match(tmp_path: Path) -> None:
    path = tmp_path / "a.alert_json"
    path.write_text(
        '{ "timestamp" : "06/13-16:11:33.384194", "pkt_num" : 1, "proto" : "ICMP", '
        '"pkt_gen" : "raw", "pkt_len" : 28, "dir" : "C2S", "src_ap" : "10.0.0.128:0", '
        '"dst_ap" : "10.0.0.1:0", "rule" : "1:29456:3", "action" : "allow" }\n'
        '{ "timestamp" : "01/01-00:00:15.285641", "pkt_num" : 83, "proto" : "UDP", '
        '"src_ap" : "fe80::c50d:519f:96a4:e108:63960", "dst_ap" : "ff02::c:1900", '
        '"rule" : "1:1917:16", "action" : "allow" }\n'
    )
    first, second = read_alerts(path, rules=rule_index(RULES), year=2019)
    assert first == Match(
        ts=ts("2019-06-13T16:11:33.384194"),
        flow=first.flow,
        rule_id=29456,
        title="PROTOCOL-ICMP Unusual PING detected",
        severity="medium",
        rev=3,
        gid=1,
        classtype="successful-recon-limited",
        priority=2,
        techniques=("T1018",),
        tactics=("TA0007",),
        packet=1,
        action="allow",
        ruleset="community.rules",
        source="snort",
    )
    assert (first.flow.src_ip, first.flow.dst_ip, first.flow.proto) == ("10.0.0.128", "10.0.0.1", 1)
    assert first.flow.community_id == community_id("10.0.0.128", "10.0.0.1", 1, 0, 0)
    assert (second.flow.src_ip, second.flow.src_port) == ("fe80::c50d:519f:96a4:e108", 63960)
    assert (second.flow.dst_ip, second.flow.dst_port) == ("ff02::c", 1900)
    assert second.title == "Snort rule 1:1917:16"  # no rule given for it


def test_bad_alert_json_line_is_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.alert_json"
    path.write_text(
        '{"timestamp": "06/13-16:11:33.1", "rule": "1:2:3", "src_ap": "1.2.3.4:1", "dst_ap": "1.2.3.5:2"}\n{"rule": "1:2"}\n'
    )
    with pytest.raises(SnortError) as caught:
        list(read_alerts(path, year=2020))
    assert caught.value.location.line == 2
    assert str(caught.value).startswith(f"{path}:2:1: bad alert_json record")


@pytest.mark.shared
def test_real_snort3_alert_json_files() -> None:
    files = sorted(REFERENCE.glob("*.alert_json"))
    if not files:
        pytest.skip(f"Snort 3 reference alerts absent: no *.alert_json under {REFERENCE}")
    total = 0
    for path in files:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        matches = list(read_alerts(path, year=2020))
        assert len(matches) == len(lines), path
        for match in matches:
            ipaddress.ip_address(match.flow.src_ip)
            assert match.source == "snort" and match.rule_id > 0 and match.packet
        total += len(matches)
    assert total == 2472  # the count PROVENANCE.md gives for these files


# ---- alert_fast ---------------------------------------------------------------

FAST = """\
06/13-16:11:33.384194  [**] [1:29456:3] PROTOCOL-ICMP Unusual PING detected [**] [Classification: Misc activity] [Priority: 3] {ICMP} 10.0.0.128 -> 10.0.0.1
06/13/21-16:11:34.000001 [drop] [**] [1:2000:1] "MALWARE x; \\"y\\"" [**] [Priority: 1] {TCP} 192.168.1.2:49152 -> 203.0.113.9:443
06/13-16:11:35.5 [**] [1:3000:2] v6 [**] {UDP} 2001:db8::1:5353 -> 2001:db8::2:53
"""


def test_alert_fast_snort2_and_snort3_lines(tmp_path: Path) -> None:
    path = tmp_path / "alert_fast.txt"
    path.write_text(FAST)
    assert detect_format(path) == "alert_fast"
    icmp, tcp, udp = read_alerts(path, year=2020)
    assert (icmp.rule_id, icmp.title, icmp.priority, icmp.severity) == (
        29456,
        "PROTOCOL-ICMP Unusual PING detected",
        3,
        "low",
    )
    assert (icmp.flow.src_ip, icmp.flow.src_port, icmp.flow.proto) == ("10.0.0.128", 0, 1)
    assert icmp.ts == ts("2020-06-13T16:11:33.384194")
    assert tcp.ts == ts("2021-06-13T16:11:34.000001")
    assert (tcp.action, tcp.severity, tcp.title) == ("drop", "high", 'MALWARE x; \\"y\\"')
    assert (tcp.flow.src_port, tcp.flow.dst_ip, tcp.flow.dst_port) == (49152, "203.0.113.9", 443)
    assert (udp.flow.src_ip, udp.flow.src_port, udp.flow.dst_port) == ("2001:db8::1", 5353, 53)


def test_alert_fast_garbage_line_is_located(tmp_path: Path) -> None:
    path = tmp_path / "alert_fast.txt"
    path.write_text(FAST + "this is not an alert\n")
    with pytest.raises(SnortError) as caught:
        list(read_alerts(path, year=2020))
    assert caught.value.location.line == 4


# ---- unified2 -----------------------------------------------------------------
# Written here from the unified2 format description: every record is a
# big-endian (type, length) header followed by `length` bytes; type 104 is an
# IPv4 event v2, 105 an IPv6 event v2, 2 a packet.

EVENT_V2 = ">9I4s4s2H4BI2H"
EVENT_V2_IP6 = ">9I16s16s2H4BI2H"


def _record(kind: int, body: bytes) -> bytes:
    return struct.pack(">II", kind, len(body)) + body


def _event(
    sid: int, src: str, dst: str, sport: int, dport: int, proto: int, blocked: int = 0
) -> bytes:
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    fmt, kind = (EVENT_V2, 104) if a.version == 4 else (EVENT_V2_IP6, 105)
    body = struct.pack(
        fmt, 1, sid, 1_600_000_000, 250_000, sid, 1, 4, 3, 2, a.packed, b.packed, sport, dport,
        proto, 0, 0, blocked, 0, 0, 0,
    )  # fmt: skip
    return _record(kind, body)


def _packet(event_id: int) -> bytes:
    data = b"\x00" * 20
    return _record(
        2,
        struct.pack(">7I", 1, event_id, 1_600_000_000, 1_600_000_000, 250_000, 1, len(data)) + data,
    )


def test_unified2_events_become_matches(tmp_path: Path) -> None:
    path = tmp_path / "snort.u2.1600000000"
    path.write_bytes(
        _event(29456, "10.0.0.128", "10.0.0.1", 8, 0, 1)
        + _packet(29456)
        + _event(2000, "2001:db8::1", "2001:db8::2", 40000, 80, 6, blocked=1)
    )
    assert detect_format(path) == "unified2"
    icmp, tcp = read_alerts(path, rules=rule_index(RULES))
    assert icmp.ts == pytest.approx(1_600_000_000.25)
    assert (icmp.rule_id, icmp.rev, icmp.gid, icmp.priority) == (29456, 4, 1, 2)
    assert icmp.title == "PROTOCOL-ICMP Unusual PING detected"
    assert (icmp.flow.src_port, icmp.flow.dst_port, icmp.flow.proto) == (8, 0, 1)
    assert icmp.flow.community_id == community_id("10.0.0.128", "10.0.0.1", 1, 8, 0)
    assert (tcp.flow.src_ip, tcp.flow.dst_port, tcp.action) == ("2001:db8::1", 80, "drop")


def test_truncated_unified2_names_record_and_offset(tmp_path: Path) -> None:
    whole = _event(1, "10.0.0.1", "10.0.0.2", 1, 2, 6)
    path = tmp_path / "cut.u2"
    path.write_bytes(whole + whole[:30])
    with pytest.raises(SnortError, match=f"record 2 at byte {len(whole)} is truncated"):
        list(read_alerts(path, format="unified2"))
