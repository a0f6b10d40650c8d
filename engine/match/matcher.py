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

import ipaddress
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

import hyperscan
import numba
import numpy as np

from dpdk_io.batch import PacketBatch
from engine.decode import (
    F_DONT_FRAGMENT,
    F_FRAGMENT,
    F_LATER_FRAGMENT,
    F_MORE_FRAGMENTS,
    KIND_IP,
    DecodedBatch,
)
from engine.events import FlowKey, Match
from engine.flows import FlowEvents, community_id
from engine.match.compiler import CompiledRule, CompiledRuleset
from engine.match.payload import Scratch
from engine.match.sets import address_int
from engine.match.state import BitStore, SessionState, ThresholdState, WindowState

#: Buffers per concatenated prefilter scan, and prefilter hits allowed per buffer
#: before a chunk is rescanned one buffer at a time.
_CHUNK = 2048
_HITS_PER_BUFFER = 8

_SEVERITY_BY_PRIORITY = {1: "high", 2: "medium", 3: "low", 4: "info"}
_APP_ALIASES = {"ssl": "tls", "http2": "http", "dcerpc": "dcerpc"}


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


def _ip_text(hi: int, lo: int) -> str:
    value = address_int(hi, lo)
    if (value >> 32) == 0xFFFF:
        return str(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(value))


#: Fields read straight from a decoded row column.
_ROW_FIELDS = {
    "src.port": "sport",
    "dst.port": "dport",
    "ip.ttl": "ttl",
    "ip.tos": "tos",
    "ip.id": "ip_id",
    "ip.proto": "proto",
    "ip.len": "ip_len",
    "ip.version": "ipver",
    "ip.frag_offset": "frag_off",
    "tcp.seq": "tcp_seq",
    "tcp.ack": "tcp_ack",
    "tcp.window": "tcp_win",
    "icmp.type": "icmp_type",
    "icmp.code": "icmp_code",
    "icmp.id": "icmp_id",
}


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
        "row",
        "slot",
        "to_server",
        "ts",
        "wirelen",
    )

    def __init__(
        self,
        matcher: Matcher,
        batch: PacketBatch,
        row: np.void,
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
        self.row = row
        self.payload = payload
        self.slot = slot
        self.gen = gen
        self.to_server = to_server
        self.established = established
        self.buffers = buffers
        self.app_proto = app_proto
        self.ts = int(row["ts"]) / 1e9
        self.wirelen = int(batch.wirelens[int(row["pkt"])])
        self._cache: dict[str, Any] = {}

    def src_int(self) -> int:
        return address_int(self.row["src"][0], self.row["src"][1])

    def dst_int(self) -> int:
        return address_int(self.row["dst"][0], self.row["dst"][1])

    def field(self, name: str) -> Any:
        if name in self._cache:
            return self._cache[name]
        value = self._field(name)
        self._cache[name] = value
        return value

    def _field(self, name: str) -> Any:
        row = self.row
        proto = int(row["proto"])
        if name in ("src.ip", "ip.src"):
            return self.src_int()
        if name in ("dst.ip", "ip.dst"):
            return self.dst_int()
        if name == "dsize":
            return len(self.payload)
        if name == "tcp.flags":
            return int(row["tcp_flags"]) if proto == 6 else None
        if name in ("icmp.type", "icmp.code", "icmp.id", "icmp.seq") and proto not in (1, 58):
            return None
        if name in ("tcp.seq", "tcp.ack", "tcp.window") and proto != 6:
            return None
        column = _ROW_FIELDS.get(name)
        if column is not None:
            return int(row[column])
        if name == "icmp.seq":
            raw = self._packet_bytes(int(row["l4_off"]) + 6, 2)
            return int.from_bytes(raw, "big") if len(raw) == 2 else None
        if name == "ip.fragbits":
            fl = int(row["flags"])
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
        if name == "http.uri.len":
            uri = self.buffers.get("http.uri")
            return None if uri is None else len(uri)
        if name == "http.uri.raw.len":
            uri = self.buffers.get("http.uri.raw")
            return None if uri is None else len(uri)
        return None

    def _packet_bytes(self, offset: int, length: int) -> bytes:
        i = int(self.row["pkt"])
        start = int(self._batch.offsets[i])
        end = start + int(self._batch.caplens[i])
        lo = min(start + offset, end)
        return self._batch.data[lo : min(lo + length, end)].tobytes()

    def _ip_options(self) -> set[str]:
        if int(self.row["ipver"]) != 4:
            return set()
        l3 = int(self.row["l3_off"])
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
        return self.buffers.get(name)

    def has_literals(self, required: tuple[tuple[str, bytes, bool], ...]) -> bool:
        """Whether every (buffer, literal, nocase) occurs in its buffer."""
        for name, literal, nocase in required:
            data = self.payload if name == "pkt_data" else self.buffers.get(name)
            if data is None:
                return False
            if nocase:
                key = "lower:" + name
                lowered = self._cache.get(key)
                if lowered is None:
                    lowered = data.lower()
                    self._cache[key] = lowered
                data = lowered
            if literal not in data:
                return False
        return True

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


@numba.njit(cache=True)
def _run_kernel(arr, cstart, lens, run_byte, run_nocase, run_len, fold, interesting, out):
    """out[k, j] = True when segment j holds run_len[k] copies of run_byte[k] in a row
    (compared through `fold`, ASCII case folding, when run_nocase[k]). One pass."""
    n_runs = run_byte.shape[0]
    for j in range(cstart.shape[0]):
        end = cstart[j] + lens[j]
        i = cstart[j]
        while i < end:
            b = arr[i]
            if not interesting[b]:
                i += 1
                continue
            k0 = i
            while i < end and arr[i] == b:
                i += 1
            exact = i - k0
            fb = fold[b]
            m = k0
            while m < end and fold[arr[m]] == fb:
                m += 1
            folded = m - k0
            for k in range(n_runs):
                if run_nocase[k]:
                    if fold[run_byte[k]] == fb and folded >= run_len[k]:
                        out[k, j] = True
                elif run_byte[k] == b and exact >= run_len[k]:
                    out[k, j] = True


_FOLD = np.array([ord(bytes([b]).lower()) for b in range(256)], dtype=np.uint8)


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
    _run_kernel(
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


#: Buffers that open a new application transaction when they appear.
_TX_START = frozenset({"http.request_line", "http.method", "dns.query"})


@dataclass(slots=True)
class _Transaction:
    """One flow's current application transaction: its buffers so far and the
    rules that already alerted on it (a rule alerts once per transaction)."""

    number: int = 0
    buffers: dict[str, bytes] = field(default_factory=dict)
    fired: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _TxView:
    app_proto: str | None
    buffers: dict[str, bytes]
    tx: _Transaction


@dataclass(slots=True)
class _RuleArrays:
    """Per-rule header facts as arrays, for vectorized candidate filtering."""

    proto_ok: np.ndarray  # bool[n_rules, 256]
    sport_set: np.ndarray
    dport_set: np.ndarray
    bidir: np.ndarray
    direction: np.ndarray
    established: np.ndarray
    frag: np.ndarray
    any_proto: np.ndarray

    @classmethod
    def build(cls, rules: list[CompiledRule]) -> _RuleArrays:
        n = len(rules)
        proto_ok = np.zeros((n, 256), dtype=bool)
        for r in rules:
            proto_ok[r.index, list(r.protocols)] = True
        return cls(
            proto_ok=proto_ok,
            sport_set=np.array([r.sport_set for r in rules], dtype=np.int64),
            dport_set=np.array([r.dport_set for r in rules], dtype=np.int64),
            bidir=np.array([r.bidirectional for r in rules], dtype=bool),
            direction=np.array([r.direction for r in rules], dtype=np.int8),
            established=np.array([r.established for r in rules], dtype=np.int8),
            frag=np.array([r.frag for r in rules], dtype=np.int8),
            any_proto=np.array([len(r.protocols) == 256 for r in rules], dtype=bool),
        )


@dataclass(slots=True)
class _Loaded:
    ruleset: CompiledRuleset
    arrays: _RuleArrays


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
    stats: MatcherStats = field(default_factory=MatcherStats)
    profiles: dict[int, RuleProfile] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._loaded = _Loaded(self.ruleset, _RuleArrays.build(self.ruleset.rules))
        self.sessions = SessionState(1024, midstream=self.midstream)
        self.bits = BitStore()
        self.thresholds = ThresholdState()
        self.windows = WindowState()
        self._cid: dict[tuple[int, int], str] = {}
        self._inspected: dict[int, int] = {}  # flow slot -> generation the inspector knows
        self._txs: dict[int, _Transaction] = {}  # flow slot -> current transaction

    def swap(self, ruleset: CompiledRuleset) -> None:
        """Use `ruleset` from the next batch on."""
        self._loaded = _Loaded(ruleset, _RuleArrays.build(ruleset.rules))
        self.ruleset = ruleset

    # ------------------------------------------------------------------
    def scan(
        self,
        batch: PacketBatch,
        decoded: DecodedBatch,
        events: FlowEvents,
        bad_checksum: np.ndarray | None = None,
    ) -> list[Alert]:
        """Alerts raised by the rows of one batch, in row order."""
        loaded = self._loaded
        rs = loaded.ruleset
        rows = decoded.rows
        n = rows.shape[0]
        self.stats.rows += n
        if n == 0:
            return []
        row_flow = events.row_flow
        row_new = events.row_new if events.row_new.shape[0] == n else np.zeros(n, np.int8)
        est, gen = self.sessions.update(
            row_flow, events.row_dir, row_new, rows["proto"], rows["tcp_flags"]
        )
        usable = rows["kind"] == KIND_IP
        if bad_checksum is not None:
            bad_rows = bad_checksum[rows["pkt"]]
            self.stats.checksum_skipped += int((usable & bad_rows).sum())
            usable &= ~bad_rows
        pkt = rows["pkt"].astype(np.int64)
        base = batch.offsets[pkt]
        pstart = base + rows["payload_off"]
        avail = base + batch.caplens[pkt] - pstart
        plen = np.clip(np.minimum(rows["payload_len"], avail), 0, None)
        plen[~usable] = 0
        contexts: dict[int, Any] = {}
        if self.inspector is not None:
            contexts = self._inspect(batch, rows, row_flow, events.row_dir, gen, pstart, plen)
        cand_rows: list[np.ndarray] = []
        cand_rules: list[np.ndarray] = []
        db = rs.databases.get("pkt_data")
        if db is not None:
            r, k = self._prefilter_payloads(batch.data, pstart, plen, db)
            cand_rows.append(r)
            cand_rules.append(k)
        for name, adb in rs.databases.items():
            if name == "pkt_data" or not contexts:
                continue
            r, k = self._prefilter_buffers(contexts, name, adb)
            cand_rows.append(r)
            cand_rules.append(k)
        if rs.slow_rules:
            r, k = self._slow_candidates(rs, rows, usable, plen, contexts)
            cand_rows.append(r)
            cand_rules.append(k)
        if rs.address_index.size:
            live = np.nonzero(usable)[0]
            for side, col in (("src", "src"), ("dst", "dst")):
                addr = rows[col][live]
                r, k = rs.address_index.candidates(addr[:, 0], addr[:, 1], live, side)
                cand_rows.append(r)
                cand_rules.append(k)
        if not cand_rows:
            return []
        crow = np.concatenate(cand_rows)
        crule = np.concatenate(cand_rules)
        if crow.shape[0] == 0:
            return []
        keep = usable[crow] & self._header_ok(loaded.arrays, rs, rows, crow, crule, events, est)
        crow = crow[keep]
        crule = crule[keep]
        if crow.shape[0]:
            keep = self._anchors_ok(rs, batch.data, crow, crule, pstart, plen)
            crow = crow[keep]
            crule = crule[keep]
        if crow.shape[0] == 0:
            return []
        order = np.lexsort((crule, crow))
        pairs = np.stack([crow[order], crule[order]], axis=1)
        if pairs.shape[0] > 1:
            dup = np.all(pairs[1:] == pairs[:-1], axis=1)
            pairs = pairs[np.concatenate([[True], ~dup])]
        self.stats.candidates += int(pairs.shape[0])
        return self._evaluate(batch, rows, pairs, events, est, gen, pstart, plen, contexts)

    # ------------------------------------------------------------------
    def _prefilter_payloads(
        self, data: np.ndarray, pstart: np.ndarray, plen: np.ndarray, db: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        sel = np.nonzero(plen > 0)[0]
        if sel.shape[0] == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        lens = plen[sel].astype(np.int64)
        starts = pstart[sel].astype(np.int64)
        cstart = np.zeros(sel.shape[0], dtype=np.int64)
        np.cumsum(lens[:-1], out=cstart[1:])
        total = int(lens.sum())
        idx = np.arange(total, dtype=np.int64) - np.repeat(cstart - starts, lens)
        arr = data[idx]
        return self._hits_to_candidates(arr.tobytes(), cstart, lens, sel, db, arr)

    def _hits_to_candidates(
        self,
        blob: bytes,
        cstart: np.ndarray,
        lens: np.ndarray,
        sel: np.ndarray,
        db: Any,
        arr: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidate (row, rule) pairs from one scan of the concatenated buffers.

        Buffers are scanned in chunks of `_CHUNK`; a chunk whose hits run past a
        budget (a pattern repeated all over a payload, such as "AAAA" in padding) is
        scanned again one buffer at a time with the single-match database, so the cost
        stays bounded by buffers times patterns, not by occurrences.
        """
        seg_parts: list[np.ndarray] = []
        pid_parts: list[np.ndarray] = []
        n = sel.shape[0]
        if db.runs:
            if arr is None:
                arr = np.frombuffer(blob, dtype=np.uint8)
            for (pid, *_), seg in zip(
                db.runs, _segments_with_runs(arr, cstart, lens, db.runs), strict=True
            ):
                seg_parts.append(seg)
                pid_parts.append(np.full(seg.shape[0], pid, dtype=np.int64))
        for lo in range(0, n if db.database is not None else 0, _CHUNK):
            hi = min(n, lo + _CHUNK)
            base = int(cstart[lo])
            end_at = int(cstart[hi - 1] + lens[hi - 1])
            ids: list[int] = []
            ends: list[int] = []
            budget = _HITS_PER_BUFFER * (hi - lo)

            def on_match(
                pid: int,
                _from: int,
                to: int,
                _flags: int,
                _ctx: object,
                ids: list[int] = ids,
                ends: list[int] = ends,
                budget: int = budget,
            ) -> bool:
                ids.append(pid)
                ends.append(to)
                return len(ids) >= budget

            try:
                db.database.scan(blob[base:end_at], match_event_handler=on_match)
            except hyperscan.ScanTerminated:
                seg, pid = self._scan_singly(blob, cstart, lens, lo, hi, db)
                seg_parts.append(seg)
                pid_parts.append(pid)
                continue
            if not ids:
                continue
            self.stats.prefilter_hits += len(ids)
            pid = np.array(ids, dtype=np.int64)
            end = np.array(ends, dtype=np.int64) + base
            start = end - db.lengths[pid]
            seg = np.searchsorted(cstart, start, side="right") - 1
            segc = np.clip(seg, 0, None)
            ok = (seg >= lo) & (end <= cstart[segc] + lens[segc])
            seg_parts.append(seg[ok])
            pid_parts.append(pid[ok])
        if not seg_parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        seg = np.concatenate(seg_parts)
        pid = np.concatenate(pid_parts)
        if seg.shape[0] == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        width = len(db.rules) + 1
        key = np.unique(seg * width + pid)
        seg = key // width
        pid = key % width
        rule_lists = [db.rules[p] for p in pid.tolist()]
        counts = np.fromiter(
            (a.shape[0] for a in rule_lists), dtype=np.int64, count=len(rule_lists)
        )
        return np.repeat(sel[seg], counts), np.concatenate(rule_lists)

    def _scan_singly(
        self, blob: bytes, cstart: np.ndarray, lens: np.ndarray, lo: int, hi: int, db: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        segs: list[int] = []
        ids: list[int] = []
        current = [0]

        def on_match(pid: int, _from: int, _to: int, _flags: int, _ctx: object) -> None:
            segs.append(current[0])
            ids.append(pid)

        scan = db.single.scan
        for i in range(lo, hi):
            s = int(cstart[i])
            current[0] = i
            scan(blob[s : s + int(lens[i])], match_event_handler=on_match)
        self.stats.prefilter_hits += len(ids)
        return np.array(segs, dtype=np.int64), np.array(ids, dtype=np.int64)

    def _prefilter_buffers(
        self, contexts: dict[int, Any], name: str, db: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        rows_with = [(r, ctx.buffers[name]) for r, ctx in contexts.items() if name in ctx.buffers]
        if not rows_with:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        sel = np.array([r for r, _ in rows_with], dtype=np.int64)
        lens = np.array([len(b) for _, b in rows_with], dtype=np.int64)
        cstart = np.zeros(sel.shape[0], dtype=np.int64)
        np.cumsum(lens[:-1], out=cstart[1:])
        return self._hits_to_candidates(b"".join(b for _, b in rows_with), cstart, lens, sel, db)

    def _slow_candidates(
        self,
        rs: CompiledRuleset,
        rows: np.ndarray,
        usable: np.ndarray,
        plen: np.ndarray,
        contexts: dict[int, Any],
    ) -> tuple[np.ndarray, np.ndarray]:
        proto = rows["proto"]
        present: dict[str, np.ndarray] = {}

        def with_buffer(name: str) -> np.ndarray:
            got = present.get(name)
            if got is None:
                got = np.zeros(rows.shape[0], dtype=bool)
                idx = [r for r, ctx in contexts.items() if name in ctx.buffers]
                got[idx] = True
                present[name] = got
            return got

        proto_masks: dict[frozenset[int], np.ndarray] = {}
        port_masks: dict[tuple[int, str], np.ndarray] = {}
        columns: dict[str, np.ndarray] = {"dsize": plen}
        out_rows: list[np.ndarray] = []
        out_rules: list[np.ndarray] = []

        def ports(set_id: int, column: str) -> np.ndarray:
            got = port_masks.get((set_id, column))
            if got is None:
                got = rs.port_sets[set_id][rows[column]]
                port_masks[(set_id, column)] = got
            return got

        for k in rs.slow_rules:
            rule = rs.rules[k]
            key = rule.protocols
            m = proto_masks.get(key)
            if m is None:
                if len(key) == 256:
                    m = usable
                else:
                    m = usable & np.isin(proto, np.array(sorted(key), dtype=np.uint8))
                proto_masks[key] = m
            if not m.any():
                continue
            fwd = ports(rule.sport_set, "sport") & ports(rule.dport_set, "dport")
            if rule.bidirectional:
                fwd = fwd | (ports(rule.sport_set, "dport") & ports(rule.dport_set, "sport"))
            m = m & fwd
            if rule.min_payload:
                m &= plen >= rule.min_payload
            for name in rule.needs_buffers:
                m &= with_buffer(name)
            for vt in rule.vector:
                col = columns.get(vt.column)
                if col is None:
                    col = rows[vt.column]
                    columns[vt.column] = col
                m &= vt.test(col)
            r = np.nonzero(m)[0]
            if r.shape[0]:
                out_rows.append(r)
                out_rules.append(np.full(r.shape[0], k, dtype=np.int64))
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
        """Test every candidate's literals pinned by offset/depth, with numpy."""
        keep = np.ones(crow.shape[0], dtype=bool)
        order = np.argsort(crule, kind="stable")
        sorted_rules = crule[order]
        bounds = np.flatnonzero(np.diff(sorted_rules)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [sorted_rules.shape[0]]])
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            rule = rs.rules[int(sorted_rules[a])]
            if not rule.anchors:
                continue
            idx = order[a:b]
            rows_k = crow[idx]
            ok = np.ones(idx.shape[0], dtype=bool)
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
        proto = rows["proto"][crow]
        ok = arrays.proto_ok[crule, proto]
        sp = rows["sport"][crow]
        dp = rows["dport"][crow]
        ss = arrays.sport_set[crule]
        ds = arrays.dport_set[crule]
        ports = rs.port_sets
        forward = ports[ss, sp] & ports[ds, dp]
        backward = ports[ss, dp] & ports[ds, sp]
        ok &= forward | (arrays.bidir[crule] & backward)
        direction = arrays.direction[crule]
        to_client = events.row_dir[crow] == 1
        ok &= (direction < 0) | ((direction == 1) == to_client)
        need_est = arrays.established[crule]
        e = est[crow] == 1
        ok &= (need_est < 0) | ((need_est == 1) == e)
        flags = rows["flags"][crow]
        frag = arrays.frag[crule]
        is_frag = (flags & F_FRAGMENT) != 0
        ok &= (frag < 0) | ((frag == 1) == is_frag)
        # a fragment without its transport header only meets rules on any IP protocol
        ok &= ((flags & F_LATER_FRAGMENT) == 0) | arrays.any_proto[crule]
        return ok

    # ------------------------------------------------------------------
    def _inspect(
        self,
        batch: PacketBatch,
        rows: np.ndarray,
        row_flow: np.ndarray,
        row_dir: np.ndarray,
        gen: np.ndarray,
        pstart: np.ndarray,
        plen: np.ndarray,
    ) -> dict[int, _TxView]:
        assert self.inspector is not None
        out: dict[int, _TxView] = {}
        # only packets with payload, FIN or RST reach the inspector: an empty ACK or SYN
        # adds nothing to reassembly or the parsers, and a flow's first inspected packet
        # is flagged new by its generation, so a reused slot starts afresh
        proto = rows["proto"]
        wanted = (row_flow >= 0) & (
            ((proto == 6) & ((plen > 0) | ((rows["tcp_flags"] & 0x05) != 0)))
            | ((proto == 17) & (plen > 0))
        )
        seen = self._inspected
        idx = np.nonzero(wanted)[0]
        mv = memoryview(batch.data.data)
        packet = self.inspector.packet
        columns = zip(
            idx.tolist(),
            row_flow[idx].tolist(),
            gen[idx].tolist(),
            (row_dir[idx] == 0).tolist(),
            proto[idx].tolist(),
            rows["sport"][idx].tolist(),
            rows["dport"][idx].tolist(),
            rows["tcp_flags"][idx].tolist(),
            rows["tcp_seq"][idx].tolist(),
            pstart[idx].tolist(),
            plen[idx].tolist(),
            rows["ts"][idx].tolist(),
            strict=True,
        )
        for i, slot, g, to_server, pr, sp, dp, fl, seq, s, n, ts in columns:
            fresh = seen.get(slot) != g
            if fresh:
                seen[slot] = g
            ctx = packet(slot, fresh, to_server, pr, sp, dp, fl, seq, mv[s : s + n].tobytes(), ts)
            out[i] = self._transaction(slot, fresh, ctx)
        return out

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
        new = ctx.buffers
        if not new:
            return _TxView(ctx.app_proto, {}, tx)
        if any(name in new for name in _TX_START):
            tx.number += 1
            tx.buffers = {}
            tx.fired = set()
        tx.buffers.update(new)
        return _TxView(ctx.app_proto, dict(tx.buffers), tx)

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
        contexts: dict[int, Any],
    ) -> list[Alert]:
        rs = self._loaded.ruleset
        alerts: list[Alert] = []
        current = -1
        packet: _Packet | None = None
        passed = False
        for r, k in pairs.tolist():
            if r != current:
                current = r
                passed = False
                row = rows[r]
                s = int(pstart[r])
                ctx = contexts.get(r)
                packet = _Packet(
                    self,
                    batch,
                    row,
                    batch.data[s : s + int(plen[r])].tobytes(),
                    int(events.row_flow[r]),
                    int(gen[r]),
                    bool(events.row_dir[r] == 0),
                    bool(est[r]),
                    ctx.buffers if ctx is not None else {},
                    ctx.app_proto if ctx is not None else None,
                )
            assert packet is not None
            if passed:
                continue
            rule = rs.rules[k]
            app = rule.app_protocol
            if app is not None and packet.app_proto not in (None, _APP_ALIASES.get(app, app)):
                continue
            if not self._addresses_ok(rule, packet):
                continue
            if rule.required and not packet.has_literals(rule.required):
                continue
            self.stats.evaluations += 1
            if self.profile:
                t0 = time.perf_counter_ns()
                hit = rule.predicate(packet, Scratch())
                prof = self.profiles.setdefault(rule.rule.id, RuleProfile())
                prof.ns += time.perf_counter_ns() - t0
                prof.checks += 1
                if hit:
                    prof.matches += 1
            else:
                hit = rule.predicate(packet, Scratch())
            if not hit:
                continue
            ctx_r = contexts.get(r)
            if ctx_r is not None and rule.buffers - {"pkt_data"} and ctx_r.buffers:
                if rule.index in ctx_r.tx.fired:
                    continue
                ctx_r.tx.fired.add(rule.index)
            self.stats.matches += 1
            self._apply_bits(rule, packet)
            if rule.rule.action == "pass":
                passed = True
                continue
            if rule.noalert or not self._rate_ok(rule, packet):
                continue
            alerts.append(self._alert(batch, rule, packet))
        self.stats.alerts += len(alerts)
        return alerts

    def _addresses_ok(self, rule: CompiledRule, p: _Packet) -> bool:
        if rule.src is None and rule.dst is None:
            return True
        s = p.src_int()
        d = p.dst_int()
        fwd = (rule.src is None or s in rule.src) and (rule.dst is None or d in rule.dst)
        if fwd or not rule.bidirectional:
            return fwd
        return (rule.src is None or d in rule.src) and (rule.dst is None or s in rule.dst)

    def _apply_bits(self, rule: CompiledRule, p: _Packet) -> None:
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
        rid = rule.rule.id
        for i, th in enumerate(rule.rule.thresholds):
            if th.track == "src":
                key: Hashable = p.src_int()
            elif th.track == "dst":
                key = p.dst_int()
            elif th.track == "both":
                key = (p.src_int(), p.dst_int())
            else:
                key = None
            if not self.thresholds.allow(rid, i, th, key, p.ts):
                return False
        w = rule.rule.window
        if w is not None:
            group = tuple(p.field(f.name) for f in w.group_by)
            agg = w.aggregate
            value = p.field(agg.field.name) if agg.field is not None else None
            if not self.windows.observe(rid, w, group, value, p.ts):
                return False
        return True

    def _alert(self, batch: PacketBatch, rule: CompiledRule, p: _Packet) -> Alert:
        row = p.row
        src = _ip_text(row["src"][0], row["src"][1])
        dst = _ip_text(row["dst"][0], row["dst"][1])
        sport = int(row["sport"])
        dport = int(row["dport"])
        proto = int(row["proto"])
        if proto in (1, 58):
            sport, dport = int(row["icmp_type"]), int(row["icmp_code"])
        key = (src, sport, dst, dport) if p.to_server else (dst, dport, src, sport)
        cid_key = (p.slot, p.gen)
        cid = self._cid.get(cid_key) if p.slot >= 0 else None
        if cid is None:
            try:
                cid = community_id(key[0], key[2], proto, key[1], key[3])
            except ValueError:
                cid = ""
            if p.slot >= 0:
                if len(self._cid) > 100_000:
                    self._cid.clear()
                self._cid[cid_key] = cid
        r = rule.rule
        severity = r.severity or _SEVERITY_BY_PRIORITY.get(r.priority or 0, "medium")
        match = Match(
            ts=p.ts,
            flow=FlowKey(key[0], key[1], key[2], key[3], proto, cid),
            rule_id=r.id,
            title=r.title,
            severity=severity,
            rev=r.rev,
            gid=r.gid or 1,
            classtype=r.classtype,
            priority=r.priority,
            techniques=r.techniques,
            tactics=r.tactics,
            references=tuple(f"{ref.kind},{ref.value}" for ref in r.references),
            app_proto=p.app_proto,
            packet=batch.first_index + int(row["pkt"]) + 1,
            action=r.action,
            ruleset=self.ruleset_name,
        )
        return Alert(match, src, sport, dst, dport, proto, p.to_server, batch.linktype)

    def end_flows(self, slots: np.ndarray) -> None:
        """Tell the inspector that these flows ended (their slots may be reused)."""
        if self.inspector is not None:
            for s in slots.tolist():
                self.inspector.end_flow(int(s))

    def costliest(self, top: int = 20) -> list[tuple[int, RuleProfile]]:
        """Rules by total evaluation time, most expensive first (with `profile`)."""
        return sorted(self.profiles.items(), key=lambda kv: kv[1].ns, reverse=True)[:top]
