"""Compiling a rule's `where` condition into a Python predicate over one packet.

`compile_condition` turns the AST (And/Or/Not over comparisons, payload
sequences and flowbits tests) into nested closures taking a `PacketView`
(what the matcher knows about the packet) and a `Scratch` (this evaluation's
byte_extract values and base64 output). `vector_tests` pulls out the top-level
packet-header comparisons that numpy can evaluate for a whole batch at once.
"""

from __future__ import annotations

import hashlib
import operator
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from engine.match.payload import BufferView, Scratch, Step, compile_items, match_sequence
from engine.match.sets import AddressSet
from rules import ast
from rules.fields import INDEXED_FIELDS, is_buffer
from rules.variables import VariableTable

#: The comparison operators of conditions (and of window thresholds).
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

TCP_FLAG_BITS = {
    "F": 0x01,
    "S": 0x02,
    "R": 0x04,
    "P": 0x08,
    "A": 0x10,
    "U": 0x20,
    "E": 0x40,
    "C": 0x80,
    "2": 0x40,
    "1": 0x80,
    "0": 0,
}


class ConditionError(ValueError):
    """A condition the matcher cannot evaluate as written."""


class PacketView(Protocol):
    """What a condition may ask of a packet."""

    def field(self, name: str) -> Any: ...

    def buffer(self, name: str) -> bytes | None: ...

    def bits(self, kind: str, track: str | None) -> set[str]: ...

    def flow_ints(self) -> dict[str, int]: ...


Predicate = Callable[[PacketView, Scratch], bool]


def flag_mask(letters: str) -> int:
    mask = 0
    for ch in letters.upper():
        if ch not in TCP_FLAG_BITS:
            raise ConditionError(f"unknown TCP flag {ch!r}")
        mask |= TCP_FLAG_BITS[ch]
    return mask


def _value_text(value: ast.Value) -> str:
    if isinstance(value, ast.Symbol):
        return value.name
    return str(value)


def _compare_flags(cmp: ast.Comparison) -> Callable[[int], bool]:
    want = flag_mask(_value_text(cmp.value))
    keep = 0xFF & ~flag_mask(cmp.mask or "")
    op = cmp.operator
    if op == "==":
        return lambda f: (f & keep) == want
    if op == "!=":
        return lambda f: (f & keep) != want
    if op == "has":
        return lambda f: (f & want) == want
    if op == "has_any":
        return lambda f: (f & want) != 0
    raise ConditionError(f"operator {op} does not apply to tcp.flags")


_FRAG_BITS = {"M": 1, "D": 2, "R": 4}


def _compare_symbols(cmp: ast.Comparison, table: dict[str, int]) -> Callable[[int], bool]:
    want = 0
    for ch in _value_text(cmp.value).upper():
        want |= table.get(ch, 0)
    op = cmp.operator
    if op == "==":
        return lambda f: f == want
    if op == "!=":
        return lambda f: f != want
    if op == "has":
        return lambda f: (f & want) == want
    return lambda f: (f & want) != 0


def _scalar_test(cmp: ast.Comparison, variables: VariableTable) -> Callable[[Any], bool]:
    """A test of one field value against the comparison's right-hand side."""
    op = cmp.operator
    value = cmp.value
    if op == "in":
        if isinstance(value, ast.Range):
            lo, hi = value.low, value.high
            if value.inclusive:
                return lambda v: v is not None and lo <= v <= hi
            return lambda v: v is not None and lo < v < hi
        if isinstance(value, ast.ValueList):
            items = {_plain(i) for i in value.items}
            return lambda v: v in items
        if isinstance(value, ast.IpAddress | ast.AddressVariable):
            members = AddressSet.from_ast(value, variables)
            if members is None:
                return lambda v: v is not None
            return lambda v: v is not None and v in members
        raise ConditionError(f"cannot test membership in {value!r}")
    if isinstance(value, ast.IpAddress | ast.AddressVariable):
        addresses = AddressSet.from_ast(value, variables)
        if op not in ("==", "!="):
            raise ConditionError("addresses compare with ==, != or in")
        if addresses is None:
            return lambda v: (v is not None) == (op == "==")
        return lambda v: v is not None and (v in addresses) == (op == "==")
    rhs = _plain(value)
    if op not in COMPARISONS:
        raise ConditionError(f"operator {op} does not apply to {cmp.field.name}")
    f = COMPARISONS[op]

    def test(v: Any) -> bool:
        if v is None:
            return False
        try:
            return bool(f(v, rhs))
        except TypeError:
            return False

    return test


def _plain(value: ast.Value) -> Any:
    """A value as compared with a field: bare words by their name, the rest as is."""
    return value.name if isinstance(value, ast.Symbol) else value


def _compile_comparison(cmp: ast.Comparison, variables: VariableTable) -> Predicate:
    name = cmp.field.name
    if name == "tcp.flags":
        flags_test = _compare_flags(cmp)

        def tcp_flags(p: PacketView, s: Scratch) -> bool:
            v = p.field("tcp.flags")
            return v is not None and flags_test(v)

        return tcp_flags
    if name == "ip.fragbits":
        frag_test = _compare_symbols(cmp, _FRAG_BITS)
        return lambda p, s: frag_test(p.field("ip.fragbits"))
    if name == "ip.options":
        wanted = _value_text(cmp.value).lower()

        def ip_options(p: PacketView, s: Scratch) -> bool:
            present: set[str] = p.field("ip.options") or set()
            return bool(present) if wanted == "any" else wanted in present

        return ip_options
    if name in ("stream.size.both", "stream.size.either"):
        # the field is (client bytes, server bytes): both must hold, or either
        size_test = _scalar_test(cmp, variables)
        combine = all if name == "stream.size.both" else any

        def stream_sizes(p: PacketView, s: Scratch) -> bool:
            sizes = p.field(name)
            return sizes is not None and combine(size_test(v) for v in sizes)

        return stream_sizes
    if isinstance(cmp.value, ast.FieldRef):
        other = cmp.value.name
        f = COMPARISONS[cmp.operator]
        return lambda p, s: f(p.field(name), p.field(other))
    if is_buffer(name):
        # a buffer compared with a string: equality on its bytes
        test = _scalar_test(cmp, variables)

        def buffer_compare(p: PacketView, s: Scratch) -> bool:
            raw = p.buffer(name)
            if raw is None:
                return False
            return test(raw.decode("latin-1")) or test(raw)

        return buffer_compare
    test = _scalar_test(cmp, variables)
    if name in INDEXED_FIELDS:
        return _indexed(name, cmp.index, test)
    return lambda p, s: test(p.field(name))


def _indexed(name: str, index: int | str | None, test: Callable[[Any], bool]) -> Predicate:
    """A field with several values (a list, or None when absent), tested as Suricata's
    multi-integers: any value, the one at `index` (negative from the end), or all of
    them (and at least one)."""
    if index is None:

        def any_value(p: PacketView, s: Scratch) -> bool:
            return any(test(v) for v in p.field(name) or ())

        return any_value
    if index == "all":

        def every_value(p: PacketView, s: Scratch) -> bool:
            values = p.field(name)
            return bool(values) and all(test(v) for v in values)

        return every_value
    if not isinstance(index, int):
        raise ConditionError(f"unknown index {index!r} of {name}")
    position = index

    def one_value(p: PacketView, s: Scratch) -> bool:
        values = p.field(name) or ()
        if not -len(values) <= position < len(values):
            return False
        return test(values[position])

    return one_value


def _transform(data: bytes, transforms: tuple[str, ...]) -> bytes:
    for t in transforms:
        if t == "to_lowercase":
            data = data.lower()
        elif t == "to_uppercase":
            data = data.upper()
        elif t == "dotprefix":
            data = b"." + data
        elif t == "strip_whitespace":
            data = re.sub(rb"\s", b"", data)
        elif t == "compress_whitespace":
            data = re.sub(rb"\s+", b" ", data)
        elif t == "url_decode":
            data = urllib.parse.unquote_to_bytes(data.replace(b"+", b" "))
        elif t == "to_sha256":
            data = hashlib.sha256(data).digest()
        elif t == "to_sha1":
            data = hashlib.sha1(data).digest()
        elif t == "to_md5":
            data = hashlib.md5(data).digest()
    return data


#: Buffers holding several instances (one per header line), kept as the instances
#: joined by CRLF (which no instance contains); a sequence holds when it holds on one.
MULTI_BUFFERS = frozenset({"http.request_header", "http.response_header"})


def _compile_sequence(seq: ast.Sequence) -> Predicate:
    steps: tuple[Step, ...] = compile_items(seq.items)
    name = seq.buffer.name
    transforms = seq.buffer.transforms

    if name in MULTI_BUFFERS:

        def any_instance(p: PacketView, s: Scratch) -> bool:
            raw = p.buffer(name)
            if raw is None:
                return False
            for one in raw.split(b"\r\n"):
                data = _transform(one, transforms) if transforms else one
                if match_sequence(steps, BufferView(data), s, p.buffer):
                    return True
            return False

        return any_instance

    def sequence(p: PacketView, s: Scratch) -> bool:
        raw = s.base64 if name == "base64_data" else p.buffer(name)
        if raw is None:
            return False
        if transforms:
            raw = _transform(raw, transforms)
        return match_sequence(steps, BufferView(raw), s, p.buffer)

    return sequence


def _compile_flowint(node: ast.Flowint) -> Predicate:
    """A `flowint` test: an unset variable fails every comparison; a name on the right
    reads that variable, 0 when unset (Suricata's semantics)."""
    name = node.name
    if node.operator == "isset":
        return lambda p, s: name in p.flow_ints()
    if node.operator in ("notset", "isnotset"):
        return lambda p, s: name not in p.flow_ints()
    test = COMPARISONS.get(node.operator)
    if test is None:
        raise ConditionError(f"flowint {node.operator} changes the variable; it is not a test")
    target = node.value

    def compare(p: PacketView, s: Scratch) -> bool:
        values = p.flow_ints()
        current = values.get(name)
        if current is None:
            return False
        other = values.get(target, 0) if isinstance(target, str) else int(target or 0)
        return test(current, other)

    return compare


def _compile_bits(bits: ast.Flowbits) -> Predicate:
    names = bits.names
    kind = bits.kind
    track = bits.track
    any_of = bits.operator == "|"
    if bits.action == "isset":
        if any_of:
            return lambda p, s: any(n in p.bits(kind, track) for n in names)
        return lambda p, s: all(n in p.bits(kind, track) for n in names)
    if bits.action == "isnotset":
        if any_of:
            return lambda p, s: any(n not in p.bits(kind, track) for n in names)
        return lambda p, s: all(n not in p.bits(kind, track) for n in names)
    raise ConditionError(f"{kind} {bits.action} is an action, not a test")


def compile_condition(cond: ast.Condition | None, variables: VariableTable) -> Predicate:
    """A predicate with the meaning of `cond` (always true for None)."""
    if cond is None:
        return lambda p, s: True
    if isinstance(cond, ast.And):
        parts = tuple(compile_condition(c, variables) for c in _ordered(cond.operands))
        if len(parts) == 2:  # the common case, in one expression
            first, second = parts
            return lambda p, s: first(p, s) and second(p, s)

        def every(p: PacketView, s: Scratch) -> bool:
            for part in parts:  # noqa: SIM110 - a loop, not a generator per evaluation
                if not part(p, s):
                    return False
            return True

        return every
    if isinstance(cond, ast.Or):
        parts = tuple(compile_condition(c, variables) for c in cond.operands)
        if len(parts) == 2:
            first, second = parts
            return lambda p, s: first(p, s) or second(p, s)

        def some(p: PacketView, s: Scratch) -> bool:
            for part in parts:  # noqa: SIM110 - a loop, not a generator per evaluation
                if part(p, s):
                    return True
            return False

        return some
    if isinstance(cond, ast.Not):
        inner = compile_condition(cond.operand, variables)
        return lambda p, s: not inner(p, s)
    if isinstance(cond, ast.Comparison):
        return _compile_comparison(cond, variables)
    if isinstance(cond, ast.Sequence):
        return _compile_sequence(cond)
    if isinstance(cond, ast.Flowbits):
        return _compile_bits(cond)
    if isinstance(cond, ast.Flowint):
        return _compile_flowint(cond)
    if isinstance(cond, ast.OpaqueOption):
        return lambda p, s: True
    raise ConditionError(f"cannot evaluate {type(cond).__name__}")


def _ordered(operands: tuple[ast.Condition, ...]) -> tuple[ast.Condition, ...]:
    """Cheap tests first; sequences keep their written order (base64_data follows its decode)."""

    def cost(c: ast.Condition) -> int:
        if isinstance(c, ast.Comparison | ast.Flowbits | ast.Flowint | ast.OpaqueOption):
            return 0
        return 1

    return tuple(sorted(operands, key=cost))


# ---------------------------------------------------------------------------
# Vectorized header tests for the slow path

#: Row columns of `engine.decode.ROW_DTYPE` that hold a field directly.
ROW_COLUMNS = {
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
    "src.port": "sport",
    "dst.port": "dport",
}


@dataclass(frozen=True, slots=True)
class VectorTest:
    """A comparison numpy can run over a batch: `column op value` or a flags test."""

    column: str
    test: Callable[[np.ndarray], np.ndarray]


def _vector_scalar(cmp: ast.Comparison) -> Callable[[np.ndarray], np.ndarray] | None:
    op = cmp.operator
    v = cmp.value
    if op == "in" and isinstance(v, ast.Range):
        lo, hi = v.low, v.high
        if v.inclusive:
            return lambda a: (a >= lo) & (a <= hi)
        return lambda a: (a > lo) & (a < hi)
    if op == "in" and isinstance(v, ast.ValueList) and all(isinstance(i, int) for i in v.items):
        items = np.array(v.items, dtype=np.int64)
        return lambda a: np.isin(a, items)
    if isinstance(v, bool) or not isinstance(v, int):
        return None
    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "==": lambda a: a == v,
        "!=": lambda a: a != v,
        "<": lambda a: a < v,
        "<=": lambda a: a <= v,
        ">": lambda a: a > v,
        ">=": lambda a: a >= v,
    }
    return table.get(op)


def vector_tests(cond: ast.Condition | None) -> tuple[VectorTest, ...]:
    """Top-level (under And) header comparisons that a batch can be filtered with first.

    They are necessary conditions only: the full predicate still runs on rows that pass.
    """
    if cond is None:
        return ()
    operands = cond.operands if isinstance(cond, ast.And) else (cond,)
    out: list[VectorTest] = []
    for c in operands:
        if not isinstance(c, ast.Comparison) or isinstance(c.value, ast.FieldRef):
            continue
        name = c.field.name
        if name == "tcp.flags":
            try:
                f = _compare_flags(c)
            except ConditionError:
                continue
            lut = np.array([f(i) for i in range(256)], dtype=bool)
            out.append(VectorTest("tcp_flags", lut.__getitem__))
        elif name == "dsize":
            t = _vector_scalar(c)
            if t is not None:
                out.append(VectorTest("dsize", t))
        elif name in ROW_COLUMNS:
            t = _vector_scalar(c)
            if t is not None:
                out.append(VectorTest(ROW_COLUMNS[name], t))
    return tuple(out)
