"""Compiling capture filters through libpcap and running the bytecode on crafted packets."""

from __future__ import annotations

import socket
import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from dpdk_io.batch import LinkType
from dpdk_io.bpf import (
    KERNEL_MAX_INSTRUCTIONS,
    BpfFilterError,
    BpfInstruction,
    attach_filter,
    compile_filter,
    load_libpcap,
)
from dpdk_io.errors import CaptureError

try:
    load_libpcap()
except CaptureError as exc:  # pragma: no cover - depends on the host
    pytest.skip(f"libpcap is not installed: {exc}", allow_module_level=True)


def eth(payload: object) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / payload)


def test_udp_port_filter_accepts_and_rejects_crafted_packets() -> None:
    program = compile_filter("udp and dst port 53")
    assert program.linktype is LinkType.ETHERNET
    assert program.matches(eth(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=999, dport=53)))
    assert program.matches(eth(IPv6(src="fe80::1", dst="fe80::2") / UDP(sport=999, dport=53)))
    assert not program.matches(eth(IP() / UDP(sport=53, dport=54)))  # source port only
    assert not program.matches(eth(IP() / TCP(sport=999, dport=53)))
    assert not program.matches(eth(IP() / ICMP()))


def test_accepted_packets_are_cut_to_snaplen_and_rejected_to_zero() -> None:
    program = compile_filter("tcp", snaplen=96)
    big = eth(IP() / TCP(dport=80) / (b"x" * 500))
    assert program.run(big) == 96
    assert program.run(eth(IP() / UDP())) == 0


def test_empty_expression_accepts_everything() -> None:
    program = compile_filter("", snaplen=1500)
    assert program.instructions == (BpfInstruction(code=0x06, jt=0, jf=0, k=1500),)
    assert program.matches(eth(IP() / UDP()))
    assert program.matches(b"\xff" * 20)


def test_raw_link_type_reads_ip_from_byte_zero() -> None:
    program = compile_filter("udp and dst host 192.0.2.7", LinkType.RAW)
    assert program.matches(bytes(IP(dst="192.0.2.7") / UDP()))
    assert not program.matches(bytes(IP(dst="192.0.2.8") / UDP()))
    # The same bytes behind an Ethernet header are not what a RAW program expects.
    assert not program.matches(eth(IP(dst="192.0.2.7") / UDP()))


def test_vlan_keyword_follows_the_tag() -> None:
    program = compile_filter("vlan 42 and udp")
    assert program.matches(eth(Dot1Q(vlan=42) / IP() / UDP()))
    assert not program.matches(eth(Dot1Q(vlan=43) / IP() / UDP()))


def test_pack_is_the_sock_filter_layout() -> None:
    program = compile_filter("ip")
    packed = program.pack()
    assert len(packed) == 8 * len(program)
    unpacked = [BpfInstruction(*fields) for fields in struct.iter_unpack("=HBBI", packed)]
    assert tuple(unpacked) == program.instructions


def test_unoptimized_program_is_longer_but_equivalent() -> None:
    expression = "udp and (dst port 53 or dst port 5353)"
    fast = compile_filter(expression)
    slow = compile_filter(expression, optimize=False)
    assert len(slow) > len(fast)
    for dport, expected in ((53, True), (5353, True), (54, False)):
        packet = eth(IP() / UDP(dport=dport))
        assert fast.matches(packet) is expected
        assert slow.matches(packet) is expected


@pytest.mark.parametrize(
    ("expression", "libpcap_says"),
    [
        ("udp and dst port", "syntax error"),
        ("port 99999", "illegal port number 99999"),
        ("ether proto \\nosuch", "unknown ether proto 'nosuch'"),
        ("tcp[0] ==", "syntax error"),
    ],
)
def test_bad_expression_quotes_libpcap_and_the_filter(expression: str, libpcap_says: str) -> None:
    with pytest.raises(BpfFilterError) as info:
        compile_filter(expression)
    assert info.value.expression == expression
    assert repr(expression) in str(info.value)
    assert libpcap_says in info.value.reason
    assert isinstance(info.value, ValueError)


def test_characters_libpcap_cannot_take_are_reported_with_their_column() -> None:
    with pytest.raises(BpfFilterError, match="column 10"):
        compile_filter("dst host é")
    with pytest.raises(BpfFilterError, match="NUL"):
        compile_filter("udp\x00 and tcp")


def test_link_type_limits_the_expression() -> None:
    # RAW frames have no MAC addresses to test.
    with pytest.raises(BpfFilterError, match="ether"):
        compile_filter("ether host 02:00:00:00:00:01", LinkType.RAW)


def test_bad_snaplen_and_link_type_are_refused() -> None:
    with pytest.raises(ValueError, match="snaplen"):
        compile_filter("ip", snaplen=0)
    with pytest.raises(BpfFilterError, match="unknown link type 9999"):
        compile_filter("ip", 9999)


def test_program_attaches_to_a_socket() -> None:
    program = compile_filter("udp")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        attach_filter(sock, program)
    finally:
        sock.close()


def test_oversized_program_is_refused_before_the_kernel_sees_it() -> None:
    lengths = " or ".join(f"len == {n}" for n in range(600))
    program = compile_filter(lengths, optimize=False)
    assert len(program) > KERNEL_MAX_INSTRUCTIONS
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(BpfFilterError, match="instructions"):
            attach_filter(sock, program)
    finally:
        sock.close()
