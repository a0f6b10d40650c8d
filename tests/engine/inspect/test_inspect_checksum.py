"""Checksum verification: scapy-made packets with good and corrupted checksums, and real captures
checked against scapy's own recomputation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from inspect_helpers import shared_file
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import rdpcap

from dpdk_io.batch import PacketBatch
from dpdk_io.pcap import PcapSource
from engine.decode import decode
from engine.inspect.checksum import ChecksumMode, bad_checksum_packets, bad_checksum_rows


def eth() -> Ether:
    return Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:bb")


def batch(pkts: Sequence[Packet]) -> PacketBatch:
    raw = [bytes(p) for p in pkts]
    return PacketBatch.from_packets(raw, [i * 1000 for i in range(len(raw))], 1)


GOOD = [
    eth() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80, flags="PA") / b"hello",
    eth() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5353, dport=53) / b"odd-length!",
    eth() / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, id=7, seq=1) / b"ping",
    eth() / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1, dport=443) / (b"x" * 33),
    eth() / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=9, dport=53) / b"abc",
    eth() / IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest(id=1, seq=2),
]


def test_good_checksums_pass() -> None:
    decoded = decode(batch(GOOD))
    assert decoded.rows.shape[0] == len(GOOD)
    assert not bad_checksum_rows(decoded).any()


@pytest.mark.parametrize(
    ("index", "layer", "field"),
    [
        (0, IP, "chksum"),
        (0, TCP, "chksum"),
        (1, UDP, "chksum"),
        (2, ICMP, "chksum"),
        (3, TCP, "chksum"),
        (4, UDP, "chksum"),
        (5, ICMPv6EchoRequest, "cksum"),
    ],
)
def test_each_corrupted_checksum_is_found(index: int, layer: type[Packet], field: str) -> None:
    pkts = [p.copy() for p in GOOD]
    good = pkts[index].__class__(bytes(pkts[index]))
    value = good[layer].getfieldval(field)
    good[layer].setfieldval(field, value ^ 0x0101)
    pkts[index] = good
    decoded = decode(batch(pkts))
    bad = bad_checksum_rows(decoded)
    assert list(np.flatnonzero(bad)) == [index]
    assert list(np.flatnonzero(bad_checksum_packets(decoded))) == [index]


def test_modes_select_what_is_verified() -> None:
    pkts = [p.__class__(bytes(p)) for p in GOOD[:3]]
    pkts[0][TCP].chksum ^= 0xFF
    pkts[1][UDP].chksum ^= 0xFF
    pkts[2][IP].chksum ^= 0xFF
    decoded = decode(batch(pkts))
    assert bad_checksum_rows(decoded).tolist() == [True, True, True]
    assert bad_checksum_rows(decoded, ChecksumMode.parse("none")).tolist() == [False] * 3
    assert bad_checksum_rows(decoded, ChecksumMode.parse("notcp")).tolist() == [False, True, True]
    assert bad_checksum_rows(decoded, ChecksumMode.parse("noip")).tolist() == [True, True, False]
    assert bad_checksum_rows(decoded, ChecksumMode.parse("udp,ip")).tolist() == [False, True, True]
    with pytest.raises(ValueError, match="unknown checksum mode"):
        ChecksumMode.parse("tcpp")


def test_zero_udp_checksum_and_snapped_packets_count_as_good() -> None:
    no_sum = eth() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2, chksum=0) / b"abc"
    full = bytes(eth() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(chksum=0x1111) / (b"z" * 400))
    snapped = full[:100]  # the capture kept 100 bytes: the TCP checksum cannot be verified
    b = PacketBatch.from_packets(
        [bytes(no_sum), snapped], [0, 1], 1, wirelens=[len(no_sum), len(full)]
    )
    assert bad_checksum_rows(decode(b)).tolist() == [False, False]


def _scapy_bad(pkt: Packet) -> bool:
    """scapy's verdict: rebuild each checksum field and compare."""
    for layer, field in ((IP, "chksum"), (TCP, "chksum"), (UDP, "chksum"), (ICMP, "chksum")):
        if layer not in pkt:
            continue
        if layer is not IP and IP in pkt and (pkt[IP].flags.MF or pkt[IP].frag):
            continue
        if layer is UDP and pkt[UDP].chksum == 0:
            continue
        seen = pkt[layer].getfieldval(field)
        clone = pkt.__class__(bytes(pkt))
        clone[layer].delfieldval(field)
        if layer is not IP and IP in clone and len(bytes(pkt[IP])) < pkt[IP].len:
            continue  # snapped
        if clone.__class__(bytes(clone))[layer].getfieldval(field) != seen:
            return True
    return False


@pytest.mark.shared
@pytest.mark.parametrize(
    "relative",
    [
        "suricata-verify/tls-client-hello-frag-01/dump_mtu300.pcap",
        "suricata-verify/http-evader-073/input.pcap",
        "suricata-verify/dns-detect-query-02/input.pcap",
        "pcaps/suricata-verify/tls-subjectaltname.pcap",
    ],
)
def test_real_captures_agree_with_scapy(relative: str) -> None:
    path = shared_file(relative)
    expected = [_scapy_bad(p) for p in rdpcap(str(path))]
    got: list[bool] = []
    with PcapSource(path) as src:
        for b in src:
            got.extend(bad_checksum_packets(decode(b)).tolist())
    assert got == expected
    if "tls-client-hello-frag" in relative:
        assert any(got) and not all(got)  # offloaded checksums from the capturing host
