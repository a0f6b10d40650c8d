"""The matcher on scapy traffic: prefilter, header tests, flow state, flowbits, rates, reload."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP

from engine.inspect import Inspector
from engine.match import compile_ruleset
from engine.match.compiler import PatternDatabase
from engine.match.matcher import _rule_pairs, _segments_with_runs
from rules import parse_text
from tests.engine.match.traffic import data, handshake, matcher_for, run_packets, sids

HTTP_GET = b"GET /admin/login.php?id=1 HTTP/1.1\r\nHost: x\r\n\r\n"


def rule(body: str, rid: int = 1, header: str = "match tcp") -> str:
    return f'rule "r{rid}" {{ id {rid} {header} {body} }}\n'


def test_fast_pattern_hit_must_lie_inside_one_payload() -> None:
    # "ABCD" only exists across the boundary of two packets' payloads
    m = matcher_for(rule('where pkt_data contains "ABCD"'))
    pkts = [*handshake(), data(b"xxAB"), data(b"CDxx", seq=105)]
    assert sids(run_packets(m, pkts)) == []
    assert sids(run_packets(m, [*handshake(), data(b"xABCDx")])) == [1]


def test_header_ports_and_addresses() -> None:
    text = rule(
        'where pkt_data contains "admin"', 1, "match tcp from 10.0.0.0/24 to any port 80"
    ) + rule('where pkt_data contains "admin"', 2, "match tcp from 10.9.0.0/16 to any port 80")
    text += rule('where pkt_data contains "admin"', 3, "match tcp to any port [443, 8443]")
    text += rule('where pkt_data contains "admin"', 4, "match udp")
    m = matcher_for(text)
    assert sorted(sids(run_packets(m, [*handshake(), data(HTTP_GET)]))) == [1]


def test_bidirectional_header_matches_either_way() -> None:
    m = matcher_for(
        rule('where pkt_data contains "hello"', 7, "match tcp between any port 80 and any")
    )
    pkts = [*handshake(), data(b"x"), data(b"hello", to_server=False, seq=501)]
    assert sids(run_packets(m, pkts)) == [7]


def test_flow_direction_and_established() -> None:
    text = rule('where pkt_data contains "hello"', 1, "match tcp established to_client")
    text += rule('where pkt_data contains "hello"', 2, "match tcp established to_server")
    text += rule('where pkt_data contains "hello"', 3, "match tcp not_established")
    m = matcher_for(text)
    pkts = [*handshake(), data(b"hello", to_server=False, seq=501)]
    assert sids(run_packets(m, pkts)) == [1]
    # before the handshake completes, the same payload is not established
    syn_data = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2, flags="S") / b"hello"
    assert sids(run_packets(matcher_for(text), [syn_data])) == [3]


def test_header_only_rules_take_the_slow_path() -> None:
    text = rule("where icmp.type == 8", 10, "match icmp")
    text += rule("where tcp.flags == S and ip.ttl < 10", 11)
    text += rule("where tcp.flags has_any FR", 12)
    text += rule("where dsize > 3", 13, "match udp")
    m = matcher_for(text)
    rs = m.ruleset
    assert len(rs.slow_rules) == 4
    pkts = [
        IP(src="1.1.1.1", dst="2.2.2.2") / ICMP(type=8),
        IP(src="1.1.1.1", dst="2.2.2.2") / ICMP(type=0),
        IP(src="1.1.1.1", dst="2.2.2.2", ttl=5) / TCP(sport=1, dport=2, flags="S"),
        IP(src="1.1.1.1", dst="2.2.2.3", ttl=64) / TCP(sport=1, dport=2, flags="S"),
        IP(src="1.1.1.1", dst="2.2.2.4") / TCP(sport=1, dport=2, flags="FA"),
        IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5, dport=6) / b"abcd",
        IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5, dport=6) / b"abc",
    ]
    alerts = run_packets(m, pkts)
    assert [(a.match.rule_id, a.match.packet) for a in alerts] == [
        (10, 1),
        (11, 3),
        (12, 5),
        (13, 6),
    ]


def test_flowbits_set_in_one_packet_gate_a_later_one_per_flow() -> None:
    text = (
        'rule "login" { id 1 match tcp where pkt_data contains "LOGIN" '
        "flowbits set logged_in flowbits noalert }\n"
        'rule "cmd after login" { id 2 match tcp where flowbits isset logged_in '
        'and pkt_data contains "DELE" }\n'
    )
    m = matcher_for(text)
    flow_a = [*handshake(cp=1111), data(b"LOGIN x", cp=1111), data(b"DELE y", cp=1111, seq=108)]
    flow_b = [*handshake(cp=2222), data(b"DELE y", cp=2222)]
    alerts = run_packets(m, [*flow_a, *flow_b])
    assert [(a.match.rule_id, a.match.flow.src_port) for a in alerts] == [(2, 1111)]


def test_flowbits_reset_when_a_flow_slot_is_reused() -> None:
    text = (
        'rule "mark" { id 1 match tcp where pkt_data contains "MARK" flowbits set m flowbits noalert }\n'
        'rule "marked" { id 2 match tcp where flowbits isset m and pkt_data contains "USE" }\n'
    )
    m = matcher_for(text)
    first = [
        *handshake(),
        data(b"MARK"),
        IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=80, flags="R", seq=105),
    ]
    # the same 5-tuple opens a new connection after the reset: its bits start empty
    second = [*handshake(), data(b"USE")]
    alerts = run_packets(m, [*first, *second], batch_size=2)
    assert m.sessions.gen.max() == 2  # the second connection got a fresh generation
    assert sids(alerts) == []
    assert sids(
        run_packets(matcher_for(text), [*handshake(), data(b"MARK"), data(b"USE", seq=105)])
    ) == [2]


def test_threshold_limit_and_detection_filter() -> None:
    pkts = [IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5, dport=53) / b"QQQ" for _ in range(6)]
    limit = matcher_for(
        'rule "x" { id 1 match udp where pkt_data contains "QQQ" threshold limit 2 per 60s by src }'
    )
    assert len(run_packets(limit, pkts)) == 2
    df = matcher_for(
        'rule "x" { id 1 match udp where pkt_data contains "QQQ" detection_filter 4 per 60s by src }'
    )
    assert [a.match.packet for a in run_packets(df, pkts)] == [5, 6]
    every = matcher_for(
        'rule "x" { id 1 match udp where pkt_data contains "QQQ" threshold threshold 3 per 60s by dst }'
    )
    assert [a.match.packet for a in run_packets(every, pkts)] == [3, 6]


def test_window_distinct_ports() -> None:
    m = matcher_for(
        'rule "scan" { id 5 match tcp where tcp.flags == S '
        "window 60s by src.ip: distinct(dst.port) >= 3 }"
    )
    pkts = [
        IP(src=src, dst="10.0.0.5") / TCP(sport=999, dport=p, flags="S")
        for src, p in (
            ("9.9.9.9", 22),
            ("9.9.9.9", 22),
            ("9.9.9.9", 80),
            ("8.8.8.8", 22),
            ("9.9.9.9", 443),  # the third distinct port: the window fires for 9.9.9.9
            ("9.9.9.9", 8080),  # still past the threshold, but it already fired
            ("8.8.8.8", 80),
            ("8.8.8.8", 443),  # another source has its own group
        )
    ]
    alerts = run_packets(m, pkts)
    assert [(a.match.packet, a.match.flow.src_ip) for a in alerts] == [
        (5, "9.9.9.9"),
        (8, "8.8.8.8"),
    ]
    # a window length later the same source can fire again
    later = [
        IP(src="9.9.9.9", dst="10.0.0.5") / TCP(sport=999, dport=p, flags="S") for p in (1, 2, 3)
    ]
    assert len(run_packets(m, later, start=1_700_000_100.0)) == 1


def test_window_slides_on_the_shared_windowing_core() -> None:
    from engine.windowing import SlidingWindow

    def scan_rule(duration: str, agg: str) -> str:
        return (
            f'rule "w" {{ id 6 match udp where pkt_data contains "PING" '
            f"window {duration} by src.ip: {agg} }}"
        )

    def burst(n: int, size: int = 4) -> list[IP]:
        return [
            IP(src="9.9.9.9", dst="10.0.0.5") / UDP(sport=999, dport=53) / (b"PING" * size)
            for _ in range(n)
        ]

    # two events now and two 5 s later: a 1 s window never holds three, a 60 s one does
    short = matcher_for(scan_rule("1s", "count() >= 3"))
    long = matcher_for(scan_rule("60s", "count() >= 3"))
    for m in (short, long):
        run_packets(m, burst(2))
    assert run_packets(short, burst(2), start=1_700_000_005.0) == []
    assert len(run_packets(long, burst(2), start=1_700_000_005.0)) == 1  # once per key
    assert all(isinstance(w, SlidingWindow) for w in long.windows.windows.values())
    # a numeric aggregate over a packet field: payloads of 16 bytes pass 40 on the third
    total = matcher_for(scan_rule("60s", "sum(dsize) > 40"))
    assert [a.match.packet for a in run_packets(total, burst(4))] == [3]


def test_pass_rule_suppresses_alerts_on_its_packet() -> None:
    text = rule('where pkt_data contains "admin"', 1)
    text += 'rule "allow" { id 2 action pass match tcp where pkt_data contains "login.php" }\n'
    m = matcher_for(text)
    assert sids(run_packets(m, [*handshake(), data(HTTP_GET)])) == []


def test_swap_installs_a_new_ruleset_and_keeps_flow_state() -> None:
    m = matcher_for(
        'rule "mark" { id 1 match tcp where pkt_data contains "MARK" flowbits set m flowbits noalert }'
    )
    from dpdk_io.batch import PacketBatch
    from engine.decode import decode
    from engine.flows import FlowTable
    from tests.engine.match.traffic import eth

    table = FlowTable()
    frames = [bytes(eth(p)) for p in [*handshake(), data(b"MARK"), data(b"USE", seq=105)]]

    def feed(i: int, j: int) -> list[int]:
        b = PacketBatch.from_packets(
            frames[i:j], [10**9 * (k + 1) for k in range(i, j)], 1, first_index=i
        )
        d = decode(b)
        return sids(m.scan(b, d, table.update(d)))

    assert feed(0, 4) == []
    new = compile_ruleset(
        parse_text(
            'rule "used" { id 9 match tcp where flowbits isset m and pkt_data contains "USE" }'
        ).rules
    )
    m.swap(new)
    assert feed(4, 5) == [9]


def test_alert_fields() -> None:
    m = matcher_for(
        'rule "get" { id 3 rev 4 gid 1 priority 1 classtype web match tcp where pkt_data contains "GET" }'
    )
    a = run_packets(m, [*handshake(), data(HTTP_GET)])[0]
    assert (a.match.packet, a.match.rev, a.match.classtype) == (4, 4, "web")
    assert (a.src_ip, a.src_port, a.dst_ip, a.dst_port, a.to_server) == (
        "10.0.0.1",
        40000,
        "10.0.0.2",
        80,
        True,
    )
    assert a.match.flow.community_id.startswith("1:")


def test_header_ports_both_ways_and_the_other_way_round_for_replies() -> None:
    m = matcher_for(
        'rule "between" { id 1 match tcp between any port 7000 and any port 80 '
        'where pkt_data contains "ping" }\n'
        'rule "replies" { id 2 match tcp from any port 40000 to any port 80 with_replies '
        'where pkt_data contains "ping" }\n'
        'rule "one way" { id 3 match tcp from any port 40000 to any port 80 '
        'where pkt_data contains "ping" }\n'
        'rule "to client" { id 4 match tcp from any port 80 to any port 40000 '
        'where pkt_data contains "ping" }'
    )
    pkts = [
        *handshake(cp=40000),
        data(b"ping", cp=40000),
        data(b"ping", cp=40000, to_server=False, seq=501),
        *handshake(cp=7000),
        data(b"ping", cp=7000),
        data(b"ping", cp=7000, to_server=False, seq=501),
    ]
    got = sorted((a.match.packet, a.match.rule_id) for a in run_packets(m, pkts))
    # 40000 -> 80: the one-way rule; 80 -> 40000: the rule written that way and the
    # reply of `with_replies`; 7000 <-> 80: the `between` rule both ways
    assert got == [(4, 2), (4, 3), (5, 2), (5, 4), (9, 1), (10, 1)]


def test_one_byte_run_patterns_are_found_per_payload() -> None:
    # a run pattern is searched with the run-length kernel, not Hyperscan
    m = matcher_for('rule "zeros" { id 4 match tcp where pkt_data contains |00 00 00 00 00 00| }')
    assert m.ruleset.databases["pkt_data"].runs
    pkts = [*handshake(), data(b"x" + b"\x00" * 5 + b"y"), data(b"\x00" * 40, seq=108)]
    assert [a.match.packet for a in run_packets(m, pkts)] == [5]


def test_the_run_kernel_finds_every_run_a_byte_by_byte_search_finds() -> None:
    # the kernel visits one byte in `shortest`: runs at every alignment, runs of a
    # case-folded byte around an exact one, and runs cut by a segment's edge
    runs = [(0, 0, 6, False), (1, ord("A"), 7, False), (2, ord("a"), 6, True), (3, 0xFF, 9, False)]
    rng = np.random.default_rng(7)
    alphabet = np.array([0, 0xFF, ord("a"), ord("A"), ord("b")], dtype=np.uint8)
    for _ in range(200):
        segments = [
            bytes(alphabet[rng.integers(0, len(alphabet), rng.integers(0, 60))]) for _ in range(5)
        ]
        arr = np.frombuffer(b"".join(segments), dtype=np.uint8)
        lens = np.array([len(x) for x in segments], dtype=np.int64)
        cstart = np.concatenate([[0], np.cumsum(lens[:-1])]).astype(np.int64)
        got = [set(s.tolist()) for s in _segments_with_runs(arr, cstart, lens, runs)]
        for (_, byte, n, nocase), found in zip(runs, got, strict=True):
            needle = bytes([byte]) * n
            expected = {
                j for j, seg in enumerate(segments) if needle in (seg.lower() if nocase else seg)
            }
            assert found == expected, (segments, byte, n, nocase)


def test_prefilter_hits_become_each_patterns_rules_once_per_segment() -> None:
    # pattern 0 -> rules 4, 5; pattern 1 -> none; pattern 2 -> rule 9
    db = PatternDatabase(
        buffer="pkt_data",
        database=None,
        lengths=np.array([4, 4, 4]),
        rules=[np.array([4, 5]), np.array([], dtype=np.int64), np.array([9])],
        runs=[],
    )
    sel = np.array([10, 11, 12])
    seg = np.array([0, 0, 0, 1, 1, 2, 2])
    pid = np.array([0, 2, 0, 1, 2, 0, 0])
    rows, rules = _rule_pairs(sel, seg, pid, db)
    pairs = list(zip(rows.tolist(), rules.tolist(), strict=True))
    assert sorted(pairs) == [(10, 4), (10, 5), (10, 9), (11, 9), (12, 4), (12, 5)]
    assert len(pairs) == len(set(pairs))


def test_candidates_lacking_a_literal_are_dropped_before_evaluation() -> None:
    # literals besides the fast pattern are looked up in one pass over the payloads:
    # long ones through a database, one- and two-byte ones among the bytes and pairs
    text = (
        'rule "crlf" { id 1 match udp where pkt_data contains |0d 0a| }\n'
        'rule "ab" { id 2 match udp where pkt_data contains "ab" nocase }\n'
        'rule "q" { id 3 match udp where pkt_data contains "Q" nocase }\n'
        'rule "hello world" { id 4 match udp where pkt_data { contains "HELLO" '
        'contains "WORLD!" } }\n'
    )
    m = matcher_for(text)
    assert m.ruleset.confirm is not None
    payloads = [b"x\r\ny", b"x\ny\r", b"zzABzz", b"zzaXbz", b"q", b"HELLO there", b"HELLO WORLD!"]
    pkts = [IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=9, dport=9) / p for p in payloads]
    alerts = run_packets(m, pkts)
    assert sorted((a.match.packet, a.match.rule_id) for a in alerts) == [
        (1, 1),
        (3, 2),
        (5, 3),
        (7, 4),
    ]
    assert m.stats.evaluations == 4  # none on a payload that lacks a literal


def test_a_flood_of_prefilter_hits_falls_back_to_one_scan_per_payload() -> None:
    # "ABAB" overlaps itself, so a long run of it hits at every other byte
    m = matcher_for('rule "abab" { id 6 match udp where pkt_data contains "ABAB" }')
    pkts = [
        IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5, dport=6) / (b"AB" * 400 if i % 2 else b"zz")
        for i in range(40)
    ]
    alerts = run_packets(m, pkts)
    assert [a.match.packet for a in alerts] == list(range(2, 41, 2))
    assert m.stats.prefilter_hits < 40 * 8  # the per-payload fallback reported one hit each


def test_anchored_short_literal_is_checked_before_evaluation() -> None:
    m = matcher_for(
        'rule "bootp" { id 8 match udp to any port 67 where pkt_data { contains |01| depth 1 } }'
    )
    assert m.ruleset.rules[0].fast_pattern is None
    assert m.ruleset.rules[0].anchors == ((0, 1, b"\x01", False),)
    pkts = [
        IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=68, dport=67) / b"\x01abc",
        IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=68, dport=67) / b"\x02\x01bc",
    ]
    assert [a.match.packet for a in run_packets(m, pkts)] == [1]
    assert m.stats.evaluations == 1


def test_midstream_flows_are_established_only_when_allowed() -> None:
    text = rule('where pkt_data contains "hello"', 1, "match tcp established")
    pkts = [data(b"x"), data(b"y", to_server=False, seq=501), data(b"hello", seq=102)]
    assert sids(run_packets(matcher_for(text), pkts)) == [1]
    assert sids(run_packets(matcher_for(text, midstream=False), pkts)) == []


def test_later_fragments_only_meet_ip_rules() -> None:
    text = rule("where icmp.type == 0", 1, "match icmp") + rule(
        'where pkt_data contains "frag"', 2, "match ip"
    )
    m = matcher_for(text)
    whole = IP(src="1.1.1.1", dst="2.2.2.2", id=7) / ICMP(type=8) / (b"frag" * 20)
    first, second = bytes(whole)[: 20 + 48], bytes(whole)[20 + 48 :]
    f1 = IP(src="1.1.1.1", dst="2.2.2.2", id=7, flags="MF", proto=1) / first[20:]
    f2 = IP(src="1.1.1.1", dst="2.2.2.2", id=7, frag=6, proto=1) / second
    alerts = run_packets(m, [f1, f2])
    assert (1, 2) not in [(a.match.rule_id, a.match.packet) for a in alerts]


def test_address_list_rules_are_found_through_the_address_index() -> None:
    text = rule("", 1, "match ip from [192.0.2.7, 198.51.100.0/24] to any")
    text += rule("", 2, "match ip between 203.0.113.9 and any")
    text += rule("", 3, "match udp to [192.0.2.0/30]")
    m = matcher_for(text)
    assert m.ruleset.address_index.size == 3 and not m.ruleset.slow_rules
    pkts = [
        IP(src="192.0.2.7", dst="10.0.0.1") / UDP(sport=1, dport=2),  # 1
        IP(src="10.0.0.1", dst="192.0.2.2") / UDP(sport=1, dport=2),  # 3
        IP(src="10.0.0.1", dst="203.0.113.9") / TCP(sport=1, dport=2),  # 2, reverse way
        IP(src="198.51.100.200", dst="192.0.2.1") / UDP(sport=1, dport=2),  # 1 and 3
        IP(src="198.51.101.1", dst="10.0.0.1") / UDP(sport=1, dport=2),  # none
    ]
    got = sorted((a.match.packet, a.match.rule_id) for a in run_packets(m, pkts))
    assert got == [(1, 1), (2, 3), (3, 2), (4, 1), (4, 3)]


def test_http_rule_reads_a_whole_transaction_across_packets() -> None:
    from engine.inspect import Inspector

    text = (
        'rule "post with cookie" { id 21 match http '
        'where http.method contains "POST" and http.cookie contains "dummy" }'
    )
    m = matcher_for(text, inspector=Inspector())
    request = [
        data(b"POST / HTTP/1.1\r\n"),
        data(b"Host: x\r\nCookie: dummy\r\n\r\n", seq=118),
        data(b"POST / HTTP/1.1\r\nHost: x\r\nCookie: other\r\n\r\n", seq=144),
    ]
    alerts = run_packets(m, [*handshake(), *request])
    assert [(a.match.rule_id, a.match.packet, a.match.app_proto) for a in alerts] == [
        (21, 5, "http")
    ]


def test_eve_record_of_an_icmp_alert() -> None:
    from engine.eve import alert_record

    m = matcher_for('rule "ping" { id 30 match icmp where icmp.type == 8 }')
    ping = IP(src="10.1.1.1", dst="10.1.1.2") / ICMP(type=8, code=0)
    rec = alert_record(run_packets(m, [ping])[0])
    assert rec["proto"] == "ICMP" and (rec["icmp_type"], rec["icmp_code"]) == (8, 0)
    assert "src_port" not in rec and rec["pcap_cnt"] == 1
    assert rec["packet_info"] == {"linktype": 1, "linktype_name": "EN10MB"}


def test_eve_record_logs_the_packet_and_its_vlan() -> None:
    import base64

    from scapy.layers.l2 import Dot1Q, Ether

    from engine.eve import alert_record

    m = matcher_for('rule "ping" { id 31 match icmp where icmp.type == 8 }')
    frame = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / Dot1Q(vlan=23)
        / IP(src="10.1.1.1", dst="10.1.1.2")
        / ICMP(type=8)
    )
    rec = alert_record(run_packets(m, [frame])[0])
    assert rec["vlan"] == [23]
    assert base64.b64decode(rec["packet"]) == bytes(frame)
    plain = alert_record(run_packets(m, [IP(src="10.1.1.1", dst="10.1.1.2") / ICMP(type=8)])[0])
    assert "vlan" not in plain


def test_alert_on_ipv6_packet_carries_the_addresses() -> None:
    from scapy.layers.inet6 import IPv6

    m = matcher_for(rule("where ip.ttl == 64", header="match ip"))
    pkt = IPv6(src="2001:db8::1", dst="fe80::2", hlim=64) / UDP(sport=1, dport=2)
    (alert,) = run_packets(m, [pkt])
    assert (alert.src_ip, alert.dst_ip) == ("2001:db8::1", "fe80::2")


def test_dns_opcode_is_read_from_dns_messages_only() -> None:
    from scapy.layers.dns import DNS, DNSQR

    from engine.inspect import Inspector

    text = rule("where dns.opcode == 4", 1, "match udp") + rule(
        "where dns.opcode != 0", 2, "match udp"
    )
    query = DNS(id=1, opcode=4, qd=DNSQR(qname="example.com"))
    notify = IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5353, dport=53) / query
    plain = (
        IP(src="1.1.1.1", dst="2.2.2.2")
        / UDP(sport=5353, dport=53)
        / DNS(id=2, qd=DNSQR(qname="a.b"))
    )
    other = IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5000, dport=5001) / bytes(query)
    assert sids(run_packets(matcher_for(text, inspector=Inspector()), [notify])) == [1, 2]
    assert sids(run_packets(matcher_for(text, inspector=Inspector()), [plain])) == []
    assert sids(run_packets(matcher_for(text, inspector=Inspector()), [other])) == []


def test_detection_filter_by_flow_counts_each_flow_apart() -> None:
    def pkt(sport: int) -> IP:
        return IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=sport, dport=53) / b"QQQ"

    m = matcher_for(
        'rule "x" { id 1 match udp where pkt_data contains "QQQ" detection_filter 1 per 60s by flow }'
    )
    pkts = [pkt(5), pkt(6), pkt(5), pkt(6), pkt(5)]
    assert [a.match.packet for a in run_packets(m, pkts)] == [3, 4, 5]


def test_header_buffers_read_the_packet_headers() -> None:
    text = (
        rule("where tcp.hdr { contains |00 50| offset 2 depth 2 }", 1)
        + rule("where ipv4.hdr { contains |40| offset 8 depth 1 }", 2, "match ip")
        + rule("where udp.hdr { contains |00 35| offset 2 depth 2 }", 3, "match ip")
        + rule("where tcp.hdr { contains |00 35| }", 4, "match ip")
    )
    tcp = IP(src="1.1.1.1", dst="2.2.2.2", ttl=64) / TCP(sport=1, dport=80, flags="S")
    udp = IP(src="1.1.1.1", dst="2.2.2.2", ttl=9) / UDP(sport=1, dport=53) / b"\x00\x50"
    assert sorted(sids(run_packets(matcher_for(text), [tcp]))) == [1, 2]
    assert sids(run_packets(matcher_for(text), [udp])) == [3]


def test_backoff_threshold_alerts_at_count_times_powers_of_the_multiplier() -> None:
    pkts = [IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5, dport=53) / b"QQQ" for _ in range(30)]

    def alerted(threshold: str) -> list[int | None]:
        m = matcher_for(f'rule "x" {{ id 1 match udp where dsize > 0 {threshold} }}')
        return [a.match.packet for a in run_packets(m, pkts)]

    assert alerted("threshold backoff 1 multiplier 2 by flow") == [1, 2, 4, 8, 16]
    assert alerted("threshold backoff 5 multiplier 5 by flow") == [5, 25]
    other = IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=6, dport=53) / b"QQQ"
    m = matcher_for('rule "x" { id 1 match udp threshold backoff 2 multiplier 2 by flow }')
    # each flow counts on its own
    assert [a.match.packet for a in run_packets(m, [pkts[0], other, pkts[0], other])] == [3, 4]


def test_detection_filter_counting_distinct_source_ports() -> None:
    def syn(sport: int) -> IP:
        return IP(src="10.0.0.1", dst="2.2.2.2") / TCP(sport=sport, dport=80, flags="S")

    m = matcher_for('rule "x" { id 1 match tcp detection_filter 1 per 60s by src unique src.port }')
    got = run_packets(m, [syn(2000), syn(2000), syn(2001), syn(2000), syn(2002)])
    assert [a.match.packet for a in got] == [3, 4, 5]


def test_stream_size_counts_each_side_from_its_initial_sequence_number() -> None:
    rules = "".join(
        rule(f"where {test}", rid, "match tcp")
        for rid, test in (
            (1, "stream.size.client == 11"),  # SYN + 10 bytes
            (2, "stream.size.server > 1"),  # after the server's data
            (3, "stream.size.both >= 11"),
            (4, "stream.size.either == 1"),  # a side that sent its SYN and nothing more
        )
    )
    packets = [
        *handshake(),
        data(b"0123456789"),
        data(b"x" * 20, to_server=False, seq=501),
    ]
    got = sorted(
        (a.match.rule_id, a.match.packet) for a in run_packets(matcher_for(rules), packets)
    )
    assert got == [(1, 4), (1, 5), (2, 5), (3, 5), (4, 1), (4, 2), (4, 3), (4, 4)]


def test_stream_size_of_a_flow_picked_up_midstream() -> None:
    m = matcher_for(rule("where stream.size.client == 6", 1, "match tcp"))
    # no SYN seen: the side starts one byte before its first sequence number
    assert [a.match.packet for a in run_packets(m, [data(b"abcde", seq=900)])] == [1]


def test_with_replies_header_matches_the_server_to_client_packets_too() -> None:
    def text(rid: int, replies: str) -> str:
        header = f"match tcp from 10.0.0.1 to 10.0.0.2 port 80 {replies}"
        return rule('where pkt_data contains "XYZW"', rid, header)

    packets = [*handshake(), data(b"XYZW request"), data(b"XYZW reply", to_server=False, seq=501)]
    m = matcher_for(text(1, "with_replies") + text(2, ""))
    got = sorted((a.match.rule_id, a.match.packet) for a in run_packets(m, packets))
    assert got == [(1, 4), (1, 5), (2, 4)]
    # the header's client must still be the packet's client: swapped ends do not match
    swapped = rule(
        'where pkt_data contains "XYZW"', 3, "match tcp from 10.0.0.2 to 10.0.0.1 with_replies"
    )
    assert sids(run_packets(matcher_for(swapped), packets)) == []


def test_flowint_counts_per_flow() -> None:
    text = (
        'rule "count" { id 1 match udp where dsize > 0 flowint n + 1 flowbits noalert }'
        'rule "third" { id 2 match udp where flowint n == 3 }'
        'rule "first" { id 3 match udp where flowint seen notset flowint seen = 1 }'
    )
    a = IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5, dport=53) / b"Q"
    b = IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=6, dport=53) / b"Q"
    got = [
        (x.match.rule_id, x.match.packet) for x in run_packets(matcher_for(text), [a, b, a, a, a])
    ]
    assert got == [(3, 1), (3, 2), (2, 4)]


class _Recording:
    """An inspector that hands everything to an `Inspector` and keeps the arguments of
    every packet handed to it, and the flows the matcher ended."""

    def __init__(self) -> None:
        self.inner = Inspector()
        self.calls: list[tuple[Any, ...]] = []
        self.ended: list[int] = []

    def packet(self, *args: Any) -> Any:
        self.calls.append(args)
        return self.inner.packet(*args)

    def end_flow(self, flow: int) -> None:
        self.ended.append(flow)
        self.inner.end_flow(flow)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_udp_the_inspector_does_not_parse_only_ends_what_a_slot_held() -> None:
    from scapy.layers.dns import DNS, DNSQR

    text = (
        'rule "payload" { id 1 match udp where pkt_data contains "PING" }\n'
        'rule "query" { id 2 match dns where dns.query contains "example" }\n'
    )
    recording = _Recording()
    m = matcher_for(text, inspector=recording)
    game = [IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5000, dport=27015) / b"PING"] * 4
    query = IP(src="10.0.0.1", dst="10.0.0.3") / UDP(sport=5001, dport=53)
    query = query / DNS(rd=1, qd=DNSQR(qname="www.example.com"))
    alerts = run_packets(m, [*game, query, query], batch_size=3)
    # every packet is still matched; of the game flow the inspector only heard, when
    # it appeared, that what its slot held is gone
    assert sids(alerts) == [1, 1, 1, 1, 2, 2]
    assert [
        dport if to_server else sport for _, _, to_server, _, sport, dport, *_ in recording.calls
    ] == [53, 53]
    game_slot = 0  # the flow table's first flow
    assert recording.ended == [game_slot]


@pytest.mark.parametrize(
    ("test", "payload", "alerts"),
    [
        ("byte_test(bytes 2, offset 1, > 255)", b"x\x01\x00", True),
        ("byte_test(bytes 2, offset 1, > 256)", b"x\x01\x00", False),
        ("byte_test(bytes 2, offset 0, == 1, endian little)", b"\x01\x00", True),
        ("byte_test(bytes 3, offset 0, == 0x010203)", b"\x01\x02\x03", True),
        ("byte_test(bytes 1, offset 0, !& 0x80)", b"\x81", False),
        ("byte_test(bytes 1, offset 0, !& 0x80)", b"\x01", True),
        ("byte_test(bytes 4, offset 0, > 0)", b"\x01", False),  # not that many bytes
        ("byte_test(bytes 2, offset 0, == 3, bitmask 0x0ff0)", b"\x00\x30", True),
        ("byte_test(bytes 2, offset 0, == 3, bitmask 0x0ff0)", b"\x00\x31", True),
        ("byte_test(bytes 2, offset 0, == 3, bitmask 0x0ff0)", b"\x00\x40", False),
    ],
)
def test_byte_tests_at_a_fixed_offset_are_decided_before_evaluation(
    test: str, payload: bytes, alerts: bool
) -> None:
    m = matcher_for(f'rule "b" {{ id 1 match udp where pkt_data {test} }}')
    assert m.ruleset.rules[0].byte_tests
    got = run_packets(m, [IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=9, dport=9) / payload])
    assert bool(got) is alerts
    # a payload the byte_test fails never reaches the evaluator
    assert m.stats.evaluations == int(alerts)


def test_bare_fins_and_resets_of_flows_without_data_only_end_what_a_slot_held() -> None:
    recording = _Recording()
    m = matcher_for(
        'rule "close" { id 1 match tcp where tcp.flags has_any F }\n'
        'rule "body" { id 2 match http where http.response_body contains "tail" }',
        inspector=recording,
    )
    c, s = "10.0.0.1", "10.0.0.2"
    refused = [IP(src=c, dst=s) / TCP(sport=4000, dport=81, flags="FA", seq=1, ack=1)] * 3
    # a response whose body runs to the close: its FIN still reaches the inspector
    response = b"HTTP/1.0 200 OK\r\n\r\nbody to the tail"
    web = [
        *handshake(),
        data(b"GET / HTTP/1.0\r\n\r\n"),
        IP(src=s, dst=c) / TCP(sport=80, dport=40000, flags="PA", seq=501, ack=119) / response,
        IP(src=s, dst=c) / TCP(sport=80, dport=40000, flags="FA", seq=501 + len(response)),
    ]
    alerts = run_packets(m, [*refused, *web], batch_size=4)
    assert sids(alerts).count(1) == 4 and 2 in sids(alerts)
    flags = [call[6] for call in recording.calls]
    assert flags.count(0x11) == 1  # the web flow's FIN
    # the refused flow's first FIN only ended what its slot held
    refused_slot = 0  # the flow table's first flow
    assert recording.ended == [refused_slot]


def test_byte_tests_beyond_32_bits_are_left_to_the_evaluator() -> None:
    m = matcher_for(
        'rule "b" { id 1 match udp where pkt_data byte_test(bytes 4, offset 0, < 0x1FFFFFFFF) }'
    )
    assert not m.ruleset.rules[0].byte_tests
    pkt = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=9, dport=9) / b"\xff\xff\xff\xff"
    assert sids(run_packets(m, [pkt])) == [1]
