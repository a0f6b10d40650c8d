"""Verdicts for sink tests: one of each shape the fusion stage produces."""

from __future__ import annotations

from engine.events import (
    AnomalyScore,
    Contribution,
    Detection,
    FlowKey,
    Match,
    Verdict,
)

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z

FLOW = FlowKey("10.0.0.5", 51515, "192.0.2.80", 80, 6, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
FLOW6 = FlowKey("2001:db8::5", 0, "2001:db8::1", 0, 58, "")


def signature_verdict(i: int = 0, *, severity: str = "high", ts: float | None = None) -> Verdict:
    flow = FlowKey("10.0.0.5", 40000 + i % 20000, "192.0.2.80", 80, 6, FLOW.community_id)
    match = Match(
        ts=T0 + i if ts is None else ts,
        flow=flow,
        rule_id=9000002,
        title="Windows executable fetched over plain HTTP",
        severity=severity,
        rev=3,
        classtype="trojan-activity",
        priority=1,
        techniques=("T1105",),
        tactics=("command-and-control",),
        references=("url,attack.mitre.org/techniques/T1105", "cve,2021-44228"),
        app_proto="HTTP",
        packet=42 + i,
        ruleset="signatures/command-and-control/http.shrike",
    )
    return Verdict(
        ts=match.ts,
        score=82.5,
        label="malicious",
        severity=severity,
        flow=flow,
        techniques=("T1105",),
        tactics=("command-and-control",),
        contributions=(
            Contribution(
                "signature",
                match.title,
                "rule 9000002 matched: MZ header over HTTP",
                60.0,
                "9000002",
            ),
            Contribution("anomaly", "iforest", "resp_bytes far above training (z=6.2)", 22.5, "3"),
        ),
        matches=(match,),
        anomaly=AnomalyScore(
            ts=match.ts,
            flow=flow,
            score=0.91,
            threshold=0.7,
            model="iforest",
            model_version="3",
            reasons=("resp_bytes far above training (z=6.2)",),
        ),
        sensor="sensor-a",
    )


def scan_verdict(i: int = 0, *, ts: float | None = None) -> Verdict:
    """A host-level verdict from a behavioural detector: no flow, a sub-technique."""
    t = T0 + i if ts is None else ts
    det = Detection(
        ts=t,
        detector="port_scan",
        key=f"198.51.100.{i % 250 + 1}",
        title="TCP SYN scan from one source",
        severity="medium",
        score=0.8,
        techniques=("T1046", "T1595.001"),
        window_start=t - 60,
        evidence={"distinct_ports": 412 + i, "window_s": 60, "ports": (22, 80, 443)},
    )
    return Verdict(
        ts=t,
        score=55.0,
        label="suspicious",
        severity="medium",
        host=det.key,
        techniques=det.techniques,
        contributions=(
            Contribution("detection", "port_scan", "412 distinct ports in 60 s", 55.0, det.key),
        ),
        detections=(det,),
    )


def anomaly_verdict(i: int = 0) -> Verdict:
    score = AnomalyScore(
        ts=T0 + i,
        flow=FLOW6,
        score=0.75,
        threshold=0.7,
        model="iforest",
        model_version="3",
        reasons=("duration far above training (z=4.0)",),
    )
    return Verdict(
        ts=T0 + i,
        score=35.0,
        label="anomalous",
        severity="low",
        flow=FLOW6,
        contributions=(Contribution("anomaly", "iforest", score.reasons[0], 35.0, "3"),),
        anomaly=score,
    )


def mixed_verdicts(n: int) -> list[Verdict]:
    makers = (signature_verdict, scan_verdict, anomaly_verdict)
    return [makers[i % 3](i) for i in range(n)]
