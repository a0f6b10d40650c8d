"""`shrike flows`: JSONL/CSV output, -o, exit codes on damaged and missing captures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from engine.cli import main

REQUIRED = (
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "proto",
    "orig_pkts",
    "resp_pkts",
    "orig_ip_bytes",
    "resp_ip_bytes",
    "duration",
    "conn_state",
    "history",
    "community_id",
)
BASE = {
    "ts",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "proto",
    "ip_proto",
    "community_id",
    "duration",
    "orig_pkts",
    "resp_pkts",
    "orig_ip_bytes",
    "resp_ip_bytes",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "history",
    "end_reason",
    "vlan",
}


def _eth():
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _capture(path: Path, n_udp: int = 6) -> list:
    """A TCP connection plus `n_udp` one-packet UDP flows, 1 s apart."""
    c, s = "10.0.0.1", "10.0.0.2"
    pk = [
        _eth() / IP(src=c, dst=s) / TCP(sport=40000, dport=80, flags="S", seq=1),
        _eth() / IP(src=s, dst=c) / TCP(sport=80, dport=40000, flags="SA", seq=9, ack=2),
        _eth() / IP(src=c, dst=s) / TCP(sport=40000, dport=80, flags="A", seq=2, ack=10),
    ]
    pk += [
        _eth() / IP(src="10.0.0.1", dst="10.0.9.9") / UDP(sport=50000 + i, dport=7000) / (b"u" * 20)
        for i in range(n_udp)
    ]
    for i, p in enumerate(pk):
        p.time = 1_700_000_000 + i
    wrpcap(str(path), pk)
    return pk


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["flows", "--no-progress", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_jsonl_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.pcap"
    _capture(path)
    rc, out, err = _run([str(path)], capsys)
    assert rc == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert len(recs) == 7
    for r in recs:
        assert set(REQUIRED) <= set(r)
        assert len(set(r) - BASE) >= 30  # feature fields
        assert r["community_id"].startswith("1:")
    tcp = next(r for r in recs if r["proto"] == "tcp")
    assert (tcp["src_ip"], tcp["dst_port"], tcp["orig_pkts"], tcp["resp_pkts"]) == (
        "10.0.0.1",
        80,
        2,
        1,
    )
    assert tcp["history"] == "ShA" and tcp["conn_state"] == "S1"
    assert tcp["duration"] == pytest.approx(2.0)
    udp = sorted(r["src_port"] for r in recs if r["proto"] == "udp")
    assert udp == list(range(50000, 50006))


def test_csv_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.pcap"
    _capture(path)
    out_file = tmp_path / "flows.csv"
    rc, out, _ = _run([str(path), "--format", "csv", "-o", str(out_file)], capsys)
    assert rc == 0 and out == ""
    with out_file.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        rows = list(reader)
    assert set(REQUIRED) <= set(header)
    assert len(set(header) - BASE) >= 30
    assert len(rows) == 7
    assert sum(int(r["orig_pkts"]) + int(r["resp_pkts"]) for r in rows) == 9


def test_jsonl_output_file_and_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.pcap"
    _capture(path)
    out_file = tmp_path / "flows.jsonl"
    rc, out, err = _run([str(path), "-o", str(out_file), "--stats"], capsys)
    assert rc == 0 and out == ""
    assert len(out_file.read_text().splitlines()) == 7
    stats = json.loads(err.strip().splitlines()[-1])
    assert stats["packets"] == 9 and stats["flows"] == 7


def _truncated(tmp_path: Path) -> tuple[Path, int, int]:
    """The capture cut in the middle of its last packet: (path, byte offset, packet index)."""
    full = tmp_path / "full.pcap"
    pk = _capture(full)
    blob = full.read_bytes()
    last = len(bytes(pk[-1]))
    offset = len(blob) - last - 16
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(blob[: len(blob) - last // 2])
    return cut, offset, len(pk) - 1


def test_truncated_capture_exit_1_names_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut, offset, index = _truncated(tmp_path)
    rc, _, err = _run([str(cut)], capsys)
    assert rc == 1
    assert f"byte {offset}" in err
    assert f"packet {index}" in err


def test_truncated_capture_writes_records_before_damage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut, _, index = _truncated(tmp_path)
    rc, out, _ = _run([str(cut)], capsys)
    assert rc == 1
    recs = [json.loads(line) for line in out.splitlines()]
    # every packet before the damage belongs to a written record
    assert sum(r["orig_pkts"] + r["resp_pkts"] for r in recs) == index
    assert len(recs) == 6


def test_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run([str(tmp_path / "nope.pcap")], capsys)
    assert rc == 2 and out == ""
    assert "nope.pcap" in err


def test_not_a_capture_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture file at all")
    rc, _, err = _run([str(bad)], capsys)
    assert rc == 2 and "magic" in err
