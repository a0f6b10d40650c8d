"""Compiling rules into a `CompiledRuleset`: header tables, fast patterns and Hyperscan databases.

Each enabled rule gets a resolved header (protocols, address sets, port sets,
flow options), a predicate for its condition (`engine.match.conditions`) and at
most one fast pattern: the literal the rule names with `fast_pattern`, else its
longest mandatory content. Fast patterns are compiled into one Hyperscan
database per inspection buffer (`pkt_data` for packet payloads, and one per
application buffer such as `http.uri`). A rule with no usable literal goes to
the slow path: it is tried on every packet its header and vectorizable header
comparisons admit (see docs/matching.md).
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from engine.match.conditions import (
    ConditionError,
    Predicate,
    VectorTest,
    compile_condition,
    vector_tests,
)
from engine.match.kernels import SHORT_BYTE, SHORT_BYTE_FOLDED, SHORT_PAIR, SHORT_PAIR_FOLDED
from engine.match.literals import LiteralDatabase, compile_literals
from engine.match.payload import COMPARE, PayloadRuleError
from engine.match.portgroups import PortGroups, build_port_groups
from engine.match.sets import AddressSet, HeaderError, port_bitmap
from rules import ast
from rules.variables import VariableTable

#: Transport protocols of each protocol a header may name.
TRANSPORTS: dict[str, frozenset[int]] = {
    "ip": frozenset(range(256)),
    "tcp": frozenset({6}),
    "tcp-pkt": frozenset({6}),
    "tcp-stream": frozenset({6}),
    "udp": frozenset({17}),
    "icmp": frozenset({1, 58}),
    "icmpv6": frozenset({58}),
    "icmp6": frozenset({58}),
    "sctp": frozenset({132}),
}
_TCP_APPS = frozenset(
    {
        "http",
        "http2",
        "tls",
        "ssl",
        "ssh",
        "smtp",
        "ftp",
        "ftp-data",
        "smb",
        "dcerpc",
        "imap",
        "pop3",
        "telnet",
        "irc",
        "rdp",
        "modbus",
        "dnp3",
        "enip",
        "mqtt",
        "rfb",
        "pgsql",
    }
)
_UDP_APPS = frozenset({"ntp", "dhcp", "tftp", "snmp", "ikev2", "ike", "quic", "syslog"})

#: Fast patterns shorter than this hit too often to pay for a prefilter callback per
#: occurrence; their rules take the slow path, prefiltered by header and payload length.
#: Three bytes pay: the TLS record headers of the Heartbleed rules ("|18 03 01|") are
#: rare in payloads, while without a fast pattern every TLS packet was a candidate.
MIN_FAST_PATTERN = 3

#: Buffers whose fast patterns are scanned in the packet payload.
PAYLOAD_BUFFERS = frozenset({"pkt_data", "raw_data"})
#: Packet headers read as buffers (Suricata `tcp.hdr` ...): taken from the packet when
#: a rule is evaluated, never prefiltered and never needing the inspector.
HEADER_BUFFERS = frozenset({"ipv4.hdr", "ipv6.hdr", "tcp.hdr", "udp.hdr"})
#: Buffers with no fast-pattern database of their own.
_UNSCANNED = HEADER_BUFFERS | {"base64_data"}
#: Fields read from what the inspector found in a transaction: a rule comparing them
#: reads application data, so it is evaluated, and alerts once, per transaction.
APP_FIELDS = frozenset({"tls.cert_chain_len", "dns.rrtype", "ftp.bounce"})

#: Where a TCP rule's packet-payload contents are matched: on each packet only (a
#: `tcp-pkt` header, `no_stream`, a `dsize` test, or a rule reading application
#: buffers too), on each packet and on the reassembled stream, or on the stream only
#: (a `tcp-stream` header, `only_stream`).
STREAM_NONE, STREAM_ALSO, STREAM_ONLY = 0, 1, 2

#: Flow option names and the per-packet facts they need.
DIRECTION_OPTIONS = {"to_server": 0, "from_client": 0, "to_client": 1, "from_server": 1}


def transports_of(protocol: str) -> frozenset[int]:
    if protocol in TRANSPORTS:
        return TRANSPORTS[protocol]
    if protocol in _TCP_APPS:
        return frozenset({6})
    if protocol in _UDP_APPS:
        return frozenset({17})
    return frozenset({6, 17})


@dataclass(frozen=True, slots=True)
class CompileDiagnostic:
    """A rule left out of the compiled set, and why."""

    rule_id: int
    message: str
    location: str = ""

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}rule {self.rule_id}: {self.message}"


@dataclass(frozen=True, slots=True)
class FastPatternChoice:
    buffer: str
    pattern: bytes
    nocase: bool


@dataclass(slots=True)
class CompiledRule:
    """One rule ready to run. `index` is its position in `CompiledRuleset.rules`."""

    index: int
    rule: ast.Rule
    protocols: frozenset[int]
    app_protocol: str | None
    src: AddressSet | None
    dst: AddressSet | None
    sport_set: int
    dport_set: int
    bidirectional: bool
    direction: int  # -1 either, 0 to server, 1 to client
    established: int  # -1 either, 1 established only, 0 not established only
    frag: int  # -1 either, 1 fragments only, 0 no fragments
    predicate: Predicate
    fast_pattern: FastPatternChoice | None
    min_payload: int  # shortest packet payload the rule can match (its pkt_data contents)
    required: tuple[tuple[str, bytes, bool], ...]  # (buffer, literal, nocase) that must be present
    needs_buffers: frozenset[str]  # application buffers the rule cannot match without
    anchors: tuple[
        tuple[int, int, bytes, bool], ...
    ]  # (offset, depth, literal, nocase) in pkt_data
    vector: tuple[VectorTest, ...]
    buffers: frozenset[str]
    sets_bits: bool
    reads_bits: bool
    noalert: bool
    stream: int = STREAM_NONE  # where its packet-payload contents are matched (STREAM_*)
    fields: frozenset[str] = frozenset()  # the fields its condition reads (`fields_read`)
    # `=>` (Suricata transaction rules): the header names the client and the server, and
    # packets from the server to the client match it the other way round
    replies: bool = False
    host_bits: bool = False  # sets or tests bits kept per host (xbits), across flows
    # byte_tests of pkt_data at a fixed offset: (offset, bytes, operator, value,
    # bitmask or 0, little-endian, negated), tested with numpy like `anchors`
    byte_tests: tuple[tuple[int, int, str, int, int, bool, bool], ...] = ()
    # `required` without the fast pattern: what is left to check once a prefilter hit
    # of the fast pattern made the rule a candidate on a buffer
    confirm: tuple[tuple[str, bytes, bool], ...] = ()


@dataclass(slots=True)
class PatternDatabase:
    """A Hyperscan database of one buffer's fast patterns.

    Pattern `i` has length `lengths[i]` and is the fast pattern of the rules
    `rules[i]` (indexes into `CompiledRuleset.rules`). Patterns of one repeated
    byte are left out of Hyperscan and listed in `runs`.
    """

    buffer: str
    database: LiteralDatabase | None
    lengths: np.ndarray
    rules: list[np.ndarray]
    runs: list[tuple[int, int, int, bool]]  # (pattern id, byte, length, nocase) of one-byte runs
    # the packet payload's databases by ports (`engine.match.portgroups`); None for
    # application buffers, which are scanned with `database`
    groups: PortGroups | None = None
    # `rules` flattened: pattern i's rules are flat[offsets[i] : offsets[i + 1]]
    offsets: np.ndarray = field(init=False)
    flat: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.offsets, self.flat = _csr(self.rules)


@dataclass(slots=True)
class ConfirmTable:
    """The packet-payload literals rules need besides their fast pattern, checked for
    all candidates of a batch before any is evaluated: a payload is scanned once.

    Literals of 3 bytes or more (not one repeated byte) go into one database; rule
    `k`'s ids are `flat[offsets[k] : offsets[k + 1]]`. Literals of one or two bytes
    (slow-path rules' `|00 01|`) are looked up among the bytes and byte pairs a
    payload holds; rule `k`'s codes (`SHORT_*`) are
    `short_flat[short_offsets[k] : short_offsets[k + 1]]`.
    """

    database: LiteralDatabase | None
    offsets: np.ndarray
    flat: np.ndarray
    lengths: np.ndarray  # per literal id
    short_offsets: np.ndarray
    short_flat: np.ndarray
    short_folded: np.ndarray  # per rule: some short code is a lowercased one


@dataclass(slots=True)
class CompiledRuleset:
    """Everything the matcher needs, built once per rule load and swapped whole on reload."""

    rules: list[CompiledRule]
    databases: dict[str, PatternDatabase]
    slow_rules: list[int]
    address_index: AddressIndex
    port_sets: np.ndarray  # bool[n_sets, 65536]
    diagnostics: list[CompileDiagnostic] = field(default_factory=list)
    compile_seconds: float = 0.0
    variables: VariableTable = field(default_factory=VariableTable)
    confirm: ConfirmTable | None = None  # packet-payload literals besides fast patterns

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def needs_inspection(self) -> bool:
        """Whether any rule reads an application buffer, names an application protocol
        or is matched on the reassembled stream only."""
        return any(
            r.app_protocol is not None or r.buffers - {"pkt_data"} or r.stream == STREAM_ONLY
            for r in self.rules
        )

    def summary(self) -> dict[str, int]:
        return {
            "rules": len(self.rules),
            "fast_pattern_rules": len(self.rules) - len(self.slow_rules),
            "slow_path_rules": len(self.slow_rules) + self.address_index.size,
            "skipped": len(self.diagnostics),
            "databases": len(self.databases),
        }


@dataclass(slots=True)
class AddressIndex:
    """Slow-path rules found by address: the address space cut into elementary
    segments at every interval boundary, each with the rules whose source (or, for
    rules with any source, destination) set covers it. Bidirectional rules are
    looked up with both addresses of a packet."""

    bounds: list[int]  # sorted segment starts (128-bit ints)
    bounds64: np.ndarray  # the same clipped to uint64, for IPv4-mapped lookups
    src_offsets: np.ndarray  # CSR: rules of segment i keyed on the packet's source are
    src_rules: np.ndarray  # src_rules[src_offsets[i]:src_offsets[i + 1]]
    dst_offsets: np.ndarray  # the same for the packet's destination
    dst_rules: np.ndarray
    size: int = 0

    @classmethod
    def build(cls, rules: list[CompiledRule]) -> AddressIndex:
        edges: set[int] = {0}
        keyed: list[tuple[CompiledRule, AddressSet, str]] = []
        for r in rules:
            if r.src is not None:
                keyed.append((r, r.src, "src"))
            else:
                assert r.dst is not None
                keyed.append((r, r.dst, "dst"))
            aset = keyed[-1][1]
            edges.update(aset.starts)
            edges.update(e for e in aset.ends if e < (1 << 128))
        bounds = sorted(edges)
        src_lists: list[list[int]] = [[] for _ in bounds]
        dst_lists: list[list[int]] = [[] for _ in bounds]

        for r, aset, side in keyed:
            for lo, hi in zip(aset.starts, aset.ends, strict=True):
                first = bisect.bisect_left(bounds, lo)
                last = bisect.bisect_left(bounds, hi)
                for seg in range(first, last):
                    if side == "src" or r.bidirectional or r.replies:
                        src_lists[seg].append(r.index)
                    if side == "dst" or r.bidirectional or r.replies:
                        dst_lists[seg].append(r.index)
        clipped = np.array([min(b, (1 << 64) - 1) for b in bounds], dtype=np.uint64)

        def csr(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
            offsets = np.zeros(len(lists) + 1, dtype=np.int64)
            np.cumsum([len(x) for x in lists], out=offsets[1:])
            flat = [i for x in lists for i in x]
            return offsets, np.array(flat, dtype=np.int64)

        so, sr = csr(src_lists)
        do, dr = csr(dst_lists)
        return cls(bounds, clipped, so, sr, do, dr, size=len(rules))

    def candidates(
        self, hi: np.ndarray, lo: np.ndarray, rows: np.ndarray, side: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """(row, rule) pairs for the addresses (hi, lo) of `rows`, looked up on `side`."""
        if not self.size or rows.shape[0] == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        offsets = self.src_offsets if side == "src" else self.dst_offsets
        flat = self.src_rules if side == "src" else self.dst_rules
        seg = np.searchsorted(self.bounds64, lo, side="right").astype(np.int64) - 1
        wide = np.nonzero(hi != 0)[0]
        if wide.shape[0]:
            for i in wide.tolist():
                value = (int(hi[i]) << 64) | int(lo[i])
                seg[i] = bisect.bisect_right(self.bounds, value) - 1
        counts = offsets[seg + 1] - offsets[seg]
        total = int(counts.sum())
        if total == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        starts = np.zeros(seg.shape[0], dtype=np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        idx = np.arange(total, dtype=np.int64) - np.repeat(starts - offsets[seg], counts)
        return np.repeat(rows, counts), flat[idx]


def _mandatory_sequences(cond: ast.Condition | None) -> list[ast.Sequence]:
    """Sequences that must hold for the rule to match (reached through And only)."""
    if cond is None:
        return []
    if isinstance(cond, ast.Sequence):
        return [cond]
    if isinstance(cond, ast.And):
        return [s for c in cond.operands for s in _mandatory_sequences(c)]
    return []


def _all_sequences(cond: ast.Condition | None) -> list[ast.Sequence]:
    if cond is None:
        return []
    if isinstance(cond, ast.Sequence):
        return [cond]
    if isinstance(cond, ast.And | ast.Or):
        return [s for c in cond.operands for s in _all_sequences(c)]
    if isinstance(cond, ast.Not):
        return _all_sequences(cond.operand)
    return []


def choose_fast_pattern(rule: ast.Rule, prefer_app: bool = False) -> FastPatternChoice | None:
    """The rule's fast pattern: its `fast_pattern` content, else its longest mandatory
    literal (with `prefer_app`, on an application buffer when it has one: a rule also
    matched on the stream may find its packet-payload literal in earlier segments)."""
    candidates: list[tuple[ast.Sequence, ast.Content]] = []
    for seq in _mandatory_sequences(rule.condition):
        if seq.buffer.transforms or seq.buffer.name in _UNSCANNED:
            continue
        for item in seq.items:
            if isinstance(item, ast.Content) and not item.negated and item.pattern:
                candidates.append((seq, item))
    if not candidates:
        return None
    chosen = next(((s, c) for s, c in candidates if c.fast_pattern is not None), None)
    if chosen is None and prefer_app:
        app = [(s, c) for s, c in candidates if s.buffer.name not in PAYLOAD_BUFFERS]
        if app:
            chosen = max(app, key=lambda sc: len(sc[1].pattern))
    if chosen is None:
        chosen = max(candidates, key=lambda sc: len(sc[1].pattern))
    seq, content = chosen
    pattern = content.pattern
    fp = content.fast_pattern
    if fp is not None and fp.offset is not None and fp.length is not None:
        pattern = pattern[fp.offset : fp.offset + fp.length] or pattern
    buffer = "pkt_data" if seq.buffer.name in PAYLOAD_BUFFERS else seq.buffer.name
    return FastPatternChoice(buffer, pattern, content.nocase)


def _min_payload(rule: ast.Rule) -> int:
    """Payload bytes the rule's mandatory packet-payload contents need at least."""
    need = 0
    for seq in _mandatory_sequences(rule.condition):
        if seq.buffer.name in PAYLOAD_BUFFERS and not seq.buffer.transforms:
            for item in seq.items:
                if isinstance(item, ast.Content) and not item.negated:
                    need = max(need, len(item.pattern))
    return need


#: Widest offset/depth window an anchored literal may have to be tested with numpy.
MAX_ANCHOR_SLACK = 8


def _anchored_literals(rule: ast.Rule) -> tuple[tuple[int, int, bytes, bool], ...]:
    """Mandatory payload contents pinned to a small window by offset/depth: numpy can
    test them for a whole batch before any rule is evaluated in Python."""
    out: list[tuple[int, int, bytes, bool]] = []
    for seq in _mandatory_sequences(rule.condition):
        if seq.buffer.name not in PAYLOAD_BUFFERS or seq.buffer.transforms:
            continue
        for item in seq.items:
            if not isinstance(item, ast.Content) or item.negated or not item.pattern:
                continue
            if item.distance is not None or item.within is not None:
                continue
            offset = item.offset if item.offset is not None else 0
            depth = item.depth
            if item.startswith and depth is None:
                depth = len(item.pattern)
            if not isinstance(offset, int) or not isinstance(depth, int) or offset < 0:
                continue
            if len(item.pattern) <= depth <= len(item.pattern) + MAX_ANCHOR_SLACK:
                pattern = item.pattern.lower() if item.nocase else item.pattern
                out.append((offset, depth, pattern, item.nocase))
    return tuple(out)


def _anchored_byte_tests(
    rule: ast.Rule,
) -> tuple[tuple[int, int, str, int, int, bool, bool], ...]:
    """Mandatory byte_tests of the packet payload at a fixed offset, of 1 to 4 bytes read
    as a binary number: like anchored literals, numpy can test them for a whole batch."""
    out: list[tuple[int, int, str, int, int, bool, bool]] = []
    for seq in _mandatory_sequences(rule.condition):
        if seq.buffer.name not in PAYLOAD_BUFFERS or seq.buffer.transforms:
            continue
        for item in seq.items:
            if not isinstance(item, ast.ByteTest) or item.relative or item.string is not None:
                continue
            offset, size, value = item.offset, item.bytes, item.value
            if not (isinstance(offset, int) and isinstance(size, int) and isinstance(value, int)):
                continue
            if offset < 0 or not 1 <= size <= 4 or item.endian not in (None, "big", "little"):
                continue
            if item.operator not in COMPARE or not 0 <= value < 1 << 32:
                continue
            if item.bitmask is not None and not 0 <= item.bitmask < 1 << 32:
                continue  # left to the evaluator, which reads Python integers
            little = item.endian == "little"
            out.append(
                (offset, size, item.operator, value, item.bitmask or 0, little, item.negated)
            )
    return tuple(out)


def _required_literals(rule: ast.Rule) -> tuple[tuple[str, bytes, bool], ...]:
    """Literals that must occur somewhere in their buffer: a cheap test before evaluation."""
    out: list[tuple[str, bytes, bool]] = []
    for seq in _mandatory_sequences(rule.condition):
        if seq.buffer.transforms or seq.buffer.name == "base64_data":
            continue
        buffer = "pkt_data" if seq.buffer.name in PAYLOAD_BUFFERS else seq.buffer.name
        for item in seq.items:
            if isinstance(item, ast.Content) and not item.negated and item.pattern:
                pattern = item.pattern.lower() if item.nocase else item.pattern
                out.append((buffer, pattern, item.nocase))
    out.sort(key=lambda r: -len(r[1]))
    return tuple(out)


def _without_fast_pattern(
    required: tuple[tuple[str, bytes, bool], ...], fast: FastPatternChoice | None
) -> tuple[tuple[str, bytes, bool], ...]:
    if fast is None:
        return required
    entry = (fast.buffer, fast.pattern.lower() if fast.nocase else fast.pattern, fast.nocase)
    if entry not in required:
        return required
    at = required.index(entry)
    return required[:at] + required[at + 1 :]


def _escape(pattern: bytes) -> bytes:
    return "".join(f"\\x{b:02x}" for b in pattern).encode("ascii")


def _flow_options(header: ast.Header) -> tuple[int, int, int]:
    direction = -1
    established = -1
    frag = -1
    for opt in header.flow:
        if opt in DIRECTION_OPTIONS:
            direction = DIRECTION_OPTIONS[opt]
        elif opt == "established":
            established = 1
        elif opt == "not_established":
            established = 0
        elif opt == "only_frag":
            frag = 1
        elif opt == "no_frag":
            frag = 0
    return direction, established, frag


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def fields_read(node: object) -> frozenset[str]:
    """The names of the fields (`ast.FieldRef`) a condition tree refers to anywhere."""
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.FieldRef):
            found.add(n.name)
        elif isinstance(n, tuple | list):
            stack.extend(n)
        elif isinstance(n, ast.Node):
            names = _CHILD_FIELDS.get(type(n))
            if names is None:
                names = tuple(f for f in n.__dataclass_fields__ if f != "span")
                _CHILD_FIELDS[type(n)] = names
            stack.extend(getattr(n, f) for f in names)
    return frozenset(found)


def stream_mode(rule: ast.Rule, buffers: frozenset[str], fields: frozenset[str]) -> int:
    """Where the rule's packet-payload contents are matched (`STREAM_NONE`, `_ALSO`, `_ONLY`),
    given the `buffers` and the `fields` its condition reads."""
    header = rule.header
    protocol = header.protocol.lower()
    if 6 not in transports_of(protocol) or "pkt_data" not in buffers:
        return STREAM_NONE
    if protocol == "tcp-pkt" or "no_stream" in header.flow:
        return STREAM_NONE
    if protocol == "tcp-stream" or "only_stream" in header.flow:
        return STREAM_ONLY
    if "dsize" in fields:
        return STREAM_NONE
    return STREAM_ALSO


def _bit_usage(rule: ast.Rule) -> tuple[bool, bool, bool, bool]:
    """Whether the rule sets bits or flowints, reads them, has `noalert`, and sets or
    reads bits kept per host rather than per flow (xbits)."""
    sets = bool(rule.int_actions) or any(
        b.action in ("set", "unset", "toggle", "setx", "reset") for b in rule.bit_actions
    )
    noalert = any(b.action == "noalert" for b in rule.bit_actions)
    tests: list[ast.Flowbits | ast.Flowint] = []

    def collect(cond: ast.Condition | None) -> None:
        if isinstance(cond, ast.Flowbits | ast.Flowint):
            tests.append(cond)
        elif isinstance(cond, ast.And | ast.Or):
            for c in cond.operands:
                collect(c)
        elif isinstance(cond, ast.Not):
            collect(cond.operand)

    collect(rule.condition)
    host = any(
        b.kind != "flowbits" for b in (*tests, *rule.bit_actions) if isinstance(b, ast.Flowbits)
    )
    return sets, bool(tests), noalert, host


def rule_order(rule: ast.Rule) -> tuple[int, int]:
    """Evaluation order within a packet: pass rules first, then flowbit setters before readers."""
    sets, reads, _, _ = _bit_usage(rule)
    stage = 0 if sets and not reads else 1 if sets else 3 if reads else 2
    return (0 if rule.action == "pass" else 1, stage)


def compile_ruleset(
    rules: list[ast.Rule] | tuple[ast.Rule, ...], variables: VariableTable | None = None
) -> CompiledRuleset:
    """Compile enabled rules; a rule that cannot be compiled is left out with a diagnostic."""
    started = time.perf_counter()
    variables = variables or VariableTable()
    diagnostics: list[CompileDiagnostic] = []
    port_index: dict[bytes, int] = {}
    port_rows: list[np.ndarray] = []

    by_node: dict[ast.Port, int] = {}
    addresses: dict[ast.Address, AddressSet | None] = {}

    def port_set(node: ast.Port) -> int:
        if node in by_node:
            return by_node[node]
        bitmap = port_bitmap(node, variables)
        key = np.packbits(bitmap).tobytes()
        if key not in port_index:
            port_index[key] = len(port_rows)
            port_rows.append(bitmap)
        by_node[node] = port_index[key]
        return port_index[key]

    def address_set(node: ast.Address) -> AddressSet | None:
        if node not in addresses:
            addresses[node] = AddressSet.from_ast(node, variables)
        return addresses[node]

    compiled: list[CompiledRule] = []
    ordered = sorted((r for r in rules if r.enabled), key=rule_order)
    for rule in ordered:
        try:
            header = rule.header
            protocol = header.protocol.lower()
            protocols = transports_of(protocol)
            app = None if protocol in TRANSPORTS else protocol
            src = address_set(header.source)
            dst = address_set(header.destination)
            sport = port_set(header.source_ports)
            dport = port_set(header.destination_ports)
            predicate = compile_condition(rule.condition, variables)
        except (HeaderError, ConditionError, PayloadRuleError, KeyError) as exc:
            diagnostics.append(CompileDiagnostic(rule.id, str(exc), str(rule.span)))
            continue
        except Exception as exc:  # an unresolved variable and the like, reported per rule
            diagnostics.append(
                CompileDiagnostic(rule.id, f"{type(exc).__name__}: {exc}", str(rule.span))
            )
            continue
        direction, established, frag = _flow_options(header)
        sets, reads, noalert, host_bits = _bit_usage(rule)
        buffers = frozenset(
            "pkt_data" if s.buffer.name in PAYLOAD_BUFFERS else s.buffer.name
            for s in _all_sequences(rule.condition)
            if s.buffer.name not in HEADER_BUFFERS
        ) | (APP_FIELDS & (read := fields_read(rule.condition)))
        stream = stream_mode(rule, buffers, read)
        fast = choose_fast_pattern(rule, prefer_app=stream != STREAM_NONE)
        if fast is not None and len(fast.pattern) < MIN_FAST_PATTERN:
            fast = None
        compiled.append(
            CompiledRule(
                index=len(compiled),
                rule=rule,
                protocols=protocols,
                app_protocol=app,
                src=src,
                dst=dst,
                sport_set=sport,
                dport_set=dport,
                bidirectional=header.direction == "<>",
                direction=direction,
                established=established,
                frag=frag,
                predicate=predicate,
                fast_pattern=fast,
                min_payload=_min_payload(rule),
                required=(required := _required_literals(rule)),
                confirm=_without_fast_pattern(required, fast),
                anchors=_anchored_literals(rule),
                byte_tests=_anchored_byte_tests(rule),
                needs_buffers=frozenset(
                    s.buffer.name
                    for s in _mandatory_sequences(rule.condition)
                    if s.buffer.name not in PAYLOAD_BUFFERS and s.buffer.name not in _UNSCANNED
                ),
                vector=vector_tests(rule.condition),
                buffers=buffers,
                sets_bits=sets,
                reads_bits=reads,
                noalert=noalert,
                stream=stream,
                fields=read,
                replies=header.direction == "=>",
                host_bits=host_bits,
            )
        )
    ports = np.array(port_rows, dtype=bool) if port_rows else np.zeros((0, 65536), dtype=bool)
    databases = _build_databases(compiled, ports)
    slow_all = [r for r in compiled if r.fast_pattern is None]
    # slow-path rules gated by an address list (IP reputation lists) are looked up
    # through one interval index instead of being tested one by one
    gated = [r for r in slow_all if r.src is not None or r.dst is not None]
    slow = [r.index for r in slow_all if r.src is None and r.dst is None]
    address_index = AddressIndex.build(gated)
    confirm = _build_confirm(compiled)
    return CompiledRuleset(
        rules=compiled,
        databases=databases,
        slow_rules=slow,
        address_index=address_index,
        port_sets=ports,
        diagnostics=diagnostics,
        compile_seconds=time.perf_counter() - started,
        variables=variables,
        confirm=confirm,
    )


def _build_confirm(rules: list[CompiledRule]) -> ConfirmTable | None:
    ids: dict[tuple[bytes, bool], int] = {}
    long: list[list[int]] = []
    short: list[list[int]] = []
    folded: list[bool] = []
    for r in rules:
        mine: set[int] = set()
        codes: set[int] = set()
        fold = False
        for buffer, literal, nocase in r.confirm:
            if buffer != "pkt_data":
                continue
            if len(literal) >= MIN_FAST_PATTERN and len(set(literal)) > 1:
                mine.add(ids.setdefault((literal, nocase), len(ids)))
            elif len(literal) == 2:
                base = SHORT_PAIR_FOLDED if nocase else SHORT_PAIR
                codes.add(base + (literal[0] << 8 | literal[1]))
                fold |= nocase
            elif len(literal) == 1:
                codes.add((SHORT_BYTE_FOLDED if nocase else SHORT_BYTE) + literal[0])
                fold |= nocase
        long.append(sorted(mine))
        short.append(sorted(codes))
        folded.append(fold)
    if not ids and not any(short):
        return None
    keys = list(ids)
    database = None
    if keys:
        database = compile_literals(
            [_escape(p) for p, _ in keys], list(range(len(keys))), [nocase for _, nocase in keys]
        )
    offsets, flat = _csr(long)
    short_offsets, short_flat = _csr(short)
    return ConfirmTable(
        database,
        offsets,
        flat,
        np.array([len(p) for p, _ in keys], dtype=np.int64),
        short_offsets,
        short_flat,
        np.array(folded, dtype=bool),
    )


def _csr(lists: Sequence[Sequence[int] | np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Lists of ids flattened: list `i` is `flat[offsets[i] : offsets[i + 1]]`."""
    counts = np.array([len(x) for x in lists], dtype=np.int64)
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = np.fromiter(chain.from_iterable(lists), dtype=np.int64, count=int(offsets[-1]))
    return offsets, flat


def _build_databases(
    rules: list[CompiledRule], port_sets: np.ndarray
) -> dict[str, PatternDatabase]:
    by_buffer: dict[str, dict[tuple[bytes, bool], list[int]]] = {}
    for r in rules:
        fp = r.fast_pattern
        if fp is None:
            continue
        key = (fp.pattern.lower() if fp.nocase else fp.pattern, fp.nocase)
        by_buffer.setdefault(fp.buffer, {}).setdefault(key, []).append(r.index)
    out: dict[str, PatternDatabase] = {}
    # the databases to compile: (expressions, pattern ids, caseless flags, whether
    # with the single-match one) each; port groups fall back on their buffer's whole
    # database for the single-match scans of a flood of hits
    jobs: list[tuple[list[bytes], list[int], list[bool], bool]] = []
    compiles: list[PatternDatabase] = []  # the databases with literals, in job order
    for buffer, patterns in by_buffer.items():
        keys = list(patterns)
        # a pattern of one repeated byte matches at every offset of a long run of it
        # (zero padding, NOP sleds): those are found with numpy instead
        runs = [(i, p[0], len(p), nocase) for i, (p, nocase) in enumerate(keys) if len(set(p)) == 1]
        run_ids = {i for i, *_ in runs}
        literal = [i for i in range(len(keys)) if i not in run_ids]
        groups = None
        if buffer in PAYLOAD_BUFFERS and literal:
            headers = [
                []
                if i in run_ids
                else [
                    (r.protocols, r.sport_set, r.dport_set, r.bidirectional or r.replies)
                    for r in (rules[k] for k in patterns[key])
                ]
                for i, key in enumerate(keys)
            ]
            groups = build_port_groups(headers, port_sets)
        db = out[buffer] = PatternDatabase(
            buffer=buffer,
            database=None,
            lengths=np.array([len(p) for p, _ in keys], dtype=np.int64),
            rules=[np.array(patterns[k], dtype=np.int64) for k in keys],
            runs=runs,
            groups=groups,
        )
        if literal:
            compiles.append(db)
            sets = [literal] + ([m.tolist() for m in groups.members] if groups else [])
            for k, ids in enumerate(sets):
                expressions = [_escape(keys[i][0]) for i in ids]
                jobs.append((expressions, ids, [keys[i][1] for i in ids], k == 0))
    # compiled on as many threads as there are cores: libhs compiles without holding
    # the interpreter lock
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        compiled = iter(list(pool.map(lambda job: compile_literals(*job[:3], single=job[3]), jobs)))
    for db in compiles:
        db.database = next(compiled)
        if db.groups is not None:
            db.groups.databases = [next(compiled) for _ in db.groups.members]
    return out
