"""Verdicts as ECS documents, checked against Shrike's own index template."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sink_verdicts import FLOW, anomaly_verdict, scan_verdict, signature_verdict

from engine.ecs import EcsContext, to_ecs
from engine.events import LABELS, SEVERITIES, Contribution, FlowKey, Match, Verdict
from integrations.elastic import flat_field_types
from integrations.elastic.mapping_check import document_problems


def _paths(doc: object, prefix: str = "") -> set[str]:
    out: set[str] = set()
    items = doc if isinstance(doc, list) else [doc]
    for item in items:
        if isinstance(item, dict):
            for k, v in item.items():
                if k == "evidence":  # flattened: its inner keys are not fields
                    out.add(f"{prefix}{k}")
                    continue
                sub = _paths(v, f"{prefix}{k}.")
                out |= sub or {f"{prefix}{k}"}
    return out


@pytest.mark.parametrize("make", [signature_verdict, scan_verdict, anomaly_verdict])
def test_every_field_is_mapped_with_a_compatible_type(make: object) -> None:
    doc = to_ecs(make())  # type: ignore[operator]
    assert document_problems(doc) == []
    mapped = flat_field_types()
    for path in _paths(doc):
        assert path in mapped, f"{path} is written but not in the index template"


def test_the_checker_catches_what_elasticsearch_would_reject() -> None:
    doc = to_ecs(signature_verdict())
    bad = copy.deepcopy(doc)
    bad["source"]["ip"] = "10.0.0.300"
    bad["event"]["severity"] = "high"
    bad["shrike"]["made_up"] = 1
    bad["shrike"]["anomaly"]["anomalous"] = "yes"
    assert document_problems(bad) == [
        "event.severity: long needs an integer, got 'high'",
        "shrike.anomaly.anomalous: boolean needs true or false, got 'yes'",
        "shrike.made_up: not mapped",
        "source.ip: ip needs an address, got '10.0.0.300'",
    ]


def test_signature_verdict_maps_like_suricata_alerts() -> None:
    doc = to_ecs(signature_verdict())
    assert doc["@timestamp"] == "2024-05-01T12:00:00.000000Z"
    assert doc["event"]["kind"] == "alert"
    assert doc["event"]["category"] == ["network", "intrusion_detection"]
    assert doc["event"]["type"] == ["allowed"]
    assert doc["event"]["severity"] == 1  # Suricata scale: 1 is most severe
    assert doc["event"]["risk_score"] == 82.5
    assert doc["rule"] == {
        "id": "9000002",
        "name": "Windows executable fetched over plain HTTP",
        "version": "3",
        "ruleset": "signatures/command-and-control/http.shrike",
        "category": "trojan-activity",
        "reference": [
            "http://attack.mitre.org/techniques/T1105",
            "https://www.cve.org/CVERecord?id=CVE-2021-44228",
        ],
    }
    assert doc["source"] == {"address": "10.0.0.5", "ip": "10.0.0.5", "port": 40000}
    assert doc["destination"]["port"] == 80
    assert doc["network"]["protocol"] == "http"
    assert doc["network"]["transport"] == "tcp"
    assert doc["network"]["community_id"] == FLOW.community_id
    assert doc["threat"]["tactic"]["name"] == ["Command and Control"]
    assert doc["threat"]["technique"]["name"] == ["Ingress Tool Transfer"]
    assert doc["shrike"]["anomaly"]["anomalous"] is True
    assert doc["shrike"]["matches"][0]["packet"] == 42
    assert doc["observer"]["name"] == "sensor-a"
    assert doc["message"].startswith("malicious [high] Windows executable")


def test_drop_action_is_denied() -> None:
    v = signature_verdict()
    v = replace(v, matches=(replace(v.matches[0], action="drop"),))
    assert to_ecs(v)["event"]["type"] == ["denied"]


def test_subtechniques_and_derived_tactics() -> None:
    doc = to_ecs(scan_verdict())
    threat = doc["threat"]
    assert threat["framework"] == "MITRE ATT&CK"
    assert threat["technique"]["id"] == ["T1046", "T1595"]
    assert threat["technique"]["subtechnique"] == {
        "id": ["T1595.001"],
        "name": ["Scanning IP Blocks"],
        "reference": ["https://attack.mitre.org/techniques/T1595/001/"],
    }
    # the verdict named no tactics: they come from the techniques in the catalog
    assert threat["tactic"]["id"] == ["TA0007", "TA0043"]
    assert doc["shrike"]["host"] == "198.51.100.1"
    assert doc["related"]["ip"] == ["198.51.100.1"]
    # a scanner is the source of what it did; the verdict has no flow, so no ports
    assert doc["source"] == {"address": "198.51.100.1", "ip": "198.51.100.1"}
    assert "destination" not in doc
    assert doc["event"]["start"] == "2024-05-01T11:59:00.000000Z"


def test_direction_from_home_networks() -> None:
    v = signature_verdict()
    ctx = EcsContext(home_networks=("10.0.0.0/8",))
    assert to_ecs(v, ctx)["network"]["direction"] == "outbound"
    inbound = replace(v, flow=FlowKey("192.0.2.80", 80, "10.0.0.5", 5, 6))
    assert to_ecs(inbound, ctx)["network"]["direction"] == "inbound"
    assert "direction" not in to_ecs(v)["network"]
    with pytest.raises(ValueError, match="not an address or CIDR"):
        EcsContext(home_networks=("10.0.0.0/33",))


def test_address_that_is_not_an_ip_stays_out_of_ip_fields() -> None:
    v = replace(anomaly_verdict(), flow=FlowKey("sensor-lo", 0, "192.0.2.1", 0, 1))
    doc = to_ecs(v)
    assert doc["source"] == {"address": "sensor-lo"}
    assert doc["related"]["ip"] == ["192.0.2.1"]
    assert document_problems(doc) == []


def test_pure_same_input_same_document() -> None:
    v = signature_verdict()
    assert json.dumps(to_ecs(v), sort_keys=True) == json.dumps(to_ecs(v), sort_keys=True)


def test_bad_severity_is_named() -> None:
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        to_ecs(replace(signature_verdict(), severity="urgent"))


_ips = st.one_of(
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str), st.sampled_from(["lo", ""])
)


@settings(max_examples=150, deadline=None)
@given(
    src=_ips,
    dst=_ips,
    sport=st.integers(0, 65535),
    proto=st.sampled_from([1, 6, 17, 58, 132, 47]),
    score=st.floats(0, 100),
    severity=st.sampled_from(SEVERITIES),
    label=st.sampled_from(LABELS),
    title=st.text(max_size=40),
    techniques=st.lists(st.sampled_from(["T1046", "T1059.001", "T9999", "T1105"]), max_size=3),
    tactics=st.lists(st.sampled_from(["discovery", "TA0002", "nonsense"]), max_size=2),
    rule_id=st.integers(1, 2**40),
    evidence=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5)),
)
def test_any_verdict_fits_the_template(
    src: str,
    dst: str,
    sport: int,
    proto: int,
    score: float,
    severity: str,
    label: str,
    title: str,
    techniques: list[str],
    tactics: list[str],
    rule_id: int,
    evidence: dict[str, object],
) -> None:
    flow = FlowKey(src, sport, dst, 443, proto)
    m = Match(1.7e9, flow, rule_id, title, severity, techniques=tuple(techniques))
    v = Verdict(
        ts=1.7e9,
        score=score,
        label=label,
        severity=severity,
        flow=flow,
        techniques=tuple(techniques),
        tactics=tuple(tactics),
        contributions=(Contribution("signature", title, title, score, str(rule_id)),),
        matches=(m,),
        detections=(replace(scan_verdict().detections[0], evidence=evidence),),
    )
    doc = to_ecs(v)
    assert document_problems(doc) == []
    json.dumps(doc)  # serializable as is


def test_documents_share_no_state() -> None:
    v = scan_verdict()
    first = to_ecs(v)
    first["threat"]["technique"]["id"].append("T0000")
    first["threat"]["tactic"]["name"] = []
    second = to_ecs(v)
    assert second["threat"]["technique"]["id"] == ["T1046", "T1595"]
    assert second["threat"]["tactic"]["name"] == ["Discovery", "Reconnaissance"]


def test_a_flood_victim_is_the_destination() -> None:
    scan = scan_verdict()
    flood = replace(
        scan,
        detections=(replace(scan.detections[0], detector="syn_flood", key_role="destination"),),
    )
    doc = to_ecs(flood)
    assert doc["destination"] == {"address": "198.51.100.1", "ip": "198.51.100.1"}
    assert "source" not in doc
