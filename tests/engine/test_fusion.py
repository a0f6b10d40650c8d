"""Verdict fusion: the documented formula, labels, grouping, suppression and aggregation."""

from __future__ import annotations

import dataclasses

import pytest

from engine.events import AnomalyScore, Detection, FlowKey, Match
from engine.fusion import (
    Fuser,
    FusionConfig,
    FusionConfigError,
    Suppression,
    fuse,
    load_fusion_config,
)

FLOW = FlowKey("10.0.0.5", 51000, "203.0.113.9", 443, 6, "1:abc")


def _match(ts: float = 10.0, severity: str = "high", flow: FlowKey = FLOW) -> Match:
    return Match(
        ts=ts,
        flow=flow,
        rule_id=9000001,
        title="Bad TLS client",
        severity=severity,
        techniques=("T1071.001",),
        tactics=("command-and-control",),
    )


def _scan(ts: float = 10.0, key: str = "10.0.0.5", score: float = 1.0) -> Detection:
    return Detection(
        ts=ts,
        detector="port_scan",
        key=key,
        title=f"Port scan from {key}",
        severity="medium",
        score=score,
        techniques=("T1046",),
        tactics=("discovery",),
    )


def _anomaly(score: float, flow: FlowKey = FLOW) -> AnomalyScore:
    return AnomalyScore(
        ts=9.0,
        flow=flow,
        score=score,
        threshold=0.5,
        model="isolation_forest",
        model_version="isolation_forest-x",
        reasons=("orig_bytes=9e+06 far above training (z=+8.1)",),
    )


def test_signature_and_flow_detection_fuse_into_one_verdict() -> None:
    det = dataclasses.replace(_scan(), flow=FLOW, severity="medium", score=1.0)
    (v,) = fuse([_match()], [det], [])
    assert v.score == pytest.approx(100 * (1 - (1 - 0.75) * (1 - 0.50)))  # 87.5
    assert v.label == "malicious" and v.severity == "high"
    assert v.techniques == ("T1046", "T1071.001")
    assert v.tactics == ("command-and-control", "discovery")
    assert v.flow == FLOW and v.host is None
    assert len(v.contributions) == 2 and v.contributions[0].kind == "signature"
    assert v.reasons[0] == "rule 9000001 \u201cBad TLS client\u201d matched (high)"


def test_host_level_detection_gives_a_host_verdict() -> None:
    (v,) = fuse([], [_scan(score=0.6)], [])
    assert v.host == "10.0.0.5" and v.flow is None
    assert v.score == pytest.approx(30.0)
    assert v.label == "suspicious"  # a detector that fired is never merely anomalous
    assert v.severity == "low"
    assert v.reasons == ("Port scan from 10.0.0.5",)


def test_anomaly_only_is_anomalous_and_below_threshold_is_benign() -> None:
    (v,) = fuse([], [], [_anomaly(0.75)])
    assert v.label == "anomalous"
    assert v.score == pytest.approx(15 + 30 * 0.5)
    assert "orig_bytes" in v.reasons[0] and v.anomaly is not None
    assert fuse([], [], [_anomaly(0.3)]) == []
    (b,) = fuse([], [], [_anomaly(0.3)], FusionConfig(emit_benign=True))
    assert b.label == "benign" and b.score == 0.0


def test_weights_are_configurable() -> None:
    pts = (("info", 0.0), ("low", 0.0), ("medium", 90.0), ("high", 0.0), ("critical", 0.0))
    (v,) = fuse([], [_scan()], [], FusionConfig(detection_points=pts))
    assert v.score == pytest.approx(90.0) and v.label == "malicious" and v.severity == "critical"


def test_verdicts_per_flow_and_host_in_time_order() -> None:
    other = FlowKey("10.0.0.6", 1, "198.51.100.1", 80, 6, "1:def")
    vs = fuse(
        [_match(ts=20.0), _match(ts=5.0, flow=other)],
        [_scan(ts=12.0, key="10.0.0.7")],
        [_anomaly(0.9)],
    )
    assert [v.ts for v in vs] == sorted(v.ts for v in vs)
    assert len(vs) == 3
    first_flow = next(v for v in vs if v.flow == FLOW)
    assert first_flow.anomaly is not None and len(first_flow.contributions) == 2


def test_suppression_by_detector_and_address() -> None:
    cfg = FusionConfig(suppress=(Suppression("detection", "port_scan", "10.0.0.0/24"),))
    fuser = Fuser(cfg)
    assert fuser.fuse([], [_scan()], []) == []
    assert fuser.suppressed == 1
    assert len(fuser.fuse([], [_scan(key="192.168.1.1")], [])) == 1
    by_rule = Fuser(FusionConfig(suppress=(Suppression("signature", "9000001"),)))
    assert by_rule.fuse([_match()], [], []) == []


def test_repeats_are_aggregated_then_reported_with_their_count() -> None:
    fuser = Fuser(FusionConfig(aggregate_window=60.0))
    out = []
    for k in range(5):  # five repeats of the same scan verdict within a minute
        flow = dataclasses.replace(FLOW, src_port=51000 + k, community_id=f"1:{k}")
        out += fuser.fuse([_match(ts=10.0 + k, flow=flow)], [], [])
    assert len(out) == 1 and out[0].count == 1
    assert fuser.aggregated == 4
    later = fuser.fuse([_match(ts=200.0)], [], [])  # the window has passed: the run is reported
    assert [v.count for v in later] == [4, 1]
    assert fuser.fuse([_match(ts=210.0)], [], []) == []  # a repeat of the new run
    assert [v.count for v in fuser.flush()] == [1]
    assert fuser.flush() == []


def test_shipped_config_is_the_defaults() -> None:
    assert load_fusion_config() == FusionConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("malicious_at: high\n", "malicious_at: expected a number"),
        ("signature_points: {low: 5}\n", "signature_points needs points for each of"),
        ("suppress: [{kind: rule}]\n", "suppress[0]: suppression kind must be one of"),
        ("suppress: [{kind: any, address: nowhere}]\n", "suppress[0]"),
        ("weights: 1\n", "weights: unknown setting"),
        ("suspicious_at: 90\nmalicious_at: 50\n", "need 0 < suspicious_at <= malicious_at"),
    ],
)
def test_bad_config_is_located(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "fusion.yaml"
    path.write_text(text)
    with pytest.raises(FusionConfigError) as err:
        load_fusion_config(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)
