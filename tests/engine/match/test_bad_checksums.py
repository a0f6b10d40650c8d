"""Packets with a bad checksum: left out of inspection (Snort), or matched as packets
but never reassembled or parsed (Suricata, `Matcher(bad_checksum_packets=True)`)."""

from __future__ import annotations

from scapy.layers.inet import TCP
from scapy.packet import Packet

from dpdk_io.batch import PacketBatch
from engine.decode import decode
from engine.flows import FlowTable, FlowTableConfig
from engine.inspect import Inspector
from engine.match import Alert, Matcher
from engine.match.stream import checksum_validator
from tests.engine.match.traffic import NS, data, eth, handshake, matcher_for

RULES = (
    'rule "payload" { id 1 match tcp where pkt_data contains "GET /" }\n'
    'rule "method" { id 2 match http where http.method equals "GET" }\n'
)
REQUEST = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def run(matcher: Matcher, packets: list[Packet]) -> list[tuple[int, int | None]]:
    frames = [bytes(eth(p)) for p in packets]
    ts = [round((1_700_000_000 + i * 0.01) * NS) for i in range(len(frames))]
    batch = PacketBatch.from_packets(frames, ts, 1)
    decoded = decode(batch)
    events = FlowTable(FlowTableConfig()).update(decoded)
    bad = checksum_validator("all")
    assert bad is not None
    alerts: list[Alert] = matcher.scan(batch, decoded, events, bad(batch, decoded))
    return sorted((a.match.rule_id, a.match.packet) for a in alerts)


def corrupted(p: Packet) -> Packet:
    p[TCP].chksum = 0xDEAD
    return p


def test_bad_checksum_packets_are_skipped_by_default() -> None:
    m = matcher_for(RULES, inspector=Inspector())
    assert run(m, [*handshake(), corrupted(data(REQUEST))]) == []
    assert m.stats.checksum_skipped == 1


def test_bad_checksum_packets_meet_packet_rules_but_are_not_reassembled() -> None:
    m = matcher_for(RULES, inspector=Inspector(), bad_checksum_packets=True)
    got = run(m, [*handshake(), corrupted(data(REQUEST)), data(REQUEST)])
    # packet 4 alerts as a packet only; its resend (packet 5) is the first copy the
    # inspector parses, so the request's buffers come with it
    assert got == [(1, 4), (1, 5), (2, 5)]
