"""Helpers for the inspection tests: the shared captures, and scapy-built TCP conversations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from dpdk_io.pcap import PcapSource
from engine.inspect import ChecksumMode, Inspector
from engine.inspect.replay import InspectedRow, inspect_batches

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
SURICATA_VERIFY = SHARED / "suricata-verify"
PCAPS = SHARED / "pcaps"


def shared_file(relative: str) -> Path:
    """A file under ../shared/data, or skip the test saying which is missing."""
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"shared data absent: {path} (the ../shared/data folder is not here)")
    return path


def verify_case(name: str) -> tuple[Path, ChecksumMode]:
    """The pcap of a suricata-verify case and the checksum mode its arguments ask for."""
    index = SURICATA_VERIFY / "index.json"
    if not index.is_file():
        pytest.skip(f"suricata-verify data absent: no {index}")
    tests = {t["name"]: t for t in json.loads(index.read_text())["tests"]}
    case = tests[name]
    args = " ".join(case.get("args") or [])
    mode = ChecksumMode.NONE if "-k none" in args else ChecksumMode.ALL
    return shared_file(f"suricata-verify/{name}/{case['pcap']}"), mode


def run_pcap(
    path: Path, inspector: Inspector | None = None, checksums: ChecksumMode = ChecksumMode.ALL
) -> list[InspectedRow]:
    inspector = inspector or Inspector()
    with PcapSource(path) as src:
        return list(inspect_batches(src, inspector, checksums=checksums))


def found(rows: list[InspectedRow], name: str) -> list[tuple[int, bytes]]:
    """(packet index, value) of every occurrence of buffer `name`."""
    out = []
    for r in rows:
        for bufs in (r.context.buffers, *r.context.more):
            if name in bufs:
                out.append((r.packet_index, bufs[name]))
    return out


class Conversation:
    """A scapy-built TCP connection between a client and a server, handshake included."""

    def __init__(self, client_isn: int = 1000, server_isn: int = 50000, dport: int = 80) -> None:
        self.c_seq = client_isn
        self.s_seq = server_isn
        self.sport = 40000
        self.dport = dport
        self.packets: list[bytes] = []

    def _frame(self, to_server: bool, flags: str, seq: int, ack: int, data: bytes) -> bytes:
        if to_server:
            ip = IP(src="10.0.0.1", dst="10.0.0.2")
            tcp = TCP(sport=self.sport, dport=self.dport, flags=flags, seq=seq, ack=ack)
            eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        else:
            ip = IP(src="10.0.0.2", dst="10.0.0.1")
            tcp = TCP(sport=self.dport, dport=self.sport, flags=flags, seq=seq, ack=ack)
            eth = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
        pkt = eth / ip / tcp
        if data:
            pkt = pkt / data
        return bytes(pkt)

    def handshake(self) -> Conversation:
        self.packets.append(self._frame(True, "S", self.c_seq, 0, b""))
        self.packets.append(self._frame(False, "SA", self.s_seq, self.c_seq + 1, b""))
        self.c_seq += 1
        self.s_seq += 1
        self.packets.append(self._frame(True, "A", self.c_seq, self.s_seq, b""))
        return self

    def send(
        self, to_server: bool, data: bytes, *, at: int | None = None, flags: str = "PA"
    ) -> Conversation:
        """Send `data`; `at` places it at an offset relative to the next in-order byte
        (without advancing), for out-of-order and overlapping segments."""
        base = self.c_seq if to_server else self.s_seq
        ack = self.s_seq if to_server else self.c_seq
        seq = base + (at or 0)
        self.packets.append(self._frame(to_server, flags, seq & 0xFFFFFFFF, ack, data))
        if at is None:
            if to_server:
                self.c_seq += len(data)
            else:
                self.s_seq += len(data)
        return self

    def advance(self, to_server: bool, n: int) -> None:
        if to_server:
            self.c_seq += n
        else:
            self.s_seq += n

    def batches(self) -> Iterator:
        from dpdk_io.batch import PacketBatch

        yield PacketBatch.from_packets(
            self.packets, [1_000_000_000 + i * 1000 for i in range(len(self.packets))], 1
        )

    def run(self, inspector: Inspector | None = None) -> list[InspectedRow]:
        return list(inspect_batches(self.batches(), inspector or Inspector()))
