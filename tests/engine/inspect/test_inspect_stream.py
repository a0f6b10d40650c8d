"""TCP reassembly: in order, out of order, retransmissions, overlaps under the BSD policy, gaps,
depth and memcap."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inspect_helpers import Conversation

from engine.inspect import InspectConfig, Inspector

SYN, ACK, PSH = 0x02, 0x10, 0x08
ISN = 7000


def client(insp: Inspector, offset: int, data: bytes, flow: int = 1):
    """A client segment whose first byte is `offset` bytes after the SYN's sequence + 1."""
    return insp.packet(flow, False, True, 6, 40000, 9999, ACK | PSH, ISN + 1 + offset, data, 0)


def opened(flow: int = 1, config: InspectConfig | None = None) -> Inspector:
    insp = Inspector(config)
    insp.packet(flow, True, True, 6, 40000, 9999, SYN, ISN, b"", 0)
    return insp


def test_in_order_segments_build_the_stream() -> None:
    insp = opened()
    a = client(insp, 0, b"hello ")
    assert a.stream == b"hello " and a.stream_new == 6 and a.stream_offset == 0
    b = client(insp, 6, b"world")
    assert b.stream == b"hello world" and b.stream_new == 5
    assert b.stream[-b.stream_new :] == b"world"
    assert insp.stats().stream_bytes == 11 and insp.stats().segments == 2


def test_non_tcp_has_no_stream() -> None:
    ctx = Inspector().packet(5, True, True, 17, 1000, 2000, 0, 0, b"payload", 0)
    assert ctx.stream is None and ctx.app_proto is None and ctx.buffers == {}


def test_out_of_order_segment_waits_for_the_hole() -> None:
    insp = opened()
    late = client(insp, 5, b"world")
    assert late.stream is None and late.stream_new == 0
    fill = client(insp, 0, b"hello")
    assert fill.stream == b"helloworld" and fill.stream_new == 10
    assert insp.stats().out_of_order == 1


def test_retransmission_is_ignored() -> None:
    insp = opened()
    client(insp, 0, b"abcdef")
    again = client(insp, 0, b"abcdef")
    assert again.stream == b"abcdef" and again.stream_new == 0
    partial = client(insp, 3, b"defghi")  # half old, half new
    assert partial.stream == b"abcdefghi" and partial.stream_new == 3
    st = insp.stats()
    assert st.retransmissions == 2 and st.overlaps == 0


def test_delivered_bytes_are_final() -> None:
    insp = opened()
    client(insp, 0, b"abcdef")
    changed = client(insp, 2, b"XY")
    assert changed.stream == b"abcdef"
    assert insp.stats().overlaps == 1


def _queued_then(first: tuple[int, bytes], second: tuple[int, bytes]) -> bytes:
    """Queue `first` and `second` beyond a 5-byte hole, fill the hole, return the stream."""
    insp = opened()
    client(insp, *first)
    client(insp, *second)
    ctx = client(insp, 0, b"_____")
    assert ctx.stream is not None
    return ctx.stream


def test_bsd_new_segment_starting_before_a_queued_one_wins() -> None:
    # queued [12,20) A; new [11,17) B starts before it: B replaces A's first 5 bytes
    insp = opened()
    client(insp, 5, b"-----")  # [5,10)
    client(insp, 12, b"A" * 8)  # [12,20)
    client(insp, 11, b"B" * 6)  # [11,17) starts before the queued [12,20)
    client(insp, 10, b"=")  # [10,11)
    ctx = client(insp, 0, b"_____")
    assert ctx.stream == b"_____-----=" + b"B" * 6 + b"A" * 3
    assert insp.stats().overlaps == 1


def test_bsd_new_segment_starting_inside_a_queued_one_yields() -> None:
    # queued [10,20) A; new [15,25) B starts inside it: A keeps [15,20), B adds [20,25)
    stream = _queued_then((5, b"-" * 5 + b"A" * 10), (15, b"B" * 10))
    assert stream == b"_____" + b"-" * 5 + b"A" * 10 + b"B" * 5


def test_bsd_same_start_keeps_the_queued_bytes() -> None:
    # queued [10,20) A; new [10,25) B with the same start: A stays, B adds [20,25)
    insp = opened()
    client(insp, 10, b"A" * 10)
    client(insp, 10, b"B" * 15)
    client(insp, 5, b"-----")
    ctx = client(insp, 0, b"_____")
    assert ctx.stream == b"_____-----" + b"A" * 10 + b"B" * 5


def test_bsd_new_segment_covering_a_queued_one_replaces_it() -> None:
    # queued [12,15) A; new [10,20) B covers it entirely and starts before it
    insp = opened()
    client(insp, 12, b"AAA")
    client(insp, 10, b"B" * 10)
    client(insp, 5, b"-----")
    ctx = client(insp, 0, b"_____")
    assert ctx.stream == b"_____-----" + b"B" * 10
    assert insp.stats().overlaps == 1


def test_in_order_segment_overrides_queued_bytes_it_covers() -> None:
    insp = opened()
    client(insp, 3, b"QQQ")  # queued [3,6)
    ctx = client(insp, 0, b"abcdefgh")  # in order [0,8): starts before the queued segment
    assert ctx.stream == b"abcdefgh" and ctx.stream_new == 8


def test_gap_is_skipped_after_the_queue_bound() -> None:
    cfg = InspectConfig(max_queued_segments=4)
    insp = opened(config=cfg)
    client(insp, 0, b"start")
    # byte 5..9 never arrive; five non-adjacent segments queue up behind the hole
    for k in range(4):
        assert client(insp, 10 + 10 * k, b"x" * 5).stream == b"start"
    ctx = client(insp, 50, b"y" * 5)
    st = insp.stats()
    assert st.gaps == 1
    # delivery resumed at the first queued segment; the stream restarts after the hole
    assert ctx.stream == b"xxxxx" and ctx.stream_offset == 10
    after = client(insp, 15, b"z" * 5)
    assert after.stream == b"xxxxxzzzzzxxxxx"


def test_stream_window_keeps_the_latest_bytes() -> None:
    insp = opened(config=InspectConfig(stream_window=8))
    client(insp, 0, b"abcdef")
    ctx = client(insp, 6, b"ghij")
    assert ctx.stream == b"cdefghij" and ctx.stream_offset == 2 and ctx.stream_new == 4


def test_stream_depth_bounds_reassembly() -> None:
    insp = opened(config=InspectConfig(stream_depth=10))
    a = client(insp, 0, b"0123456")
    b = client(insp, 7, b"789abc")  # crosses the depth: cut at 10 bytes
    c = client(insp, 13, b"more")
    assert a.stream == b"0123456"
    assert b.stream == b"0123456789" and b.stream_new == 3
    assert c.stream is None
    st = insp.stats()
    # past the depth the flow buffers nothing; only its fixed state cost is counted
    assert st.stream_bytes == 10 and st.depth_reached == 1 and st.held_bytes < 1000
    insp.end_flow(1)
    assert insp.stats().held_bytes == 0


def test_memcap_forgets_idle_flows_when_buffers_are_not_enough() -> None:
    insp = Inspector(InspectConfig(memcap=50_000))
    for flow in range(1000):  # many flows holding a byte each: their state cost adds up
        insp.packet(flow, True, True, 6, 1, 9, ACK, 5, b"z", 0)
    st = insp.stats()
    assert st.held_bytes <= 50_000 and st.flows < 1000 and st.memcap_prunes > 0
    # the most recent flows are the ones kept
    assert insp.flows()[-1] == 999 and 0 not in insp.flows()


def test_memcap_releases_the_oldest_flows_first() -> None:
    cfg = InspectConfig(memcap=10_000, stream_window=4096, stream_context=4096)
    insp = Inspector(cfg)
    for flow in range(10):
        insp.packet(flow, True, True, 6, 40000, 9999, SYN, ISN, b"", 0)
        client(insp, 0, bytes([65 + flow]) * 3000, flow=flow)
        assert insp.stats().held_bytes <= cfg.memcap
    st = insp.stats()
    assert st.memcap_prunes >= 6
    # the newest flow kept its bytes; the oldest gave them up
    newest = client(insp, 3000, b"!", flow=9)
    oldest = client(insp, 3000, b"!", flow=0)
    assert newest.stream is not None and len(newest.stream) == 3001
    assert oldest.stream == b"!"


def test_stream_holds_the_new_bytes_and_at_most_the_context_before_them() -> None:
    insp = opened(config=InspectConfig(stream_context=10))
    client(insp, 0, b"a" * 100)
    ctx = client(insp, 100, b"0123456789abcdefghij")
    assert ctx.stream == b"a" * 10 + b"0123456789abcdefghij" and ctx.stream_new == 20
    assert ctx.stream_offset == 90  # where the bytes handed over start in the direction


def test_sequence_wraparound() -> None:
    insp = Inspector()
    isn = 0xFFFFFFF0
    insp.packet(1, True, True, 6, 1, 2, SYN, isn, b"", 0)
    a = insp.packet(1, False, True, 6, 1, 2, ACK, isn + 1, b"x" * 20, 0)
    b = insp.packet(1, False, True, 6, 1, 2, ACK, (isn + 21) & 0xFFFFFFFF, b"after", 0)
    assert a.stream == b"x" * 20
    assert b.stream == b"x" * 20 + b"after"


def test_new_flow_in_a_reused_slot_starts_afresh() -> None:
    insp = opened()
    client(insp, 0, b"old flow data")
    insp.packet(1, True, True, 6, 40000, 9999, SYN, 123, b"", 0)
    ctx = insp.packet(1, False, True, 6, 40000, 9999, ACK, 124, b"new", 0)
    assert ctx.stream == b"new"
    insp.end_flow(1)
    assert insp.stats().flows == 0 and insp.stats().held_bytes == 0


def test_scapy_conversation_split_and_reordered() -> None:
    conv = Conversation().handshake()
    conv.send(True, b"GET /a", at=0).advance(True, 6)
    conv.send(True, b"c HTTP/1.1\r\n", at=1)  # out of order: byte 7 onwards
    conv.send(True, b"b", at=0).advance(True, 13)
    conv.send(True, b"Host: x\r\n\r\n")
    rows = conv.run()
    streams = [r.context.stream for r in rows]
    assert streams[-1] == b"GET /abc HTTP/1.1\r\nHost: x\r\n\r\n"
    uris = [
        (k, r.context.buffers["http.uri"])
        for k, r in enumerate(rows)
        if "http.uri" in r.context.buffers
    ]
    assert uris == [(len(rows) - 2, b"/abc")]  # the line ends once the hole is filled


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=300),
    bounds=st.lists(st.integers(1, 299), max_size=12),
    extra=st.lists(st.tuples(st.integers(0, 299), st.integers(1, 80)), max_size=20),
    isn=st.integers(0, 0xFFFFFFFF),
    rnd=st.randoms(use_true_random=False),
)
def test_any_order_of_true_segments_rebuilds_the_stream(
    data: bytes,
    bounds: list[int],
    extra: list[tuple[int, int]],
    isn: int,
    rnd: random.Random,
) -> None:
    """A byte stream cut into pieces that cover it, plus overlapping and duplicate
    pieces of it, sent in any order, rebuilds exactly that stream."""
    insp = Inspector(InspectConfig(max_queued_segments=1000, max_queued_bytes=1 << 20))
    insp.packet(1, True, True, 6, 1, 2, SYN, isn, b"", 0)
    cuts = sorted({0, len(data), *(b for b in bounds if b < len(data))})
    segments = [(a, data[a:b]) for a, b in itertools.pairwise(cuts)]
    segments += [(a, data[a : a + n]) for a, n in extra if a < len(data)]
    rnd.shuffle(segments)
    streams = []
    for off, seg in segments:
        ctx = insp.packet(1, False, True, 6, 1, 2, ACK, (isn + 1 + off) & 0xFFFFFFFF, seg, 0)
        streams.append(ctx.stream)
    assert max((s for s in streams if s is not None), key=len) == data
    st_ = insp.stats()
    assert st_.overlaps == 0 and st_.gaps == 0 and st_.stream_bytes == len(data)


def test_config_refuses_bad_limits() -> None:
    with pytest.raises(ValueError, match="stream_depth"):
        InspectConfig(stream_depth=-1)
    with pytest.raises(ValueError, match="stream_window"):
        InspectConfig(stream_window=0)
    assert InspectConfig(decompress=False).decompress is False
