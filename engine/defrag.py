"""IPv4 and IPv6 fragment reassembly between decoding and the flow table.

`Defragmenter.reassemble(decoded)` hands back a batch that holds no fragments
untouched (one integer comparison). Otherwise it collects the fragments' data per
datagram (addresses, IP id, protocol, VLAN), and when a datagram is complete it
builds it as one packet: the first fragment's bytes before its IP header (link
layers, tunnel headers), the IP header with the total length set and the fragment
fields cleared (IPv6: the fragment header removed), then the data. The packet is
appended to the batch and decoded like any other, and its rows follow the row of
the fragment that completed it. Fragment rows themselves are marked as holding no
transport header (`F_LATER_FRAGMENT`): the reassembled datagram stands for them in
the flow table and the matcher, as in Suricata and Zeek.

Overlaps follow Suricata's default `bsd` policy: the fragment with the lower offset
wins the overlapping bytes, and for equal offsets the one that arrived first.
Datagrams not completed within `timeout` seconds of their first fragment, or pushed
out when `max_datagrams` are in progress, are dropped and counted.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from dpdk_io.batch import PacketBatch
from engine.decode import (
    F_FRAGMENT,
    F_LATER_FRAGMENT,
    F_MORE_FRAGMENTS,
    KIND_IP,
    DecodedBatch,
    decode,
)

#: Largest IP datagram (IPv4 total length, IPv6 40 + payload length).
MAX_DATAGRAM = 65535
_IPV6_EXTENSIONS = (0, 43, 60, 51, 135)


@dataclass(frozen=True, slots=True)
class DefragConfig:
    timeout: float = 60.0  # seconds from a datagram's first fragment (Suricata's default)
    max_datagrams: int = 4096  # datagrams being reassembled at once
    max_fragments: int = 8192  # fragments held for one datagram


@dataclass(slots=True)
class DefragStats:
    fragments: int = 0  # fragment rows seen
    reassembled: int = 0  # datagrams completed
    overlaps: int = 0  # fragments overlapping data already held
    timeouts: int = 0  # datagrams dropped incomplete after `timeout`
    evicted: int = 0  # datagrams dropped to make room (`max_datagrams`)
    invalid: int = 0  # datagrams dropped: too long, too many fragments, inconsistent ends
    truncated: int = 0  # fragments cut short by the snap length (not usable)


@dataclass(frozen=True, slots=True)
class ReassembledBatch(PacketBatch):
    """A batch with reassembled datagrams appended after its captured packets;
    `parents[j]` is the index of the fragment that completed packet `captured + j`."""

    captured: int = 0
    parents: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def packet_number(self, i: int) -> int:
        if i >= self.captured:
            i = int(self.parents[i - self.captured])
        return self.first_index + i + 1


@dataclass(slots=True)
class _Datagram:
    first_ts: int
    pieces: list[tuple[int, int, bytes]] = field(default_factory=list)  # (offset, arrival, data)
    end: int = -1  # data length, known once the last fragment arrived
    head: bytes = b""  # first fragment up to its data (IPv6: without the fragment header)
    l3: int = 0  # where the IP header starts in `head`
    next_header_at: int = -1  # IPv6: the byte of `head` naming the fragment header
    next_header: int = 0  # IPv6: the protocol after the fragment header
    held: int = 0  # data bytes received, overlaps counted twice


class Defragmenter:
    """Reassembles IP fragments across batches; see the module docstring."""

    def __init__(self, config: DefragConfig | None = None) -> None:
        self.config = config or DefragConfig()
        self.stats = DefragStats()
        self._datagrams: OrderedDict[tuple[object, ...], _Datagram] = OrderedDict()
        self._arrival = 0

    def reassemble(self, decoded: DecodedBatch) -> DecodedBatch:
        """`decoded` itself when it holds no fragment; else the batch with each completed
        datagram's rows after the row of its last fragment. Fragment rows are marked
        (`F_LATER_FRAGMENT`) in place."""
        if not decoded.fragments:
            return decoded
        batch = decoded.batch
        rows = decoded.rows
        at = np.flatnonzero(((rows["flags"] & F_FRAGMENT) != 0) & (rows["kind"] == KIND_IP))
        frags = rows[at]
        rows["flags"][at] |= F_LATER_FRAGMENT
        pkts = frags["pkt"].tolist()
        starts = batch.offsets[frags["pkt"]].tolist()
        stops = (batch.offsets[frags["pkt"]] + batch.caplens[frags["pkt"]]).tolist()
        built: list[tuple[int, int, bytes]] = []  # (row index, fragment packet, datagram packet)
        for i, pkt, start, stop, ts, l3, ipver, off, flags, src, dst, ip_id, proto, vlan in zip(
            at.tolist(),
            pkts,
            starts,
            stops,
            frags["ts"].tolist(),
            frags["l3_off"].tolist(),
            frags["ipver"].tolist(),
            frags["frag_off"].tolist(),
            frags["flags"].tolist(),
            frags["src"].tolist(),
            frags["dst"].tolist(),
            frags["ip_id"].tolist(),
            frags["proto"].tolist(),
            frags["vlan"].tolist(),
            strict=True,
        ):
            key = (ipver, *src, *dst, ip_id, proto if ipver == 4 else 0, vlan)
            frame = batch.data[start:stop].tobytes()
            packet = self._add(key, frame, ts, l3, ipver, off, bool(flags & F_MORE_FRAGMENTS))
            if packet is not None:
                built.append((i, pkt, packet))
        if not built:
            return decoded
        return self._extend(decoded, rows, built)

    def _add(
        self,
        key: tuple[int, ...],
        frame: bytes,
        ts: int,
        l3: int,
        ipver: int,
        offset: int,
        more: bool,
    ) -> bytes | None:
        """Take one fragment; the datagram's packet when it completes it."""
        self.stats.fragments += 1
        cfg = self.config
        self._expire(ts)
        parsed = _fragment(frame, l3, ipver)
        if parsed is None:
            self.stats.truncated += 1
            return None
        data_at, ip_end, next_header_at, next_header = parsed
        data = frame[data_at:ip_end]
        dgram = self._datagrams.get(key)
        if dgram is None:
            if len(self._datagrams) >= cfg.max_datagrams:
                self._datagrams.popitem(last=False)
                self.stats.evicted += 1
            dgram = self._datagrams[key] = _Datagram(ts)
        header_len = data_at - l3 - (8 if ipver == 6 else 0)
        if offset + len(data) + header_len > MAX_DATAGRAM or len(dgram.pieces) >= cfg.max_fragments:
            del self._datagrams[key]
            self.stats.invalid += 1
            return None
        if not more:
            if dgram.end >= 0 and dgram.end != offset + len(data):
                del self._datagrams[key]
                self.stats.invalid += 1
                return None
            dgram.end = offset + len(data)
        if offset == 0 and not dgram.head:
            if ipver == 6:
                dgram.head = frame[: data_at - 8]
                dgram.next_header_at = next_header_at
                dgram.next_header = next_header
            else:
                dgram.head = frame[:data_at]
            dgram.l3 = l3
        self._arrival += 1
        dgram.pieces.append((offset, self._arrival, data))
        dgram.held += len(data)
        # not before the last fragment, the first, and as many bytes as the datagram holds
        if dgram.end < 0 or not dgram.head or dgram.held < dgram.end:
            return None
        body = self._assemble(dgram)
        if body is None:
            return None
        del self._datagrams[key]
        self.stats.reassembled += 1
        return _rebuild(dgram, body)

    def _assemble(self, dgram: _Datagram) -> bytes | None:
        """The data when the pieces cover it without a hole, else None."""
        out = bytearray(dgram.end)
        covered = 0
        for offset, _, data in sorted(dgram.pieces, key=lambda p: (p[0], p[1])):
            if covered >= dgram.end:
                break
            if offset > covered:
                return None
            stop = min(offset + len(data), dgram.end)
            if stop <= covered:
                if data:
                    self.stats.overlaps += 1
                continue
            if offset < covered:
                self.stats.overlaps += 1
            # BSD: bytes already laid by a lower (or equal, earlier) offset stand
            out[covered:stop] = data[covered - offset : stop - offset]
            covered = stop
        return bytes(out) if covered >= dgram.end else None

    def _expire(self, now: int) -> None:
        limit = int(self.config.timeout * 1e9)
        while self._datagrams:
            key, first = next(iter(self._datagrams.items()))
            if now - first.first_ts <= limit:
                return
            del self._datagrams[key]
            self.stats.timeouts += 1

    def _extend(
        self, decoded: DecodedBatch, rows: np.ndarray, built: list[tuple[int, int, bytes]]
    ) -> DecodedBatch:
        batch = decoded.batch
        captured = len(batch)
        packets = [p for _, _, p in built]
        extra = PacketBatch.from_packets(
            packets,
            [int(batch.timestamps[pkt]) for _, pkt, _ in built],
            batch.linktype,
        )
        # a source may hand out views into a larger buffer (a mapped file): copy only
        # the span this batch's packets occupy
        lo = int(batch.offsets.min())
        hi = int((batch.offsets + batch.caplens).max())
        merged = ReassembledBatch(
            data=np.concatenate([batch.data[lo:hi], extra.data]),
            offsets=np.concatenate([batch.offsets - lo, extra.offsets + (hi - lo)]),
            caplens=np.concatenate([batch.caplens, extra.caplens]),
            wirelens=np.concatenate([batch.wirelens, extra.wirelens]),
            timestamps=np.concatenate([batch.timestamps, extra.timestamps]),
            linktype=batch.linktype,
            first_index=batch.first_index,
            captured=captured,
            parents=np.asarray([pkt for _, pkt, _ in built], dtype=np.int64),
        )
        # each datagram's rows go after the row of the fragment that completed it; layers
        # outside the fragmented datagram (a UDP tunnel's outer flow) came with the fragment
        extra_decoded = decode(extra)
        new_rows = extra_decoded.rows
        frag_at = np.asarray([i for i, _, _ in built], dtype=np.int64)
        owner = new_rows["pkt"].astype(np.int64)
        new_rows = new_rows[new_rows["l3_off"] >= rows["l3_off"][frag_at][owner]]
        at = frag_at[new_rows["pkt"]] + 1
        new_rows["pkt"] += captured
        # moved as opaque records: numpy copies structured records field by field
        record = np.dtype((np.void, rows.dtype.itemsize))
        out = np.empty(len(rows) + len(new_rows), dtype=record)
        new_at = at + np.arange(len(new_rows))
        old = np.ones(len(out), dtype=np.bool_)
        old[new_at] = False
        out[old] = np.ascontiguousarray(rows).view(record)
        out[new_at] = np.ascontiguousarray(new_rows).view(record)
        return DecodedBatch(
            merged,
            out.view(rows.dtype),
            decoded.malformed + extra_decoded.malformed,  # a datagram can be malformed too
            decoded.other,
            decoded.fragments,
        )


def _fragment(frame: bytes, l3: int, ipver: int) -> tuple[int, int, int, int] | None:
    """(data start, IP end, IPv6 next-header byte naming the fragment header, protocol
    after it) of a fragment, or None when the capture cut it short."""
    if ipver == 4:
        if len(frame) < l3 + 20:
            return None
        ihl = (frame[l3] & 15) * 4
        ip_end = l3 + int.from_bytes(frame[l3 + 2 : l3 + 4], "big")
        if ip_end > len(frame) or ip_end < l3 + ihl:
            return None
        return l3 + ihl, ip_end, -1, 0
    if len(frame) < l3 + 40:
        return None
    ip_end = l3 + 40 + int.from_bytes(frame[l3 + 4 : l3 + 6], "big")
    if ip_end > len(frame):
        return None
    at, proto, pos = l3 + 6, frame[l3 + 6], l3 + 40
    while proto in _IPV6_EXTENSIONS:
        if pos + 8 > ip_end:
            return None
        size = (frame[pos + 1] + 2) * 4 if proto == 51 else (frame[pos + 1] + 1) * 8
        at, proto, pos = pos, frame[pos], pos + size
    if proto != 44 or pos + 8 > ip_end:
        return None
    return pos + 8, ip_end, at, frame[pos]


def _rebuild(dgram: _Datagram, body: bytes) -> bytes:
    """The datagram as one packet behind the first fragment's outer layers."""
    head = bytearray(dgram.head)
    l3 = dgram.l3
    if head[l3] >> 4 == 4:
        total = len(head) - l3 + len(body)
        head[l3 + 2 : l3 + 4] = total.to_bytes(2, "big")
        head[l3 + 6 : l3 + 8] = b"\x00\x00"
        head[l3 + 10 : l3 + 12] = b"\x00\x00"
        head[l3 + 10 : l3 + 12] = _ip_checksum(bytes(head[l3:])).to_bytes(2, "big")
    else:
        head[dgram.next_header_at] = dgram.next_header
        payload = len(head) - l3 - 40 + len(body)
        head[l3 + 4 : l3 + 6] = payload.to_bytes(2, "big")
    return bytes(head) + body


def _ip_checksum(header: bytes) -> int:
    if len(header) % 2:
        header += b"\x00"
    total = sum(int.from_bytes(header[i : i + 2], "big") for i in range(0, len(header), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
