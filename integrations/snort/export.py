"""Shrike rules to Snort 3 rule text.

Every construct is written in Snort 3 syntax where Snort 3 has one.  Where
only Suricata or Snort 2.9 can say it (Suricata buffers and transforms,
`startswith`, `urilen`, in-rule `threshold`, `xbits` ...) the other engine's
keyword is written and a note says so, so the rule is neither lost nor
silently changed.  Rules Snort cannot express at all (windows, anomaly and
detector fields, `or`) are left out and reported.  Importing the exported
text gives back the same ASTs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from integrations.snort.header import header_text
from integrations.snort.translate import missing
from integrations.snort.translate.buffers import SNORT3_BUFFER_NAMES
from integrations.snort.translate.packet import (
    APP_PROTOCOL_RELATIVES,
    NUMERIC_FIELDS,
    SURICATA_NUMERIC,
)
from integrations.snort.values import comparison_text, encode_pattern, quote_text
from rules import ast

#: Header protocols Snort 3 knows (IP protocols and the services it inspects).
SNORT3_PROTOCOLS = frozenset(
    {"ip", "tcp", "udp", "icmp", "file", "http", "http2", "ssl", "dns", "smtp", "ftp", "ssh",
     "sip", "imap", "pop3", "telnet", "dcerpc", "netbios-ssn", "modbus", "dnp3", "gtp"}
)  # fmt: skip
_FIELD_OPTIONS = {field_name: option for option, (field_name, _) in NUMERIC_FIELDS.items()}
_TRACKS = {
    "src": "by_src",
    "dst": "by_dst",
    "rule": "by_rule",
    "both": "by_both",
    "flow": "by_flow",  # Suricata only
}


class Unexpressible(Exception):
    """The rule uses something no Snort dialect can say."""


@dataclass(frozen=True, slots=True)
class ExportNote:
    """Something about one exported (or left out) rule that a user should know."""

    rule_id: int
    location: str
    message: str
    skipped: bool = False

    def __str__(self) -> str:
        what = "not exported" if self.skipped else "note"
        return f"{self.location}: rule {self.rule_id}: {what}: {self.message}"


@dataclass(slots=True)
class ExportResult:
    text: str
    exported: int
    notes: list[ExportNote] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return sum(1 for note in self.notes if note.skipped)


class _Writer:
    """Options of one rule, and the non-Snort-3 keywords it needed."""

    def __init__(self) -> None:
        self.options: list[str] = []
        self.foreign: list[str] = []
        self.verbatim: list[str] = []

    def add(
        self, name: str, value: str | None = None, foreign: bool = False, verbatim: bool = False
    ) -> None:
        if verbatim and value is not None and not _reads_back(value):
            raise Unexpressible(
                f"the value of {name} ({value!r}) cannot be written back as one Snort option"
            )
        self.options.append(name if value is None else f"{name}:{value}")
        if foreign and name not in self.foreign:
            self.foreign.append(name)
        if verbatim and name not in self.verbatim:
            self.verbatim.append(name)

    def notes(self) -> list[str]:
        found = []
        if self.foreign:
            found.append("written with keywords Snort 3 lacks: " + ", ".join(self.foreign))
        if self.verbatim:
            found.append("options Shrike keeps without evaluating: " + ", ".join(self.verbatim))
        return found


def _reads_back(value: str) -> bool:
    """Whether a value kept as read is one option's value again when written out: its
    quotes pair up, and no `;` ends the option early outside them."""
    quoted = False
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            return False
    return not quoted


def export_rules(rules: Iterable[ast.Rule]) -> ExportResult:
    """Snort 3 text for `rules`, one per line; disabled rules are written commented out."""
    lines = ["# Snort 3 rules written by shrike export-snort"]
    notes: list[ExportNote] = []
    exported = 0
    for rule in rules:
        where = str(rule.span)
        try:
            text, remarks = rule_text(rule)
        except Unexpressible as reason:
            notes.append(ExportNote(rule.id, where, str(reason), skipped=True))
            continue
        notes.extend(ExportNote(rule.id, where, remark) for remark in remarks)
        lines.append(text)
        exported += 1
    return ExportResult("\n".join(lines) + "\n", exported, notes)


def rule_text(rule: ast.Rule) -> tuple[str, list[str]]:
    """One rule as a Snort 3 line, and remarks on keywords Snort 3 lacks or Shrike
    does not evaluate."""
    raw = _opaque(rule, "snort_rule")
    if raw is not None:
        return raw, ["a rule Shrike could not read, written back as it was read"]
    if rule.window is not None:
        raise Unexpressible("Snort has no sliding-window aggregation")
    writer = _Writer()
    writer.add("msg", quote_text(rule.title))
    if rule.header.flow:
        writer.add("flow", ",".join(rule.header.flow))
    if rule.condition is not None:
        _condition(rule.condition, writer)
    for bits in rule.bit_actions:
        _bits(bits, writer)
    for change in rule.int_actions:
        _flowint(change, writer)
    for threshold in rule.thresholds:
        _threshold(threshold, writer)
    metadata = [f"{entry.key} {entry.value}".rstrip() for entry in rule.metadata]
    metadata += [f"mitre_tactic_id {tactic}" for tactic in rule.tactics]
    metadata += [f"mitre_technique_id {technique}" for technique in rule.techniques]
    if metadata:
        writer.add("metadata", ", ".join(metadata))
    for reference in rule.references:
        value = reference.value
        if any(ch in value for ch in ';"\\'):
            value = quote_text(value)
        writer.add("reference", f"{reference.kind},{value}")
    if rule.classtype is not None:
        writer.add("classtype", rule.classtype)
    if rule.priority is not None:
        writer.add("priority", str(rule.priority))
    if rule.gid is not None:
        writer.add("gid", str(rule.gid))
    writer.add("sid", str(rule.id))
    writer.add("rev", str(rule.rev))
    if rule.services:
        writer.add("service", ",".join(rule.services))
    for option in rule.options:
        if option.name not in ("snort_header", "snort_action"):
            writer.add(option.name, option.value)
    header = _opaque(rule, "snort_header") or header_text(rule.header)
    if rule.header.protocol not in SNORT3_PROTOCOLS:
        writer.foreign.insert(0, f"protocol {rule.header.protocol}")
    if rule.header.direction == "=>":  # Suricata's transaction rules
        writer.foreign.insert(0, "direction =>")
    action = _opaque(rule, "snort_action") or rule.action
    text = f"{action} {header} ( {'; '.join(writer.options)}; )"
    if not rule.enabled:
        text = "# " + text
    return text, writer.notes()


def _opaque(rule: ast.Rule, name: str) -> str | None:
    for option in rule.options:
        if option.name == name:
            return option.value
    return None


def _condition(node: ast.Condition, writer: _Writer) -> None:
    missing_buffer = _missing_buffer(node)
    if missing_buffer is not None:
        _sequence(ast.Sequence(missing_buffer, ()), writer)
        writer.add("absent", None, foreign=True)
    elif isinstance(node, ast.And):
        for operand in node.operands:
            _condition(operand, writer)
    elif isinstance(node, ast.Sequence):
        _sequence(node, writer)
    elif isinstance(node, ast.Comparison):
        _comparison(node, writer)
    elif isinstance(node, ast.Flowbits):
        _bits(node, writer)
    elif isinstance(node, ast.Flowint):
        _flowint(node, writer)
    elif isinstance(node, ast.OpaqueOption):
        writer.add(node.name, node.value, verbatim=True)
    elif (
        isinstance(node, ast.Or)
        and len(node.operands) == 2
        and isinstance(node.operands[1], ast.Sequence)
        and _missing_buffer(node.operands[0]) == node.operands[1].buffer
    ):
        sequence = node.operands[1]
        _sequence(ast.Sequence(sequence.buffer, ()), writer)
        writer.add("absent", "or_else", foreign=True)
        for item in sequence.items:
            _item(item, writer)
    elif isinstance(node, ast.Not) and isinstance(node.operand, ast.Comparison):
        _negated_comparison(node.operand, writer)
    else:
        raise Unexpressible(f"Snort cannot say `{type(node).__name__.lower()}` conditions")


def _missing_buffer(node: ast.Condition) -> ast.Buffer | None:
    """The buffer of Suricata's `absent` (`missing(buffer)` of the importer), or None."""
    if (
        isinstance(node, ast.And)
        and node.operands
        and isinstance(node.operands[0], ast.Not)
        and isinstance(node.operands[0].operand, ast.Sequence)
        and node == missing(node.operands[0].operand.buffer)
    ):
        return node.operands[0].operand.buffer
    return None


def _comparison(node: ast.Comparison, writer: _Writer) -> None:
    name = node.field.name
    value = node.value
    if name in ("tcp.flags", "ip.fragbits"):
        if not isinstance(value, ast.Symbol):
            raise Unexpressible(f"{name} compared with {value!r}")
        prefix = {"==": "", "has": "+", "has_any": "*"}.get(node.operator)
        if prefix is None:
            raise Unexpressible(f"{name} {node.operator} has no Snort form")
        mask = f",{node.mask}" if node.mask else ""
        writer.add("flags" if name == "tcp.flags" else "fragbits", f"{prefix}{value.name}{mask}")
    elif name == "ip.options" and node.operator == "has" and isinstance(value, ast.Symbol):
        writer.add("ipopts", value.name)
    elif name == "sameip" and node.operator == "==" and value is True:
        writer.add("sameip")
    elif name == "ftp.bounce" and node.operator == "==" and value is True:
        writer.add("ftpbounce", foreign=True)
    elif name in ("http.uri.len", "http.uri.raw.len"):
        suffix = ",raw" if name == "http.uri.raw.len" else ""
        writer.add("urilen", _number_test(node) + suffix, foreign=True)
    elif name.startswith("stream.size."):
        if not isinstance(value, int) or isinstance(value, bool):
            raise Unexpressible(f"{name} compared with {value!r}")
        op = "=" if node.operator == "==" else node.operator
        writer.add("stream_size", f"{name.rsplit('.', 1)[1]},{op},{value}")
    elif (
        name.startswith("app.protocol") and node.operator in ("==", "!=") and isinstance(value, str)
    ):
        negation = "!" if node.operator == "!=" else ""
        direction = name[len("app.protocol.") :] if name != "app.protocol" else ""
        mode = f",{direction}" if direction else ""
        if not direction and value in APP_PROTOCOL_RELATIVES:
            mode = ",exact"  # without it Suricata would also match the relatives
        writer.add("app-layer-protocol", f"{negation}{value}{mode}", foreign=True)
    elif name == "app.protocol" and node.operator == "in" and (family := _protocol_family(value)):
        writer.add("app-layer-protocol", family, foreign=True)
    elif name == "dns.rrtype":  # Suricata multi-integer: `value[,index]`
        index = "" if node.index is None else f",{node.index}"
        writer.add(name, _number_test(node) + index, foreign=True)
    elif name in _FIELD_OPTIONS:
        option = _FIELD_OPTIONS[name]
        writer.add(option, _number_test(node), foreign=option in SURICATA_NUMERIC)
    else:
        raise Unexpressible(f"Snort has no test for the field {name}")


def _number_test(node: ast.Comparison) -> str:
    value = node.value
    if isinstance(value, ast.Range) and node.operator == "in":
        return comparison_text("in", value)
    if isinstance(value, int) and not isinstance(value, bool) and node.operator in (
        "==", "!=", "<", "<=", ">", ">="
    ):  # fmt: skip
        return comparison_text(node.operator, value)
    raise Unexpressible(f"{node.field.name} {node.operator} {value!r} has no Snort form")


def _protocol_family(value: object) -> str:
    """The protocol whose Suricata name covers exactly the list `value`, or ""."""
    if isinstance(value, ast.ValueList):
        for name, family in APP_PROTOCOL_RELATIVES.items():
            if value.items == family:
                return name
    return ""


def _negated_comparison(node: ast.Comparison, writer: _Writer) -> None:
    """`not` before a comparison: a protocol family (`!dns`) or a flag test (`!AP`)."""
    family = _protocol_family(node.value) if node.field.name == "app.protocol" else ""
    if node.operator == "in" and family:
        writer.add("app-layer-protocol", "!" + family, foreign=True)
        return
    if node.field.name not in ("tcp.flags", "ip.fragbits") or node.operator != "has_any":
        raise Unexpressible("Snort negates only flag tests and protocols")
    if not isinstance(node.value, ast.Symbol):
        raise Unexpressible(f"{node.field.name} compared with {node.value!r}")
    mask = f",{node.mask}" if node.mask else ""
    name = "flags" if node.field.name == "tcp.flags" else "fragbits"
    writer.add(name, f"!{node.value.name}{mask}")


def _bits(bits: ast.Flowbits, writer: _Writer) -> None:
    parts = [bits.action]
    if bits.names:
        parts.append((bits.operator or "&").join(bits.names))
    if bits.kind == "xbits":
        parts.append(f"track {bits.track}")
        if bits.expire is not None:
            parts.append(f"expire {bits.expire}")
        writer.add("xbits", ",".join(parts), foreign=True)
        return
    if bits.group is not None:
        parts.append(bits.group)
    writer.add("flowbits", ",".join(parts))


def _flowint(node: ast.Flowint, writer: _Writer) -> None:
    value = "" if node.value is None else f",{node.value}"
    writer.add("flowint", f"{node.name},{node.operator}{value}", foreign=True)


def _threshold(threshold: ast.Threshold, writer: _Writer) -> None:
    track = _TRACKS[threshold.track]
    if threshold.kind == "backoff":  # Suricata
        body = f"track {track},count {threshold.count},multiplier {threshold.multiplier}"
        writer.add("threshold", f"type backoff,{body}", foreign=True)
        return
    body = f"track {track},count {threshold.count},seconds {threshold.seconds}"
    if threshold.unique is not None:
        option = _UNIQUE_ON.get(threshold.unique)
        if option is None:
            raise Unexpressible(f"Suricata counts distinct ports only, not {threshold.unique}")
        writer.add("detection_filter", f"{body},unique_on {option}", foreign=True)
    elif threshold.kind == "detection_filter":
        writer.add("detection_filter", body, foreign=threshold.track == "flow")
    else:
        # Snort 3 moved in-rule thresholds to event_filter configuration.
        writer.add("threshold", f"type {threshold.kind},{body}", foreign=True)


#: Shrike fields a detection_filter may count distinct values of, as Suricata's `unique_on`.
_UNIQUE_ON = {"src.port": "src_port", "dst.port": "dst_port"}


def _sequence(sequence: ast.Sequence, writer: _Writer) -> None:
    buffer = sequence.buffer
    snort3 = SNORT3_BUFFER_NAMES.get(buffer.name)
    if snort3 is not None:
        name, _, value = snort3.partition(":")
        writer.add(name, value or None)
    else:
        writer.add(buffer.name, None, foreign=True)
    for transform in buffer.transforms:
        writer.add(transform, None, foreign=True)
    for item in sequence.items:
        _item(item, writer)


def _operand(value: ast.Operand) -> str:
    return str(value)


def _item(item: ast.SequenceItem, writer: _Writer) -> None:
    if isinstance(item, ast.Content):
        _content(item, writer)
    elif isinstance(item, ast.Regex):
        writer.add("pcre", f'{"!" if item.negated else ""}"/{item.pattern}/{item.flags}"')
    elif isinstance(item, ast.ByteTest):
        op = "=" if item.operator == "==" else item.operator
        args = [str(item.bytes), ("!" if item.negated else "") + op, _operand(item.value)]
        args.append(_operand(item.offset))
        writer.add("byte_test", ",".join(args + _byte_flags(item)))
    elif isinstance(item, ast.ByteJump):
        args = [str(item.bytes), _operand(item.offset)]
        if item.multiplier is not None:
            args.append(f"multiplier {item.multiplier}")
        args += [flag for flag in ("align", "from_beginning", "from_end") if getattr(item, flag)]
        if item.post_offset is not None:
            args.append(f"post_offset {item.post_offset}")
        writer.add("byte_jump", ",".join(args + _byte_flags(item)))
    elif isinstance(item, ast.ByteExtract):
        args = [str(item.bytes), _operand(item.offset), item.name]
        if item.multiplier is not None:
            args.append(f"multiplier {item.multiplier}")
        if item.align is not None:
            args.append(f"align {item.align}")
        writer.add("byte_extract", ",".join(args + _byte_flags(item)))
    elif isinstance(item, ast.ByteMath):
        args = [
            f"bytes {item.bytes}",
            f"offset {item.offset}",
            f"oper {item.operator}",
            f"rvalue {item.rvalue}",
            f"result {item.result}",
        ]
        writer.add("byte_math", ",".join(args + _byte_flags(item, keyed=True)))
    elif isinstance(item, ast.IsDataAt):
        args = [("!" if item.negated else "") + _operand(item.offset)]
        args += [flag for flag in ("relative", "rawbytes") if getattr(item, flag)]
        writer.add("isdataat", ",".join(args))
    elif isinstance(item, ast.Base64Decode):
        args = [
            f"{key} {getattr(item, key)}"
            for key in ("bytes", "offset")
            if getattr(item, key) is not None
        ]
        if item.relative:
            args.append("relative")
        writer.add("base64_decode", ",".join(args) or None)
    elif isinstance(item, ast.BufferSize):
        writer.add("bufferlen", comparison_text(item.operator, item.value))
    else:
        writer.add(item.name, item.value, verbatim=True)


def _byte_flags(
    node: ast.ByteTest | ast.ByteJump | ast.ByteExtract | ast.ByteMath, keyed: bool = False
) -> list[str]:
    flags = ["relative"] if node.relative else []
    if node.endian is not None:
        flags.append(f"endian {node.endian}" if keyed else node.endian)
    if node.string is not None:
        flags.append(f"string {node.string}" if keyed else f"string,{node.string}")
    if node.bitmask is not None:
        flags.append(f"bitmask 0x{node.bitmask:X}")
    return flags


def _content(item: ast.Content, writer: _Writer) -> None:
    parts = [("!" if item.negated else "") + encode_pattern(item.pattern)]
    if item.nocase:
        parts.append("nocase")
    for key in ("offset", "depth", "distance", "within"):
        value = getattr(item, key)
        if value is not None:
            parts.append(f"{key} {value}")
    fast = item.fast_pattern
    if fast is not None:
        if fast.only:
            parts.append("fast_pattern_only")
        else:
            parts.append("fast_pattern")
        if fast.offset is not None:
            parts.append(f"fast_pattern_offset {fast.offset}")
        if fast.length is not None:
            parts.append(f"fast_pattern_length {fast.length}")
    writer.add("content", ",".join(parts))
    for flag in ("startswith", "endswith", "rawbytes"):
        if getattr(item, flag):
            writer.add(flag, None, foreign=True)
