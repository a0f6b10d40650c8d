"""Packet-payload rules on the reassembled TCP stream: `tcp` (packet and stream),
`tcp-pkt`/`no_stream` (packet only), `tcp-stream`/`only_stream` (stream only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.packet import Packet

from engine.inspect import Inspector
from engine.match import Alert
from engine.match.compiler import STREAM_ALSO, STREAM_NONE, STREAM_ONLY
from tests.engine.match.traffic import data, handshake, load_bench, matcher_for, run_packets

SV = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "suricata-verify"


def rule(rid: int, header: str, body: str) -> str:
    return f'rule "r{rid}" {{ id {rid} match {header} where {body} }}\n'


def alerted(alerts: list[Alert]) -> list[tuple[int, int]]:
    """(rule id, 1-based packet number) of each alert."""
    return sorted((a.match.rule_id, a.match.packet or 0) for a in alerts)


SPLIT_RULES = (
    rule(1, "tcp", 'pkt_data contains "ABCD"')
    + rule(2, "tcp-pkt", 'pkt_data contains "ABCD"')
    + rule(3, "tcp no_stream", 'pkt_data contains "ABCD"')
    + rule(4, "tcp-stream", 'pkt_data contains "ABCD"')
    + rule(5, "tcp only_stream", 'pkt_data contains "ABCD"')
    + rule(6, "tcp", 'pkt_data contains "xxAB"')
    + rule(7, "tcp-stream", 'pkt_data contains "xxAB"')
    + rule(8, "tcp", 'pkt_data contains "BC"')  # too short for the prefilter: packets only
    + rule(9, "tcp-stream", 'pkt_data contains "BC"')
    + rule(10, "tcp", 'pkt_data contains "BCD"')  # three bytes: prefiltered, streams too
)


def test_content_split_over_two_segments_matches_on_the_stream() -> None:
    m = matcher_for(SPLIT_RULES, inspector=Inspector(), raw_stream=True)
    got = alerted(run_packets(m, [*handshake(), data(b"xxAB"), data(b"CDxx", seq=105)]))
    # packet rules never see "ABCD"; stream rules see it when the second segment lands;
    # "xxAB" lies in the first packet: one alert, not again when the stream grows
    assert got == [(1, 5), (4, 5), (5, 5), (6, 4), (7, 4), (9, 5), (10, 5)]


def test_stream_matches_follow_sequence_order_not_arrival() -> None:
    m = matcher_for(SPLIT_RULES, inspector=Inspector(), raw_stream=True)
    pkts = [*handshake(), data(b"0123"), data(b"CDxx", seq=109), data(b"xxAB", seq=105)]
    # the later segment arrives first and is held; the earlier one fills the hole and
    # completes "ABCD" on the stream; "xxAB" is in its own packet
    assert alerted(run_packets(m, pkts)) == [
        (1, 6),
        (4, 6),
        (5, 6),
        (6, 6),
        (7, 6),
        (9, 6),
        (10, 6),
    ]


def test_by_default_only_flows_of_a_known_protocol_are_matched_on_the_stream() -> None:
    m = matcher_for(SPLIT_RULES, inspector=Inspector())
    got = alerted(run_packets(m, [*handshake(), data(b"xxAB"), data(b"CDxx", seq=105)]))
    assert got == [(4, 5), (5, 5), (6, 4), (7, 4), (9, 5)]  # stream-only rules see the stream
    m = matcher_for(SPLIT_RULES, inspector=Inspector())
    http = [*handshake(), data(b"GET /xxAB"), data(b"CDxx HTTP/1.1\r\n\r\n", seq=110)]
    assert alerted(run_packets(m, http)) == [
        (1, 5),
        (4, 5),
        (5, 5),
        (6, 4),
        (7, 4),
        (9, 5),
        (10, 5),
    ]


def test_without_an_inspector_rules_see_packets_only() -> None:
    m = matcher_for(SPLIT_RULES)
    got = alerted(run_packets(m, [*handshake(), data(b"xxAB"), data(b"CDxx", seq=105)]))
    assert got == [(6, 4)]


def test_dsize_and_rst_data_stay_on_the_packet() -> None:
    text = rule(1, "tcp", 'dsize < 10 and pkt_data contains "ABCD"')
    text += rule(2, "tcp", 'pkt_data contains "ABCD"')
    m = matcher_for(text, inspector=Inspector(), raw_stream=True)
    assert alerted(run_packets(m, [*handshake(), data(b"xxAB"), data(b"CDxx", seq=105)])) == [
        (2, 5)
    ]
    rst = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(
        sport=40000, dport=80, flags="RA", seq=105, ack=501
    )
    m = matcher_for(text, inspector=Inspector(), raw_stream=True)
    assert alerted(run_packets(m, [*handshake(), data(b"xxAB"), rst / b"CDxx"])) == []


def test_stream_mode_and_inspection_need() -> None:
    m = matcher_for(SPLIT_RULES)
    modes = {r.rule.id: r.stream for r in m.ruleset.rules}
    assert modes[1] == modes[6] == modes[8] == STREAM_ALSO
    assert modes[2] == modes[3] == STREAM_NONE
    assert modes[4] == modes[5] == modes[7] == modes[9] == STREAM_ONLY
    assert m.ruleset.needs_inspection  # stream-only rules need reassembly
    plain = matcher_for(rule(1, "tcp", 'pkt_data contains "ABCD"'))
    assert not plain.ruleset.needs_inspection


def test_a_compiled_rule_knows_every_field_its_condition_reads() -> None:
    text = rule(
        1,
        "tcp",
        'not (dsize > 5 or (ip.ttl == 3 and pkt_data contains "AB")) and stream.size.client > 1',
    ) + rule(2, "tcp", 'pkt_data contains "ABCD"')
    reads = {r.rule.id: r.fields for r in matcher_for(text).ruleset.rules}
    assert reads == {1: {"dsize", "ip.ttl", "stream.size.client"}, 2: frozenset()}


@pytest.mark.parametrize("name", ["tcp-fastopen-08", "bug-6244-tcp-rst-with-data"])
def test_suricata_verify_stream_cases(name: str) -> None:
    if not (SV / "index.json").exists():
        pytest.skip(f"suricata-verify data not present at {SV}")
    case = next(
        c for c in json.loads((SV / "index.json").read_text())["tests"] if c["name"] == name
    )
    res = load_bench().run_case(SV / name, case)
    assert not res.error
    # every check on a rule the importer translates is met (stream rules included)
    unmet_sids = {
        f.split("'alert.signature_id': ")[1].split("}")[0]
        for f in res.failures
        if "signature_id" in f
    }
    disabled = {n.split("sid ")[1].split(":")[0] for n in res.not_imported}
    assert unmet_sids <= disabled, res.failures


def test_raw_stream_rule_mixing_payload_and_body_matches_once_the_body_is_complete() -> None:
    text = rule(1, "http", 'pkt_data contains "MARKER" and file_data contains "MARKER"')
    text += rule(2, "ip", 'pkt_data contains "MARKER" and file_data contains "MARKER"')
    m = matcher_for(text, inspector=Inspector(), raw_stream=True)
    body = b"<html>" + b"x" * 40 + b"MARKER" + b"y" * 40 + b"</html>"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    pkts = [
        *handshake(),
        data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        data(head + body[:60], to_server=False, seq=501),
        data(body[60:], to_server=False, seq=501 + len(head) + 60),
    ]
    # the body (file_data) is complete on packet 6; MARKER travelled in packet 5
    assert alerted(run_packets(m, pkts)) == [(1, 6), (2, 6)]
    # by default such rules see packets only
    assert alerted(run_packets(matcher_for(text, inspector=Inspector()), pkts)) == []
    modes = {r.rule.id: r.stream for r in m.ruleset.rules}
    assert modes == {1: STREAM_ALSO, 2: STREAM_ALSO}
    # found through the body's literal, not the payload's
    assert {r.fast_pattern.buffer for r in m.ruleset.rules if r.fast_pattern} == {"file_data"}


def test_unknown_flows_leave_inspection_unless_a_stream_only_rule_admits_their_ports() -> None:
    # a binary protocol on port 6000: detection gives up once both sides have spoken
    def flow(sp: int) -> list[Packet]:
        return [
            *handshake(sp=sp),
            data(b"\x00\x01\x02\x03binary hello", sp=sp),
            data(b"\x00\x09\x08\x07binary reply", to_server=False, seq=501, sp=sp),
            data(b"xxAB", seq=117, sp=sp),
            data(b"CDxx", seq=121, sp=sp),
        ]

    only_6000 = rule(1, "tcp-stream to any port 6000", 'pkt_data contains "ABCD"')
    only_5900 = rule(2, "tcp-stream to any port 5900", 'pkt_data contains "ABCD"')
    # a stream-only rule admits the flow: it stays inspected and the rule sees the stream
    inspector = Inspector()
    m = matcher_for(only_6000 + only_5900, inspector=inspector)
    assert alerted(run_packets(m, flow(6000))) == [(1, 7)]
    assert m.stats.left_out_flows == 0
    assert inspector.stats().packets == 4
    # none does: after the packet that ends detection the inspector sees no more of it
    inspector = Inspector()
    m = matcher_for(only_5900, inspector=inspector)
    assert alerted(run_packets(m, flow(6000))) == []
    assert m.stats.left_out_flows == 1
    assert inspector.stats().packets == 2
    assert inspector.flows() == []  # and holds nothing for it
    # a flow on the other rule's port stays inspected
    m = matcher_for(only_6000 + only_5900, inspector=Inspector())
    assert alerted(run_packets(m, flow(5900))) == [(2, 7)]
    # Suricata's raw stream model matches every stream rule on unknown flows
    m = matcher_for(only_5900, inspector=Inspector(), raw_stream=True)
    run_packets(m, flow(6000))
    assert m.stats.left_out_flows == 0
