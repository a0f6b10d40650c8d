"""Inspection settings, counters and the per-packet view the matcher receives."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class InspectConfig:
    """Limits of the inspection layer. Every byte count is per direction of a flow
    unless it says otherwise.

    - `stream_depth`: bytes reassembled per direction; later data is neither
      reassembled nor parsed (the `stream` of those packets is None).
    - `memcap`: bytes held by all flows together (reassembly windows, queued
      out-of-order segments, partial application messages, and a fixed cost per
      flow for its state); when exceeded, the least recently active flows give up
      their buffers first, and flows with nothing left to give up are forgotten.
    - `stream_window`: the most in-order bytes handed to the matcher as `stream`
      (Snort's `max_pdu`, 16384 by default).
    - `stream_context`: of those, the most that came before a packet's new bytes
      (2048: what a stream match across the boundary of a packet can reach back).
    - `max_queued_bytes`, `max_queued_segments`: out-of-order data held while
      waiting for a hole to fill; beyond either, the hole is declared a gap and
      delivery skips ahead to the first queued segment (Snort's stream_tcp
      `queue_limit` defaults: 4 MiB, 3072 segments).
    - `http_body_depth`: request and response body bytes kept (after dechunking
      and decompression) for `http.request_body`, `http.response_body` and
      `file_data`.
    - `http_body_section`: a body is handed out in sections of about this many
      bytes (as Snort's http_inspect splits message bodies), each once, on the
      packet that completes it; the last section comes with the end of the body
      or at the depth.
    - `http_max_header_bytes`: a start line plus headers longer than this is a
      parse error and HTTP parsing of the flow stops.
    - `decompress`: inflate gzip/deflate response and request bodies.
    - `tls_max_handshake_bytes`: handshake bytes buffered to find a ClientHello or
      Certificate message.
    - `detect_bytes`: payload bytes per direction looked at to detect the
      application protocol; past that an unknown flow stays unknown and costs
      only its reassembly.
    """

    stream_depth: int = 1 << 20
    memcap: int = 64 << 20
    stream_window: int = 16384
    stream_context: int = 2048
    max_queued_bytes: int = 4 << 20
    max_queued_segments: int = 3072
    http_body_depth: int = 1 << 16
    http_body_section: int = 16384
    http_max_header_bytes: int = 1 << 16
    decompress: bool = True
    tls_max_handshake_bytes: int = 1 << 17
    detect_bytes: int = 2048

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                continue
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"InspectConfig.{f.name} must be a non-negative integer")
        if self.stream_window < 1:
            raise ValueError("InspectConfig.stream_window must be at least 1")


@dataclass(slots=True)
class InspectStats:
    """Counters since the inspector was made."""

    packets: int = 0
    segments: int = 0  # TCP segments carrying payload
    stream_bytes: int = 0  # bytes delivered in order
    retransmissions: int = 0  # segments (or parts) repeating data already held
    overlaps: int = 0  # segments overlapping held data with different bytes
    out_of_order: int = 0  # segments queued ahead of a hole
    gaps: int = 0  # holes given up on (delivery skipped ahead)
    depth_reached: int = 0  # directions that hit stream_depth
    memcap_prunes: int = 0  # flows whose buffers were released to stay under memcap
    http_requests: int = 0
    http_responses: int = 0
    dns_queries: int = 0
    tls_client_hellos: int = 0
    tls_certificates: int = 0
    parse_errors: int = 0  # application data that could not be parsed (flow given up on)
    decompress_errors: int = 0
    held_bytes: int = 0  # bytes held right now
    flows: int = 0  # flows with state right now


class PacketContext:
    """What the matcher gets for one packet.

    `buffers` holds the sticky buffers completed by this packet, keyed by the rule
    language's buffer names; when one packet completes several transactions
    (pipelined HTTP), the first is in `buffers` and the others in `more`, in
    order. `stream` is this direction's in-order bytes ending with what this
    packet made available (at most `stream_window` bytes, of which at most
    `stream_context` came before this packet's): `stream_new` of them
    at its end are new, and `stream_offset` is the direction's byte offset of
    `stream[0]`. `protocols` is what each direction's own data showed (to the
    server, to the client; None while undecided): they differ when a client
    speaks another protocol than its server.
    """

    __slots__ = (
        "app_proto",
        "buffers",
        "more",
        "protocols",
        "stream",
        "stream_new",
        "stream_offset",
        "to_server",
    )

    def __init__(
        self,
        app_proto: str | None,
        to_server: bool,
        buffers: dict[str, bytes],
        stream: bytes | None = None,
        stream_new: int = 0,
        stream_offset: int = 0,
        more: tuple[dict[str, bytes], ...] = (),
        protocols: tuple[str | None, str | None] = (None, None),
    ) -> None:
        self.app_proto = app_proto
        self.protocols = protocols
        self.to_server = to_server
        self.buffers = buffers
        self.stream = stream
        self.stream_new = stream_new
        self.stream_offset = stream_offset
        self.more = more

    def __repr__(self) -> str:
        slen = None if self.stream is None else len(self.stream)
        return (
            f"PacketContext(app_proto={self.app_proto!r}, to_server={self.to_server}, "
            f"buffers={sorted(self.buffers)}, stream_len={slen}, stream_new={self.stream_new})"
        )
