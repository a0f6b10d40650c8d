"""`shrike demo` and `shrike run`: the README's first command, end to end."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from engine.cli import main


def test_demo_generates_traffic_and_fills_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "sample" / "sample.pcap").stat().st_size > 0
    db = sqlite3.connect(tmp_path / "shrike.db")
    states = dict(db.execute("SELECT conn_state, COUNT(*) FROM flows GROUP BY conn_state"))
    total = db.execute("SELECT COUNT(*) FROM flows").fetchone()[0]
    # the sample holds completed web/DNS/NTP sessions and a SYN scan of closed ports
    assert states.get("SF", 0) >= 70
    assert states.get("REJ", 0) >= 90
    assert f"embedded store: {tmp_path / 'shrike.db'} ({total} flows in all)" in out

    # the scan is seen twice over: by the shipped window rule and by the port-scan detector
    assert main(["alerts", "--data-dir", str(tmp_path), "--format", "json"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    rules = {d["rule"]["id"] for d in docs}
    assert {"9000001", "port_scan"} <= rules
    scan = next(d for d in docs if d["rule"]["id"] == "port_scan")
    assert scan["source"]["ip"] == "203.0.113.66"
    assert "T1046" in scan["threat"]["technique"]["id"]


def test_run_appends_and_reports_a_damaged_capture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.sample import write_sample_pcap

    good = tmp_path / "good.pcap"
    write_sample_pcap(good)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(good.read_bytes()[:-30])  # inside the last packet
    data = tmp_path / "store"
    assert main(["run", "--pcap", str(good), "--data-dir", str(data), "--no-progress"]) == 0
    first = sqlite3.connect(data / "shrike.db").execute("SELECT COUNT(*) FROM flows").fetchone()[0]
    assert main(["run", "--pcap", str(cut), "--data-dir", str(data), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "packet 605" in err  # 0-based index of the damaged packet
    second = sqlite3.connect(data / "shrike.db").execute("SELECT COUNT(*) FROM flows").fetchone()[0]
    # the damaged run still stored the flows of its 605 good packets
    assert second - first >= first - 1


def test_run_refuses_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("flows:\n  max_flow: 3\n")
    assert main(["run", "--pcap", "x.pcap", "--config", str(cfg), "--data-dir", str(tmp_path)]) == 2
    assert "did you mean max_flows?" in capsys.readouterr().err
