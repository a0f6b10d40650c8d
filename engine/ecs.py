"""Verdicts as Elastic Common Schema documents: `to_ecs(verdict) -> dict`, a pure function.

Where ECS leaves a choice, Shrike maps the way Elastic's Suricata integration maps
EVE alerts: `event.kind: alert`, `event.category: [network, intrusion_detection]`,
`event.type` from the alert action (`allowed`, or `denied` for drop/reject),
`event.severity` on Suricata's scale (1 most severe), `rule.id` the signature id
as text, `rule.category` the classtype, `network.protocol` the application
protocol. Everything ECS has no place for lives under `shrike.*`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from importlib import metadata
from typing import Any

from engine.events import (
    SEVERITIES,
    AnomalyScore,
    Contribution,
    Detection,
    FlowKey,
    Match,
    Verdict,
    severity_rank,
)
from rules.attack import AttackCatalog, AttackCatalogError, load_catalog

ECS_VERSION = "8.11.0"

#: `event.severity` per Shrike severity, on Suricata's scale where 1 is the most
#: severe, so Shrike and Suricata alerts sort together in one index pattern.
EVENT_SEVERITY: dict[str, int] = {"critical": 1, "high": 1, "medium": 2, "low": 3, "info": 4}

_ATTACK = "https://attack.mitre.org"
_DENY_ACTIONS = frozenset({"drop", "reject", "rejectsrc", "rejectdst", "rejectboth", "block"})


@dataclass(frozen=True, slots=True)
class EcsContext:
    """What a document says about the sensor and the protected network.

    `home_networks` decides `network.direction` (inbound, outbound, internal,
    external); without it the field is left out. `dataset` and `namespace`
    name the data stream the document is meant for.
    """

    observer_name: str = ""
    observer_hostname: str = ""
    home_networks: tuple[str, ...] = ()
    dataset: str = "shrike.alert"
    namespace: str = "default"

    def __post_init__(self) -> None:
        for net in self.home_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"home network {net!r} is not an address or CIDR: {exc}") from None


DEFAULT_CONTEXT = EcsContext()


def to_ecs(verdict: Verdict, context: EcsContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """The ECS document for one verdict. Same verdict and context, same document."""
    severity_rank(verdict.severity)  # a ValueError names a bad severity word
    primary = _primary_match(verdict.matches)
    doc: dict[str, Any] = {
        "@timestamp": timestamp(verdict.ts),
        "ecs": {"version": ECS_VERSION},
        "data_stream": {
            "type": "logs",
            "dataset": context.dataset,
            "namespace": context.namespace,
        },
        "event": _event(verdict, context),
        "rule": _rule(verdict, primary),
        "observer": _observer(verdict, context),
        "message": message(verdict),
        "shrike": _shrike(verdict),
    }
    threat = _threat(verdict)
    if threat:
        doc["threat"] = threat
    related: list[str] = []
    if verdict.flow is not None:
        doc.update(_endpoints(verdict.flow))
        doc["network"] = _network(verdict.flow, primary, context)
        related += [verdict.flow.src_ip, verdict.flow.dst_ip]
    if verdict.host:
        related.append(verdict.host)
        if verdict.flow is None and _is_ip(verdict.host):
            # a host-level verdict: the host is the scanner (source) or the victim
            side = verdict.detections[0].key_role if verdict.detections else "source"
            doc[side] = {"address": verdict.host, "ip": verdict.host}
    for det in verdict.detections:
        if det.flow is not None:
            related += [det.flow.src_ip, det.flow.dst_ip]
    ips = _unique(a for a in related if _is_ip(a))
    if ips:
        doc["related"] = {"ip": ips}
    return doc


def timestamp(ts: float) -> str:
    """Seconds since the epoch as ISO 8601 UTC with microseconds (`2024-05-01T12:00:00.250000Z`)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def message(verdict: Verdict) -> str:
    """One line a person reads first: label, severity, what fired, between whom."""
    what = _title(verdict)
    if verdict.flow is not None:
        f = verdict.flow
        where = f" {_hostport(f.src_ip, f.src_port)} -> {_hostport(f.dst_ip, f.dst_port)}"
        where += f" ({f.transport})"
    elif verdict.host:
        where = f" host {verdict.host}"
    else:
        where = ""
    return f"{verdict.label} [{verdict.severity}] {what}{where}"


def rule_fields(verdict: Verdict) -> dict[str, Any]:
    """The `rule.*` object of the verdict's document."""
    return _rule(verdict, _primary_match(verdict.matches))


def _title(verdict: Verdict) -> str:
    primary = _primary_match(verdict.matches)
    if primary is not None:
        return primary.title
    if verdict.detections:
        return _primary_detection(verdict.detections).title
    if verdict.anomaly is not None:
        return f"anomalous flow (model {verdict.anomaly.model})"
    if verdict.contributions:
        return verdict.contributions[0].name
    return "verdict"


def _hostport(ip: str, port: int) -> str:
    if port == 0:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _primary_match(matches: Sequence[Match]) -> Match | None:
    """The most severe match (first on ties): it names the verdict's rule."""
    if not matches:
        return None
    return max(matches, key=lambda m: (severity_rank(m.severity), -matches.index(m)))


def _primary_detection(detections: Sequence[Detection]) -> Detection:
    return max(detections, key=lambda d: (severity_rank(d.severity), d.score, -detections.index(d)))


def _event(verdict: Verdict, context: EcsContext) -> dict[str, Any]:
    denied = any(m.action in _DENY_ACTIONS for m in verdict.matches)
    event: dict[str, Any] = {
        "kind": "alert",
        "category": ["network", "intrusion_detection"],
        "type": ["denied" if denied else "allowed"],
        "severity": EVENT_SEVERITY[verdict.severity],
        "risk_score": float(verdict.score),
        "risk_score_norm": float(verdict.score),
        "module": "shrike",
        "dataset": context.dataset,
    }
    starts = [d.window_start for d in verdict.detections if d.window_start is not None]
    if starts:
        event["start"] = timestamp(min(starts))
        event["end"] = timestamp(verdict.ts)
    if verdict.reasons:
        event["reason"] = verdict.reasons[0]
    return event


def _rule(verdict: Verdict, primary: Match | None) -> dict[str, Any]:
    """`rule.*` names what fired: the top signature, else detector, else anomaly model."""
    if primary is not None:
        rule: dict[str, Any] = {
            "id": str(primary.rule_id),
            "name": primary.title,
            "version": str(primary.rev),
            "ruleset": primary.ruleset or ("snort" if primary.source == "snort" else "shrike"),
        }
        if primary.classtype:
            rule["category"] = primary.classtype
        refs = [_reference_url(r) for r in primary.references]
        if refs:
            rule["reference"] = refs[0] if len(refs) == 1 else refs
        return rule
    if verdict.detections:
        det = _primary_detection(verdict.detections)
        return {
            "id": det.detector,
            "name": det.title,
            "ruleset": "shrike-detectors",
            "category": "behaviour",
        }
    if verdict.anomaly is not None:
        return {
            "id": verdict.anomaly.model,
            "name": "Anomalous flow",
            "ruleset": "shrike-anomaly",
            "category": "anomaly",
            "version": verdict.anomaly.model_version or "0",
        }
    return {"name": _title(verdict), "ruleset": "shrike"}


def _reference_url(reference: str) -> str:
    """Snort style `url,example.com/x` and `cve,2021-44228` become links; others stay."""
    kind, sep, value = reference.partition(",")
    if not sep:
        return reference
    kind = kind.strip().lower()
    value = value.strip()
    if kind == "url":
        return value if "://" in value else f"http://{value}"
    if kind == "cve":
        return f"https://www.cve.org/CVERecord?id=CVE-{value.removeprefix('CVE-')}"
    return reference


def _threat(verdict: Verdict) -> dict[str, Any]:
    return _copy(_threat_fields(verdict.techniques, verdict.tactics))


def _copy(value: Any) -> Any:
    """A fresh copy of cached nested dicts and lists, so callers may change what they get."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return list(value)
    return value


@lru_cache(maxsize=4096)
def _threat_fields(technique_ids: tuple[str, ...], tactic_ids: tuple[str, ...]) -> dict[str, Any]:
    """`threat.*` for a set of ATT&CK ids, named from the shipped catalog (cached: few sets recur)."""
    catalog = load_catalog()
    techniques = _unique(technique_ids)
    tactic_refs = _unique(tactic_ids)
    if not tactic_refs:
        # a verdict that names only techniques still lands under their tactics
        derived: list[str] = []
        for tid in techniques:
            try:
                derived += catalog.technique(tid).tactics
            except AttackCatalogError:
                continue
        tactic_refs = _unique(derived)
    if not techniques and not tactic_refs:
        return {}
    threat: dict[str, Any] = {"framework": "MITRE ATT&CK"}
    tactics: dict[str, list[str]] = {"id": [], "name": [], "reference": []}
    for ref in tactic_refs:
        try:
            tac = catalog.tactic(ref)
        except AttackCatalogError:
            tactics["id"].append(ref)
            tactics["name"].append(ref)
            tactics["reference"].append(f"{_ATTACK}/tactics/{ref}/")
            continue
        tactics["id"].append(tac.tactic_id)
        tactics["name"].append(tac.name)
        tactics["reference"].append(f"{_ATTACK}/tactics/{tac.tactic_id}/")
    if tactics["id"]:
        threat["tactic"] = {k: _unique(v) for k, v in tactics.items()}
    parents: dict[str, list[str]] = {"id": [], "name": [], "reference": []}
    subs: dict[str, list[str]] = {"id": [], "name": [], "reference": []}
    for tid in techniques:
        parent_id = tid.split(".", 1)[0]
        parents["id"].append(parent_id)
        parents["name"].append(_technique_name(catalog, parent_id))
        parents["reference"].append(f"{_ATTACK}/techniques/{parent_id}/")
        if "." in tid:
            sub = tid.split(".", 1)[1]
            subs["id"].append(tid)
            subs["name"].append(_technique_name(catalog, tid))
            subs["reference"].append(f"{_ATTACK}/techniques/{parent_id}/{sub}/")
    if parents["id"]:
        technique: dict[str, Any] = {k: _unique(v) for k, v in parents.items()}
        if subs["id"]:
            technique["subtechnique"] = {k: _unique(v) for k, v in subs.items()}
        threat["technique"] = technique
    return threat


def _technique_name(catalog: AttackCatalog, technique_id: str) -> str:
    try:
        return catalog.technique(technique_id).name
    except AttackCatalogError:
        return technique_id


def _endpoints(flow: FlowKey) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side, ip, port in (
        ("source", flow.src_ip, flow.src_port),
        ("destination", flow.dst_ip, flow.dst_port),
    ):
        end: dict[str, Any] = {"address": ip}
        if _is_ip(ip):
            end["ip"] = ip
        if flow.proto in (6, 17, 132):
            end["port"] = int(port)
        out[side] = end
    return out


def _network(flow: FlowKey, primary: Match | None, context: EcsContext) -> dict[str, Any]:
    net: dict[str, Any] = {"transport": flow.transport, "iana_number": str(flow.proto)}
    if _is_ip(flow.src_ip):
        net["type"] = "ipv6" if ":" in flow.src_ip else "ipv4"
    if flow.community_id:
        net["community_id"] = flow.community_id
    if primary is not None and primary.app_proto:
        net["protocol"] = primary.app_proto.lower()
    direction = _direction(flow, context.home_networks)
    if direction:
        net["direction"] = direction
    return net


def _direction(flow: FlowKey, home_networks: tuple[str, ...]) -> str:
    if not home_networks or not (_is_ip(flow.src_ip) and _is_ip(flow.dst_ip)):
        return ""
    nets = _networks(home_networks)
    src_home = any(ipaddress.ip_address(flow.src_ip) in n for n in nets)
    dst_home = any(ipaddress.ip_address(flow.dst_ip) in n for n in nets)
    if src_home and dst_home:
        return "internal"
    if src_home:
        return "outbound"
    if dst_home:
        return "inbound"
    return "external"


@cache
def _networks(home: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in home)


def _observer(verdict: Verdict, context: EcsContext) -> dict[str, Any]:
    observer: dict[str, Any] = {
        "type": "ids",
        "vendor": "Shrike",
        "product": "Shrike",
        "version": _version(),
    }
    name = verdict.sensor or context.observer_name
    if name:
        observer["name"] = name
    if context.observer_hostname:
        observer["hostname"] = context.observer_hostname
    return observer


@cache
def _version() -> str:
    try:
        return metadata.version("shrike")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _shrike(verdict: Verdict) -> dict[str, Any]:
    out: dict[str, Any] = {
        "score": float(verdict.score),
        "label": verdict.label,
        "severity": verdict.severity,
        "severity_rank": SEVERITIES.index(verdict.severity),
        "count": int(verdict.count),
        "reasons": list(verdict.reasons),
        "contributions": [_contribution(c) for c in verdict.contributions],
        "sources": _unique(c.kind for c in verdict.contributions),
    }
    if verdict.host:
        out["host"] = verdict.host
    if verdict.matches:
        out["matches"] = [_match(m) for m in verdict.matches]
    if verdict.detections:
        out["detections"] = [_detection(d) for d in verdict.detections]
    if verdict.anomaly is not None:
        out["anomaly"] = _anomaly(verdict.anomaly)
    return out


def _contribution(c: Contribution) -> dict[str, Any]:
    return {
        "kind": c.kind,
        "name": c.name,
        "reason": c.reason,
        "points": float(c.points),
        "ref": c.ref,
    }


def _match(m: Match) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rule_id": int(m.rule_id),
        "gid": int(m.gid),
        "rev": int(m.rev),
        "title": m.title,
        "severity": m.severity,
        "action": m.action,
        "source": m.source,
        "techniques": list(m.techniques),
    }
    for name in ("classtype", "priority", "app_proto", "packet", "ruleset"):
        value = getattr(m, name)
        if value is not None:
            out[name] = value
    return out


def _detection(d: Detection) -> dict[str, Any]:
    out: dict[str, Any] = {
        "detector": d.detector,
        "key": d.key,
        "title": d.title,
        "severity": d.severity,
        "score": float(d.score),
        "techniques": list(d.techniques),
    }
    if d.window_start is not None:
        out["window_start"] = timestamp(d.window_start)
    if d.evidence:
        out["evidence"] = _plain(d.evidence)
    return out


def _anomaly(a: AnomalyScore) -> dict[str, Any]:
    return {
        "score": float(a.score),
        "threshold": float(a.threshold),
        "anomalous": a.is_anomalous,
        "model": a.model,
        "model_version": a.model_version,
        "reasons": list(a.reasons),
    }


def _plain(value: Any) -> Any:
    """Evidence as JSON-ready values: tuples become lists, odd scalars become text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@lru_cache(maxsize=65536)
def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
