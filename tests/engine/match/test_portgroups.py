"""Port groups: each payload is scanned with the fast patterns its protocol and ports can reach."""

from __future__ import annotations

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP

from dpdk_io.batch import PacketBatch
from engine.decode import decode
from engine.match.compiler import _escape
from engine.match.literals import LiteralScanError, compile_literals
from engine.match.matcher import _buffer_hits
from engine.match.portgroups import build_port_groups, port_classes
from tests.engine.match.traffic import data, eth, handshake, matcher_for, run_packets, sids


def _ports(*spans: tuple[int, int]) -> np.ndarray:
    bits = np.zeros(65536, dtype=bool)
    for lo, hi in spans:
        bits[lo : hi + 1] = True
    return bits


# port sets as rules name them: any, one port, a list, a range, a negation
PORT_SETS = np.array(
    [
        _ports((0, 65535)),
        _ports((80, 80)),
        _ports((80, 80), (8080, 8080), (443, 443)),
        _ports((1024, 65535)),
        ~_ports((21, 23)),
        _ports((53, 53)),
        _ports((6000, 6010)),
    ]
)
PROTOCOLS = [frozenset({6}), frozenset({17}), frozenset({1, 58}), frozenset(range(256))]


def _admits(header: tuple[frozenset[int], int, int, bool], proto: int, sp: int, dp: int) -> bool:
    """The matcher's header test, on protocol and ports alone (`header_kernel`)."""
    protocols, src, dst, both = header
    if proto not in protocols:
        return False
    forward = PORT_SETS[src, sp] and PORT_SETS[dst, dp]
    backward = PORT_SETS[src, dp] and PORT_SETS[dst, sp]
    return bool(forward or (both and backward))


def test_every_pattern_a_packets_header_admits_is_in_its_databases() -> None:
    rng = np.random.default_rng(7)
    n_sets = PORT_SETS.shape[0]
    patterns = [
        [
            (
                PROTOCOLS[rng.integers(len(PROTOCOLS))],
                int(rng.integers(n_sets)),
                int(rng.integers(n_sets)),
                bool(rng.integers(2)),
            )
            for _ in range(rng.integers(1, 3))
        ]
        for _ in range(120)
    ]
    patterns[7] = []  # a pattern left out of the databases (a run of one byte)
    groups = build_port_groups(patterns, PORT_SETS)
    special = [0, 21, 22, 23, 24, 53, 80, 443, 1023, 1024, 6000, 6005, 6011, 8080, 65535]
    proto = rng.choice(np.array([6, 17, 1, 58, 132]), 4000)
    sport = np.where(
        rng.random(4000) < 0.5, rng.choice(special, 4000), rng.integers(0, 65536, 4000)
    )
    dport = np.where(
        rng.random(4000) < 0.5, rng.choice(special, 4000), rng.integers(0, 65536, 4000)
    )
    first, second = groups.route(proto, sport, dport)
    narrower = 0
    for i in range(proto.shape[0]):
        scanned: set[int] = set()
        for db in (int(first[i]), int(second[i])):
            if db >= 0:
                scanned |= set(groups.members[db].tolist())
        wanted = {
            pid
            for pid, headers in enumerate(patterns)
            if any(_admits(h, int(proto[i]), int(sport[i]), int(dport[i])) for h in headers)
        }
        assert wanted <= scanned, (int(proto[i]), int(sport[i]), int(dport[i]), wanted - scanned)
        assert 7 not in scanned
        narrower += len(scanned) < len(patterns) - 1
    assert narrower > proto.shape[0] // 2  # the groups leave patterns out, not just in


def test_ports_share_a_class_when_every_set_names_both_or_neither() -> None:
    classes, rep = port_classes(PORT_SETS, [1, 3, 5])  # 80, 1024-65535, 53
    assert classes[80] != classes[53] != classes[1024]
    assert classes[1024] == classes[65535] and classes[0] == classes[1023] == classes[81]
    assert classes[0] != classes[80]
    assert len(rep) == len(set(classes.tolist())) == 4
    assert all(classes[p] == c for c, p in enumerate(rep.tolist()))


def test_a_destination_group_scans_the_source_group_second_without_the_generic_patterns() -> None:
    # pattern 0: to port 80; pattern 1: from ports 1024 and up; pattern 2: any to any
    patterns = [
        [(frozenset({6}), 0, 1, False)],
        [(frozenset({6}), 3, 0, False)],
        [(frozenset({6}), 0, 0, False)],
    ]
    groups = build_port_groups(patterns, PORT_SETS)
    first, second = groups.route(
        np.array([6, 6, 6, 17]), np.array([40000, 80, 53, 40000]), np.array([80, 40000, 53, 80])
    )
    members = [set(m.tolist()) for m in groups.members]
    # client to server: the destination group with the generic patterns, then the
    # source group's own (small sets share a database: the third may come along)
    assert {0, 2} <= members[first[0]] and 1 in members[second[0]]
    assert 2 not in members[second[0]]
    assert {1, 2} <= members[first[1]] and second[1] == -1  # server to client: source group
    assert 2 in members[first[2]] and second[2] == -1  # neither: the generic group
    assert first[3] == -1 and second[3] == -1  # UDP: no pattern at all


RULES = "".join(
    f'rule "r{rid}" {{ id {rid} {header} where pkt_data contains "{word}" }}\n'
    for rid, header, word in [
        (1, "match tcp to any port 80", "alpha"),
        (2, "match tcp from any port 80 to any", "alpha"),
        (3, "match tcp", "gamma"),
        (4, "match tcp between any port 8080 and any", "delta"),
        (5, "match udp to any port 53", "alpha"),
        (6, "match tcp from any port 40000 to any", "alpha"),
    ]
)


@pytest.mark.parametrize(
    ("to_server", "sp", "expected"),
    [
        (True, 80, [1, 3, 6]),  # to port 80 from port 40000: both groups, "alpha" once each rule
        (False, 80, [2, 3]),  # from port 80
        (True, 8080, [3, 4, 6]),
        (False, 8080, [3, 4]),  # `between`: the other way round too
        (True, 25, [3, 6]),
    ],
)
def test_rules_alert_through_the_databases_their_ports_pick(
    to_server: bool, sp: int, expected: list[int]
) -> None:
    m = matcher_for(RULES)
    payload = b"alpha gamma delta"
    seq = 101 if to_server else 501
    pkts = [*handshake(sp=sp), data(payload, to_server=to_server, sp=sp, seq=seq)]
    assert sorted(sids(run_packets(m, pkts))) == expected


def test_a_packet_scanned_twice_gives_each_rule_one_candidate() -> None:
    m = matcher_for(RULES)
    packets = [*handshake(), data(b"alpha alpha gamma"), data(b"alpha", seq=118)]
    frames = [bytes(eth(p)) for p in packets]
    batch = PacketBatch.from_packets(frames, list(range(len(frames))), 1)
    decoded = decode(batch)
    pkt = decoded.rows["pkt"].astype(np.int64)
    pstart = batch.offsets[pkt] + decoded.rows["payload_off"]
    plen = decoded.rows["payload_len"].astype(np.int64)
    db = m.ruleset.databases["pkt_data"]
    assert db.groups is not None
    rows, rules = m._prefilter_payloads(batch.data, pstart, plen, db, decoded.rows)
    # "alpha" (rules 1, 2, 5, 6) is in the destination group of port 80 and the
    # source group of port 40000: both scans of each payload report it
    ids = [m.ruleset.rules[k].rule.id for k in rules.tolist()]
    pairs = sorted(zip(rows.tolist(), ids, strict=True))
    first, second = sorted(set(rows.tolist()))
    assert pairs == [(first, k) for k in (1, 2, 3, 5, 6)] + [(second, k) for k in (1, 2, 5, 6)]


def test_udp_rules_are_not_scanned_on_tcp_packets() -> None:
    m = matcher_for(RULES)
    udp = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=40000, dport=53) / b"alpha"
    tcp = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=53, flags="S") / b"alpha"
    assert sorted(sids(run_packets(m, [udp, tcp]))) == [5, 6]
    assert m.stats.candidates == 2  # "alpha" reached rule 5 on UDP and rule 6 on TCP


def test_a_flood_of_hits_in_a_group_falls_back_on_the_whole_database() -> None:
    words = [b"AAAA", b"BBBB", b"zzzz"]
    whole = compile_literals([_escape(w) for w in words], [0, 1, 2], [False] * 3)
    group = compile_literals([_escape(b"AAAA")], [0], [False], single=False)
    arr = np.frombuffer(b"A" * 4000 + b"xAAAAx", dtype=np.uint8)
    cstart = np.array([0, 4000], dtype=np.int64)
    lens = np.array([4000, 6], dtype=np.int64)
    lengths = np.array([4, 4, 4], dtype=np.int64)
    with pytest.raises(LiteralScanError, match="single-match"):
        _buffer_hits(group, lengths, arr, cstart, lens)
    seg, pid, _ = _buffer_hits(group, lengths, arr, cstart, lens, whole)
    assert sorted(zip(seg.tolist(), pid.tolist(), strict=True)) == [(0, 0), (1, 0)]
