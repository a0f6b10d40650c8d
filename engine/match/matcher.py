"""Running a `CompiledRuleset` over decoded batches: prefilter, candidate rules, full evaluation.

Per batch: the payloads of all rows are gathered into one buffer and scanned
with one Hyperscan call per database; a hit counts only when it lies wholly
inside one row's payload, and names the rules whose fast pattern it is.
Slow-path rules get their candidate rows from vectorized header tests. Header
conditions of every (row, rule) candidate are checked with numpy; only the
survivors are evaluated in Python, row by row in capture order so that flowbits,
thresholds and windows see packets as they came.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import numpy as np

from dpdk_io.batch import PacketBatch
from engine.decode import (
    F_DONT_FRAGMENT,
    F_FRAGMENT,
    F_LATER_FRAGMENT,
    F_MORE_FRAGMENTS,
    KIND_IP,
    ROW_DTYPE,
    DecodedBatch,
    take_rows,
)
from engine.events import FlowKey, Match
from engine.flows import FlowEvents, FlowRecords, community_id, ip_bytes, ip_text
from engine.inspect.config import PacketContext
from engine.inspect.inspector import Inspector
from engine.match.compiler import (
    HEADER_BUFFERS,
    STREAM_ALSO,
    STREAM_ONLY,
    CompiledRule,
    CompiledRuleset,
    ConfirmTable,
)
from engine.match.conditions import ROW_COLUMNS
from engine.match.kernels import (
    SHORT_CODES,
    confirm_kernel,
    gather_kernel,
    header_kernel,
    pair_kernel,
    run_kernel,
)
from engine.match.literals import LiteralDatabase
from engine.match.onesided import OneSided, OneSidedSessions
from engine.match.payload import COMPARE, Scratch
from engine.match.sets import address_int
from engine.match.state import BitStore, SessionState, ThresholdState, WindowState
from rules import ast as rules_ast

#: Buffers per concatenated prefilter scan, and prefilter hits allowed per buffer
#: before a chunk is rescanned one buffer at a time.
_CHUNK = 2048
_HITS_PER_BUFFER = 32

_SEVERITY_BY_PRIORITY = {1: "high", 2: "medium", 3: "low", 4: "info"}
_APP_ALIASES = {"ssl": "tls", "http2": "http", "dcerpc": "dcerpc"}
#: Flow protocols a rule on a protocol also covers (Suricata's equivalences): HTTP/2
#: flows for `http` rules, DNS over HTTP/2 for `http` and `dns` rules.
_APP_COVERS = {"http": ("http2", "doh2"), "dns": ("doh2",)}
#: What a lone row matched off its batch (a flush, a one-sided session) says ended.
_NOTHING_ENDED = FlowRecords.empty()


def _app_ok(rule_app: str, flow_app: str | None) -> bool:
    """Whether a rule on `rule_app` applies to a flow of `flow_app` (None: not known)."""
    if flow_app is None:
        return True
    want = _APP_ALIASES.get(rule_app, rule_app)
    return flow_app == want or flow_app in _APP_COVERS.get(want, ())


class PacketInspector(Protocol):
    """The application-layer inspector's contract (stream reassembly, protocol buffers)."""

    def packet(
        self,
        flow: int,
        new_flow: bool,
        to_server: bool,
        proto: int,
        sport: int,
        dport: int,
        tcp_flags: int,
        tcp_seq: int,
        payload: bytes,
        ts_ns: int,
    ) -> Any: ...

    def end_flow(self, flow: int) -> None: ...

    def flush(self, flow: int) -> list[Any]: ...

    def flows(self) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class Alert:
    """A rule match with the packet facts an alert log needs beyond `Match`:
    the packet's own direction (src/dst as sent) and its protocol."""

    match: Match
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    proto: int
    to_server: bool
    linktype: int = 1
    vlan: int = 0  # outermost VLAN id, 0 for none
    packet: bytes = b""  # the packet's bytes as captured, from its innermost layer's start
    #: For a rule reading application buffers: the 0-based application transaction of
    #: its flow it matched (Suricata's `tx_id`) and that transaction's buffers.
    tx_id: int | None = None
    tx_buffers: dict[str, Any] | None = None
    #: From a matcher on one shard of the flows (`Matcher.shard`): the rule's threshold
    #: and window inputs, for `Matcher.admit` to decide in capture order across shards.
    rate: RateInputs | None = None

    def __init__(  # written out, as `engine.events.FlowKey`'s
        self,
        match: Match,
        src_ip: str,
        src_port: int,
        dst_ip: str,
        dst_port: int,
        proto: int,
        to_server: bool,
        linktype: int = 1,
        vlan: int = 0,
        packet: bytes = b"",
        tx_id: int | None = None,
        tx_buffers: dict[str, Any] | None = None,
        rate: RateInputs | None = None,
    ) -> None:
        object.__setattr__(self, "match", match)
        object.__setattr__(self, "src_ip", src_ip)
        object.__setattr__(self, "src_port", src_port)
        object.__setattr__(self, "dst_ip", dst_ip)
        object.__setattr__(self, "dst_port", dst_port)
        object.__setattr__(self, "proto", proto)
        object.__setattr__(self, "to_server", to_server)
        object.__setattr__(self, "linktype", linktype)
        object.__setattr__(self, "vlan", vlan)
        object.__setattr__(self, "packet", packet)
        object.__setattr__(self, "tx_id", tx_id)
        object.__setattr__(self, "tx_buffers", tx_buffers)
        object.__setattr__(self, "rate", rate)


#: A rule's threshold and window inputs for one match: per threshold its tracking key
#: and `unique` value, and the window's group key and value (or None).
RateInputs = tuple[tuple[tuple[Hashable, Hashable], ...], tuple[Hashable, Any] | None]


@dataclass(slots=True)
class RuleProfile:
    """Cost of one rule: evaluations, matches and time spent evaluating (ns)."""

    checks: int = 0
    matches: int = 0
    ns: int = 0


@dataclass(slots=True)
class MatcherStats:
    rows: int = 0
    prefilter_hits: int = 0
    candidates: int = 0
    evaluations: int = 0
    matches: int = 0
    alerts: int = 0
    checksum_skipped: int = 0
    left_out_flows: int = 0  # TCP flows of no detected protocol no longer inspected


#: Fields read straight from a decoded row column.
_ROW_FIELDS = {"src.port": "sport", "dst.port": "dport", **ROW_COLUMNS}
#: Each decoded-row field's place in the tuple `_fields` gives.
_AT: dict[str, int] = {name: i for i, name in enumerate(ROW_DTYPE.names or ())}
_AT_PKT, _AT_TS, _AT_PROTO, _AT_SRC, _AT_DST = (
    _AT[name] for name in ("pkt", "ts", "proto", "src", "dst")
)


def _fields(row: np.void) -> tuple[Any, ...]:
    """A decoded row's fields as Python values, read at once (`_AT` names their
    places): reading a numpy record's field costs about 0.6 us, and a packet's rules
    and alerts read several."""
    return cast(tuple[Any, ...], row.item())


class _Packet:
    """The view of one row that conditions read (`engine.match.conditions.PacketView`)."""

    __slots__ = (
        "_batch",
        "_cache",
        "_matcher",
        "app_proto",
        "buffers",
        "established",
        "gen",
        "payload",
        "protocols",
        "slot",
        "to_server",
        "ts",
        "values",
        "wirelen",
    )

    def __init__(
        self,
        matcher: Matcher,
        batch: PacketBatch | None,
        values: tuple[Any, ...],
        payload: bytes,
        slot: int,
        gen: int,
        to_server: bool,
        established: bool,
        buffers: dict[str, bytes],
        app_proto: str | None,
    ) -> None:
        self._matcher = matcher
        self._batch = batch
        self.values = values  # the packet's decoded row, as `_fields` gives it
        self.payload = payload
        self.slot = slot
        self.gen = gen
        self.to_server = to_server
        self.established = established
        self.buffers = buffers
        self.app_proto = app_proto
        self.ts = self.values[_AT_TS] / 1e9
        self.wirelen = int(batch.wirelens[self.values[_AT_PKT]]) if batch is not None else 0
        self._cache: dict[str, Any] = {}
        self.protocols: tuple[str | None, str | None] = (None, None)  # each direction's

    def with_payload(self, payload: bytes) -> _Packet:
        """The same packet with `payload` as its packet data (a reassembled stream window)."""
        return _Packet(
            self._matcher,
            self._batch,
            self.values,
            payload,
            self.slot,
            self.gen,
            self.to_server,
            self.established,
            self.buffers,
            self.app_proto,
        )

    def src_int(self) -> int:
        src = self.values[_AT_SRC]
        return address_int(int(src[0]), int(src[1]))

    def dst_int(self) -> int:
        dst = self.values[_AT_DST]
        return address_int(int(dst[0]), int(dst[1]))

    def field(self, name: str) -> Any:
        if name in self._cache:
            return self._cache[name]
        value = self._field(name)
        self._cache[name] = value
        return value

    def _field(self, name: str) -> Any:
        row = self.values
        proto = row[_AT_PROTO]
        if name in ("src.ip", "ip.src"):
            return self.src_int()
        if name in ("dst.ip", "ip.dst"):
            return self.dst_int()
        if name == "dsize":
            return len(self.payload)
        if name == "tcp.flags":
            return int(row[_AT["tcp_flags"]]) if proto == 6 else None
        if name in ("icmp.type", "icmp.code", "icmp.id", "icmp.seq") and proto not in (1, 58):
            return None
        if name in ("tcp.seq", "tcp.ack", "tcp.window") and proto != 6:
            return None
        column = _ROW_FIELDS.get(name)
        if column is not None:
            return int(row[_AT[column]])
        if name == "icmp.seq":
            raw = self._packet_bytes(int(row[_AT["l4_off"]]) + 6, 2)
            return int.from_bytes(raw, "big") if len(raw) == 2 else None
        if name == "ip.fragbits":
            fl = int(row[_AT["flags"]])
            return (1 if fl & F_MORE_FRAGMENTS else 0) | (2 if fl & F_DONT_FRAGMENT else 0)
        if name == "ip.options":
            return self._ip_options()
        if name == "pkt.len":
            return self.wirelen
        if name == "sameip":
            return self.src_int() == self.dst_int()
        if name == "flow.state":
            return "established" if self.established else "new"
        if name == "app.protocol":
            return self.app_proto
        if name == "app.protocol.to_server":
            return self.protocols[0]
        if name == "app.protocol.to_client":
            return self.protocols[1]
        if name == "dns.opcode":
            return self._dns_opcode(proto)
        if name == "dns.rrtype":
            packed = self.buffers.get("dns.rrtype")
            if packed is None:
                return None
            return [packed[i] << 8 | packed[i + 1] for i in range(0, len(packed) - 1, 2)]
        if name == "ftp.bounce":
            port = self.buffers.get("ftp.port_address")
            if port is None:
                return None
            return address_int(0, 0xFFFF00000000 | int.from_bytes(port, "big")) != self.src_int()
        if name == "tls.cert_chain_len":
            count = self.buffers.get("tls.cert_chain_len")
            return None if count is None else int(count)
        if name.startswith("stream.size."):
            sizes = self._matcher._stream_sizes.get((self.slot, int(row[_AT_PKT])))
            if sizes is None or self._batch is None:
                return None
            side = name[len("stream.size.") :]
            if side == "client":
                return sizes[0]
            if side == "server":
                return sizes[1]
            return sizes
        if name == "http.uri.len":
            uri = self.buffers.get("http.uri")
            return None if uri is None else len(uri)
        if name == "http.uri.raw.len":
            uri = self.buffers.get("http.uri.raw")
            return None if uri is None else len(uri)
        return None

    def _dns_opcode(self, proto: int) -> int | None:
        """The opcode of the DNS message this packet carries (over TCP, after its
        two-byte length), or None on a flow not detected as DNS."""
        if self.app_proto != "dns":
            return None
        message = self.payload[2:] if proto == 6 else self.payload
        if len(message) < 4:
            return None
        return (message[2] >> 3) & 0x0F

    def _packet_bytes(self, offset: int, length: int) -> bytes:
        if self._batch is None:  # buffers flushed at a flow's end: no packet
            return b""
        i = int(self.values[_AT_PKT])
        start = int(self._batch.offsets[i])
        end = start + int(self._batch.caplens[i])
        lo = min(start + offset, end)
        return self._batch.data[lo : min(lo + length, end)].tobytes()

    def _ip_options(self) -> set[str]:
        if self.values[_AT["ipver"]] != 4:
            return set()
        l3 = int(self.values[_AT["l3_off"]])
        head = self._packet_bytes(l3, 60)
        if not head:
            return set()
        ihl = (head[0] & 0x0F) * 4
        opts = head[20:ihl]
        names = {0: "eol", 1: "nop", 7: "rr", 68: "ts", 130: "sec", 133: "esec", 131: "lsrr"}
        names.update({137: "ssrr", 136: "satid"})
        found: set[str] = set()
        i = 0
        while i < len(opts):
            kind = opts[i]
            found.add(names.get(kind, f"opt{kind}"))
            if kind in (0, 1):
                i += 1
                continue
            if i + 1 >= len(opts) or opts[i + 1] < 2:
                break
            i += opts[i + 1]
        return found

    def buffer(self, name: str) -> bytes | None:
        if name in ("pkt_data", "raw_data"):
            return self.payload
        if name in HEADER_BUFFERS:
            return self._header_bytes(name)
        return self.buffers.get(name)

    def _header_bytes(self, name: str) -> bytes | None:
        """Suricata's `ipv4.hdr`, `ipv6.hdr`, `tcp.hdr`, `udp.hdr`: the header as captured
        (IPv4 and TCP with their options, IPv6 without extension headers), or None
        when the packet has no such header."""
        key = "hdr:" + name
        if key in self._cache:
            return self._cache[key]
        row = self.values
        ipver, proto = int(row[_AT["ipver"]]), int(row[_AT_PROTO])
        l3, l4 = int(row[_AT["l3_off"]]), int(row[_AT["l4_off"]])
        data: bytes | None = None
        if name == "ipv4.hdr" and ipver == 4:
            data = self._packet_bytes(l3, l4 - l3)
        elif name == "ipv6.hdr" and ipver == 6:
            data = self._packet_bytes(l3, 40)
        elif name == "tcp.hdr" and proto == 6:
            data = self._packet_bytes(l4, int(row[_AT["payload_off"]]) - l4)
        elif name == "udp.hdr" and proto == 17:
            data = self._packet_bytes(l4, 8)
        self._cache[key] = data
        return data

    def has_literals(self, required: tuple[tuple[str, bytes, bool], ...]) -> bool:
        """Whether every (buffer, literal, nocase) occurs in its buffer."""
        for name, literal, nocase in required:
            data = self.payload if name == "pkt_data" else self.buffer(name)
            if data is None:
                return False
            if nocase:
                key = "lower:" + name
                lowered = self._cache.get(key)
                if lowered is None:
                    lowered = data.lower()
                    self._cache[key] = lowered
                data = lowered
            # find, not `in`: bytes.__contains__ first tries the operand as an integer,
            # building and discarding an exception for every literal
            if data.find(literal) < 0:
                return False
        return True

    def flow_ints(self) -> dict[str, int]:
        if self.slot < 0:
            return {}
        return self._matcher.bits.flow_ints(self.slot, self.gen)

    def bits(self, kind: str, track: str | None) -> set[str]:
        store = self._matcher.bits
        if kind == "flowbits":
            if self.slot < 0:
                return set()
            return store.flow_bits(self.slot, self.gen)
        return store.host_bits(track or "ip_src", self._track_key(track), self.ts)

    def _track_key(self, track: str | None) -> Hashable:
        if track in ("ip_dst", "dst"):
            return self.dst_int()
        if track in ("ip_pair", "both"):
            return (self.src_int(), self.dst_int())
        return self.src_int()


_FOLD = np.array([ord(bytes([b]).lower()) for b in range(256)], dtype=np.uint8)


def _both_ok(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """`a & b` of two row masks where None admits every row."""
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _segments_with_runs(
    arr: np.ndarray, cstart: np.ndarray, lens: np.ndarray, runs: list[tuple[int, int, int, bool]]
) -> list[np.ndarray]:
    """Per run pattern, the indexes of the segments that hold it."""
    run_byte = np.array([b for _, b, _, _ in runs], dtype=np.uint8)
    run_nocase = np.array([nocase for *_, nocase in runs], dtype=np.bool_)
    run_len = np.array([n for _, _, n, _ in runs], dtype=np.int64)
    interesting = np.zeros(256, dtype=np.bool_)
    for b, nocase in zip(run_byte.tolist(), run_nocase.tolist(), strict=True):
        interesting[b] = True
        if nocase:
            interesting[_FOLD[b] == _FOLD] = True
    out = np.zeros((len(runs), cstart.shape[0]), dtype=np.bool_)
    run_kernel(
        arr,
        cstart.astype(np.int64),
        lens.astype(np.int64),
        run_byte,
        run_nocase,
        run_len,
        _FOLD,
        interesting,
        out,
    )
    return [np.nonzero(out[k])[0] for k in range(len(runs))]


def _buffer_hits(
    database: LiteralDatabase,
    lengths: np.ndarray,
    arr: np.ndarray,
    cstart: np.ndarray,
    lens: np.ndarray,
    fallback: LiteralDatabase | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(buffer, pattern) of each hit lying wholly inside one of the concatenated
    buffers (buffer `i` is `arr[cstart[i] : cstart[i] + lens[i]]`), in buffer order,
    and how many hits the scans reported.

    Buffers are scanned in chunks of `_CHUNK`; a chunk whose hits run past a budget
    (a pattern repeated all over a payload, such as "AAAA" in padding) is scanned
    again one buffer at a time reporting each pattern once (with `fallback`, a
    database of the same patterns or more, when given), so the cost stays bounded
    by buffers times patterns, not by occurrences.
    """
    seg_parts: list[np.ndarray] = []
    pid_parts: list[np.ndarray] = []
    reported = 0
    n = cstart.shape[0]
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        base = int(cstart[lo])
        end_at = int(cstart[hi - 1] + lens[hi - 1])
        found = database.hits(arr, base, end_at, _HITS_PER_BUFFER * (hi - lo))
        if not found.complete:
            seg, pid = (fallback or database).first_hits(arr, cstart, lens, lo, hi)
            reported += pid.shape[0]
            seg_parts.append(seg)
            pid_parts.append(pid)
            continue
        if found.ids.shape[0] == 0:
            continue
        reported += found.ids.shape[0]
        pid = found.ids
        end = found.ends + base
        start = end - lengths[pid]
        seg = np.searchsorted(cstart, start, side="right") - 1
        segc = np.clip(seg, 0, None)
        ok = (seg >= lo) & (end <= cstart[segc] + lens[segc])
        seg_parts.append(seg[ok])
        pid_parts.append(pid[ok])
    if not seg_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), reported
    return np.concatenate(seg_parts), np.concatenate(pid_parts), reported


def _gathered(
    data: np.ndarray, starts: np.ndarray, lens: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The buffers `data[starts[i] : starts[i] + lens[i]]` concatenated (each byte
    copied once), and where each starts in the result."""
    cstart = np.zeros(lens.shape[0], dtype=np.int64)
    np.cumsum(lens[:-1], out=cstart[1:])
    arr = np.empty(int(cstart[-1] + lens[-1]), dtype=np.uint8)
    gather_kernel(data, starts, lens, cstart, arr)
    return arr, cstart


def _confirmed(
    table: ConfirmTable,
    data: np.ndarray,
    crow: np.ndarray,
    crule: np.ndarray,
    pstart: np.ndarray,
    plen: np.ndarray,
) -> np.ndarray:
    """Which (row, rule) packet candidates have in the row's payload every literal of
    `table` the rule needs: the payloads of the rows concerned are scanned once."""
    keep = np.ones(crow.shape[0], dtype=bool)
    needs = (table.offsets[crule + 1] > table.offsets[crule]) | (
        table.short_offsets[crule + 1] > table.short_offsets[crule]
    )
    which = np.nonzero(needs)[0]
    if which.shape[0] == 0:
        return keep
    concerned = np.zeros(plen.shape[0], dtype=bool)
    concerned[crow[which]] = True
    rows = np.nonzero(concerned)[0]  # sorted and distinct, without sorting
    lens = plen[rows].astype(np.int64)
    arr, cstart = _gathered(data, pstart[rows].astype(np.int64), lens)
    if table.database is not None and arr.shape[0]:
        seg, lit, _ = _buffer_hits(table.database, table.lengths, arr, cstart, lens)
        # `confirm_kernel` takes the hits by segment; they come so already (a scan
        # reports by end offset and the segments lie in order), but are sorted if not
        if seg.shape[0] > 1 and bool((seg[1:] < seg[:-1]).any()):
            order = np.argsort(seg, kind="stable")
            seg, lit = seg[order], lit[order]
    else:
        seg = lit = np.zeros(0, np.int64)
    position = np.cumsum(concerned) - 1  # of each concerned row among `rows`
    cand_seg = position[crow[which]]
    by_seg = np.argsort(cand_seg, kind="stable")
    cand_rule = crule[which][by_seg].astype(np.int64)
    keep[which[by_seg]] = confirm_kernel(
        cand_seg[by_seg],
        cand_rule,
        seg,
        lit,
        table.offsets,
        table.flat,
        np.full(table.lengths.shape[0], -1, dtype=np.int64),
        arr,
        cstart,
        lens,
        table.short_offsets,
        table.short_flat,
        table.short_folded,
        _FOLD,
        np.full(SHORT_CODES, -1, dtype=np.int64),
    )
    return keep


def _rule_pairs(
    sel: np.ndarray, seg: np.ndarray, pid: np.ndarray, db: Any
) -> tuple[np.ndarray, np.ndarray]:
    """(row, rule) pairs from pattern hits: segment `seg[i]` (row `sel[seg[i]]`) holds
    pattern `pid[i]`; a pattern's hits in one segment give its rules once."""
    if seg.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    last = np.full(len(db.rules), -1, dtype=np.int64)
    return pair_kernel(
        sel.astype(np.int64, copy=False),
        seg.astype(np.int64, copy=False),
        pid.astype(np.int64, copy=False),
        db.offsets,
        db.flat,
        last,
    )


def header_lines(raw: bytes) -> bytes:
    """HTTP header lines as `Name: value` (folded lines unfolded, the value's leading
    whitespace cut to one space), joined by CRLF: the `http.request_header` and
    `http.response_header` instances."""
    lines: list[bytes] = []
    for line in raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += b" " + line.strip()
            continue
        name, colon, value = line.partition(b":")
        lines.append(name.rstrip() + b": " + value.strip() if colon else line)
    return b"\r\n".join(lines)


#: Bytes of a direction's stream kept before a packet's new bytes for stream matching
#: (the inspector's window may be longer).
STREAM_CONTEXT = 2048

#: Buffers that open a new application transaction when they appear.
_TX_START = frozenset({"http.request_line", "http.method", "dns.query"})


@dataclass(slots=True)
class _Transaction:
    """One flow's current application transaction: its buffers so far and the
    rules that already alerted on it (a rule alerts once per transaction)."""

    number: int = -1  # 0-based per flow once a request or query started it
    buffers: dict[str, bytes] = field(default_factory=dict)
    fired: set[int] = field(default_factory=set)

    # written out, not generated: see `engine.events.FlowKey` (one per transaction)
    def __init__(
        self,
        number: int = -1,
        buffers: dict[str, bytes] | None = None,
        fired: set[int] | None = None,
    ) -> None:
        self.number = number
        self.buffers = {} if buffers is None else buffers
        self.fired = set() if fired is None else fired


@dataclass(frozen=True, slots=True)
class _More:
    """A further buffer set completed by a packet, shaped like its `PacketContext`."""

    app_proto: str | None
    buffers: dict[str, bytes]


@dataclass(slots=True)
class _TxView:
    app_proto: str | None
    buffers: dict[str, bytes]
    tx: _Transaction
    stream: bytes | None = None  # TCP: this direction's reassembled window (PacketContext)
    stream_new: int = 0  # bytes at the end of `stream` this packet made available
    protocols: tuple[str | None, str | None] = (None, None)  # each direction's own

    # written out, not generated: see `engine.events.FlowKey` (one per inspected packet)
    def __init__(
        self,
        app_proto: str | None,
        buffers: dict[str, bytes],
        tx: _Transaction,
        stream: bytes | None = None,
        stream_new: int = 0,
        protocols: tuple[str | None, str | None] = (None, None),
    ) -> None:
        self.app_proto = app_proto
        self.buffers = buffers
        self.tx = tx
        self.stream = stream
        self.stream_new = stream_new
        self.protocols = protocols


@dataclass(slots=True)
class _RuleArrays:
    """Per-rule header facts as arrays, for vectorized candidate filtering."""

    proto_ok: np.ndarray  # bool[n_rules, 256]
    sport_set: np.ndarray
    dport_set: np.ndarray
    bidir: np.ndarray
    replies: np.ndarray  # `=>`: to-client packets match the header the other way round
    direction: np.ndarray
    established: np.ndarray
    frag: np.ndarray
    any_proto: np.ndarray
    stream: np.ndarray  # int8: STREAM_NONE / STREAM_ALSO / STREAM_ONLY
    reads_app: np.ndarray  # bool: the rule reads an application buffer
    # bool: the rule tests only the detected application protocol (Suricata's
    # protocol-detection-only signatures), so it is tried where detection happened
    detection_only: np.ndarray
    flushed: np.ndarray  # indexes of the rules tried on buffers flushed at a flow's end

    @classmethod
    def build(cls, rules: list[CompiledRule]) -> _RuleArrays:
        n = len(rules)
        proto_ok = np.zeros((n, 256), dtype=bool)
        for r in rules:
            proto_ok[r.index, list(r.protocols)] = True
        stream = np.array([r.stream for r in rules], dtype=np.int8)
        reads_app = np.array([bool(r.buffers - {"pkt_data"}) for r in rules], dtype=bool)
        return cls(
            proto_ok=proto_ok,
            sport_set=np.array([r.sport_set for r in rules], dtype=np.int64),
            dport_set=np.array([r.dport_set for r in rules], dtype=np.int64),
            bidir=np.array([r.bidirectional for r in rules], dtype=bool),
            replies=np.array([r.replies for r in rules], dtype=bool),
            direction=np.array([r.direction for r in rules], dtype=np.int8),
            established=np.array([r.established for r in rules], dtype=np.int8),
            frag=np.array([r.frag for r in rules], dtype=np.int8),
            any_proto=np.array([len(r.protocols) == 256 for r in rules], dtype=bool),
            stream=stream,
            reads_app=reads_app,
            detection_only=np.array([_detection_only(r) for r in rules], dtype=bool),
            flushed=np.nonzero(reads_app & (stream != STREAM_ONLY))[0],
        )


def _protocols(ctx: Any) -> tuple[str | None, str | None]:
    return getattr(ctx, "protocols", (None, None))


#: The detected-protocol fields: the flow's, and each direction's own.
_PROTOCOL_FIELDS = frozenset({"app.protocol", "app.protocol.to_server", "app.protocol.to_client"})
#: Flow options a protocol-detection-only rule may have: Suricata keeps a bare
#: direction as a signature flag, not as a test.
_DIRECTIONS = frozenset({"to_server", "to_client", "from_server", "from_client"})


def _detection_only(rule: CompiledRule) -> bool:
    """Whether a rule on a transport tests nothing but the detected protocol (no flow
    options but a direction, no payload): Suricata matches such a rule only on the
    packet that completed the flow's protocol detection (in the rule's direction,
    when it names one)."""
    r = rule.rule
    cond = r.condition
    if not set(r.header.flow) <= _DIRECTIONS or cond is None or rule.app_protocol is not None:
        return False
    parts = cond.operands if isinstance(cond, rules_ast.And) else (cond,)
    tests = [c.operand if isinstance(c, rules_ast.Not) else c for c in parts]
    return all(
        isinstance(c, rules_ast.Comparison) and c.field.name in _PROTOCOL_FIELDS for c in tests
    )


@dataclass(slots=True)
class _Loaded:
    ruleset: CompiledRuleset
    arrays: _RuleArrays
    stream_slow: list[int] = field(default_factory=list)  # slow-path stream-only rules
    has_stream_only: bool = False
    has_stream: bool = False
    reads_stream_size: bool = False  # some rule compares `stream.size.*`
    by_id: dict[tuple[int, int], CompiledRule] = field(default_factory=dict)  # (gid, sid)
    # the distinct (source, destination) port tables of the stream-only rules
    stream_only_ports: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    # rule index -> (severity, gid, references as text) for its alerts, made on first use
    alert_facts: dict[int, tuple[str, int, tuple[str, ...]]] = field(default_factory=dict)
    # every buffer and field some rule reads: what the inspector has to produce
    reads: frozenset[str] = frozenset()
    # per port set of the ruleset, whether it holds every port
    every_port: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @classmethod
    def of(cls, ruleset: CompiledRuleset) -> _Loaded:
        rules = ruleset.rules
        slow = [k for k in ruleset.slow_rules if rules[k].stream == STREAM_ONLY]
        only = any(r.stream == STREAM_ONLY for r in rules)
        sizes = any(
            f"stream.size.{side}" in r.fields
            for r in rules
            for side in ("client", "server", "both", "either")
        )
        by_id = {(r.rule.gid or 1, r.rule.id): r for r in rules}
        port_pairs = sorted({(r.sport_set, r.dport_set) for r in rules if r.stream == STREAM_ONLY})
        sets = ruleset.port_sets
        return cls(
            ruleset,
            _RuleArrays.build(rules),
            slow,
            only,
            any(r.stream for r in rules),
            sizes,
            by_id,
            [(sets[a], sets[b]) for a, b in port_pairs],
            reads=frozenset().union(*(r.buffers | r.fields for r in rules)),
            every_port=np.asarray(sets.all(axis=1), dtype=bool),
        )

    def stream_only_may_match(self, port_a: int, port_b: int) -> bool:
        """Whether a stream-only rule's ports admit a flow between `port_a` and
        `port_b`, in either direction."""
        return any(
            (src[port_a] and dst[port_b]) or (src[port_b] and dst[port_a])
            for src, dst in self.stream_only_ports
        )


@dataclass
class Matcher:
    """Matches a compiled ruleset against batches; keeps per-flow and rate state.

    `swap` installs a new ruleset between batches (hot reload): flowbits,
    thresholds and session state carry over, so no packet is dropped or
    evaluated twice.
    """

    ruleset: CompiledRuleset
    inspector: PacketInspector | None = None
    profile: bool = False
    ruleset_name: str | None = None
    midstream: bool = True  # a TCP flow picked up without its handshake can become established
    async_oneside: bool = False  # a TCP session seen from one side only can become established
    # Suricata's raw stream inspection: packet-payload rules also match the reassembled
    # stream of flows whose application protocol is unknown, and rules that mix them
    # with application buffers match the stream too; by default only pure payload
    # rules on flows of a detected protocol (Snort 3 reassembles for detection for the
    # services it knows). Without `async_oneside`, rules on the application protocol of
    # a TCP session seen from one side only then match when it ends (engine.match.onesided)
    raw_stream: bool = False
    # packets with a bad checksum: left out of inspection altogether (Snort), or only of
    # reassembly and application parsing, still matched as packets (Suricata, whose
    # stream engine ignores them while packet rules still see them)
    bad_checksum_packets: bool = False
    stats: MatcherStats = field(default_factory=MatcherStats)
    profiles: dict[int, RuleProfile] = field(default_factory=dict)
    # the worker this matcher is, when flows are sharded across workers
    # (`engine.match.workers`): thresholds and windows count matches of every shard, so
    # alerts of rules with them carry their inputs and the parent admits them in order
    shard: int | None = None

    def __post_init__(self) -> None:
        self._loaded = _Loaded.of(self.ruleset)
        self.sessions = SessionState(
            1024, midstream=self.midstream, async_oneside=self.async_oneside
        )
        self.bits = BitStore()
        self.thresholds = ThresholdState()
        self.windows = WindowState()
        self._one_sided = OneSidedSessions()
        # (flow slot, generation) -> client address, server address (text), Community ID
        self._ends: dict[tuple[int, int], tuple[str, str, str]] = {}
        self._inspected: dict[int, int] = {}  # flow slot -> generation the inspector knows
        # flow slot -> the latest generation that handed the inspector data (-1: none)
        self._with_data = np.full(1024, -1, dtype=np.int64)
        # flow slot -> the generation left out of inspection (-1: none), see `_inspect`
        self._left_out = np.full(1024, -1, dtype=np.int64)
        self._txs: dict[int, _Transaction] = {}  # flow slot -> current transaction
        # flow slot * 2 + direction (0 from the client) -> that direction's last
        # inspected row as (rows, index, established per row, link type): what an alert
        # on flushed buffers reports; rows are gathered into a compact copy after each
        # batch
        self._last: dict[int, tuple[np.ndarray, int, np.ndarray, int]] = {}
        self._flushed: list[Alert] = []  # alerts on buffers flushed while inspecting
        # TCP sequence space per flow slot: (generation, [client isn, client next, server
        # isn, server next]), and per (slot, packet) of the batch (client, server) sizes
        self._seq_space: dict[int, tuple[int, list[int]]] = {}
        self._stream_sizes: dict[tuple[int, int], tuple[int, int]] = {}
        # flow slot -> (generation, protocol) the inspector last reported for it
        self._detected: dict[int, tuple[int, str]] = {}
        self._detected_rows: set[int] = set()  # rows of this batch that detected a protocol
        # flow slot * 2 + direction (0 from the client) -> (generation, protocol) its own
        # data showed, and the rows of this batch at which a direction's protocol became
        # known
        self._detected_sides: dict[int, tuple[int, str]] = {}
        self._detected_side_rows: set[int] = set()
        self._told: object = None  # the inspector last told what the rules read

    def swap(self, ruleset: CompiledRuleset) -> None:
        """Use `ruleset` from the next batch on."""
        self._loaded = _Loaded.of(ruleset)
        self.ruleset = ruleset
        self._told = None

    # ------------------------------------------------------------------
    def scan(
        self,
        batch: PacketBatch,
        decoded: DecodedBatch,
        events: FlowEvents,
        bad_checksum: np.ndarray | None = None,
    ) -> list[Alert]:
        """Alerts raised by the rows of one batch, in row order (preceded by alerts on
        what earlier flows held back, flushed when their flow-table slot was reused)."""
        alerts = self._scan(batch, decoded, events, bad_checksum)
        if self._flushed:
            self.stats.alerts += len(self._flushed)
            alerts = self._flushed + alerts
            self._flushed = []
        return alerts

    def finish(self) -> list[Alert]:
        """At the end of the input: flush what every flow's inspector state still holds
        back (a body's last section, a head cut short), match it, and forget the flows.
        Alerts on flushed buffers carry no packet number (no packet carried them)."""
        if self.inspector is None:
            return []
        alerts: list[Alert] = []
        alerts += self._flushed  # one-sided sessions ended by `end_flows`
        self._flushed = []
        for slot in list(self._one_sided.pending):
            one = self._one_sided.end(slot)
            if one is not None:
                alerts += self._end_one_sided(slot, one)
        for slot in list(self.inspector.flows()):
            alerts += self._flush_flow(slot)
            self.inspector.end_flow(slot)
            self._forget_last(slot)
        self.stats.alerts += len(alerts)
        return alerts

    def _scan(
        self,
        batch: PacketBatch,
        decoded: DecodedBatch,
        events: FlowEvents,
        bad_checksum: np.ndarray | None = None,
    ) -> list[Alert]:
        loaded = self._loaded
        rs = loaded.ruleset
        rows = decoded.rows
        n = rows.shape[0]
        self.stats.rows += n
        if n == 0:
            return []
        row_flow = events.row_flow
        row_new = events.row_new if events.row_new.shape[0] == n else np.zeros(n, np.int8)
        est, gen, row_dir = self.sessions.update(
            row_flow, events.row_dir, row_new, rows["proto"], rows["tcp_flags"]
        )
        events = dataclasses.replace(events, row_dir=row_dir)
        usable = rows["kind"] == KIND_IP
        bad_rows = None
        if bad_checksum is not None:
            bad_rows = bad_checksum[rows["pkt"]]
            self.stats.checksum_skipped += int((usable & bad_rows).sum())
            if not self.bad_checksum_packets:
                usable &= ~bad_rows
        if self._loaded.reads_stream_size:
            counted = usable if bad_rows is None else usable & ~bad_rows
            self._track_stream_sizes(rows, counted, row_flow, row_dir, gen)
        pkt = rows["pkt"].astype(np.int64)
        base = batch.offsets[pkt]
        pstart = base + rows["payload_off"]
        avail = base + batch.caplens[pkt] - pstart
        plen = np.clip(np.minimum(rows["payload_len"], avail), 0, None)
        plen[~usable] = 0
        contexts: dict[int, _TxView] = {}
        if self.inspector is not None:
            inspect_plen = plen
            flow_of = row_flow
            if bad_rows is not None and self.bad_checksum_packets:
                # not reassembled or parsed: the inspector never sees them
                inspect_plen = np.where(bad_rows, 0, plen)
                flow_of = np.where(bad_rows, -1, row_flow)
            contexts, extras = self._inspect(
                batch, rows, flow_of, row_dir, gen, pstart, inspect_plen, est
            )
            if extras:
                # further transactions completed by one packet (pipelined requests)
                # become extra rows after the batch's own: a copy of their packet row
                # that only rules reading application buffers are evaluated on
                src = np.array([i for i, _ in extras], dtype=np.int64)
                rows = take_rows(rows, np.concatenate([np.arange(n), src]))
                usable = np.concatenate([usable, usable[src]])
                pstart = np.concatenate([pstart, pstart[src]])
                plen = np.concatenate([plen, plen[src]])
                est = np.concatenate([est, est[src]])
                gen = np.concatenate([gen, gen[src]])
                row_new = np.concatenate([row_new, row_new[src]])
                events = dataclasses.replace(
                    events,
                    row_flow=np.concatenate([row_flow, row_flow[src]]),
                    row_dir=np.concatenate([row_dir, row_dir[src]]),
                    row_new=row_new,
                )
                for j, (_, view) in enumerate(extras):
                    contexts[n + j] = view
        # the rows whose transaction view holds buffers (few), for the buffer prefilters
        buffered = [(r, v.buffers) for r, v in contexts.items() if v.buffers]
        cand_rows: list[np.ndarray] = []
        cand_rules: list[np.ndarray] = []
        db = rs.databases.get("pkt_data")
        if db is not None:
            r, k = self._prefilter_payloads(batch.data, pstart, plen, db, rows)
            cand_rows.append(r)
            cand_rules.append(k)
        for name, adb in rs.databases.items():
            if name == "pkt_data" or not contexts:
                continue
            r, k = self._prefilter_buffers(buffered, name, adb)
            cand_rows.append(r)
            cand_rules.append(k)
        if rs.slow_rules:
            r, k = self._slow_candidates(rs, rows, usable, plen, buffered, events.row_dir, est)
            cand_rows.append(r)
            cand_rules.append(k)
        if rs.address_index.size:
            live = np.nonzero(usable)[0]
            for side, col in (("src", "src"), ("dst", "dst")):
                addr = rows[col][live]
                r, k = rs.address_index.candidates(addr[:, 0], addr[:, 1], live, side)
                cand_rows.append(r)
                cand_rules.append(k)
        empty = np.zeros(0, np.int64)
        crow = np.concatenate(cand_rows) if cand_rows else empty
        crule = np.concatenate(cand_rules) if cand_rules else empty
        arrays = loaded.arrays
        if crow.shape[0]:
            keep = usable[crow] & (arrays.stream[crule] != STREAM_ONLY)
            keep &= (crow < n) | arrays.reads_app[crule]
            keep &= self._header_ok(arrays, rs, rows, crow, crule, events, est)
            crow = crow[keep]
            crule = crule[keep]
        if crow.shape[0]:
            keep = self._anchors_ok(rs, batch.data, crow, crule, pstart, plen)
            crow = crow[keep]
            crule = crule[keep]
        srow, srule = empty, empty
        if contexts and (rs.databases.get("pkt_data") is not None or loaded.stream_slow):
            srow, srule = self._stream_candidates(
                loaded, rows, usable, plen, contexts, events.row_dir, est
            )
        if contexts and crow.shape[0] and self.raw_stream:
            # a stream rule found through an application buffer is tried on the stream
            # too: its packet-payload literal may lie in earlier segments
            mixed = (arrays.stream[crule] != 0) & arrays.reads_app[crule] & (crow < n)
            if mixed.any():
                has_stream = np.zeros(rows.shape[0], dtype=bool)
                with_stream = [r for r, v in contexts.items() if v.stream is not None]
                has_stream[with_stream] = True
                mixed &= has_stream[crow]
                srow = np.concatenate([srow, crow[mixed]])
                srule = np.concatenate([srule, crule[mixed]])
        if crow.shape[0] and rs.confirm is not None:
            # after the stream candidates took theirs: a packet lacking a literal may
            # still complete the stream
            keep = _confirmed(rs.confirm, batch.data, crow, crule, pstart, plen)
            crow = crow[keep]
            crule = crule[keep]
        if srow.shape[0]:
            keep = self._header_ok(arrays, rs, rows, srow, srule, events, est)
            srow = srow[keep]
            srule = srule[keep]
        one_sided = self._one_sided_active()
        if one_sided:
            self._one_sided.begin(events.row_flow, gen, events.row_dir, rows["proto"])
        if crow.shape[0] == 0 and srow.shape[0] == 0:
            if one_sided:
                return self._track_one_sided(batch, rows[:n], pstart, plen, contexts)
            return []
        on_stream = np.concatenate(
            [np.zeros(crow.shape[0], np.int64), np.ones(srow.shape[0], np.int64)]
        )
        crow = np.concatenate([crow, srow])
        crule = np.concatenate([crule, srule])
        order = np.lexsort((on_stream, crule, crow))
        pairs = np.stack([crow[order], crule[order], on_stream[order]], axis=1)
        if pairs.shape[0] > 1:
            dup = np.all(pairs[1:] == pairs[:-1], axis=1)
            pairs = pairs[np.concatenate([[True], ~dup])]
        self.stats.candidates += int(pairs.shape[0])
        alerts = self._evaluate(batch, rows, pairs, events, est, gen, pstart, plen, contexts)
        if one_sided:
            alerts += self._track_one_sided(batch, rows[:n], pstart, plen, contexts)
        return alerts

    def _one_sided_active(self) -> bool:
        """Suricata's stream model (`raw_stream`) without `async_oneside`: application
        rules on a session seen from one side only match when it ends."""
        return self.inspector is not None and self.raw_stream and not self.async_oneside

    def _track_one_sided(
        self,
        batch: PacketBatch,
        rows: np.ndarray,
        pstart: np.ndarray,
        plen: np.ndarray,
        contexts: dict[int, _TxView],
    ) -> list[Alert]:
        """After a batch: alerts held for sessions whose other side appeared, and the
        end-of-flow match of one-sided sessions whose slot now holds another flow."""
        released, ended = self._one_sided.update(
            rows, batch.data, pstart, plen, contexts, batch.linktype
        )
        for slot, one in ended:
            released += self._end_one_sided(slot, one)
        self.stats.alerts += len(released)
        return released

    def _end_one_sided(self, slot: int, one: OneSided) -> list[Alert]:
        """A TCP session seen from one side only has ended: match the rules on its
        application protocol that read no application buffer once on everything that
        side sent, as Suricata does when it finally hands the never-acknowledged data
        to its application layer (the alerts carry no packet). Held alerts of rules
        reading application buffers stand: they were matched per transaction."""
        if one.row is None:
            return one.alerts
        loaded = self._loaded
        rs = loaded.ruleset
        reads_app = loaded.arrays.reads_app
        kept = []
        for a in one.alerts:
            rule = loaded.by_id.get((a.match.gid, a.match.rule_id))
            if rule is not None and reads_app[rule.index]:
                kept.append(a)
        app_rules = np.array(
            [
                r.index
                for r in rs.rules
                if r.app_protocol is not None and 6 in r.protocols and not reads_app[r.index]
            ],
            dtype=np.int64,
        )
        if not app_rules.shape[0] or one.app_proto is None:
            return kept
        events = FlowEvents(
            row_flow=np.array([slot], dtype=np.int64),
            row_dir=np.array([one.side], dtype=np.int8),
            created=0,
            ended=_NOTHING_ENDED,
        )
        crow = np.zeros(app_rules.shape[0], dtype=np.int64)
        ok = self._header_ok(
            loaded.arrays, rs, one.row, crow, app_rules, events, np.ones(1, np.uint8)
        )
        tx = self._txs.get(slot)
        packet = _Packet(
            self,
            None,
            _fields(one.row[0]),
            bytes(one.payload),
            slot,
            one.gen,
            one.side == 0,
            True,
            dict(tx.buffers) if tx is not None else {},
            one.app_proto,
        )
        alerts: list[Alert] = []
        for k in app_rules[ok].tolist():
            rule = rs.rules[k]
            app = rule.app_protocol
            if one.app_proto != _APP_ALIASES.get(app, app):
                continue
            if not self._addresses_ok(rule, packet) or not self._holds(rule, packet):
                continue
            alerting = self._matched(rule, packet)
            if alerting is None:
                break
            if alerting:
                alerts.append(self._alert(None, rule, packet, one.linktype))
        return kept + alerts

    def _stream_candidates(
        self,
        loaded: _Loaded,
        rows: np.ndarray,
        usable: np.ndarray,
        plen: np.ndarray,
        contexts: dict[int, _TxView],
        row_dir: np.ndarray,
        est: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(row, rule) pairs to evaluate on the reassembled stream of TCP rows.

        A row takes part when the inspector gave it new stream bytes (a RST's data
        does not count). A rule matched on packets and the stream is a candidate
        when its fast pattern spans the boundary between earlier bytes and the new
        ones (a pattern wholly inside a packet was tried on that packet); a
        stream-only rule when its fast pattern ends in the new bytes, or on every
        such row when it has none. Flows whose application protocol is unknown
        take only stream-only rules, unless `raw_stream`.
        """
        rs = loaded.ruleset
        arrays = loaded.arrays
        empty = np.zeros(0, np.int64)
        proto = rows["proto"]
        # data on a RST is not taken into the stream (Suricata's stream engine drops it)
        rst = (rows["tcp_flags"] & 0x04) != 0
        # (row, window, new bytes, whether stream-only rules alone are tried, payload)
        picked: list[tuple[int, bytes, int, bool, int]] = []
        # the rows' facts as lists, read in step with the views (see `_inspect`)
        at: list[int] = list(contexts)
        views: list[_TxView] = list(contexts.values())
        tcp: list[Any] = ((proto == 6) & usable & ~rst)[at].tolist()
        sizes: list[Any] = plen[at].tolist()
        for r, view, is_tcp, size in zip(at, views, tcp, sizes):  # noqa: B905
            data = view.stream
            if data is None or view.stream_new <= 0 or not is_tcp:
                continue
            same = view.stream_new == len(data) == size
            unknown = view.app_proto is None and not self.raw_stream
            picked.append((r, data, view.stream_new, same or unknown, size))
        if not picked:
            return empty, empty
        out_rows: list[np.ndarray] = []
        out_rules: list[np.ndarray] = []
        db = rs.databases.get("pkt_data")
        if db is not None and db.database is not None:
            hit_rows, hit_rules = self._stream_hits(loaded, db, picked)
            out_rows.append(hit_rows)
            out_rules.append(hit_rules)
        if loaded.stream_slow:
            mask = np.zeros(rows.shape[0], dtype=bool)
            slen = np.zeros(rows.shape[0], dtype=np.int64)
            for r, data, *_ in picked:
                mask[r] = True
                slen[r] = len(data)
            slow_rows, slow_rules = self._slow_candidates(
                rs, rows, mask, slen, [], row_dir, est, loaded.stream_slow
            )
            out_rows.append(slow_rows)
            out_rules.append(slow_rules)
        row = np.concatenate(out_rows) if out_rows else empty
        rule = np.concatenate(out_rules) if out_rules else empty
        if row.shape[0] == 0:
            return empty, empty
        only = np.zeros(rows.shape[0], dtype=bool)
        only[[r for r, _, _, alone, _ in picked if alone]] = True
        mode = arrays.stream[rule]
        keep = (mode == STREAM_ONLY) | ((mode == STREAM_ALSO) & ~only[row])
        return row[keep], rule[keep]

    def _stream_hits(
        self, loaded: _Loaded, db: Any, picked: list[tuple[int, bytes, int, bool, int]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fast-pattern hits ending in each row's new stream bytes, as (row, rule)
        pairs: for stream-only rules all of them, for the other stream rules those not
        wholly inside the packet's own payload (which leads the new bytes; more follow
        when it filled a hole). Repeated-byte patterns are not looked for here."""
        empty = np.zeros(0, np.int64)
        longest = int(db.lengths.max())
        windows: list[bytes] = []
        bounds: list[int] = []
        own: list[int] = []
        for _, data, new, _, payload in picked:
            b = len(data) - new  # first new byte
            lo = max(0, b - longest + 1)
            whole = loaded.has_stream_only or new > payload
            hi = len(data) if whole else min(len(data), b + longest - 1)
            windows.append(data[lo:hi])
            bounds.append(b - lo)
            own.append(b - lo + payload)
        lens = np.array([len(w) for w in windows], dtype=np.int64)
        cstart = np.zeros(lens.shape[0], dtype=np.int64)
        np.cumsum(lens[:-1], out=cstart[1:])
        blob = np.frombuffer(b"".join(windows), dtype=np.uint8)
        # a flood of hits stops the scan: the stream candidates found so far are kept
        found = db.database.hits(blob, 0, blob.shape[0], _HITS_PER_BUFFER * len(windows) + 1024)
        if found.ids.shape[0] == 0:
            return empty, empty
        pid = found.ids
        end = found.ends
        start = end - db.lengths[pid]
        seg = np.clip(np.searchsorted(cstart, start, side="right") - 1, 0, None)
        boundary = cstart[seg] + np.array(bounds, dtype=np.int64)[seg]
        own_end = cstart[seg] + np.array(own, dtype=np.int64)[seg]
        ok = (end <= cstart[seg] + lens[seg]) & (end > boundary)
        spans = ok & ((start < boundary) | (end > own_end))
        sel = np.array([r for r, *_ in picked], dtype=np.int64)
        rows, rules = _rule_pairs(sel, seg[spans], pid[spans], db)
        inside = ok & ~spans  # wholly inside the packet: stream-only rules alone
        only_rows, only_rules = _rule_pairs(sel, seg[inside], pid[inside], db)
        keep = loaded.arrays.stream[only_rules] == STREAM_ONLY
        return np.concatenate([rows, only_rows[keep]]), np.concatenate([rules, only_rules[keep]])

    # ------------------------------------------------------------------
    def _prefilter_payloads(
        self, data: np.ndarray, pstart: np.ndarray, plen: np.ndarray, db: Any, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        sel = np.nonzero(plen > 0)[0]
        if sel.shape[0] == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        routes: tuple[np.ndarray, ...] = ()
        if db.groups is not None:
            # each payload scanned with the databases of its protocol and ports: the
            # payloads sorted by them, so that each database scans one stretch
            first, second = db.groups.route(
                rows["proto"][sel], rows["sport"][sel], rows["dport"][sel]
            )
            order = np.lexsort((second, first))
            sel = sel[order]
            routes = (first[order], second[order])
        lens = plen[sel].astype(np.int64)
        # the payloads, concatenated and scanned in place
        arr, cstart = _gathered(data, pstart[sel].astype(np.int64), lens)
        return self._hits_to_candidates(arr, cstart, lens, sel, db, routes)

    def _hits_to_candidates(
        self,
        arr: np.ndarray,
        cstart: np.ndarray,
        lens: np.ndarray,
        sel: np.ndarray,
        db: Any,
        routes: tuple[np.ndarray, ...] = (),
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidate (row, rule) pairs from scans of the concatenated buffers
        (`_buffer_hits`) and the run-length kernel: one scan with `db.database`, or,
        given `routes` (arrays of port-group databases, -1 for none, by which the
        buffers are sorted), buffer `i` scanned with each `route[i]`."""
        seg_parts: list[np.ndarray] = []
        pid_parts: list[np.ndarray] = []
        if db.runs:
            for (pid, *_), seg in zip(
                db.runs, _segments_with_runs(arr, cstart, lens, db.runs), strict=True
            ):
                seg_parts.append(seg)
                pid_parts.append(np.full(seg.shape[0], pid, dtype=np.int64))
        spans = [] if routes else [(db.database, 0, cstart.shape[0])]
        for route in routes:
            starts = np.flatnonzero(np.diff(route)) + 1
            bounds = [0, *starts.tolist(), route.shape[0]]
            spans += [
                (db.groups.databases[g], lo, hi)
                for lo, hi in itertools.pairwise(bounds)
                if (g := int(route[lo])) >= 0
            ]
        for database, lo, hi in spans:
            if database is None:
                continue
            seg, pid, found = _buffer_hits(
                database, db.lengths, arr, cstart[lo:hi], lens[lo:hi], db.database
            )
            self.stats.prefilter_hits += found
            seg_parts.append(seg + lo)
            pid_parts.append(pid)
        if not seg_parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        seg, pid = np.concatenate(seg_parts), np.concatenate(pid_parts)
        if len(routes) > 1 and (routes[1] >= 0).any():
            # a pattern both scans of a buffer report gives its rules once: `_rule_pairs`
            # drops the repeats of a buffer's hits that come in buffer order
            order = np.argsort(seg, kind="stable")
            seg, pid = seg[order], pid[order]
        return _rule_pairs(sel, seg, pid, db)

    def _prefilter_buffers(
        self, buffered: list[tuple[int, dict[str, bytes]]], name: str, db: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        rows_with = [(r, buffers[name]) for r, buffers in buffered if name in buffers]
        if not rows_with:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        sel = np.array([r for r, _ in rows_with], dtype=np.int64)
        lens = np.array([len(b) for _, b in rows_with], dtype=np.int64)
        cstart = np.zeros(sel.shape[0], dtype=np.int64)
        np.cumsum(lens[:-1], out=cstart[1:])
        blob = np.frombuffer(b"".join(b for _, b in rows_with), dtype=np.uint8)
        return self._hits_to_candidates(blob, cstart, lens, sel, db)

    def _slow_candidates(
        self,
        rs: CompiledRuleset,
        rows: np.ndarray,
        usable: np.ndarray,
        plen: np.ndarray,
        buffered: list[tuple[int, dict[str, bytes]]],
        row_dir: np.ndarray,
        est: np.ndarray,
        only: list[int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(row, rule) candidates of the rules without a fast pattern (or those of
        `only`): the rows their protocols, ports (either way round), flow direction
        and established state admit, with the payload, buffers and row values they
        test; the exact header check follows (`_header_ok`)."""
        proto = rows["proto"]
        present: dict[str, np.ndarray] = {}

        def with_buffer(name: str) -> np.ndarray:
            got = present.get(name)
            if got is None:
                got = np.zeros(rows.shape[0], dtype=bool)
                idx = [r for r, buffers in buffered if name in buffers]
                got[idx] = True
                present[name] = got
            return got

        columns: dict[str, np.ndarray] = {"dsize": plen}
        # per protocol set its usable rows, with their ports; per header (protocols,
        # ports, both ways, flow direction, established state) the rows it admits: each
        # rule then filters only those (rules needing a payload start from the rows
        # with one: most rows are bare ACKs)
        by_protocols: dict[tuple[frozenset[int], bool], tuple[np.ndarray, ...]] = {}
        by_header: dict[tuple[frozenset[int], int, int, bool, bool, int, int], np.ndarray] = {}
        to_client = row_dir == 1
        established = est == 1
        with_payload = usable & (plen > 0)
        out_rows: list[np.ndarray] = []
        out_rules: list[np.ndarray] = []
        port_sets = rs.port_sets
        every_port = self._loaded.every_port
        # per (protocol set, payload), port set and port column: which of those rows'
        # ports the set holds (None: it holds every port), shared by the headers using it
        held: dict[tuple[tuple[frozenset[int], bool], int, int], np.ndarray] = {}

        def in_set(key: tuple[frozenset[int], bool], port_set: int, side: int) -> np.ndarray | None:
            if every_port[port_set]:
                return None
            got = held.get((key, port_set, side))
            if got is None:
                got = held[key, port_set, side] = port_sets[port_set][by_protocols[key][side]]
            return got

        for k in rs.slow_rules if only is None else only:
            rule = rs.rules[k]
            both = rule.bidirectional or rule.replies
            payload = rule.min_payload > 0
            header = (
                rule.protocols,
                rule.sport_set,
                rule.dport_set,
                both,
                payload,
                rule.direction,
                rule.established,
            )
            idx = by_header.get(header)
            if idx is None:
                base = by_protocols.get((rule.protocols, payload))
                if base is None:
                    admitted = with_payload if payload else usable
                    if len(rule.protocols) == 256:
                        live = np.nonzero(admitted)[0]
                    else:
                        wanted = np.zeros(256, dtype=bool)
                        wanted[sorted(rule.protocols)] = True
                        live = np.nonzero(admitted & wanted[proto])[0]
                    base = (live, rows["sport"][live], rows["dport"][live])
                    by_protocols[rule.protocols, payload] = base
                live = base[0]
                key = (rule.protocols, payload)
                # side 1 is the rows' source ports, side 2 their destination ports
                fwd = _both_ok(in_set(key, rule.sport_set, 1), in_set(key, rule.dport_set, 2))
                if both and fwd is not None:
                    back = _both_ok(in_set(key, rule.sport_set, 2), in_set(key, rule.dport_set, 1))
                    fwd = None if back is None else fwd | back
                idx = live if fwd is None else live[fwd]
                if rule.direction >= 0:
                    idx = idx[to_client[idx] == (rule.direction == 1)]
                if rule.established >= 0:
                    idx = idx[established[idx] == (rule.established == 1)]
                by_header[header] = idx
            if rule.min_payload and idx.shape[0]:
                idx = idx[plen[idx] >= rule.min_payload]
            for name in rule.needs_buffers:
                idx = idx[with_buffer(name)[idx]]
            for vt in rule.vector:
                if not idx.shape[0]:
                    break
                col = columns.get(vt.column)
                if col is None:
                    col = columns[vt.column] = rows[vt.column]
                idx = idx[vt.test(col[idx])]
            if idx.shape[0]:
                out_rows.append(idx)
                out_rules.append(np.full(idx.shape[0], k, dtype=np.int64))
        if not out_rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(out_rows), np.concatenate(out_rules)

    def _anchors_ok(
        self,
        rs: CompiledRuleset,
        data: np.ndarray,
        crow: np.ndarray,
        crule: np.ndarray,
        pstart: np.ndarray,
        plen: np.ndarray,
    ) -> np.ndarray:
        """Test every candidate's literals pinned by offset/depth and byte_tests at a
        fixed offset, with numpy."""
        keep = np.ones(crow.shape[0], dtype=bool)
        order = np.argsort(crule, kind="stable")
        sorted_rules = crule[order]
        bounds = np.flatnonzero(np.diff(sorted_rules)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [sorted_rules.shape[0]]])
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            rule = rs.rules[int(sorted_rules[a])]
            if not rule.anchors and not rule.byte_tests:
                continue
            idx = order[a:b]
            rows_k = crow[idx]
            ok = np.ones(idx.shape[0], dtype=bool)
            for offset, size, operator, value, bitmask, little, negated in rule.byte_tests:
                fits = plen[rows_k] >= offset + size
                base = pstart[rows_k] + offset
                number = np.zeros(idx.shape[0], dtype=np.int64)
                for i in range(size):
                    byte = data[np.where(fits, base + i, 0)].astype(np.int64)
                    number |= byte << np.int64(8 * (i if little else size - 1 - i))
                if bitmask:
                    number = (number & bitmask) >> ((bitmask & -bitmask).bit_length() - 1)
                ok &= fits & (COMPARE[operator](number, value) != negated)
            for offset, depth, literal, nocase in rule.anchors:
                n = len(literal)
                any_pos = np.zeros(idx.shape[0], dtype=bool)
                for shift in range(depth - n + 1):
                    at = offset + shift
                    fits = plen[rows_k] >= at + n
                    here = fits.copy()
                    base = pstart[rows_k] + at
                    for i, want in enumerate(literal):
                        got = data[np.where(fits, base + i, 0)]
                        if nocase:
                            got = _FOLD[got]
                        here &= got == want
                    any_pos |= here
                ok &= any_pos
            keep[idx] = ok
        return keep

    def _header_ok(
        self,
        arrays: _RuleArrays,
        rs: CompiledRuleset,
        rows: np.ndarray,
        crow: np.ndarray,
        crule: np.ndarray,
        events: FlowEvents,
        est: np.ndarray,
    ) -> np.ndarray:
        ok = np.empty(crow.shape[0], dtype=np.bool_)
        header_kernel(
            crow,
            crule,
            rows,
            events.row_dir,
            est,
            arrays.proto_ok,
            arrays.sport_set,
            arrays.dport_set,
            arrays.bidir,
            arrays.replies,
            arrays.direction,
            arrays.established,
            arrays.frag,
            arrays.any_proto,
            rs.port_sets,
            F_FRAGMENT,
            F_LATER_FRAGMENT,
            ok,
        )
        return ok

    # ------------------------------------------------------------------
    def _track_stream_sizes(
        self,
        rows: np.ndarray,
        counted: np.ndarray,
        row_flow: np.ndarray,
        row_dir: np.ndarray,
        gen: np.ndarray,
    ) -> None:
        """Suricata's `stream_size`: per TCP row, the sequence space each side has used
        so far (its next expected sequence number minus its initial one: the SYN plus
        the bytes sent in order), the packet itself included."""
        self._stream_sizes = {}
        idx = np.nonzero(counted & (rows["proto"] == 6) & (row_flow >= 0))[0]
        space = self._seq_space
        for slot, g, d, flags, seq, size, pkt in zip(
            row_flow[idx].tolist(),
            gen[idx].tolist(),
            row_dir[idx].tolist(),
            rows["tcp_flags"][idx].tolist(),
            rows["tcp_seq"][idx].tolist(),
            rows["payload_len"][idx].tolist(),
            rows["pkt"][idx].tolist(),
            strict=True,
        ):
            known = space.get(slot)
            if known is None or known[0] != g:
                known = (g, [-1, 0, -1, 0])
                space[slot] = known
            seqs = known[1]
            at = 0 if d == 0 else 2
            if flags & 0x02:  # SYN or SYN-ACK: the side's initial sequence number
                seqs[at] = seq
                seqs[at + 1] = (seq + 1) & 0xFFFFFFFF
            elif seqs[at] < 0:  # picked up mid-stream: as if its SYN came just before
                seqs[at] = (seq - 1) & 0xFFFFFFFF
                seqs[at + 1] = seq
            end = (seq + size + (1 if flags & 0x01 else 0)) & 0xFFFFFFFF
            # in order (or overlapping the next byte): the side's next sequence moves on
            ahead = (end - seqs[at + 1]) & 0xFFFFFFFF
            behind = (seqs[at + 1] - seq) & 0xFFFFFFFF
            if 0 < ahead < 1 << 31 and behind < 1 << 31:
                seqs[at + 1] = end
            client = (seqs[1] - seqs[0]) & 0xFFFFFFFF if seqs[0] >= 0 else 0
            server = (seqs[3] - seqs[2]) & 0xFFFFFFFF if seqs[2] >= 0 else 0
            self._stream_sizes[(slot, pkt)] = (client, server)

    def _inspect(
        self,
        batch: PacketBatch,
        rows: np.ndarray,
        row_flow: np.ndarray,
        row_dir: np.ndarray,
        gen: np.ndarray,
        pstart: np.ndarray,
        plen: np.ndarray,
        est: np.ndarray,
    ) -> tuple[dict[int, _TxView], list[tuple[int, _TxView]]]:
        """Per inspected row its transaction view; and (row, view) for each further
        transaction a row completed (`PacketContext.more`), in order."""
        assert self.inspector is not None
        if self._told is not self.inspector:
            reads = getattr(self.inspector, "reads", None)
            if reads is not None:  # it may leave out parsing whose buffers no rule reads
                reads(self._loaded.reads)
            self._told = self.inspector
        out: dict[int, _TxView] = {}
        extras: list[tuple[int, _TxView]] = []
        # only packets with payload, FIN or RST reach the inspector: an empty ACK or SYN
        # adds nothing to reassembly or the parsers, and a flow's first inspected packet
        # is flagged new by its generation, so a reused slot starts afresh
        proto = rows["proto"]
        seen = self._inspected
        flow_key = row_flow << 32 | gen
        data = (proto == 6) & (plen > 0)
        wanted = (row_flow >= 0) & (data | (proto == 6) & ((rows["tcp_flags"] & 0x05) != 0))
        # a FIN or RST without data, of a flow that never handed data over: the inspector
        # holds nothing for it, so only its first packet in its slot, and that only to
        # end what the slot's earlier flow held (`reset`: the inspector gets `end_flow`
        # for these rows instead of the packet)
        bare = np.nonzero(wanted & ~data)[0]
        reset = np.zeros(rows.shape[0], dtype=bool)
        if bare.shape[0]:
            had = self._with_data
            known = row_flow[bare] < had.shape[0]
            held = known & (had[np.where(known, row_flow[bare], 0)] == gen[bare])
            held |= np.isin(flow_key[bare], flow_key[data])
            lone = bare[~held]
            self._first_only(wanted, lone, flow_key)
            # a SYN among them is handed over: its sequence number anchors reassembly
            reset[lone] = wanted[lone] & ((rows["tcp_flags"][lone] & 0x02) == 0)
        udp = (proto == 17) & (plen > 0) & (row_flow >= 0)
        ports = getattr(self.inspector, "udp_ports", None)
        if ports is not None:
            # UDP the inspector does not parse: only a flow's first packet in its slot,
            # which only ends what the slot held
            parsed = np.zeros(65536, dtype=bool)
            parsed[list(ports)] = True
            other = np.nonzero(udp & ~(parsed[rows["sport"]] | parsed[rows["dport"]]))[0]
            if other.shape[0]:
                self._first_only(udp, other, flow_key)
                reset[other] = udp[other]
        wanted |= udp
        # TCP flows of no detected protocol that no stream-only rule's ports admit: the
        # inspector would only reassemble their bytes, which no rule would read (see
        # `_leave_out`)
        left_out = self._left_out
        known = (row_flow >= 0) & (row_flow < left_out.shape[0])
        wanted &= ~(known & (left_out[np.where(known, row_flow, 0)] == gen))
        with_data = np.nonzero(wanted & data)[0]
        if with_data.shape[0]:
            self._note_data(row_flow[with_data], gen[with_data])
        idx = np.nonzero(wanted)[0]
        mv = memoryview(batch.data.data)
        packet = self.inspector.packet
        # Shrike's own inspector is called directly: compiled, that skips parsing ten
        # arguments through the method's Python entry point for every packet
        own_inspector = self.inspector if isinstance(self.inspector, Inspector) else None
        # the columns as lists iterated in step by a plain `zip` (all are as long as
        # `idx`): compiled, such a loop indexes the lists, where `zip(strict=True)`
        # would build a 13-tuple per packet. Typed `Any`, not `int`: compiled, an
        # `int` item would be boxed afresh for each dict lookup and call it goes to
        at: list[Any] = idx.tolist()
        slots: list[Any] = row_flow[idx].tolist()
        gens: list[Any] = gen[idx].tolist()
        to_servers: list[Any] = (row_dir[idx] == 0).tolist()
        protos: list[Any] = proto[idx].tolist()
        sports: list[Any] = rows["sport"][idx].tolist()
        dports: list[Any] = rows["dport"][idx].tolist()
        flags: list[Any] = rows["tcp_flags"][idx].tolist()
        seqs: list[Any] = rows["tcp_seq"][idx].tolist()
        starts: list[Any] = pstart[idx].tolist()
        lengths: list[Any] = plen[idx].tolist()
        stamps: list[Any] = rows["ts"][idx].tolist()
        resets: list[Any] = reset[idx].tolist()
        last = self._last
        linktype = batch.linktype
        keep_rows = bool(self._loaded.arrays.reads_app.any())
        flows_i = row_flow[idx]
        self._detected_rows = set()
        self._detected_side_rows = set()
        detected = self._detected
        sides = self._detected_sides
        # per slot * 2 + direction, its last inspected row in this batch so far
        batch_last: dict[int, int] = {}
        undetected = getattr(self.inspector, "undetected", None)
        if self.raw_stream:
            undetected = None  # stream rules of every kind match unknown flows' streams
        settled: dict[int, int] = {}  # slot -> generation left out from here on
        end_flow = self.inspector.end_flow
        for i, slot, g, to_server, pr, sp, dp, fl, seq, s, n, ts, only_reset in zip(  # noqa: B905
            at, slots, gens, to_servers, protos, sports, dports, flags, seqs, starts, lengths,
            stamps, resets,
        ):  # fmt: skip
            if settled and settled.get(slot) == g:
                continue
            fresh = seen.get(slot) != g
            if fresh:
                if slot in seen and keep_rows:
                    # the slot's earlier flow ended: match what it still held back, on
                    # its last rows (in this batch, or kept from an earlier one)
                    for side in (slot * 2, slot * 2 + 1):
                        r = batch_last.get(side, -1)
                        if r >= 0:
                            last[side] = (rows[r : r + 1], 0, est[r : r + 1], linktype)
                    self._flushed += self._flush_flow(slot)
                seen[slot] = g
                last.pop(slot * 2, None)
                last.pop(slot * 2 + 1, None)
            if keep_rows:
                batch_last[slot * 2 + (0 if to_server else 1)] = i
            if only_reset:
                if fresh:
                    end_flow(slot)
                    self._txs.pop(slot, None)
                continue
            payload = mv[s : s + n].tobytes()
            ctx: Any  # another inspector's contexts need only look like a PacketContext
            if own_inspector is not None:
                ctx = own_inspector.packet(slot, fresh, to_server, pr, sp, dp, fl, seq, payload, ts)
            else:
                ctx = packet(slot, fresh, to_server, pr, sp, dp, fl, seq, payload, ts)
            view = out[i] = self._transaction(slot, fresh, ctx)
            app = view.app_proto
            if app is not None:
                was = detected.get(slot)
                if was is None or was[0] != g or was[1] != app:
                    # the flow's protocol became known, or changed (HTTP/2 found to
                    # carry DNS)
                    detected[slot] = (g, app)
                    self._detected_rows.add(i)
            own = view.protocols[0 if to_server else 1]
            if own is not None:
                side = slot * 2 + (0 if to_server else 1)
                was = sides.get(side)
                if was is None or was[0] != g or was[1] != own:
                    sides[side] = (g, own)
                    self._detected_side_rows.add(i)
            for more in getattr(ctx, "more", ()):
                extras.append((i, self._transaction(slot, False, _More(ctx.app_proto, more))))
            if (
                undetected is not None
                and pr == 6
                and ctx.app_proto is None
                and undetected(slot)
                and not self._loaded.stream_only_may_match(sp, dp)
            ):
                settled[slot] = g
        if settled:
            self._leave_out(settled)
        if keep_rows and idx.shape[0]:
            # keep a copy of each flow direction's last inspected row (not the batch)
            key = flows_i.astype(np.int64) * 2 + (row_dir[idx] != 0)
            current = np.array([seen[sl] for sl in flows_i.tolist()], dtype=np.int64)
            live = gen[idx] == current  # not rows of a flow whose slot was since reused
            key, pos = key[live], idx[live]
            uniq, first = np.unique(key[::-1], return_index=True)
            where = pos[::-1][first]
            kept_rows, kept_est = take_rows(rows, where), est[where]
            for k, side in enumerate(uniq.tolist()):
                last[side] = (kept_rows, k, kept_est, linktype)
        return out, extras

    def _first_only(self, wanted: np.ndarray, rows: np.ndarray, flow_key: np.ndarray) -> None:
        """Of `rows` (of flows whose packets the inspector has no use for), keep in
        `wanted` only the first of each flow, and only if it is new to its slot: there
        the inspector forgets what the slot's earlier flow held."""
        wanted[rows] = False
        firsts = rows[np.unique(flow_key[rows], return_index=True)[1]]
        seen = self._inspected
        wanted[firsts] = [seen.get(k >> 32) != (k & 0xFFFFFFFF) for k in flow_key[firsts].tolist()]

    def _leave_out(self, flows: dict[int, int]) -> None:
        """Stop handing the inspector the packets of these flows (slot -> generation),
        whose protocol detection gave up, and free what it holds for them.

        Only stream-only rules read an unknown protocol's stream (unless `raw_stream`),
        and none admits their ports; the inspector would parse nothing. A flow left out
        stays out until it ends, across a reload.
        """
        assert self.inspector is not None
        top = max(flows)
        if top >= self._left_out.shape[0]:
            grown = np.full(max(top + 1, 2 * self._left_out.shape[0]), -1, dtype=np.int64)
            grown[: self._left_out.shape[0]] = self._left_out
            self._left_out = grown
        for slot, g in flows.items():
            if self._inspected.get(slot) == g:  # not since reused by another flow
                self.inspector.end_flow(slot)
                self._txs.pop(slot, None)
                self._left_out[slot] = g
                self.stats.left_out_flows += 1

    def _note_data(self, slots: np.ndarray, gens: np.ndarray) -> None:
        """Remember, per flow slot, the latest generation that handed the inspector data."""
        had = self._with_data
        top = int(slots.max())
        if top >= had.shape[0]:
            grown = np.full(max(top + 1, 2 * had.shape[0]), -1, dtype=np.int64)
            grown[: had.shape[0]] = had
            self._with_data = had = grown
        np.maximum.at(had, slots, gens)

    def _flush_flow(self, slot: int) -> list[Alert]:
        """Match the buffers the inspector still holds for the flow in `slot` against
        the rules reading application buffers, on that direction's last row."""
        assert self.inspector is not None
        flush = getattr(self.inspector, "flush", None)
        last = self._last
        if flush is None or (slot * 2 not in last and slot * 2 + 1 not in last):
            return []
        loaded = self._loaded
        rs = loaded.ruleset
        app_rules = loaded.arrays.flushed
        alerts: list[Alert] = []
        for ctx in flush(slot):
            if not ctx.buffers and not getattr(ctx, "more", ()):
                continue
            views = [self._transaction(slot, False, ctx)]
            views += [self._transaction(slot, False, _More(ctx.app_proto, m)) for m in ctx.more]
            d = 0 if ctx.to_server else 1
            kept = last.get(slot * 2 + d)
            if kept is None or not app_rules.shape[0]:
                continue
            held, at, est_of, linktype = kept
            values = _fields(held[at])
            est = bool(est_of[at])
            one = held[at : at + 1]
            events = FlowEvents(
                row_flow=np.array([slot], dtype=np.int64),
                row_dir=np.array([d], dtype=np.int8),
                created=0,
                ended=_NOTHING_ENDED,
            )
            crow = np.zeros(app_rules.shape[0], dtype=np.int64)
            ok = self._header_ok(
                loaded.arrays, rs, one, crow, app_rules, events, np.array([int(est)], np.uint8)
            )
            gen = self._inspected.get(slot, 0)
            for view in views:
                if not view.buffers:
                    continue
                packet = _Packet(
                    self, None, values, b"", slot, gen, d == 0, est, view.buffers, view.app_proto
                )
                for k in app_rules[ok].tolist():
                    rule = rs.rules[k]
                    app = rule.app_protocol
                    if app is not None and not _app_ok(app, view.app_proto):
                        continue
                    if not self._addresses_ok(rule, packet):
                        continue
                    if rule.required and not packet.has_literals(rule.required):
                        continue
                    if rule.index in view.tx.fired or not self._holds(rule, packet):
                        continue
                    view.tx.fired.add(rule.index)
                    alerting = self._matched(rule, packet)
                    if alerting is None:
                        break
                    if alerting:
                        alerts.append(self._alert(None, rule, packet, linktype, view))
        return alerts

    def _transaction(self, slot: int, fresh: bool, ctx: Any) -> _TxView:
        """The buffers of the transaction this packet adds to.

        The inspector hands over each buffer at the packet that completes it (the
        method with the request line, the cookie with the headers, the body later);
        a rule reads a whole transaction, as Suricata's detection state does, so
        buffers accumulate per flow until the next request starts one afresh.
        """
        tx = self._txs.get(slot)
        if fresh or tx is None:
            tx = _Transaction()
            self._txs[slot] = tx
        app: str | None
        new: dict[str, bytes]
        stream: bytes | None
        if isinstance(ctx, PacketContext):  # read natively when compiled
            app, new, stream, stream_new, protocols = (
                ctx.app_proto,
                ctx.buffers,
                ctx.stream,
                ctx.stream_new,
                ctx.protocols,
            )
        else:  # another inspector's context, or a further transaction (`_More`)
            app, new = ctx.app_proto, ctx.buffers
            stream = getattr(ctx, "stream", None)
            stream_new = getattr(ctx, "stream_new", 0)
            protocols = _protocols(ctx)
        if stream is not None:
            if (
                stream_new <= 0
                or not self._loaded.has_stream
                or (app is None and not self.raw_stream and not self._loaded.has_stream_only)
            ):
                stream = None
            elif len(stream) > stream_new + STREAM_CONTEXT:
                stream = stream[-(stream_new + STREAM_CONTEXT) :]
        if not new:
            return _TxView(app, {}, tx, stream, stream_new, protocols)
        if any(name in new for name in _TX_START):
            tx = _Transaction(tx.number + 1)
            self._txs[slot] = tx
        tx.buffers.update(new)
        raw_head = new.get("http.header.raw")
        if raw_head is not None:
            response = "http.stat_code" in new or "http.response_line" in new
            name = "http.response_header" if response else "http.request_header"
            tx.buffers[name] = header_lines(raw_head)
        return _TxView(app, dict(tx.buffers), tx, stream, stream_new, protocols)

    def _evaluate(
        self,
        batch: PacketBatch,
        rows: np.ndarray,
        pairs: np.ndarray,
        events: FlowEvents,
        est: np.ndarray,
        gen: np.ndarray,
        pstart: np.ndarray,
        plen: np.ndarray,
        contexts: dict[int, _TxView],
    ) -> list[Alert]:
        """Evaluate (row, rule, on_stream) candidates in row order, then rule order; a
        rule is tried on a row's stream only when it did not match the packet itself."""
        rs = self._loaded.ruleset
        alerts: list[Alert] = []
        detection_only = self._loaded.arrays.detection_only
        current = -1
        packet: _Packet | None = None
        stream_view: _Packet | None = None
        matched: set[int] = set()
        passed = False
        # per candidate its row's facts, as lists read in step (see `_inspect`)
        at = pairs[:, 0]
        pair_rows: list[Any] = at.tolist()
        pair_rules: list[Any] = pairs[:, 1].tolist()
        pair_streams: list[Any] = pairs[:, 2].tolist()
        begin = pstart[at]
        starts: list[Any] = begin.tolist()
        stops: list[Any] = (begin + plen[at]).tolist()
        slots: list[Any] = events.row_flow[at].tolist()
        gens: list[Any] = gen[at].tolist()
        to_servers: list[Any] = (events.row_dir[at] == 0).tolist()
        ests: list[Any] = (est[at] != 0).tolist()
        for r, k, on_stream, s, e, slot, g, to_server, established in zip(  # noqa: B905
            pair_rows, pair_rules, pair_streams, starts, stops, slots, gens, to_servers, ests
        ):
            if r != current:
                current = r
                passed = False
                stream_view = None
                matched = set()
                ctx = contexts.get(r)
                packet = _Packet(
                    self,
                    batch,
                    _fields(rows[r]),
                    batch.data[s:e].tobytes(),
                    slot,
                    g,
                    to_server,
                    established,
                    ctx.buffers if ctx is not None else {},
                    ctx.app_proto if ctx is not None else None,
                )
                if ctx is not None:
                    packet.protocols = _protocols(ctx)
            assert packet is not None
            if passed:
                continue
            rule = rs.rules[k]
            if detection_only[k] and r not in (
                self._detected_side_rows if rule.direction >= 0 else self._detected_rows
            ):
                continue
            target = packet
            if on_stream:
                if k in matched:
                    continue
                if stream_view is None:
                    window = contexts[r].stream
                    assert window is not None  # stream candidates are rows with a stream
                    stream_view = packet.with_payload(window)
                target = stream_view
            app = rule.app_protocol
            if app is not None and not _app_ok(app, packet.app_proto):
                continue
            if app is not None and packet.app_proto is None and not rule.buffers:
                # a rule on an application protocol with no payload to match waits
                # for the protocol to be detected
                continue
            if not self._addresses_ok(rule, packet):
                continue
            # the candidate came from its fast pattern's hit on this target's buffer (or
            # has none): the other literals are left to check
            if rule.confirm and not target.has_literals(rule.confirm):
                continue
            if not self._holds(rule, target):
                continue
            if (
                on_stream
                and not rule.buffers - {"pkt_data"}
                and not self._new_in_stream(rule, packet, contexts[r])
            ):
                continue
            matched.add(k)
            ctx_r = contexts.get(r)
            if ctx_r is not None and rule.buffers - {"pkt_data"} and ctx_r.buffers:
                if rule.index in ctx_r.tx.fired:
                    continue
                ctx_r.tx.fired.add(rule.index)
            alerting = self._matched(rule, packet)
            if alerting is None:
                passed = True
                continue
            if not alerting:
                continue
            alert = self._alert(batch, rule, packet, view=ctx_r)
            if (
                app is not None
                and packet.slot >= 0
                and self._one_sided_active()
                and packet.values[_AT_PROTO] == 6
                and not self._one_sided.other_side_seen(r)
            ):
                # a session seen from one side so far: held until its other side shows
                self._one_sided.hold(packet.slot, packet.gen, 0 if packet.to_server else 1, alert)
                continue
            alerts.append(alert)
        self.stats.alerts += len(alerts)
        return alerts

    def _holds(self, rule: CompiledRule, target: _Packet) -> bool:
        self.stats.evaluations += 1
        if not self.profile:
            return bool(rule.predicate(target, Scratch()))
        t0 = time.perf_counter_ns()
        hit = bool(rule.predicate(target, Scratch()))
        prof = self.profiles.setdefault(rule.rule.id, RuleProfile())
        prof.ns += time.perf_counter_ns() - t0
        prof.checks += 1
        if hit:
            prof.matches += 1
        return hit

    @staticmethod
    def _new_in_stream(rule: CompiledRule, packet: _Packet, view: _TxView) -> bool:
        """Whether a stream match needs this packet's new bytes: the rule does not hold
        on the window as it was before them (it alerted then, or would have)."""
        assert view.stream is not None
        before = view.stream[: len(view.stream) - view.stream_new]
        if not before:
            return True
        return not rule.predicate(packet.with_payload(before), Scratch())

    def _addresses_ok(self, rule: CompiledRule, p: _Packet) -> bool:
        if rule.src is None and rule.dst is None:
            return True
        s = p.src_int()
        d = p.dst_int()
        if rule.replies and not p.to_server:  # a reply: the header's ends swap places
            s, d = d, s
        fwd = (rule.src is None or s in rule.src) and (rule.dst is None or d in rule.dst)
        if fwd or not rule.bidirectional:
            return fwd
        return (rule.src is None or d in rule.src) and (rule.dst is None or s in rule.dst)

    def _matched(self, rule: CompiledRule, p: _Packet) -> bool | None:
        """A rule matched `p`: count it and apply its flowbits and flowints. None for a
        pass rule (the packet's later rules are not tried); otherwise whether it
        alerts (not `noalert`, and within its thresholds)."""
        self.stats.matches += 1
        self._apply_bits(rule, p)
        if rule.rule.action == "pass":
            return None
        return not rule.noalert and self._rate_ok(rule, p)

    def _apply_bits(self, rule: CompiledRule, p: _Packet) -> None:
        if rule.rule.int_actions and p.slot >= 0:
            values = self.bits.flow_ints(p.slot, p.gen)
            for change in rule.rule.int_actions:
                self.bits.change_int(values, change)
        for action in rule.rule.bit_actions:
            if action.action == "noalert":
                continue
            if action.kind == "flowbits":
                if p.slot < 0:
                    continue
                bits = self.bits.flow_bits(p.slot, p.gen)
                for name in action.names:
                    if action.action in ("set", "setx"):
                        bits.add(name)
                    elif action.action == "unset":
                        bits.discard(name)
                    elif action.action == "toggle":
                        bits.symmetric_difference_update({name})
                if action.action == "reset":
                    bits.clear()
            else:
                track = action.track or "ip_src"
                key = p._track_key(track)
                for name in action.names:
                    if action.action in ("set", "setx"):
                        self.bits.set_host_bit(track, key, name, p.ts, action.expire)
                    elif action.action == "unset":
                        self.bits.unset_host_bit(track, key, name)
                    elif action.action == "toggle":
                        if name in self.bits.host_bits(track, key, p.ts):
                            self.bits.unset_host_bit(track, key, name)
                        else:
                            self.bits.set_host_bit(track, key, name, p.ts, action.expire)

    def _rate_ok(self, rule: CompiledRule, p: _Packet) -> bool:
        r = rule.rule
        if not r.thresholds and r.window is None:
            return True
        if self.shard is not None:
            return True  # decided by the parent (`admit`), from the alert's `rate`
        return self._rate_allows(r, self._rate_inputs(r, p), p.ts)

    def _rate_inputs(self, r: rules_ast.Rule, p: _Packet) -> RateInputs:
        keys: list[tuple[Hashable, Hashable]] = []
        for th in r.thresholds:
            if th.track == "src":
                key: Hashable = p.src_int()
            elif th.track == "dst":
                key = p.dst_int()
            elif th.track == "both":
                key = (p.src_int(), p.dst_int())
            elif th.track == "flow" and p.slot >= 0:
                key = ("flow", self.shard, p.slot, p.gen)
            else:
                key = None
            keys.append((key, p.field(th.unique) if th.unique is not None else None))
        w = r.window
        window = None
        if w is not None:
            agg = w.aggregate
            window = (
                tuple(p.field(f.name) for f in w.group_by),
                p.field(agg.field.name) if agg.field is not None else None,
            )
        return tuple(keys), window

    def _rate_allows(self, r: rules_ast.Rule, inputs: RateInputs, ts: float) -> bool:
        keys, window = inputs
        for i, (th, (key, value)) in enumerate(zip(r.thresholds, keys, strict=True)):
            if not self.thresholds.allow(r.id, i, th, key, ts, value):
                return False
        if window is not None and r.window is not None:
            return self.windows.observe(r.id, r.window, window[0], window[1], ts)
        return True

    def admit(self, alert: Alert) -> bool:
        """Whether an alert from a shard's matcher stands: its rule's thresholds and
        windows, counted here over the alerts of every shard in capture order."""
        if alert.rate is None:
            return True
        m = alert.match
        rule = self._loaded.by_id.get((m.gid, m.rule_id))
        if rule is None:  # the running rules no longer hold it (a reload): as it came
            return True
        return self._rate_allows(rule.rule, alert.rate, m.ts)

    def _alert(
        self,
        batch: PacketBatch | None,
        rule: CompiledRule,
        p: _Packet,
        linktype: int = 1,
        view: _TxView | None = None,
    ) -> Alert:
        """The alert for `rule` on `p` (no batch: on buffers flushed at a flow's end);
        `view` names the transaction a rule reading application buffers matched."""
        row = p.values
        pkt = int(row[_AT_PKT])
        sport = int(row[_AT["sport"]])
        dport = int(row[_AT["dport"]])
        proto = int(row[_AT_PROTO])
        if proto in (1, 58):
            sport, dport = int(row[_AT["icmp_type"]]), int(row[_AT["icmp_code"]])
        # the flow's ports, client first
        cport, srv_port = (sport, dport) if p.to_server else (dport, sport)
        flow_id = (p.slot, p.gen)
        ends = self._ends.get(flow_id) if p.slot >= 0 else None
        if ends is None:
            # Python ints: the halves of an IPv6 address do not fit one numpy integer.
            src, dst = row[_AT_SRC], row[_AT_DST]
            src_halves = (int(src[0]), int(src[1]))
            dst_halves = (int(dst[0]), int(dst[1]))
            client, server = (src_halves, dst_halves) if p.to_server else (dst_halves, src_halves)
            ends = (
                ip_text(*client),
                ip_text(*server),
                community_id(ip_bytes(*client), ip_bytes(*server), proto, cport, srv_port),
            )
            if p.slot >= 0:
                if len(self._ends) > 100_000:
                    self._ends.clear()
                self._ends[flow_id] = ends
        client_ip, server_ip, cid = ends
        src, dst = (client_ip, server_ip) if p.to_server else (server_ip, client_ip)
        r = rule.rule
        facts = self._loaded.alert_facts.get(rule.index)
        if facts is None:
            facts = self._loaded.alert_facts[rule.index] = (
                r.severity or _SEVERITY_BY_PRIORITY.get(r.priority or 0, "medium"),
                r.gid or 1,
                tuple(f"{ref.kind},{ref.value}" for ref in r.references),
            )
        severity, gid, references = facts
        match = Match(
            ts=p.ts,
            flow=FlowKey(client_ip, cport, server_ip, srv_port, proto, cid),
            rule_id=r.id,
            title=r.title,
            severity=severity,
            rev=r.rev,
            gid=gid,
            classtype=r.classtype,
            priority=r.priority,
            techniques=r.techniques,
            tactics=r.tactics,
            references=references,
            app_proto=p.app_proto,
            packet=batch.packet_number(pkt) if batch is not None else None,
            action=r.action,
            ruleset=self.ruleset_name,
        )
        link = batch.linktype if batch is not None else linktype
        raw = b""
        if batch is not None:
            start = int(batch.offsets[pkt])
            stop = start + int(batch.caplens[pkt])
            raw = batch.data[start + int(row[_AT["link_off"]]) : stop].tobytes()
        tx_id = None
        tx_buffers = None
        if view is not None and rule.buffers - {"pkt_data"} and view.tx.number >= 0:
            tx_id = view.tx.number
            tx_buffers = view.buffers
        rate = None
        if self.shard is not None and (r.thresholds or r.window is not None):
            rate = self._rate_inputs(r, p)
        return Alert(
            match,
            src,
            sport,
            dst,
            dport,
            proto,
            p.to_server,
            link,
            int(row[_AT["vlan"]]),
            raw,
            tx_id,
            tx_buffers,
            rate,
        )

    def end_flows(self, slots: np.ndarray) -> None:
        """Tell the inspector that these flows ended (their slots may be reused)."""
        if self.inspector is not None:
            for s in slots.tolist():
                self.inspector.end_flow(int(s))
                self._forget_last(int(s))
        for s in slots.tolist():
            one = self._one_sided.end(int(s))
            if one is not None:
                self._flushed += self._end_one_sided(int(s), one)

    def _forget_last(self, slot: int) -> None:
        self._last.pop(slot * 2, None)
        self._last.pop(slot * 2 + 1, None)

    def costliest(self, top: int = 20) -> list[tuple[int, RuleProfile]]:
        """Rules by total evaluation time, most expensive first (with `profile`)."""
        return sorted(self.profiles.items(), key=lambda kv: kv[1].ns, reverse=True)[:top]
