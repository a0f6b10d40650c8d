"""The Shrike rule language abstract syntax tree: frozen, value-comparable nodes with source spans.

Every node carries a `span` that is excluded from equality and hashing, so two
ASTs built from differently laid out text (or from a Snort import) compare equal
when they mean the same rule.  Nodes hold only immutable values (tuples, not
lists), so whole rules can be hashed, cached and shared between threads.

Values that appear in conditions are plain Python values where that is
unambiguous: `int`, `float`, `bool`, `str` (a quoted string) and `bytes` (a hex
literal such as `|4d 5a|`); everything else is a node (`Symbol`, `FieldRef`,
`Range`, `ValueList`, the address nodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node came from: file name, 1-based line and column of its first
    character, and line and column just past its last character."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


#: Span of nodes built by code rather than parsed from text (importers, tests).
NO_SPAN = Span("<generated>", 0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Node:
    """Base of every AST node; `span` never takes part in equality."""

    span: Span = field(default=NO_SPAN, compare=False, repr=False, kw_only=True)


# ---------------------------------------------------------------------------
# Addresses and ports (rule header, also usable as condition values)


@dataclass(frozen=True, slots=True)
class AnyAddress(Node):
    """`any`: every address."""


@dataclass(frozen=True, slots=True)
class IpAddress(Node):
    """One IPv4/IPv6 address or CIDR network, kept as written (`10.0.0.0/8`)."""

    network: str


@dataclass(frozen=True, slots=True)
class AddressVariable(Node):
    """`$HOME_NET`: an address variable, resolved by `rules.variables`. `name` has no `$`."""

    name: str


@dataclass(frozen=True, slots=True)
class AddressList(Node):
    """`[a, b, ...]`: the union of its items."""

    items: tuple[Address, ...]


@dataclass(frozen=True, slots=True)
class NegatedAddress(Node):
    """`!a`: every address except those of `inner`."""

    inner: Address


Address: TypeAlias = AnyAddress | IpAddress | AddressVariable | AddressList | NegatedAddress


@dataclass(frozen=True, slots=True)
class AnyPort(Node):
    """`any`: every port."""


@dataclass(frozen=True, slots=True)
class PortNumber(Node):
    """One port, 0-65535."""

    number: int


@dataclass(frozen=True, slots=True)
class PortRange(Node):
    """`low..high`, inclusive; an open end (`1024..`, `..1023`) is None."""

    low: int | None
    high: int | None


@dataclass(frozen=True, slots=True)
class PortVariable(Node):
    """`$HTTP_PORTS`: a port variable, resolved by `rules.variables`. `name` has no `$`."""

    name: str


@dataclass(frozen=True, slots=True)
class PortList(Node):
    """`[80, 443, 8000..8080]`: the union of its items."""

    items: tuple[Port, ...]


@dataclass(frozen=True, slots=True)
class NegatedPort(Node):
    """`!22`: every port except those of `inner`."""

    inner: Port


Port: TypeAlias = AnyPort | PortNumber | PortRange | PortVariable | PortList | NegatedPort


@dataclass(frozen=True, slots=True)
class Header(Node):
    """The `match` line: protocol, endpoints, direction and flow state.

    `direction` is `"->"` for `from A to B`, `"<>"` for `between A and B`, and
    `"=>"` for `from A to B with_replies` (Suricata's transaction rules: A and B
    are the client and the server, and the replies from B to A match too).
    `flow` keeps the flow options (`established`, `to_server`, ...) in the order
    written, because Snort round trips must reproduce them.
    """

    protocol: str
    source: Address = AnyAddress()
    source_ports: Port = AnyPort()
    direction: str = "->"
    destination: Address = AnyAddress()
    destination_ports: Port = AnyPort()
    flow: tuple[str, ...] = ()


# ---------------------------------------------------------------------------
# Condition values


@dataclass(frozen=True, slots=True)
class Symbol(Node):
    """A bare word used as a value: TCP flags (`SA`), an enum member (`rr`, `http`)."""

    name: str


@dataclass(frozen=True, slots=True)
class FieldRef(Node):
    """A reference to a condition field from `rules.fields`, such as `ip.ttl` or `http.uri`."""

    name: str


@dataclass(frozen=True, slots=True)
class Range(Node):
    """`low..high` (inclusive, Snort 3 `<=>`) or `low<>high` (exclusive, Snort `<>`)."""

    low: int | float
    high: int | float
    inclusive: bool = True


@dataclass(frozen=True, slots=True)
class ValueList(Node):
    """`[v1, v2, ...]`: right-hand side of `in`."""

    items: tuple[Value, ...]


Value: TypeAlias = (
    int
    | float
    | bool
    | str
    | bytes
    | Symbol
    | FieldRef
    | Range
    | ValueList
    | IpAddress
    | AddressVariable
)


# ---------------------------------------------------------------------------
# Payload matching: a Sequence of matchers on one buffer

#: Offsets and sizes are integers or the name of a `byte_extract`/`byte_math` result.
Operand: TypeAlias = int | str


@dataclass(frozen=True, slots=True)
class Buffer(Node):
    """The buffer a sequence inspects (`pkt_data`, `http.uri`, `dns.query`, ...),
    with Suricata-style transforms applied in order (`dotprefix`, `to_lowercase`)."""

    name: str
    transforms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FastPattern(Node):
    """`fast_pattern`, `fast_pattern only`, or `fast_pattern at OFFSET length LENGTH`."""

    only: bool = False
    offset: int | None = None
    length: int | None = None


@dataclass(frozen=True, slots=True)
class Content(Node):
    """A literal byte pattern with Snort's content semantics.

    `startswith`/`endswith` come from the verb (`contains`, `starts_with`,
    `ends_with`, `equals`). `offset`/`depth` are absolute; `distance`/`within`
    are relative to the end of the previous match in the same Sequence.
    """

    pattern: bytes
    negated: bool = False
    nocase: bool = False
    startswith: bool = False
    endswith: bool = False
    offset: Operand | None = None
    depth: Operand | None = None
    distance: Operand | None = None
    within: Operand | None = None
    fast_pattern: FastPattern | None = None
    rawbytes: bool = False


@dataclass(frozen=True, slots=True)
class Regex(Node):
    """`matches /pattern/flags`: a PCRE; `pattern` is the text between the slashes
    exactly as written (escapes kept), `flags` the PCRE/Snort flag letters."""

    pattern: str
    flags: str = ""
    negated: bool = False


@dataclass(frozen=True, slots=True)
class ByteTest(Node):
    """`byte_test(...)`: read `bytes` bytes at `offset` and compare with `value`.

    `operator` is one of `<`, `>`, `<=`, `>=`, `==`, `&`, `^`; `negated` is
    Snort's `!` prefix.  `endian` is `big`, `little` or `dce`; `string` is
    `hex`, `dec` or `oct` when the bytes are text.  `bytes` may be the name of
    an earlier `byte_extract`/`byte_math` result (Suricata).
    """

    bytes: Operand
    operator: str
    value: Operand
    offset: Operand
    negated: bool = False
    relative: bool = False
    endian: str | None = None
    string: str | None = None
    bitmask: int | None = None


@dataclass(frozen=True, slots=True)
class ByteJump(Node):
    """`byte_jump(...)`: read a length and move the cursor by it (`bytes` a number
    or an extracted name)."""

    bytes: Operand
    offset: Operand
    relative: bool = False
    multiplier: int | None = None
    endian: str | None = None
    string: str | None = None
    align: bool = False
    from_beginning: bool = False
    from_end: bool = False
    post_offset: Operand | None = None
    bitmask: int | None = None


@dataclass(frozen=True, slots=True)
class ByteExtract(Node):
    """`byte_extract(...)`: read a value into the variable `name` for later operands."""

    bytes: int
    offset: Operand
    name: str
    relative: bool = False
    multiplier: int | None = None
    endian: str | None = None
    string: str | None = None
    align: int | None = None
    bitmask: int | None = None


@dataclass(frozen=True, slots=True)
class ByteMath(Node):
    """`byte_math(...)`: `result = read(bytes, offset) operator rvalue`.

    `operator` is one of `+`, `-`, `*`, `/`, `<<`, `>>`; `bytes` is a number or
    an extracted name.
    """

    bytes: Operand
    offset: Operand
    operator: str
    rvalue: Operand
    result: str
    relative: bool = False
    endian: str | None = None
    string: str | None = None
    bitmask: int | None = None


@dataclass(frozen=True, slots=True)
class IsDataAt(Node):
    """`isdataat(offset, relative)`: at least one byte exists at `offset`."""

    offset: Operand
    relative: bool = False
    negated: bool = False
    rawbytes: bool = False


@dataclass(frozen=True, slots=True)
class Base64Decode(Node):
    """`base64_decode(bytes N, offset M, relative)`: decode into the `base64_data` buffer."""

    bytes: int | None = None
    offset: int | None = None
    relative: bool = False


@dataclass(frozen=True, slots=True)
class BufferSize(Node):
    """`size OP N` / `size in a..b`: the inspected buffer's length (Suricata `bsize`)."""

    operator: str
    value: int | Range


@dataclass(frozen=True, slots=True)
class OpaqueOption(Node):
    """`option NAME "value"`: an option Shrike knows by name but does not evaluate
    (kept so imports lose nothing). `value` is None for a flag option."""

    name: str
    value: str | None = None


SequenceItem: TypeAlias = (
    Content
    | Regex
    | ByteTest
    | ByteJump
    | ByteExtract
    | ByteMath
    | IsDataAt
    | Base64Decode
    | BufferSize
    | OpaqueOption
)


@dataclass(frozen=True, slots=True)
class Sequence(Node):
    """The ordered payload matchers on one buffer: `http.uri { contains "a" ... }`.

    Order is semantic: relative modifiers (`distance`, `within`, `relative`)
    refer to the item before.  The one-item form `http.uri contains "a"` is the
    same node with a single item.
    """

    buffer: Buffer
    items: tuple[SequenceItem, ...]


# ---------------------------------------------------------------------------
# Conditions


@dataclass(frozen=True, slots=True)
class Comparison(Node):
    """`FIELD OP VALUE`.

    `operator` is one of `==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `has` (every
    listed flag/option set, Snort `+`), `has_any` (any of them, Snort `*`).
    `mask` is the set of TCP flags to ignore (`ignoring CE`). A bare boolean
    field `detector.port_scan` is `Comparison(field, "==", True)`.  `index`
    picks the values of a field holding several (`dns.rrtype[0] == 1`, Suricata
    multi-integers): None any of them, an int that one (negative from the end),
    `"all"` every one and at least one.
    """

    field: FieldRef
    operator: str
    value: Value
    mask: str | None = None
    index: int | str | None = None


@dataclass(frozen=True, slots=True)
class Flowbits(Node):
    """Stateful bits. `kind` is `flowbits` or `xbits`.

    Tests (`isset`, `isnotset`) are conditions; actions (`set`, `unset`,
    `toggle`, `setx`, `reset`, `noalert`) are rule statements kept in
    `Rule.bit_actions`.  `operator` joins several names: `&` (all) or `|`
    (any).  `track` and `expire` are xbits' tracking key and lifetime.
    """

    kind: str
    action: str
    names: tuple[str, ...] = ()
    operator: str | None = None
    group: str | None = None
    track: str | None = None
    expire: int | None = None


@dataclass(frozen=True, slots=True)
class Flowint(Node):
    """Suricata `flowint`: an integer variable kept per flow.

    Tests (`isset`, `notset`, `==`, `!=`, `<`, `<=`, `>`, `>=`) are conditions;
    changes (`=`, `+`, `-`) are rule statements kept in `Rule.int_actions`,
    applied when the rule matches.  `value` is a number or another flowint's
    name; it is None for `isset`/`notset`.
    """

    name: str
    operator: str
    value: int | str | None = None


@dataclass(frozen=True, slots=True)
class And(Node):
    """All operands hold (flattened: never directly nests another And)."""

    operands: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or(Node):
    """At least one operand holds (flattened: never directly nests another Or)."""

    operands: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not(Node):
    """The operand does not hold."""

    operand: Condition


Condition: TypeAlias = And | Or | Not | Comparison | Sequence | Flowbits | Flowint | OpaqueOption


# ---------------------------------------------------------------------------
# Rate limiting and windowed aggregation


@dataclass(frozen=True, slots=True)
class Duration(Node):
    """A time span as written: `amount` of `unit` (`ms`, `s`, `m`, `h`, `d`)."""

    amount: int
    unit: str

    @property
    def seconds(self) -> float:
        return self.amount * _UNIT_SECONDS[self.unit]


_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True, slots=True)
class Threshold(Node):
    """Snort `threshold`/`detection_filter`: `threshold limit 1 per 60s by src`.

    `kind` is `limit`, `threshold`, `both`, `backoff` or `detection_filter`;
    `track` is `src`, `dst`, `rule`, `both` (source and destination pair) or
    `flow`.  `backoff` (Suricata) has no period: it alerts on match `count`,
    then `count * multiplier`, `count * multiplier**2`, ... (`seconds` is 0).
    `unique` (Suricata `unique_on`) makes a `detection_filter` count the
    distinct values of that field (`src.port`) instead of the matches.
    """

    kind: str
    count: int
    seconds: int
    track: str
    multiplier: int | None = None
    unique: str | None = None


@dataclass(frozen=True, slots=True)
class Aggregate(Node):
    """`count()`, `sum(f)`, `distinct(f)`, `min(f)`, `max(f)`, `avg(f)` over a window."""

    function: str
    field: FieldRef | None = None


@dataclass(frozen=True, slots=True)
class Window(Node):
    """`window 60s by src.ip: distinct(dst.port) >= 25`: the rule fires when the
    aggregate over matching events in the sliding window, per group key, passes
    the comparison."""

    duration: Duration
    group_by: tuple[FieldRef, ...]
    aggregate: Aggregate
    operator: str
    threshold: int | float


# ---------------------------------------------------------------------------
# Rules and files


@dataclass(frozen=True, slots=True)
class Reference(Node):
    """`reference url "example.com/advisory"`: Snort's (type, value) pair."""

    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class MetadataEntry(Node):
    """`meta key "value"`: free key/value metadata; repeated keys are kept in order."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Rule(Node):
    """One detection rule.

    `id`/`rev`/`gid` are Snort's sid/rev/gid; `title` is Snort's msg.
    `enabled` is False for `disabled` rules (an import that could not be fully
    represented is kept disabled).  `techniques` are ATT&CK ids (`T1046`,
    `T1059.001`), `tactics` ATT&CK tactic ids (`TA0007`).  `condition` is None
    when the header alone decides.  `bit_actions` are the flowbits/xbits
    side effects applied when the rule matches.  `options` are opaque options
    kept for round trips (`tag`, `target`, ...).
    """

    title: str
    id: int
    header: Header
    rev: int = 1
    gid: int | None = None
    action: str = "alert"
    enabled: bool = True
    severity: str | None = None
    priority: int | None = None
    classtype: str | None = None
    techniques: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()
    tags: tuple[str, ...] = ()
    author: str | None = None
    metadata: tuple[MetadataEntry, ...] = ()
    services: tuple[str, ...] = ()
    condition: Condition | None = None
    window: Window | None = None
    thresholds: tuple[Threshold, ...] = ()
    bit_actions: tuple[Flowbits, ...] = ()
    options: tuple[OpaqueOption, ...] = ()
    int_actions: tuple[Flowint, ...] = ()


@dataclass(frozen=True, slots=True)
class Include(Node):
    """`include "path.shrike"`: path relative to the including file."""

    path: str


@dataclass(frozen=True, slots=True)
class VariableDefinition(Node):
    """`addresses HOME_NET = [...]` or `ports HTTP_PORTS = [...]`."""

    name: str
    value: Address | Port


@dataclass(frozen=True, slots=True)
class Comment(Node):
    """`# text` to the end of the line; `text` excludes the `#` and trailing blanks."""

    text: str


Statement: TypeAlias = Rule | Include | VariableDefinition


@dataclass(frozen=True, slots=True)
class RuleFile(Node):
    """A parsed `.shrike` file: its top-level statements in order, and its comments.

    Only `statements` take part in equality: the path and the comments are
    location and layout (the formatter puts comments back)."""

    path: str = field(compare=False)
    statements: tuple[Statement, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False, repr=False)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(s for s in self.statements if isinstance(s, Rule))
