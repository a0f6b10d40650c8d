"""Defragmenter: IPv4/IPv6 reassembly, its overlap policy, bounds, and the packet it builds."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.packet import Packet

from dpdk_io.batch import PacketBatch
from engine.decode import F_FRAGMENT, F_LATER_FRAGMENT, decode
from engine.defrag import DefragConfig, Defragmenter, ReassembledBatch
from engine.eve import alert_record
from engine.match import Matcher, compile_ruleset, load_rules
from engine.match.loading import default_variables
from engine.match.stream import iter_matches
from engine.sources import open_source

NS = 1_000_000_000
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "suricata-verify"


def eth() -> Ether:
    return Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:bb")


def batch(frames: list[Packet | bytes], first: int = 0, t0: float = 100.0) -> PacketBatch:
    raw = [bytes(f) for f in frames]
    ts = [round((t0 + i * 0.001) * NS) for i in range(len(raw))]
    return PacketBatch.from_packets(raw, ts, 1, first_index=first)


def run(defrag: Defragmenter, b: PacketBatch):
    return defrag.reassemble(decode(b))


def test_batches_without_fragments_pass_through_untouched() -> None:
    d = decode(batch([eth() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / b"x"]))
    assert Defragmenter().reassemble(d) is d


def test_ipv4_datagram_reassembled_across_batches_and_out_of_order() -> None:
    whole = IP(src="10.0.0.1", dst="10.0.0.2", id=4242) / UDP(sport=7, dport=9) / (b"q" * 2992)
    frags = [eth() / f for f in fragment(whole, fragsize=1000)]
    defrag = Defragmenter()
    first = run(defrag, batch([frags[2], frags[0]]))
    assert first.batch is not None and not isinstance(first.batch, ReassembledBatch)
    assert all(r["flags"] & F_LATER_FRAGMENT for r in first.rows)  # no transport of their own
    second = run(defrag, batch([frags[1]], first=2))
    assert isinstance(second.batch, ReassembledBatch)
    frag_row, dgram = second.rows
    assert frag_row["flags"] & F_FRAGMENT
    assert not dgram["flags"] & F_FRAGMENT
    assert (dgram["sport"], dgram["dport"], dgram["payload_len"]) == (7, 9, 2992)
    assert dgram["ip_len"] == 20 + 8 + 2992
    # the datagram is numbered as the fragment that completed it (capture packet 3)
    assert second.batch.packet_number(int(dgram["pkt"])) == 3
    assert dgram["ts"] == frag_row["ts"]
    # the first fragment's link header, then the datagram as it was before fragmenting
    built = second.batch.packet(int(dgram["pkt"]))
    assert built == bytes(frags[0])[:14] + bytes(whole)
    assert defrag.stats.reassembled == 1 and defrag.stats.fragments == 3


def test_ipv4_header_is_rebuilt_with_the_length_set_and_the_fragment_fields_cleared() -> None:
    syn = IP(src="1.1.1.1", dst="2.2.2.2", id=1) / TCP(sport=12345, dport=8080, flags="S")
    frags = [f for f in fragment(syn, fragsize=8)]
    d = Defragmenter().reassemble(
        decode(
            PacketBatch.from_packets(
                [bytes(f) for f in frags], [NS * (i + 1) for i in range(len(frags))], 228
            )
        )
    )
    dgram = d.rows[-1]
    assert dgram["tcp_flags"] == 0x02 and dgram["dport"] == 8080
    ip = IP(d.batch.packet(int(dgram["pkt"])))
    assert (ip.len, ip.flags, ip.frag) == (40, 0, 0)
    del ip.chksum
    assert IP(bytes(ip)).chksum == IP(d.batch.packet(int(dgram["pkt"]))).chksum


def test_ipv6_fragment_header_is_removed() -> None:
    whole = (
        IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrFragment(id=77)
        / TCP(sport=12345, dport=8080, flags="PA")
        / (b"A" * 1900)
    )
    frags = [eth() / Dot1Q(vlan=6) / f for f in fragment6(whole, 1000)]
    d = Defragmenter().reassemble(decode(batch(frags)))
    dgram = d.rows[-1]
    assert dgram["vlan"] == 6 and dgram["payload_len"] == 1900
    built = d.batch.packet(int(dgram["pkt"]))
    ip6 = IPv6(built[18:])
    assert ip6.nh == 6 and ip6.plen == 20 + 1900
    assert bytes(ip6[TCP].payload) == b"A" * 1900


def _raw_fragments(pieces: list[tuple[int, bytes, bool]]) -> list[Packet]:
    """ICMP echo data split by hand: (offset, data, more fragments)."""
    return [
        eth()
        / IP(src="10.9.9.1", dst="10.9.9.2", id=5, proto=1, frag=o // 8, flags="MF" if mf else 0)
        / data
        for o, data, mf in pieces
    ]


def test_overlaps_follow_the_bsd_policy() -> None:
    header = bytes(ICMP(type=8, id=1, seq=1, chksum=0))
    # bytes 8-23 arrive twice: the piece starting lower wins, then the earlier arrival
    pieces = [
        (16, b"B" * 16, True),  # 16-31
        (8, b"A" * 16, True),  # 8-23: starts lower, wins 16-23 over the B piece
        (16, b"C" * 16, True),  # same start as B, arrived later: B stands on 24-31
        (0, header, True),
        (32, b"E" * 8, False),
    ]
    defrag = Defragmenter()
    d = defrag.reassemble(decode(batch(_raw_fragments(pieces))))
    dgram = d.rows[-1]
    built = d.batch.packet(int(dgram["pkt"]))
    assert built[14 + 20 :] == header + b"A" * 16 + b"B" * 8 + b"E" * 8
    assert defrag.stats.overlaps == 2


def test_incomplete_datagrams_time_out() -> None:
    pieces = _raw_fragments([(0, bytes(ICMP(type=8)), True), (8, b"z" * 8, False)])
    defrag = Defragmenter(DefragConfig(timeout=30.0))
    run(defrag, batch([pieces[0]], t0=100.0))
    late = run(defrag, batch([pieces[1]], t0=131.0))
    assert not isinstance(late.batch, ReassembledBatch)
    assert defrag.stats.timeouts == 1 and defrag.stats.reassembled == 0


def test_datagrams_in_progress_are_bounded() -> None:
    defrag = Defragmenter(DefragConfig(max_datagrams=2))
    firsts = [
        eth() / IP(src="10.0.0.1", dst="10.0.0.2", id=i, flags="MF") / UDP() / (b"x" * 8)
        for i in range(3)
    ]
    run(defrag, batch(firsts))
    assert defrag.stats.evicted == 1
    tail = eth() / IP(src="10.0.0.1", dst="10.0.0.2", id=0, frag=2, proto=17) / (b"y" * 8)
    assert not isinstance(run(defrag, batch([tail])).batch, ReassembledBatch)  # id 0 was evicted


def test_datagram_longer_than_an_ip_packet_is_dropped() -> None:
    defrag = Defragmenter()
    tail = eth() / IP(src="10.0.0.1", dst="10.0.0.2", id=3, frag=8190, proto=17) / (b"y" * 100)
    run(defrag, batch([tail]))
    assert defrag.stats.invalid == 1 and not defrag._datagrams


def test_fragments_inside_gre_are_reassembled_behind_the_tunnel_headers() -> None:
    whole = IP(src="10.1.1.1", dst="10.2.2.2", id=8) / UDP(sport=1000, dport=2000) / (b"d" * 1500)
    outer = eth() / IP(src="192.0.2.1", dst="192.0.2.2") / GRE(proto=0x0800)
    frames = [outer / f for f in fragment(whole, 1000)]
    d = Defragmenter().reassemble(decode(batch(frames)))
    dgram = d.rows[-1]
    assert len(d.rows) == 3
    assert (dgram["sport"], dgram["dport"], dgram["payload_len"]) == (1000, 2000, 1500)
    assert dgram["l3_off"] == dgram["link_off"] == 14 + 20 + 4
    # the outer layers are copied from the first fragment's packet as they were
    assert d.batch.packet(int(dgram["pkt"]))[: 14 + 20 + 4] == bytes(frames[0])[: 14 + 20 + 4]


def test_matcher_alerts_once_on_the_reassembled_syn(tmp_path: Path) -> None:
    syn = IP(src="1.1.1.1", dst="2.2.2.2", id=1) / TCP(sport=12345, dport=8080, flags="S")
    frags = [eth() / f for f in fragment(syn, fragsize=8)]
    pcap = tmp_path / "frag.pcap"
    from scapy.utils import wrpcap

    wrpcap(str(pcap), frags)
    rules_file = tmp_path / "t.rules"
    rules_file.write_text("alert tcp any any -> any any (tcp.flags:S; sid:1;)\n")
    rules, table, _ = load_rules([rules_file], default_variables())
    matcher = Matcher(compile_ruleset(rules, table))
    with open_source("pcap", str(pcap)) as source:
        alerts = [a for b in iter_matches(source, matcher) for a in b.alerts]
    assert len(alerts) == 1
    assert alerts[0].match.packet == len(frags)
    record = alert_record(alerts[0])
    packet = base64.b64decode(record["packet"])
    assert IP(packet[14:]).len == 40 and TCP(packet[34:]).flags == "S"


@pytest.mark.skipif(not DATA.is_dir(), reason="suricata-verify data not present in ../shared/data")
def test_largest_ip_datagram_inside_gre_ppp_is_reassembled() -> None:
    pcap = (
        DATA / "bug-6942-6887-defrag-eth-ip-gre-ppp-ip-udp-data/eth-ip-gre-ppp-max-ip-packet.pcap"
    )
    defrag = Defragmenter()
    rows = []
    with open_source("pcap", str(pcap)) as source:
        while (b := source.next_batch()) is not None:
            d = defrag.reassemble(decode(b))
            rows.extend(r for r in d.rows if not r["flags"] & F_FRAGMENT)
    assert defrag.stats.reassembled == 1 and defrag.stats.fragments == 1024
    (dgram,) = rows
    assert dgram["ip_len"] == 65535 and dgram["payload_len"] == 65535 - 28
    assert np.uint16(dgram["dport"]) == 9999


def test_a_fragment_past_the_datagram_end_does_not_block_reassembly() -> None:
    pieces = [
        (0, bytes(ICMP(type=8, chksum=0)), True),
        (24, b"x" * 8, True),  # lies past the end the last fragment gives
        (8, b"y" * 8, False),
    ]
    d = Defragmenter().reassemble(decode(batch(_raw_fragments(pieces))))
    assert isinstance(d.batch, ReassembledBatch)
    dgram = d.rows[-1]
    assert dgram["ip_len"] == 20 + 16


@st.composite
def fragment_soup(draw: st.DrawFn) -> list[bytes]:
    """IPv4 and IPv6 fragments with random ids, offsets, flags and contents."""
    frames = []
    for _ in range(draw(st.integers(1, 30))):
        body = draw(st.binary(max_size=64))
        ident = draw(st.integers(0, 3))
        offset = draw(st.integers(0, 40))
        more = draw(st.booleans())
        if draw(st.booleans()):
            ip = IP(src="10.0.0.1", dst="10.0.0.2", id=ident, frag=offset, proto=17)
            ip.flags = "MF" if more else 0
            frames.append(bytes(eth() / ip / body))
        else:
            head = IPv6(src="2001:db8::1", dst="2001:db8::2")
            frag = IPv6ExtHdrFragment(id=ident, offset=offset, m=int(more), nh=17)
            frames.append(bytes(eth() / head / frag / body))
        if draw(st.booleans()):  # cut by the snap length
            frames[-1] = frames[-1][: draw(st.integers(14, len(frames[-1])))]
    return frames


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fragment_soup())
def test_any_fragment_soup_is_taken_without_raising(frames: list[bytes]) -> None:
    defrag = Defragmenter(DefragConfig(max_datagrams=3))
    d = defrag.reassemble(decode(batch(frames)))
    assert len(d.batch) == len(frames) + defrag.stats.reassembled
    assert (d.rows["pkt"] < len(d.batch)).all()
    s = defrag.stats
    assert s.fragments == decode(batch(frames)).fragments


def test_flow_records_count_the_datagram_not_its_fragments(tmp_path: Path) -> None:
    from scapy.utils import wrpcap

    from engine.pipeline import PacketPathStats, iter_flow_records

    whole = IP(src="10.0.0.1", dst="10.0.0.2", id=11) / UDP(sport=5000, dport=6000) / (b"u" * 2000)
    pcap = tmp_path / "frag.pcap"
    wrpcap(str(pcap), [eth() / f for f in fragment(whole, fragsize=800)])
    stats = PacketPathStats()
    with open_source("pcap", str(pcap)) as source:
        records = [r for recs in iter_flow_records(source, stats=stats) for r in recs.to_dicts()]
    (flow,) = records
    assert (flow["src_port"], flow["dst_port"]) == (5000, 6000)
    assert (flow["orig_pkts"], flow["orig_ip_bytes"]) == (1, 20 + 8 + 2000)
    assert stats.reassembled == 1 and stats.defrag["fragments"] == 3
    assert stats.later_fragments == 3


def test_every_batch_hands_the_kernels_one_array_type(tmp_path: Path) -> None:
    # the compiled kernels specialise on whether an array is writable: a batch read
    # from a file, one built from packets and one with reassembled datagrams must not
    # each load a compiled version of their own
    import numba
    from scapy.utils import wrpcap

    whole = IP(src="10.0.0.1", dst="10.0.0.2", id=77) / UDP(sport=7, dport=9) / (b"q" * 1600)
    frags = [eth() / f for f in fragment(whole, fragsize=800)]
    pcap = tmp_path / "frags.pcap"
    wrpcap(str(pcap), frags)
    with open_source("pcap", str(pcap)) as source:
        read = source.next_batch()
    assert read is not None
    reassembled = Defragmenter().reassemble(decode(read)).batch
    assert isinstance(reassembled, ReassembledBatch)
    built = batch(frags)
    kinds = {str(numba.typeof(b.data)) for b in (read, built, reassembled)}
    assert len(kinds) == 1, kinds
    with pytest.raises(ValueError):
        built.data[0] = 0  # packets are not written to
