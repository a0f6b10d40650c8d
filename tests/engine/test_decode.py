"""decode(): link types, encapsulations, tunnels, flags and malformed-packet accounting."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from scapy.contrib.erspan import ERSPAN_II
from scapy.contrib.geneve import GENEVE
from scapy.contrib.gtp import GTP_U_Header
from scapy.contrib.mpls import MPLS
from scapy.layers.dot11 import Dot11, RadioTap
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import (
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import ARP, GRE, LLC, SNAP, CookedLinux, Dot1AD, Dot1Q, Ether, Loopback
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet

from dpdk_io.batch import PacketBatch
from engine.decode import (
    F_DONT_FRAGMENT,
    F_FRAGMENT,
    F_IP_OPTIONS,
    F_IPV6_EXT,
    F_LATER_FRAGMENT,
    F_MORE_FRAGMENTS,
    F_TUNNEL_OUTER,
    F_TUNNELLED,
    KIND_ARP,
    KIND_IP,
    MALFORMED_REASONS,
    DecodedBatch,
    decode,
)

# --------------------------------------------------------------------------- helpers


def eth() -> Ether:
    """An Ethernet header with explicit addresses (scapy must never resolve them)."""
    return Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:bb")


def addr(text: str) -> tuple[int, int]:
    """The (hi, lo) halves the decoder stores for an address."""
    a = ipaddress.ip_address(text)
    v = int(ipaddress.IPv6Address(f"::ffff:{a}")) if a.version == 4 else int(a)
    return v >> 64, v & 0xFFFFFFFFFFFFFFFF


def dec(pkts: list[bytes | Packet], linktype: int = 1) -> DecodedBatch:
    raw = [bytes(p) for p in pkts]
    return decode(
        PacketBatch.from_packets(raw, [1_000 * (i + 1) for i in range(len(raw))], linktype)
    )


def only_row(d: DecodedBatch):
    assert len(d.rows) == 1, d.rows
    return d.rows[0]


def check_ip_row(row, ip: Packet, *, flags: int = 0, tunnelled: bool = False) -> None:
    """Compare a decoded row against the scapy IP/IPv6 layer `ip` it came from."""
    assert row["kind"] == KIND_IP
    assert (int(row["src"][0]), int(row["src"][1])) == addr(ip.src)
    assert (int(row["dst"][0]), int(row["dst"][1])) == addr(ip.dst)
    if ip.version == 4:
        assert row["ipver"] == 4
        assert row["ip_len"] == ip.len
        assert row["ttl"] == ip.ttl
    else:
        assert row["ipver"] == 6
        assert row["ip_len"] == 40 + ip.plen
        assert row["ttl"] == ip.hlim
    l4 = ip.payload
    while l4.name.startswith("IPv6 Extension") or isinstance(
        l4, IPv6ExtHdrHopByHop | IPv6ExtHdrRouting | IPv6ExtHdrFragment | IPv6ExtHdrDestOpt
    ):
        l4 = l4.payload
    if isinstance(l4, TCP):
        assert row["proto"] == 6
        assert (row["sport"], row["dport"]) == (l4.sport, l4.dport)
        assert row["tcp_flags"] == int(l4.flags)
        assert row["tcp_seq"] == l4.seq
        assert row["payload_len"] == len(l4.payload)
    elif isinstance(l4, UDP):
        assert row["proto"] == 17
        assert (row["sport"], row["dport"]) == (l4.sport, l4.dport)
        assert row["payload_len"] == len(l4.payload)
    want = flags | (F_TUNNELLED if tunnelled else 0)
    mask = F_TUNNELLED | F_TUNNEL_OUTER | F_IP_OPTIONS | F_IPV6_EXT | F_FRAGMENT | F_LATER_FRAGMENT
    assert int(row["flags"]) & mask == want


def _ip4(payload: bytes = b"hello world") -> Packet:
    return (
        IP(src="192.0.2.10", dst="198.51.100.20", ttl=61)
        / TCP(sport=40000, dport=443, flags="PA", seq=1000)
        / payload
    )


def _ip6() -> Packet:
    return (
        IPv6(src="2001:db8::1", dst="2001:db8:ffff::2", hlim=33)
        / UDP(sport=5353, dport=9999)
        / (b"z" * 17)
    )


def _built(p: Packet) -> Packet:
    """Re-dissect so that lengths/checksums scapy fills in are visible on the layers."""
    return p.__class__(bytes(p))


def _inner(p: Packet, layer=IP) -> Packet:
    return _built(p)[layer]


# --------------------------------------------------------------------------- link types


def test_ethernet_ipv4_tcp() -> None:
    p = Ether(src="02:11:22:33:44:55", dst="02:66:77:88:99:aa") / _ip4()
    row = only_row(dec([p]))
    check_ip_row(row, _inner(p))
    assert row["src_mac"] == 0x021122334455
    assert row["dst_mac"] == 0x02667788_99AA
    assert row["l3_off"] == 14
    assert row["l4_off"] == 34
    assert row["payload_off"] == 54
    assert row["ts"] == 1000
    assert row["vlan"] == 0


def test_ethernet_ipv6_udp() -> None:
    p = eth() / _ip6()
    check_ip_row(only_row(dec([p])), _inner(p, IPv6))


def test_dot1q_vlan() -> None:
    p = eth() / Dot1Q(vlan=123) / _ip4()
    row = only_row(dec([p]))
    check_ip_row(row, _inner(p))
    assert row["vlan"] == 123
    assert row["l3_off"] == 18


def test_qinq_keeps_outer_vlan() -> None:
    p = eth() / Dot1AD(vlan=300) / Dot1Q(vlan=7) / _ip4()
    row = only_row(dec([p]))
    check_ip_row(row, _inner(p))
    assert row["vlan"] == 300
    assert row["l3_off"] == 22


def test_mpls_label_stack() -> None:
    p = eth() / MPLS(label=16, s=0) / MPLS(label=17, s=1) / _ip4()
    row = only_row(dec([p]))
    check_ip_row(row, _inner(p))
    assert row["l3_off"] == 14 + 8


def test_mpls_ethernet_pseudowire() -> None:
    p = eth() / MPLS(label=16, s=1) / eth() / _ip4()
    row = only_row(dec([p]))
    check_ip_row(row, _inner(p))
    assert row["l3_off"] == 14 + 4 + 14


def test_pppoe_session() -> None:
    p = eth() / PPPoE(sessionid=5) / PPP(proto=0x0021) / _ip4()
    row = only_row(dec([p]))
    check_ip_row(row, _inner(p))
    assert row["l3_off"] == 14 + 6 + 2


def test_pppoe_ipv6() -> None:
    p = eth() / PPPoE(sessionid=5) / PPP(proto=0x0057) / _ip6()
    check_ip_row(only_row(dec([p])), _inner(p, IPv6))


@pytest.mark.parametrize("linktype", [101, 228])
def test_raw_ipv4(linktype: int) -> None:
    p = _ip4()
    row = only_row(dec([p], linktype))
    check_ip_row(row, _built(p))
    assert row["l3_off"] == 0


@pytest.mark.parametrize("linktype", [101, 229])
def test_raw_ipv6(linktype: int) -> None:
    p = _ip6()
    check_ip_row(only_row(dec([p], linktype)), _built(p))


def test_null_loopback_host_order() -> None:
    p4 = Loopback(type=2) / _ip4()  # scapy writes the AF in little-endian (host) order
    p6 = struct.pack("<I", 30) + bytes(_ip6())  # AF_INET6 on macOS
    d = dec([p4, p6], 0)
    assert len(d.rows) == 2
    check_ip_row(d.rows[0], _built(_ip4()))
    check_ip_row(d.rows[1], _built(_ip6()))


def test_null_loopback_big_endian_host() -> None:
    p = struct.pack(">I", 2) + bytes(_ip4())
    check_ip_row(only_row(dec([p], 0)), _built(_ip4()))


def test_openbsd_loop_network_order() -> None:
    p4 = struct.pack(">I", 2) + bytes(_ip4())
    p6 = struct.pack(">I", 24) + bytes(_ip6())
    d = dec([p4, p6], 108)
    assert len(d.rows) == 2
    check_ip_row(d.rows[0], _built(_ip4()))
    check_ip_row(d.rows[1], _built(_ip6()))


def test_loopback_other_family_is_other() -> None:
    d = dec([struct.pack("<I", 17) + b"\x00" * 30], 0)
    assert len(d.rows) == 0 and d.other == 1 and d.malformed.sum() == 0


def test_linux_sll() -> None:
    p = CookedLinux(proto=0x0800) / _ip4()
    row = only_row(dec([p], 113))
    check_ip_row(row, _inner(p))
    assert row["l3_off"] == 16


def test_linux_sll2() -> None:
    # protocol, reserved, ifindex, ARPHRD, packet type, address length, address (8)
    hdr = struct.pack(">HHIHBB8s", 0x86DD, 0, 2, 1, 0, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00")
    p = hdr + bytes(_ip6())
    row = only_row(dec([p], 276))
    check_ip_row(row, _built(_ip6()))
    assert row["l3_off"] == 20


@pytest.mark.parametrize("framing", [b"\xff\x03", b""], ids=["hdlc", "bare"])
def test_ppp_linktype(framing: bytes) -> None:
    p = framing + b"\x00\x21" + bytes(_ip4())
    row = only_row(dec([p], 9))
    check_ip_row(row, _built(_ip4()))
    assert row["l3_off"] == len(framing) + 2


def test_ppp_compressed_protocol_field() -> None:
    p = b"\x21" + bytes(_ip4())
    check_ip_row(only_row(dec([p], 9)), _built(_ip4()))


def test_cisco_hdlc() -> None:
    p = b"\x0f\x00\x86\xdd" + bytes(_ip6())
    row = only_row(dec([p], 104))
    check_ip_row(row, _built(_ip6()))
    assert row["l3_off"] == 4


def test_fddi() -> None:
    hdr = b"\x50" + b"\x02" * 6 + b"\x04" * 6 + b"\xaa\xaa\x03\x00\x00\x00\x08\x00"
    row = only_row(dec([hdr + bytes(_ip4())], 10))
    check_ip_row(row, _built(_ip4()))
    assert row["l3_off"] == len(hdr)


def test_radiotap_80211_data() -> None:
    p = (
        RadioTap()
        / Dot11(
            type=2,
            subtype=0,
            FCfield=1,
            addr1="02:00:00:00:00:01",
            addr2="02:00:00:00:00:02",
            addr3="02:00:00:00:00:03",
        )
        / LLC(dsap=0xAA, ssap=0xAA, ctrl=3)
        / SNAP(OUI=0, code=0x0800)
        / _ip4()
    )
    check_ip_row(only_row(dec([p], 127)), _inner(p))


def test_radiotap_beacon_is_other() -> None:
    p = RadioTap() / Dot11(type=0, subtype=8) / (b"\x00" * 30)
    d = dec([p], 127)
    assert len(d.rows) == 0 and d.other == 1


def test_unsupported_link_type_is_malformed() -> None:
    d = dec([bytes(_ip4()), bytes(_ip4())], 147)  # LINKTYPE_USER0
    assert len(d.rows) == 0
    assert d.malformed_counts() == {"unsupported_link_type": 2}


# --------------------------------------------------------------------------- network layer


def test_ipv4_options_flagged() -> None:
    p = (
        IP(src="10.1.1.1", dst="10.2.2.2", options=b"\x94\x04\x00\x00")
        / UDP(sport=1, dport=2)
        / b"ab"
    )
    row = only_row(dec([eth() / p]))
    check_ip_row(row, _built(p), flags=F_IP_OPTIONS)
    assert row["l4_off"] - row["l3_off"] == 24


def test_ipv4_dont_fragment_flag() -> None:
    p = IP(src="10.1.1.1", dst="10.2.2.2", flags="DF") / UDP() / b"x"
    row = only_row(dec([p], 101))
    assert row["flags"] & F_DONT_FRAGMENT
    assert not row["flags"] & F_FRAGMENT


def test_ipv4_fragments() -> None:
    whole = IP(src="10.0.0.1", dst="10.0.0.2", id=4242) / UDP(sport=7, dport=9) / (b"q" * 2992)
    frags = [_built(f) for f in fragment(whole, fragsize=1000)]
    assert len(frags) == 3
    d = dec(frags, 101)
    assert len(d.rows) == 3
    first, mid, last = d.rows
    assert first["flags"] & (F_FRAGMENT | F_MORE_FRAGMENTS) == F_FRAGMENT | F_MORE_FRAGMENTS
    assert not first["flags"] & F_LATER_FRAGMENT
    assert (first["sport"], first["dport"]) == (7, 9)
    for r, f in zip((mid, last), frags[1:], strict=True):
        assert r["flags"] & F_LATER_FRAGMENT and r["flags"] & F_FRAGMENT
        assert r["frag_off"] == f.frag * 8
        assert (r["sport"], r["dport"]) == (0, 0)  # no transport header in a later fragment
        assert r["proto"] == 17
    assert mid["flags"] & F_MORE_FRAGMENTS
    assert not last["flags"] & F_MORE_FRAGMENTS
    assert {int(r["ip_id"]) for r in d.rows} == {4242}
    assert [int(r["ip_len"]) for r in d.rows] == [f.len for f in frags]


def test_ipv6_extension_headers() -> None:
    p = (
        IPv6(src="2001:db8::a", dst="2001:db8::b")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting(addresses=["2001:db8::c"])
        / IPv6ExtHdrDestOpt()
        / TCP(sport=1234, dport=80, flags="S")
    )
    b = _built(p)
    row = only_row(dec([eth() / p]))
    check_ip_row(row, b, flags=F_IPV6_EXT)
    ext_len = len(bytes(b[IPv6].payload)) - len(bytes(b[TCP]))
    assert row["l4_off"] == 14 + 40 + ext_len


def test_ipv6_fragment_header() -> None:
    whole = (
        IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrFragment(id=77)
        / UDP(sport=53, dport=5000)
        / (b"r" * 2000)
    )
    from scapy.layers.inet6 import fragment6

    frags = [_built(f) for f in fragment6(whole, 1000)]
    assert len(frags) >= 2
    d = dec(frags, 101)
    assert len(d.rows) == len(frags)
    assert d.rows[0]["flags"] & (F_IPV6_EXT | F_FRAGMENT | F_MORE_FRAGMENTS) == (
        F_IPV6_EXT | F_FRAGMENT | F_MORE_FRAGMENTS
    )
    assert (d.rows[0]["sport"], d.rows[0]["dport"]) == (53, 5000)
    for r in d.rows[1:]:
        assert r["flags"] & F_LATER_FRAGMENT
        assert r["ip_id"] == 77
    assert not d.rows[-1]["flags"] & F_MORE_FRAGMENTS
    assert [int(r["ip_len"]) for r in d.rows] == [40 + f.plen for f in frags]


def test_icmp_echo() -> None:
    p = IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, code=0, id=0x1234, seq=1) / (b"p" * 56)
    row = only_row(dec([p], 101))
    assert row["proto"] == 1
    assert (row["icmp_type"], row["icmp_code"], row["icmp_id"]) == (8, 0, 0x1234)
    assert row["payload_len"] == 56
    assert row["ip_len"] == 20 + 8 + 56


def test_icmpv6_echo() -> None:
    req = IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest(id=9, data=b"a" * 10)
    rep = IPv6(src="2001:db8::2", dst="2001:db8::1") / ICMPv6EchoReply(id=9, data=b"a" * 10)
    d = dec([req, rep], 229)
    assert [(r["proto"], r["icmp_type"], r["icmp_id"]) for r in d.rows] == [
        (58, 128, 9),
        (58, 129, 9),
    ]
    assert d.rows[0]["payload_len"] == 10
    assert d.rows[0]["ip_len"] == 40 + 8 + 10


def test_arp_rows() -> None:
    p = Ether(src="02:00:00:00:00:0a", dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc="02:00:00:00:00:0a", psrc="10.0.0.10", pdst="10.0.0.1"
    )
    reply = eth() / ARP(
        op=2,
        hwsrc="02:00:00:00:00:01",
        psrc="10.0.0.1",
        hwdst="02:00:00:00:00:0a",
        pdst="10.0.0.10",
    )
    d = dec([p, reply])
    assert len(d.rows) == 2
    a, b = d.rows
    assert a["kind"] == KIND_ARP and a["arp_op"] == 1
    assert (int(a["src"][0]), int(a["src"][1])) == addr("10.0.0.10")
    assert (int(a["dst"][0]), int(a["dst"][1])) == addr("10.0.0.1")
    assert a["src_mac"] == 0x02000000000A
    assert b["arp_op"] == 2 and b["dst_mac"] == 0x02000000000A


def test_non_ip_is_other_not_malformed() -> None:
    lldp = Ether(src="02:00:00:00:00:01", dst="01:80:c2:00:00:0e", type=0x88CC) / (b"\x00" * 40)
    stp = Ether(src="02:00:00:00:00:01", dst="01:80:c2:00:00:00", type=38) / (
        b"\x42\x42\x03" + b"\x00" * 35
    )
    d = dec([lldp, stp, eth() / _ip4()])
    assert d.other == 2
    assert d.malformed.sum() == 0
    assert len(d.rows) == 1 and d.rows[0]["pkt"] == 2


def test_other_ip_protocol_gives_row() -> None:
    p = IP(src="10.0.0.1", dst="10.0.0.2", proto=132) / (b"\x00" * 28)  # SCTP
    row = only_row(dec([p], 101))
    assert row["proto"] == 132 and row["ip_len"] == 48


def test_ip_len_from_header_not_capture() -> None:
    """A snapped packet keeps the header's total length; trailing Ethernet padding is ignored."""
    p = bytes(eth() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / (b"x" * 400))
    snapped = dec([p[:100]])
    assert only_row(snapped)["ip_len"] == 20 + 8 + 400
    assert only_row(snapped)["payload_len"] == 400
    padded = bytes(eth() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="A")) + b"\x00" * 6
    r = only_row(dec([padded]))
    assert r["ip_len"] == 40 and r["payload_len"] == 0


# --------------------------------------------------------------------------- tunnels


def test_ip_in_ip() -> None:
    inner = _ip4()
    p = IP(src="203.0.113.1", dst="203.0.113.2", proto=4) / inner
    row = only_row(dec([eth() / p]))
    check_ip_row(row, _built(inner), tunnelled=True)
    assert row["l3_off"] == 14 + 20


def test_ipv6_in_ipv4() -> None:
    inner = _ip6()
    p = IP(src="203.0.113.1", dst="203.0.113.2", proto=41) / inner
    check_ip_row(only_row(dec([p], 101)), _built(inner), tunnelled=True)


def test_gre_ip() -> None:
    inner = _ip4()
    p = IP(src="203.0.113.1", dst="203.0.113.2") / GRE(proto=0x0800) / inner
    check_ip_row(only_row(dec([eth() / p])), _built(inner), tunnelled=True)


def test_gre_with_key_and_sequence() -> None:
    inner = _ip6()
    p = (
        IP(src="203.0.113.1", dst="203.0.113.2")
        / GRE(proto=0x86DD, key_present=1, key=5, seqnum_present=1, sequence_number=3)
        / inner
    )
    row = only_row(dec([p], 101))
    check_ip_row(row, _built(inner), tunnelled=True)
    assert row["l3_off"] == 20 + 12


def test_gre_transparent_ethernet() -> None:
    inner = _ip4()
    p = IP(src="203.0.113.1", dst="203.0.113.2") / GRE(proto=0x6558) / eth() / inner
    check_ip_row(only_row(dec([p], 101)), _built(inner), tunnelled=True)


def test_erspan_type2() -> None:
    inner = _ip4()
    p = (
        IP(src="203.0.113.1", dst="203.0.113.2")
        / GRE(proto=0x88BE, seqnum_present=1)
        / ERSPAN_II(session_id=1)
        / eth()
        / inner
    )
    check_ip_row(only_row(dec([eth() / p])), _built(inner), tunnelled=True)


def test_erspan_type2_gives_the_mirrored_vlan_and_the_inner_frame_start() -> None:
    inner = _ip4()
    p = (
        eth()
        / IP(src="203.0.113.1", dst="203.0.113.2")
        / GRE(proto=0x88BE, seqnum_present=1)
        / ERSPAN_II(session_id=1, vlan=23)
        / eth()
        / inner
    )
    row = only_row(dec([p]))
    assert row["vlan"] == 23
    # the mirrored frame starts after Ethernet, IPv4, GRE with sequence, ERSPAN II
    assert row["link_off"] == 14 + 20 + 8 + 8
    assert row["l3_off"] == row["link_off"] + 14


def test_nsh_carrying_ipv4() -> None:
    from scapy.contrib.nsh import NSH

    inner = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=52377, dport=52464) / b"data"
    p = eth() / NSH(mdtype=1, nextproto=1, spi=1, si=255) / inner
    row = only_row(dec([p]))
    check_ip_row(row, _built(inner))
    assert (row["sport"], row["dport"]) == (52377, 52464)
    assert row["l3_off"] == 14 + 24  # MD type 1: 8-byte header and 16 bytes of context
    assert row["link_off"] == 0  # NSH is a service header, not a tunnel


def test_nsh_with_a_length_past_the_packet_is_malformed() -> None:
    frame = bytes(eth())[:12] + b"\x89\x4f" + bytes([0x00, 0x3F, 0x01, 0x01]) + b"\x00" * 4
    d = dec([frame])
    assert len(d.rows) == 0
    assert d.malformed_counts() == {"truncated_tunnel_header": 1}


def test_fragments_are_counted_and_their_tunnels_left_for_reassembly() -> None:
    inner = eth() / _ip4(b"x" * 1200)
    whole = IP(src="172.16.0.1", dst="172.16.0.2", id=9) / UDP(sport=5555, dport=4789)
    frags = fragment(whole / VXLAN(vni=7) / inner, fragsize=800)
    d = dec([eth() / f for f in frags])
    assert d.fragments == len(frags) == 2
    # one row per fragment: the first fragment's VXLAN payload is not decoded yet
    assert len(d.rows) == 2
    assert (d.rows[0]["sport"], d.rows[0]["dport"]) == (5555, 4789)
    assert not d.rows[0]["flags"] & F_TUNNEL_OUTER
    assert dec([eth() / _ip4()]).fragments == 0


def _udp_tunnel_rows(p: Packet, linktype: int = 1):
    d = dec([p], linktype)
    assert len(d.rows) == 2, d.rows
    return d.rows[0], d.rows[1]


def test_vxlan() -> None:
    inner = _ip4()
    p = (
        eth()
        / IP(src="172.16.0.1", dst="172.16.0.2")
        / UDP(sport=50000, dport=4789)
        / VXLAN(vni=42)
        / eth()
        / inner
    )
    outer, row = _udp_tunnel_rows(p)
    b = _built(p)
    assert outer["flags"] & F_TUNNEL_OUTER and not outer["flags"] & F_TUNNELLED
    assert (int(outer["src"][1]) & 0xFFFFFFFF) == int(ipaddress.IPv4Address("172.16.0.1"))
    assert (outer["sport"], outer["dport"], outer["proto"]) == (50000, 4789, 17)
    assert outer["ip_len"] == b[IP].len
    assert outer["payload_len"] == b[UDP].len - 8
    check_ip_row(row, _built(inner), tunnelled=True)
    assert row["pkt"] == outer["pkt"] == 0


def test_geneve() -> None:
    inner = _ip6()
    p = (
        IP(src="172.16.0.1", dst="172.16.0.2")
        / UDP(sport=50001, dport=6081)
        / GENEVE(proto=0x6558, vni=7)
        / eth()
        / inner
    )
    outer, row = _udp_tunnel_rows(p, 101)
    assert outer["flags"] & F_TUNNEL_OUTER and outer["dport"] == 6081
    check_ip_row(row, _built(inner), tunnelled=True)


def test_gtp_u() -> None:
    inner = _ip4()
    p = (
        eth()
        / IP(src="172.16.0.1", dst="172.16.0.2")
        / UDP(sport=2152, dport=2152)
        / GTP_U_Header(teid=1234)
        / inner
    )
    outer, row = _udp_tunnel_rows(p)
    assert outer["flags"] & F_TUNNEL_OUTER and outer["dport"] == 2152
    check_ip_row(row, _built(inner), tunnelled=True)


def test_teredo() -> None:
    inner = IPv6(src="2001:0:4136:e378::1", dst="2001:db8::2") / UDP(sport=1000, dport=2000) / b"t"
    p = IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=40000, dport=3544) / inner
    outer, row = _udp_tunnel_rows(p, 101)
    assert outer["flags"] & F_TUNNEL_OUTER and outer["dport"] == 3544
    check_ip_row(row, _built(inner), tunnelled=True)


def test_teredo_port_without_ipv6_is_plain_udp() -> None:
    p = IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=40000, dport=3544) / (b"\x01" * 60)
    row = only_row(dec([p], 101))
    assert not row["flags"] & F_TUNNEL_OUTER
    assert row["payload_len"] == 60


def test_vxlan_inside_vxlan_is_bounded() -> None:
    """Nested UDP tunnels give at most three rows per packet (the row buffer's bound)."""
    p = _ip4()
    for k in range(4):
        p = (
            IP(src=f"172.16.{k}.1", dst=f"172.16.{k}.2")
            / UDP(sport=1000 + k, dport=4789)
            / VXLAN(vni=k)
            / eth()
            / p
        )
    d = dec([p, p], 101)
    assert len(d.rows) == 6
    assert list(d.rows["pkt"]) == [0, 0, 0, 1, 1, 1]


# --------------------------------------------------------------------------- malformed


def _ipv4_header(**kw) -> bytes:
    return bytes(IP(src="10.0.0.1", dst="10.0.0.2", **kw) / UDP(sport=1, dport=2) / b"abcd")


def test_malformed_reasons_counted_and_give_no_rows() -> None:
    good = eth() / _ip4()
    ip = _ipv4_header()
    ihl_small = bytearray(ip)
    ihl_small[0] = 0x44  # IHL 4 words = 16 bytes
    bad_ver = bytearray(ip)
    bad_ver[0] = 0x55
    tcp_trunc = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP())[:30]
    tcp_hlen = bytearray(bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP()))
    tcp_hlen[20 + 12] = 0x30  # data offset 3 words
    udp_trunc = bytes(IP(src="10.0.0.1", dst="10.0.0.2", proto=17))[:20] + b"\x00\x01\x00"
    eh = bytes(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:bb", type=0x0800))
    pkts = [
        bytes(good),
        eh + ip[:12],  # truncated IPv4 header
        eh + bytes(ihl_small),
        eh + bytes(tcp_trunc),
        eh + bytes(bad_ver),
        eh + bytes(tcp_hlen),
        bytes(good)[:10],  # truncated Ethernet header
        eh + bytes(bad_ver),
        bytes(good),
    ]
    # the UDP one needs a consistent total length to reach the UDP check
    udp = bytearray(udp_trunc)
    struct.pack_into(">H", udp, 2, len(udp))
    pkts.append(eh + bytes(udp))
    d = dec(pkts)
    assert d.malformed_counts() == {
        "truncated_ip_header": 1,
        "bad_ip_header_length": 1,
        "truncated_tcp_header": 1,
        "bad_ip_version": 2,
        "bad_tcp_header_length": 1,
        "truncated_link_header": 1,
        "truncated_udp_header": 1,
    }
    assert sorted(set(d.rows["pkt"].tolist())) == [0, 8]
    assert len(pkts) == 2 + int(d.malformed.sum()) + d.other


def test_ip_total_length_smaller_than_header() -> None:
    ip = bytearray(_ipv4_header())
    struct.pack_into(">H", ip, 2, 12)
    d = dec([bytes(ip)], 101)
    assert len(d.rows) == 0 and d.malformed_counts() == {"bad_ip_total_length": 1}


def test_ip_total_length_zero_trusts_capture() -> None:
    ip = bytearray(_ipv4_header())
    struct.pack_into(">H", ip, 2, 0)  # TSO capture
    row = only_row(dec([bytes(ip)], 101))
    assert row["ip_len"] == len(ip)


def test_truncated_inner_packet_discards_outer_row_too() -> None:
    tunnel = bytes(
        IP(src="172.16.0.1", dst="172.16.0.2")
        / UDP(sport=1, dport=4789)
        / VXLAN(vni=1)
        / eth()
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / TCP()
    )
    d = dec([tunnel[:-10]], 101)
    assert len(d.rows) == 0
    assert d.malformed.sum() == 1


def test_truncated_ipv6_extension() -> None:
    p = bytes(IPv6(src="::1", dst="::2") / IPv6ExtHdrHopByHop() / UDP())
    d = dec([p[:44]], 229)
    assert len(d.rows) == 0 and d.malformed_counts() == {"bad_ipv6_extension_header": 1}


def test_malformed_reason_names_are_unique() -> None:
    assert len(set(MALFORMED_REASONS)) == len(MALFORMED_REASONS)
    assert MALFORMED_REASONS[0] == "ok"


def test_empty_batch() -> None:
    d = decode(PacketBatch.from_packets([], [], 1))
    assert len(d.rows) == 0 and d.other == 0 and d.malformed.sum() == 0
