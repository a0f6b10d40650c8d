"""The types that cross the engine's boundaries after flows: Match, Detection,
AnomalyScore and the fused Verdict.

Producers: the matcher (and Snort alert ingestion) make `Match`, the behavioural
detectors make `Detection`, the anomaly scorer makes `AnomalyScore`, fusion
makes `Verdict`. Consumers: sinks (`to_ecs`, the embedded store, EVE JSON).
All are frozen and hold only plain values, so they pickle, compare and
serialize without surprises. Times are seconds since the epoch (float), taken
from packet timestamps, never from the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Severities from least to most severe; rules and detections use these words.
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")

#: Verdict labels, most alarming first.
LABELS: tuple[str, ...] = ("malicious", "suspicious", "anomalous", "benign")


def severity_rank(severity: str) -> int:
    """0 for `info` up to 4 for `critical`; a ValueError names the bad word."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise ValueError(
            f"unknown severity {severity!r}; expected one of {', '.join(SEVERITIES)}"
        ) from None


@dataclass(frozen=True, slots=True)
class FlowKey:
    """A connection's five-tuple as the initiator saw it (addresses as text).

    `proto` is the IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6);
    ports are 0 where the protocol has none. `community_id` is Community ID v1
    (`1:...`), or "" when it could not be computed.
    """

    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    proto: int
    community_id: str = ""

    # Written out rather than generated: compiled with mypyc, a generated `__init__`
    # stays interpreted and a frozen one sets each field through `object.__setattr__`
    # by name, about 20 times slower per object (one per alert); the fields' order and
    # defaults are the dataclass's, which `tests/engine/test_events.py` checks.
    def __init__(
        self,
        src_ip: str,
        src_port: int,
        dst_ip: str,
        dst_port: int,
        proto: int,
        community_id: str = "",
    ) -> None:
        object.__setattr__(self, "src_ip", src_ip)
        object.__setattr__(self, "src_port", src_port)
        object.__setattr__(self, "dst_ip", dst_ip)
        object.__setattr__(self, "dst_port", dst_port)
        object.__setattr__(self, "proto", proto)
        object.__setattr__(self, "community_id", community_id)

    @property
    def transport(self) -> str:
        return _TRANSPORTS.get(self.proto, str(self.proto))


_TRANSPORTS = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp"}


@dataclass(frozen=True, slots=True)
class Match:
    """One signature firing: a Shrike rule on traffic, or an ingested Snort alert.

    `rule_id`/`gid`/`rev` are Snort's sid/gid/rev; `title` is the rule's title
    (Snort msg). `packet` is the 1-based packet number in its capture (Suricata
    `pcap_cnt`), or None when unknown (ingested alerts). `source` says who
    matched: `shrike` or `snort`. `ruleset` names the rule file or ruleset.
    """

    ts: float
    flow: FlowKey
    rule_id: int
    title: str
    severity: str = "medium"
    rev: int = 1
    gid: int = 1
    classtype: str | None = None
    priority: int | None = None
    techniques: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    app_proto: str | None = None
    packet: int | None = None
    action: str = "alert"
    ruleset: str | None = None
    source: str = "shrike"

    def __init__(  # written out, as FlowKey's
        self,
        ts: float,
        flow: FlowKey,
        rule_id: int,
        title: str,
        severity: str = "medium",
        rev: int = 1,
        gid: int = 1,
        classtype: str | None = None,
        priority: int | None = None,
        techniques: tuple[str, ...] = (),
        tactics: tuple[str, ...] = (),
        references: tuple[str, ...] = (),
        app_proto: str | None = None,
        packet: int | None = None,
        action: str = "alert",
        ruleset: str | None = None,
        source: str = "shrike",
    ) -> None:
        object.__setattr__(self, "ts", ts)
        object.__setattr__(self, "flow", flow)
        object.__setattr__(self, "rule_id", rule_id)
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "severity", severity)
        object.__setattr__(self, "rev", rev)
        object.__setattr__(self, "gid", gid)
        object.__setattr__(self, "classtype", classtype)
        object.__setattr__(self, "priority", priority)
        object.__setattr__(self, "techniques", techniques)
        object.__setattr__(self, "tactics", tactics)
        object.__setattr__(self, "references", references)
        object.__setattr__(self, "app_proto", app_proto)
        object.__setattr__(self, "packet", packet)
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "ruleset", ruleset)
        object.__setattr__(self, "source", source)


@dataclass(frozen=True, slots=True)
class Detection:
    """One behavioural detector firing over a window.

    `key` is what the detector tracked (a source address, a pair, a DNS
    domain); `flow` is set when the detection is about one connection, None for
    host-level findings (a scan, a sweep). `key_role` says which end of the
    traffic the key is: `source` (a scanner, a brute-forcer) or `destination`
    (the victim of a flood). `score` is the detector's own
    confidence, 0..1. `evidence` holds the figures that crossed the threshold
    (`{"distinct_ports": 412, "window_s": 60}`), JSON-ready.
    """

    ts: float
    detector: str
    key: str
    title: str
    severity: str = "medium"
    score: float = 1.0
    techniques: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    flow: FlowKey | None = None
    window_start: float | None = None
    key_role: str = "source"
    evidence: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class AnomalyScore:
    """The anomaly scorer's opinion of one flow.

    `score` is normalized to 0..1 (higher is more anomalous) and `threshold` is
    the model's decision point on that scale. `reasons` name the features that
    pushed the score up most (`"orig_bytes far above training (z=8.1)"`).
    """

    ts: float
    flow: FlowKey
    score: float
    threshold: float
    model: str
    model_version: str = ""
    reasons: tuple[str, ...] = ()

    @property
    def is_anomalous(self) -> bool:
        return self.score >= self.threshold


@dataclass(frozen=True, slots=True)
class Contribution:
    """One input to a verdict and the human-readable reason it counted.

    `kind` is `signature`, `detection` or `anomaly`; `name` the rule title,
    detector name or model name; `ref` the rule id, detector key or model
    version; `points` its share of the fused score.
    """

    kind: str
    name: str
    reason: str
    points: float = 0.0
    ref: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One decision about a flow (or a host, for host-level detections).

    `score` is the fused score 0..100; `label` one of LABELS; `severity` one of
    SEVERITIES. `flow` is None for host-level verdicts, where `host` names the
    address. `contributions` carry one reason each; `matches`, `detections` and
    `anomaly` keep the inputs themselves for sinks that want full detail.
    `count` is how many repeated alerts this verdict aggregates.
    """

    ts: float
    score: float
    label: str
    severity: str
    flow: FlowKey | None = None
    host: str | None = None
    techniques: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    contributions: tuple[Contribution, ...] = ()
    matches: tuple[Match, ...] = ()
    detections: tuple[Detection, ...] = ()
    anomaly: AnomalyScore | None = None
    count: int = 1
    sensor: str = ""

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(c.reason for c in self.contributions)
