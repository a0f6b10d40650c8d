"""Writing alerts as Suricata EVE JSON lines that Suricata tooling (jq filters, EveBox,
suricata-verify checks) can read: one `event_type: alert` object per line."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import IO, Any

from engine.match.matcher import Alert

_PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "IPv6-ICMP", 132: "SCTP"}
#: Link-layer names as Suricata logs them in `packet_info.linktype_name`.
LINKTYPE_NAMES = {
    0: "NULL",
    1: "EN10MB",
    9: "PPP",
    12: "RAW",
    101: "RAW",
    104: "C_HDLC",
    105: "IEEE802_11",
    113: "LINUX_SLL",
    127: "IEEE802_11_RADIOTAP",
    228: "IPv4",
    229: "IPv6",
    276: "LINUX_SLL2",
}

_PRIORITY_BY_SEVERITY = {"critical": 1, "high": 1, "medium": 2, "low": 3, "info": 4}


def eve_timestamp(ts: float) -> str:
    """Suricata's timestamp layout: `2016-03-10T18:27:35.571340+0000`."""
    t = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+0000"


#: EVE `http` keys and the buffers they come from (Suricata's default HTTP fields).
_HTTP_FIELDS = (
    ("hostname", "http.host"),
    ("url", "http.uri.raw"),
    ("http_user_agent", "http.user_agent"),
    ("http_refer", "http.referer"),
    ("http_method", "http.method"),
    ("protocol", "http.protocol"),
    ("redirect", "http.location"),
)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def http_object(buffers: dict[str, Any]) -> dict[str, Any]:
    """The EVE `http` object of a transaction, from the buffers the inspector gave it."""
    out: dict[str, Any] = {}
    for key, name in _HTTP_FIELDS:
        value = buffers.get(name)
        if isinstance(value, bytes):
            out[key] = _text(value)
    status = buffers.get("http.stat_code")
    if isinstance(status, bytes):
        if status.isdigit():
            out["status"] = int(status)
        content_type = buffers.get("http.content_type")
        if isinstance(content_type, bytes):  # the response's, without its parameters
            out["http_content_type"] = _text(content_type.split(b";", 1)[0].strip())
    return out


def alert_record(alert: Alert) -> dict[str, Any]:
    """The EVE object of one alert."""
    m = alert.match
    severity = m.priority if m.priority is not None else _PRIORITY_BY_SEVERITY.get(m.severity, 2)
    record: dict[str, Any] = {
        "timestamp": eve_timestamp(m.ts),
        "event_type": "alert",
        "src_ip": alert.src_ip,
        "src_port": alert.src_port,
        "dest_ip": alert.dst_ip,
        "dest_port": alert.dst_port,
        "proto": _PROTO_NAMES.get(alert.proto, str(alert.proto)),
        "direction": "to_server" if alert.to_server else "to_client",
    }
    if alert.vlan:
        record["vlan"] = [alert.vlan]
    if alert.proto in (1, 58):
        record["icmp_type"] = record.pop("src_port")
        record["icmp_code"] = record.pop("dest_port")
    if m.flow.community_id:
        record["community_id"] = m.flow.community_id
    if m.packet is not None:
        record["pcap_cnt"] = m.packet
    record["alert"] = {
        "action": "blocked" if m.action in ("drop", "reject", "sdrop") else "allowed",
        "gid": m.gid,
        "signature_id": m.rule_id,
        "rev": m.rev,
        "signature": m.title,
        "category": m.classtype or "",
        "severity": severity,
    }
    if m.techniques or m.tactics:
        record["alert"]["metadata"] = {
            "mitre_technique_id": list(m.techniques),
            "mitre_tactic_id": list(m.tactics),
        }
    if alert.tx_id is not None:
        record["tx_id"] = alert.tx_id
    if m.app_proto:
        record["app_proto"] = m.app_proto
    if alert.tx_buffers and m.app_proto in ("http", "http2", "doh2"):
        record["http"] = http_object(alert.tx_buffers)
    if alert.packet:
        record["packet"] = base64.b64encode(alert.packet).decode("ascii")
    record["packet_info"] = {
        "linktype": alert.linktype,
        "linktype_name": LINKTYPE_NAMES.get(alert.linktype, str(alert.linktype)),
    }
    return record


class EveWriter:
    """Appends alert records to an EVE JSON file (or an open text stream)."""

    def __init__(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, str | Path):
            self._fh: IO[str] = open(target, "w", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._fh = target
            self._owned = False
        self.written = 0

    def write(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self._fh.write(json.dumps(alert_record(alert), separators=(",", ":")) + "\n")
        self.written += len(alerts)

    def close(self) -> None:
        self._fh.flush()
        if self._owned:
            self._fh.close()

    def __enter__(self) -> EveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
