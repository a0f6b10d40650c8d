"""Buffers the inspector holds back at a flow's end are matched: at the end of the
input (`Matcher.finish`) and when a new flow takes over the flow's table slot."""

from __future__ import annotations

import dataclasses

import numpy as np
from scapy.packet import Packet

from dpdk_io.batch import PacketBatch
from engine.decode import decode
from engine.eve import alert_record
from engine.flows import FlowTable
from engine.inspect import Inspector
from engine.match import Alert, Matcher
from tests.engine.match.traffic import NS, data, eth, handshake, matcher_for, run_packets

RULES = (
    'rule "body" { id 1 match http to_client where file_data contains "SECRET" }\n'
    'rule "raw" { id 2 match tcp where pkt_data contains "SECRET" }\n'
)
BODY = b"a" * 100 + b"SECRET" + b"b" * 100


def cut_short(cp: int = 40000) -> list[Packet]:
    """A response announcing 5000 body bytes whose connection stops after 206."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"
    return [
        *handshake(cp=cp),
        data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", cp=cp),
        data(head + BODY, to_server=False, seq=501, cp=cp),
    ]


def test_finish_matches_the_body_held_back_at_the_end_of_input() -> None:
    m = matcher_for(RULES, inspector=Inspector())
    during = run_packets(m, cut_short())
    assert [(a.match.rule_id, a.match.packet) for a in during] == [(2, 5)]
    flushed = m.finish()
    assert [a.match.rule_id for a in flushed] == [1]
    alert = flushed[0]
    # reported on the response's direction, without a packet number
    assert alert.match.packet is None and not alert.to_server
    assert (alert.src_port, alert.dst_port) == (80, 40000)
    assert "pcap_cnt" not in alert_record(alert)
    assert m.finish() == []  # flows are forgotten once flushed


def _feed(m: Matcher, packets: list[Packet], slot_of_new: int | None) -> list[Alert]:
    """Run `packets` through the matcher, all in flow slot 0 (a second connection,
    starting at packet index `slot_of_new`, taking over the slot of the first)."""
    frames = [bytes(eth(p)) for p in packets]
    batch = PacketBatch.from_packets(frames, [(1 + i) * NS for i in range(len(frames))], 1)
    decoded = decode(batch)
    events = FlowTable().update(decoded)
    row_new = np.zeros(len(frames), dtype=np.int8)
    row_new[0] = 1
    if slot_of_new is not None:
        row_new[slot_of_new] = 1
    events = dataclasses.replace(
        events, row_flow=np.zeros(len(frames), dtype=np.int64), row_new=row_new
    )
    return m.scan(batch, decoded, events)


def test_a_reused_slot_flushes_the_flow_that_held_it() -> None:
    m = matcher_for(RULES, inspector=Inspector())
    first, second = cut_short(), cut_short(cp=40001)
    got = _feed(m, [*first, *second], slot_of_new=len(first))
    # the first flow's held-back body is matched when the second flow, in its slot,
    # is first inspected; each flow's response carries the literal once
    assert sorted((a.match.rule_id, a.match.packet) for a in got) == [
        (1, None),
        (2, 5),
        (2, 10),
    ]
    assert [a.match.rule_id for a in m.finish()] == [1]  # the second flow's body
    m = matcher_for(RULES, inspector=Inspector())
    assert [a.match.rule_id for a in _feed(m, cut_short(), slot_of_new=None)] == [2]
    assert [a.match.rule_id for a in m.finish()] == [1]
