"""Bad input never raises out of the inspector, and what it holds stays within its bounds."""

from __future__ import annotations

import gzip
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.inspect import InspectConfig, Inspector

SYN, ACK, FIN = 0x02, 0x10, 0x01

SEEDS = [
    b"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
    + b"%x\r\n" % 30
    + gzip.compress(b"body" * 10)[:30]
    + b"\r\n0\r\n\r\n",
    b"\x16\x03\x01\x00\x30\x01\x00\x00\x2c\x03\x03"
    + b"\x00" * 32
    + b"\x00\x00\x02\x00\x2f\x01\x00",
    b"\x16\x03\x03\x00\x10\x0b\x00\x00\x0c\x00\x00\x09\x00\x00\x06\x30\x04\x30\x02\x02\x00",
    struct.pack(">H", 29)
    + b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\xc0\x0c\x00\x01\x00\x01",
    b"SSH-2.0-x\r\n",
    # HTTP/2 preface, SETTINGS, then a HEADERS frame (HPACK: GET, /, http, :authority a)
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    + b"\x00\x00\x06\x01\x05\x00\x00\x00\x01\x82\x84\x86\x41\x01a",
    b"EHLO a\r\nMAIL FROM:<x@y>\r\nRCPT TO:<z>\r\nDATA\r\nbody\r\n.\r\nBDAT 5 LAST\r\nabcde",
]


def mutate(seed: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    out = bytearray(seed)
    for pos, value in edits:
        if out:
            out[pos % len(out)] = value
    return bytes(out[: max(1, cut % (len(out) + 1))])


segment = st.tuples(
    st.booleans(),  # to_server
    st.integers(0, 2),  # 0 in order, 1 ahead, 2 behind
    st.binary(max_size=64),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 400),
    port=st.sampled_from([80, 443, 53, 22, 25, 8080]),
    tail=st.lists(segment, max_size=8),
)
def test_mutated_messages_never_raise(
    seed: bytes,
    edits: list[tuple[int, int]],
    cut: int,
    port: int,
    tail: list[tuple[bool, int, bytes]],
) -> None:
    cfg = InspectConfig(memcap=4096, stream_window=512, http_body_section=64, max_queued_segments=3)
    insp = Inspector(cfg)
    seq = {True: 100, False: 9000}
    insp.packet(1, True, True, 6, 40000, port, SYN, 99, b"", 0)
    insp.packet(1, False, False, 6, port, 40000, SYN | ACK, 8999, b"", 0)
    data = mutate(seed, edits, cut)
    insp.packet(1, False, True, 6, 40000, port, ACK, seq[True], data, 0)
    seq[True] += len(data)
    for to_server, where, chunk in tail:
        shift = {0: 0, 1: 50, 2: -20}[where]
        insp.packet(1, False, to_server, 6, 40000, port, ACK, seq[to_server] + shift, chunk, 0)
        if where == 0:
            seq[to_server] += len(chunk)
    insp.packet(1, False, False, 6, port, 40000, FIN | ACK, seq[False], b"", 0)
    insp.flush(1)
    # UDP on DNS ports sees the same bytes
    insp.packet(2, True, True, 17, 5353, 53, 0, 0, data, 0)
    stats = insp.stats()
    assert stats.held_bytes >= 0
    insp.end_flow(1)
    insp.end_flow(2)
    assert insp.stats().held_bytes == 0


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(1, 3000), min_size=5, max_size=40))
def test_memcap_holds_across_many_flows(sizes: list[int]) -> None:
    cfg = InspectConfig(memcap=20_000, stream_window=4096)
    insp = Inspector(cfg)
    for flow, size in enumerate(sizes):
        insp.packet(flow, True, True, 6, 1, 9, SYN, 0, b"", 0)
        insp.packet(flow, False, True, 6, 1, 9, ACK, 1, b"q" * size, 0)
        # at most one flow's worth above the cap: the flow being served is never pruned
        assert insp.stats().held_bytes <= cfg.memcap + min(size, cfg.stream_window)
