"""In-order reassembly of one direction of a TCP connection, resolving overlaps as Snort's BSD policy does.

Offsets are kept as 64-bit counts of bytes since the direction's first sequence
number, so wrap-around of the 32-bit sequence space needs no special case.
Delivered bytes are final: data that arrives for an already delivered range is a
retransmission (same bytes) or an overlap (different bytes) and is dropped, as
the first copy has already been inspected. Queued out-of-order segments follow
the BSD policy of Snort's stream_tcp (its default): a new segment that starts
before a queued one replaces the queued bytes it covers; a new segment that
starts at or inside a queued one yields to the queued bytes.
"""

from __future__ import annotations

import bisect

from engine.inspect.config import InspectConfig, InspectStats

TH_FIN = 0x01
TH_SYN = 0x02
TH_RST = 0x04


class StreamDirection:
    """Reassembly state of the bytes one endpoint sends."""

    __slots__ = (
        "at_depth",
        "delivered",
        "gapped",
        "next_seq",
        "q_data",
        "q_start",
        "queued",
        "started",
        "window",
    )

    def __init__(self) -> None:
        self.started = False
        self.next_seq = 0  # sequence number of the next in-order byte
        self.delivered = 0  # bytes delivered in order so far (offset of next_seq)
        self.window = bytearray()  # the last delivered bytes, at most stream_window
        self.q_start: list[int] = []  # queued segments: sorted start offsets
        self.q_data: list[bytes] = []
        self.queued = 0  # bytes queued
        self.at_depth = False
        self.gapped = False  # a hole was skipped since the last call

    @property
    def held(self) -> int:
        return len(self.window) + self.queued

    def release(self) -> None:
        """Drop buffered bytes (memcap pressure); sequence tracking continues."""
        self.window = bytearray()
        self.q_start.clear()
        self.q_data.clear()
        self.queued = 0

    def segment(
        self, seq: int, flags: int, data: bytes, cfg: InspectConfig, st: InspectStats
    ) -> bytes:
        """Add one segment; return the bytes it makes available in order (may be empty).

        Acknowledgements are not used to give up holes early: captures often show
        an acknowledgement before the data it covers (capture-point reordering)."""
        self.gapped = False
        if flags & TH_SYN:
            if not self.started or self.delivered == 0:
                self.started = True
                self.next_seq = (seq + 1) & 0xFFFFFFFF
            seq = (seq + 1) & 0xFFFFFFFF  # data on a SYN follows the SYN's sequence number
        if self.at_depth:
            if self.window or self.queued:
                self.release()
            return b""
        if not data:
            return b""
        if not self.started:
            self.started = True  # picked up mid-stream
            self.next_seq = seq
        rel = (seq - self.next_seq) & 0xFFFFFFFF
        if rel >= 0x80000000:
            rel -= 0x100000000
        start = self.delivered + rel
        end = start + len(data)
        if end <= self.delivered:
            self._old(start, data, st)
            return b""
        if start < self.delivered:
            cut = self.delivered - start
            self._old(start, data[:cut], st)
            data = data[cut:]
            start = self.delivered
        if start > self.delivered:
            st.out_of_order += 1
            self._enqueue(start, data, st)
            if self.queued > cfg.max_queued_bytes or len(self.q_start) > cfg.max_queued_segments:
                st.gaps += 1
                self.gapped = True
                self._skip_to(self.q_start[0])
                return self._drain(b"", cfg, st)
            return b""
        return self._drain(data, cfg, st)

    def _old(self, start: int, data: bytes, st: InspectStats) -> None:
        """Bytes for a range already delivered: compare with what was delivered if still held."""
        base = self.delivered - len(self.window)
        if start >= base:
            lo = start - base
            if self.window[lo : lo + len(data)] != data:
                st.overlaps += 1
                return
        st.retransmissions += 1

    def _enqueue(self, start: int, data: bytes, st: InspectStats) -> None:
        qs, qd = self.q_start, self.q_data
        end = start + len(data)
        i = bisect.bisect_right(qs, start) - 1
        cur = start
        pieces: list[tuple[int, bytes]] = []
        # A queued segment that starts at or before the new one keeps its bytes.
        if i >= 0 and qs[i] + len(qd[i]) > cur:
            old_end = qs[i] + len(qd[i])
            same = qd[i][cur - qs[i] : min(old_end, end) - qs[i]] == data[: min(old_end, end) - cur]
            if same:
                st.retransmissions += 1
            else:
                st.overlaps += 1
            cur = old_end
            if cur >= end:
                return
        j = i + 1
        while j < len(qs) and qs[j] < end:
            s, d = qs[j], qd[j]
            if s == cur:
                # starts exactly where the new data (so far) starts: the queued copy wins
                e = s + len(d)
                same = d[: min(e, end) - s] == data[s - start : min(e, end) - start]
                if same:
                    st.retransmissions += 1
                else:
                    st.overlaps += 1
                cur = e
                j += 1
                if cur >= end:
                    break
                continue
            # starts after the new data: the new bytes replace the queued ones they cover
            e = s + len(d)
            if d[: min(e, end) - s] == data[s - start : min(e, end) - start]:
                st.retransmissions += 1
            else:
                st.overlaps += 1
            pieces.append((cur, data[cur - start : s - start]))
            if e > end:
                qs[j] = end
                qd[j] = d[end - s :]
                self.queued -= end - s
                pieces.append((s, data[s - start :]))
                cur = end
                break
            del qs[j]
            del qd[j]
            self.queued -= len(d)
            pieces.append((s, data[s - start : e - start]))
            cur = e
            if cur >= end:
                break
        if cur < end:
            # whatever remains up to the next queued segment (or the end) is new
            nxt = qs[j] if j < len(qs) else end
            stop = min(end, nxt)
            if stop > cur:
                pieces.append((cur, data[cur - start : stop - start]))
        for s, d in pieces:
            if d:
                k = bisect.bisect_left(qs, s)
                qs.insert(k, s)
                qd.insert(k, d)
                self.queued += len(d)

    def _skip_to(self, offset: int) -> None:
        self.next_seq = (self.next_seq + (offset - self.delivered)) & 0xFFFFFFFF
        self.delivered = offset
        self.window = bytearray()

    def _drain(self, data: bytes, cfg: InspectConfig, st: InspectStats) -> bytes:
        """Deliver `data` (which starts at the next in-order offset) and every queued
        segment it makes contiguous; return all of it."""
        qs, qd = self.q_start, self.q_data
        end = self.delivered + len(data)
        parts = [data] if data else []
        # The new in-order data started before every queued segment it covers: it wins.
        while qs and qs[0] < end:
            s, d = qs.pop(0), qd.pop(0)
            self.queued -= len(d)
            e = s + len(d)
            if d[: min(e, end) - s] == data[s - self.delivered : min(e, end) - self.delivered]:
                st.retransmissions += 1
            else:
                st.overlaps += 1
            if e > end:
                parts.append(d[end - s :])
                end = e
        while qs and qs[0] == end:
            qs.pop(0)
            d = qd.pop(0)
            self.queued -= len(d)
            parts.append(d)
            end += len(d)
        out = parts[0] if len(parts) == 1 else b"".join(parts)
        if not out:
            return b""
        room = cfg.stream_depth - self.delivered
        if len(out) >= room:
            out = out[:room]
            self.at_depth = True
            st.depth_reached += 1
        self.delivered += len(out)
        self.next_seq = (self.next_seq + len(out)) & 0xFFFFFFFF
        st.stream_bytes += len(out)
        w = self.window
        w += out
        if len(w) > cfg.stream_window:
            del w[: len(w) - cfg.stream_window]
        return out
