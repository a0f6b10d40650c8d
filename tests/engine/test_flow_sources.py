"""Flow records do not depend on the capture front end or on batch boundaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dpdk_io.batch import LinkType, PacketBatch
from dpdk_io.pcap import PcapSource
from engine.decode import decode
from engine.flows import FlowTable, FlowTableConfig
from engine.pipeline import iter_flow_records
from engine.sample import write_sample_pcap

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _libdpdk_present() -> bool:
    try:
        return subprocess.run(["pkg-config", "--exists", "libdpdk"], check=False).returncode == 0
    except FileNotFoundError:
        return False


def _key(r: dict) -> tuple:
    return (
        r["ts"],
        r["src_ip"],
        r["src_port"],
        r["dst_ip"],
        r["dst_port"],
        r["proto"],
        r["orig_pkts"],
    )


def _records(path: Path, batch_size: int = 65_536) -> list[dict]:
    out: list[dict] = []
    with PcapSource(path, batch_size=batch_size) as src:
        for recs in iter_flow_records(src):
            out.extend(recs.to_dicts())
    return sorted(out, key=_key)


def _captures(tmp_path: Path) -> list[Path]:
    sample = tmp_path / "sample.pcap"
    write_sample_pcap(sample)
    paths = [sample]
    for rel in (
        "zeek/traces/wikipedia.pcap",
        "zeek/traces/tunnels/Teredo.pcap",
        "pcaps/ndpi/bittorrent.pcap",
        "zeek/traces/tunnels/gtp/gtp1_gn_normal_incl_fragmentation.pcap",  # reassembly
    ):
        if (SHARED / rel).exists():
            paths.append(SHARED / rel)
    return paths


def test_batch_size_does_not_change_records(tmp_path: Path) -> None:
    # sweeps and the export buffer fall at different packets with other batch sizes
    for path in _captures(tmp_path):
        assert _records(path, 7) == _records(path), path.name


def test_reused_slot_starts_with_an_empty_history() -> None:
    """A one-slot table reuses the slot: the second flow must not inherit letters."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    a, b = "10.0.0.1", "10.0.0.2"
    long_flow = [
        eth / IP(src=a, dst=b) / TCP(sport=1111, dport=80, flags="S", seq=1),
        eth / IP(src=b, dst=a) / TCP(sport=80, dport=1111, flags="SA", seq=9, ack=2),
        eth / IP(src=a, dst=b) / TCP(sport=1111, dport=80, flags="A", seq=2, ack=10),
        eth / IP(src=a, dst=b) / TCP(sport=1111, dport=80, flags="PA", seq=2, ack=10) / b"hello",
    ]
    short_flow = [eth / IP(src=a, dst=b) / TCP(sport=2222, dport=80, flags="FR", seq=5)]
    pkts = [bytes(p) for p in long_flow + short_flow]
    ts = [1_000_000_000 * (i + 1) for i in range(len(pkts))]
    table = FlowTable(FlowTableConfig(max_flows=1))
    ev = table.update(decode(PacketBatch.from_packets(pkts, ts, LinkType.ETHERNET)))
    rest = table.flush()
    histories = ev.ended.history + rest.history
    assert histories == ["ShAD", "I"]
    assert table.stats().evicted == 1


@pytest.mark.dpdk
@pytest.mark.skipif(
    not _libdpdk_present(),
    reason="DPDK development files not found "
    "(`pkg-config libdpdk` fails); apt-get install dpdk-dev pkg-config",
)
@pytest.mark.skipif(os.geteuid() != 0, reason="DPDK needs root here")
def test_dpdk_and_pcap_sources_give_identical_flow_records(tmp_path: Path) -> None:
    for path in _captures(tmp_path):
        with PcapSource(path) as probe:
            first = probe.next_batch()
        if first is None or first.linktype != LinkType.ETHERNET:
            continue  # net_pcap replays Ethernet captures only
        out = tmp_path / f"{path.stem}.dpdk.jsonl"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "flows",
                "--source",
                "dpdk",
                str(path),
                "-o",
                str(out),
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        dpdk = sorted((json.loads(line) for line in out.read_text().splitlines()), key=_key)
        assert dpdk == _records(path), path.name
