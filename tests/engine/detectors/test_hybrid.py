"""The hybrid path on generated traffic: packets to verdicts with detectors, the shipped model and fusion."""

from __future__ import annotations

from pathlib import Path

import pytest
from detector_traffic import arp_requests, batch_of, tcp_probe_scan

from dpdk_io.errors import CaptureError
from engine.anomaly import Scorer
from engine.fusion import Fuser, FusionConfig, Suppression
from engine.hybrid import HybridEngine, run_hybrid
from engine.sources import open_source


def test_scan_becomes_one_host_verdict_with_reasons() -> None:
    pkts = tcp_probe_scan("203.0.113.66", "10.0.0.5", range(1, 120))
    engine = HybridEngine(scorer=Scorer.load())
    verdicts = engine.process(batch_of(pkts)) + engine.finish()
    scans = [v for v in verdicts if "T1046" in v.techniques]
    assert len(scans) == 1
    v = scans[0]
    assert v.host == "203.0.113.66" and v.flow is None
    assert v.label in ("suspicious", "malicious")
    assert v.reasons[0].startswith("Port scan of 10.0.0.5 from 203.0.113.66")
    assert engine.stats.flows == 119 and engine.stats.packets == len(pkts)
    assert engine.stats.detectors["port_scan"] == 1


def test_suppressed_detector_gives_no_verdict() -> None:
    pkts = arp_requests("10.0.0.200", "02:00:00:00:00:aa", [f"10.0.0.{k}" for k in range(1, 60)])
    fuser = Fuser(FusionConfig(suppress=(Suppression("detection", "arp_scan", "10.0.0.0/24"),)))
    engine = HybridEngine(fuser=fuser)
    assert engine.process(batch_of(pkts)) + engine.finish() == []
    assert fuser.suppressed == 1


def test_damaged_capture_gives_verdicts_then_the_error(tmp_path: Path) -> None:
    from scapy.utils import wrpcap

    path = tmp_path / "scan.pcap"
    wrpcap(str(path), tcp_probe_scan("203.0.113.66", "10.0.0.5", range(1, 60)))
    data = path.read_bytes()
    path.write_bytes(data[:-30])  # the last record is cut short
    engine = HybridEngine()
    got = []
    with pytest.raises(CaptureError), open_source("pcap", str(path)) as src:
        for v in run_hybrid(src, engine):
            got.append(v)
    assert any("T1046" in v.techniques for v in got)


def test_engine_from_files_reports_bad_files(tmp_path: Path) -> None:
    from engine.anomaly import ModelError
    from engine.detectors import DetectorConfigError

    engine = HybridEngine.from_files()
    assert engine.scorer is not None and len(engine.detectors.detectors) == 13
    assert HybridEngine.from_files(use_model=False).scorer is None
    bad = tmp_path / "detectors.yaml"
    bad.write_text("port_scan:\n  window: soon\n")
    with pytest.raises(DetectorConfigError, match=r"detectors\.yaml: port_scan\.window"):
        HybridEngine.from_files(detectors=bad)
    with pytest.raises(ModelError, match="no such model file"):
        HybridEngine.from_files(model=tmp_path / "none.skops")


def test_step_for_an_external_packet_loop() -> None:
    from engine.decode import decode
    from engine.events import FlowKey, Match
    from engine.flows import FlowTable

    pkts = tcp_probe_scan("203.0.113.66", "10.0.0.5", range(1, 60))
    stored = []
    engine = HybridEngine(on_flows=stored.append)
    table = FlowTable()
    decoded = decode(batch_of(pkts))
    events = table.update(decoded)
    flow = FlowKey("203.0.113.66", 40000, "10.0.0.5", 22, 6, "1:x")
    match = Match(
        ts=1.7e9, flow=flow, rule_id=7, title="probe", severity="low", techniques=("T1046",)
    )
    verdicts = engine.observe(decoded, events.ended, [match])
    verdicts += engine.process_records(table.flush())
    assert any(v.flow == flow and v.matches == (match,) for v in verdicts)
    assert any(v.host == "203.0.113.66" for v in verdicts)
    assert sum(len(r) for r in stored) == 59
