"""The canonical text of rule ASTs (`shrike fmt`): one layout per AST, comments put back beside what they annotate.

The layout depends only on the AST, so formatting is idempotent as long as
printed text parses back to an equal AST (tested as a property).  Comments
are re-attached by source line: a comment on the first line of a statement
stays at the end of that line; any other comment is printed on its own line
before the first following statement whose position is known.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rules import ast, fields

INDENT = "  "
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_PRINTABLE = frozenset(range(0x20, 0x7F))


@dataclass(frozen=True, slots=True)
class _Line:
    """One output line and the source line of the node it prints (0 when unknown)."""

    text: str
    anchor: int = 0


# ---------------------------------------------------------------------------
# Scalars


def quote(text: str) -> str:
    """`text` as a Shrike string literal."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02X}")
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def pattern_text(data: bytes) -> str:
    """Bytes as printable-ASCII strings and `|hex|` runs: `"GET " |0D 0A|`."""
    parts: list[str] = []
    i = 0
    n = len(data)
    while i < n:
        j = i
        if data[i] in _PRINTABLE:
            while j < n and data[j] in _PRINTABLE:
                j += 1
            parts.append(quote(data[i:j].decode("ascii")))
        else:
            while j < n and data[j] not in _PRINTABLE:
                j += 1
            parts.append(hex_text(data[i:j]))
        i = j
    return " ".join(parts) if parts else '""'


def hex_text(data: bytes) -> str:
    return "|" + " ".join(f"{b:02X}" for b in data) + "|"


def _word_or_quote(text: str) -> str:
    return text if _WORD.fullmatch(text) else quote(text)


def number_text(value: float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    if "e" in text or "n" in text:
        text = f"{value:.20f}".rstrip("0")
        if text.endswith("."):
            text += "0"
    return text


def value_text(value: ast.Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bytes):
        return hex_text(value)
    if isinstance(value, ast.Symbol | ast.FieldRef):
        return value.name
    if isinstance(value, ast.Range):
        sep = ".." if value.inclusive else "<>"
        return f"{number_text(value.low)}{sep}{number_text(value.high)}"
    if isinstance(value, ast.ValueList):
        return "[" + ", ".join(value_text(v) for v in value.items) + "]"
    if isinstance(value, ast.IpAddress):
        return value.network
    if isinstance(value, ast.AddressVariable):
        return f"${value.name}"
    raise TypeError(f"cannot print value {value!r}")


def address_text(address: ast.Address, list_sep: str = ", ") -> str:
    """An address as Shrike writes it (Snort's form with `list_sep=","`)."""
    if isinstance(address, ast.AnyAddress):
        return "any"
    if isinstance(address, ast.IpAddress):
        return address.network
    if isinstance(address, ast.AddressVariable):
        return f"${address.name}"
    if isinstance(address, ast.AddressList):
        return "[" + list_sep.join(address_text(a, list_sep) for a in address.items) + "]"
    if isinstance(address, ast.NegatedAddress):
        return "!" + address_text(address.inner, list_sep)
    raise TypeError(f"cannot print address {address!r}")


def port_text(port: ast.Port, range_sep: str = "..", list_sep: str = ", ") -> str:
    """A port as Shrike writes it (Snort's form with `range_sep=":", list_sep=","`)."""
    if isinstance(port, ast.AnyPort):
        return "any"
    if isinstance(port, ast.PortNumber):
        return str(port.number)
    if isinstance(port, ast.PortRange):
        low = "" if port.low is None else str(port.low)
        high = "" if port.high is None else str(port.high)
        return f"{low}{range_sep}{high}"
    if isinstance(port, ast.PortVariable):
        return f"${port.name}"
    if isinstance(port, ast.PortList):
        return "[" + list_sep.join(port_text(p, range_sep, list_sep) for p in port.items) + "]"
    if isinstance(port, ast.NegatedPort):
        return "!" + port_text(port.inner, range_sep, list_sep)
    raise TypeError(f"cannot print port {port!r}")


# ---------------------------------------------------------------------------
# Header, sequences, conditions


def header_text(header: ast.Header) -> str:
    parts = ["match", header.protocol]

    def endpoint(address: ast.Address, port: ast.Port) -> str:
        text = address_text(address)
        if not isinstance(port, ast.AnyPort):
            text += f" port {port_text(port)}"
        return text

    if header.direction == "<>":
        parts.append(
            f"between {endpoint(header.source, header.source_ports)}"
            f" and {endpoint(header.destination, header.destination_ports)}"
        )
    else:
        if not (
            isinstance(header.source, ast.AnyAddress)
            and isinstance(header.source_ports, ast.AnyPort)
        ):
            parts.append("from " + endpoint(header.source, header.source_ports))
        if not (
            isinstance(header.destination, ast.AnyAddress)
            and isinstance(header.destination_ports, ast.AnyPort)
        ):
            parts.append("to " + endpoint(header.destination, header.destination_ports))
        if header.direction == "=>":
            parts.append("with_replies")
    parts.extend(header.flow)
    return " ".join(parts)


def _operand(value: ast.Operand) -> str:
    return str(value)


def content_text(item: ast.Content) -> str:
    if item.startswith and item.endswith:
        verb = "equals"
    elif item.startswith:
        verb = "starts_with"
    elif item.endswith:
        verb = "ends_with"
    else:
        verb = "contains"
    parts = ["not"] if item.negated else []
    parts += [verb, pattern_text(item.pattern)]
    if item.nocase:
        parts.append("nocase")
    if item.rawbytes:
        parts.append("rawbytes")
    for name in ("offset", "depth", "distance", "within"):
        value = getattr(item, name)
        if value is not None:
            parts.append(f"{name} {_operand(value)}")
    fp = item.fast_pattern
    if fp is not None:
        if fp.only:
            parts.append("fast_pattern only")
        elif fp.offset is not None:
            parts.append(f"fast_pattern at {fp.offset} length {fp.length}")
        else:
            parts.append("fast_pattern")
    return " ".join(parts)


def _common_args(node: ast.ByteTest | ast.ByteJump | ast.ByteExtract | ast.ByteMath) -> list[str]:
    args = []
    if node.relative:
        args.append("relative")
    if node.endian is not None:
        args.append(f"endian {node.endian}")
    if node.string is not None:
        args.append(f"string {node.string}")
    if node.bitmask is not None:
        args.append(f"bitmask 0x{node.bitmask:X}")
    return args


def item_text(item: ast.SequenceItem) -> str:
    if isinstance(item, ast.Content):
        return content_text(item)
    if isinstance(item, ast.Regex):
        return f"{'not ' if item.negated else ''}matches /{item.pattern}/{item.flags}"
    if isinstance(item, ast.ByteTest):
        op = item.operator
        if item.negated:
            op = "!=" if op == "==" else "!" + op
        args = [f"bytes {item.bytes}", f"offset {item.offset}", f"{op} {item.value}"]
        return f"byte_test({', '.join(args + _common_args(item))})"
    if isinstance(item, ast.ByteJump):
        args = [f"bytes {item.bytes}", f"offset {item.offset}"]
        if item.multiplier is not None:
            args.append(f"multiplier {item.multiplier}")
        for flag in ("align", "from_beginning", "from_end"):
            if getattr(item, flag):
                args.append(flag)
        if item.post_offset is not None:
            args.append(f"post_offset {item.post_offset}")
        return f"byte_jump({', '.join(args + _common_args(item))})"
    if isinstance(item, ast.ByteExtract):
        args = [f"bytes {item.bytes}", f"offset {item.offset}", f"name {item.name}"]
        if item.multiplier is not None:
            args.append(f"multiplier {item.multiplier}")
        if item.align is not None:
            args.append(f"align {item.align}")
        return f"byte_extract({', '.join(args + _common_args(item))})"
    if isinstance(item, ast.ByteMath):
        args = [
            f"bytes {item.bytes}",
            f"offset {item.offset}",
            f"oper {item.operator}",
            f"rvalue {item.rvalue}",
            f"result {item.result}",
        ]
        return f"byte_math({', '.join(args + _common_args(item))})"
    if isinstance(item, ast.IsDataAt):
        args = [f"offset {item.offset}"]
        if item.relative:
            args.append("relative")
        if item.rawbytes:
            args.append("rawbytes")
        return f"{'not ' if item.negated else ''}isdataat({', '.join(args)})"
    if isinstance(item, ast.Base64Decode):
        args = []
        if item.bytes is not None:
            args.append(f"bytes {item.bytes}")
        if item.offset is not None:
            args.append(f"offset {item.offset}")
        if item.relative:
            args.append("relative")
        return f"base64_decode({', '.join(args)})"
    if isinstance(item, ast.BufferSize):
        if isinstance(item.value, ast.Range):
            return f"size in {value_text(item.value)}"
        return f"size {item.operator} {item.value}"
    if isinstance(item, ast.OpaqueOption):
        return option_text(item)
    raise TypeError(f"cannot print sequence item {item!r}")


def option_text(option: ast.OpaqueOption) -> str:
    text = f"option {option.name}"
    if option.value is not None:
        text += f" {quote(option.value)}"
    return text


def flowint_text(node: ast.Flowint) -> str:
    value = "" if node.value is None else f" {node.value}"
    return f"flowint {node.name} {node.operator}{value}"


def bits_text(bits: ast.Flowbits) -> str:
    parts = [bits.kind, bits.action]
    if bits.names:
        parts.append(f" {bits.operator or '&'} ".join(bits.names))
    if bits.group is not None:
        parts.append(f"group {bits.group}")
    if bits.track is not None:
        parts.append(f"track {bits.track}")
    if bits.expire is not None:
        parts.append(f"expire {bits.expire}")
    return " ".join(parts)


def buffer_text(buffer: ast.Buffer) -> str:
    if buffer.transforms:
        return f"{buffer.name} with {', '.join(buffer.transforms)}"
    return buffer.name


def sequence_text(sequence: ast.Sequence, indent: str) -> str:
    items = sequence.items
    if len(items) == 1 and not isinstance(items[0], ast.OpaqueOption):
        return f"{buffer_text(sequence.buffer)} {item_text(items[0])}"
    inner = indent + INDENT
    body = "".join(f"\n{inner}{item_text(item)}" for item in items)
    return f"{buffer_text(sequence.buffer)} {{{body}\n{indent}}}"


_PRECEDENCE = {ast.Or: 1, ast.And: 2, ast.Not: 3}


def condition_text(node: ast.Condition, indent: str = "", parent: int = 0) -> str:
    """`node` on one line (sequence blocks excepted), parenthesised where precedence needs it."""
    prec = _PRECEDENCE.get(type(node), 4)
    if isinstance(node, ast.Or | ast.And):
        joiner = " or " if isinstance(node, ast.Or) else " and "
        text = joiner.join(condition_text(op, indent, prec + 1) for op in node.operands)
    elif isinstance(node, ast.Not):
        text = "not " + condition_text(node.operand, indent, prec)
    else:
        text = atom_text(node, indent)
    return f"({text})" if prec < parent else text


def atom_text(node: ast.Condition, indent: str) -> str:
    if isinstance(node, ast.Comparison):
        spec = fields.FIELDS.get(node.field.name)
        if (
            node.operator == "=="
            and node.value is True
            and spec is not None
            and spec.type == "bool"
            and node.mask is None
        ):
            return node.field.name
        name = node.field.name if node.index is None else f"{node.field.name}[{node.index}]"
        text = f"{name} {node.operator} {value_text(node.value)}"
        if node.mask is not None:
            text += f" ignoring {node.mask}"
        return text
    if isinstance(node, ast.Sequence):
        return sequence_text(node, indent)
    if isinstance(node, ast.Flowbits):
        return bits_text(node)
    if isinstance(node, ast.Flowint):
        return flowint_text(node)
    if isinstance(node, ast.OpaqueOption):
        return option_text(node)
    raise TypeError(f"cannot print condition {node!r}")


def _where_lines(condition: ast.Condition) -> list[_Line]:
    """`where` with each top-level and/or operand on its own line."""
    cont = INDENT * 2
    if isinstance(condition, ast.And | ast.Or) and len(condition.operands) > 1:
        word = "and" if isinstance(condition, ast.And) else "or"
        prec = _PRECEDENCE[type(condition)] + 1
        lines = []
        for i, operand in enumerate(condition.operands):
            if i == 0:
                text = f"{INDENT}where {condition_text(operand, INDENT, prec)}"
            else:
                text = f"{cont}{word} {condition_text(operand, cont, prec)}"
            lines.append(_Line(text, operand.span.line))
        return lines
    return [_Line(f"{INDENT}where {condition_text(condition, INDENT)}", condition.span.line)]


def window_text(window: ast.Window) -> str:
    text = f"window {window.duration.amount}{window.duration.unit}"
    if window.group_by:
        text += " by " + ", ".join(f.name for f in window.group_by)
    agg = window.aggregate
    field_name = agg.field.name if agg.field is not None else ""
    return f"{text}: {agg.function}({field_name}) {window.operator} {number_text(window.threshold)}"


def threshold_text(threshold: ast.Threshold) -> str:
    if threshold.kind == "backoff":
        multiplier = threshold.multiplier
        return f"threshold backoff {threshold.count} multiplier {multiplier} by {threshold.track}"
    if threshold.kind == "detection_filter":
        head = f"detection_filter {threshold.count}"
    else:
        head = f"threshold {threshold.kind} {threshold.count}"
    unique = f" unique {threshold.unique}" if threshold.unique else ""
    return f"{head} per {threshold.seconds}s by {threshold.track}{unique}"


# ---------------------------------------------------------------------------
# Rules and files


def _rule_lines(rule: ast.Rule) -> list[_Line]:
    body: list[_Line] = []

    def add(text: str, anchor: int = 0) -> None:
        body.append(_Line(INDENT + text, anchor))

    # the revision is always written out: engineers track it, and a missing one reads as 1
    add(f"id {rule.id}  rev {rule.rev}")
    if rule.gid is not None:
        add(f"gid {rule.gid}")
    if rule.action != "alert":
        add(f"action {rule.action}")
    if not rule.enabled:
        add("disabled")
    if rule.severity is not None:
        add(f"severity {rule.severity}")
    if rule.priority is not None:
        add(f"priority {rule.priority}")
    if rule.classtype is not None:
        add(f"classtype {rule.classtype}")
    if rule.techniques:
        add("attack " + ", ".join(rule.techniques))
    if rule.tactics:
        add("tactic " + ", ".join(rule.tactics))
    if rule.tags:
        add("tags " + ", ".join(_word_or_quote(t) for t in rule.tags))
    if rule.author is not None:
        add(f"author {quote(rule.author)}")
    for ref in rule.references:
        add(f"reference {ref.kind} {quote(ref.value)}", ref.span.line)
    for entry in rule.metadata:
        add(f"meta {entry.key} {quote(entry.value)}", entry.span.line)
    if rule.services:
        add("service " + ", ".join(rule.services))
    add(header_text(rule.header), rule.header.span.line)
    if rule.condition is not None:
        body.extend(_where_lines(rule.condition))
    for bits in rule.bit_actions:
        add(bits_text(bits), bits.span.line)
    for change in rule.int_actions:
        add(flowint_text(change), change.span.line)
    if rule.window is not None:
        add(window_text(rule.window), rule.window.span.line)
    for threshold in rule.thresholds:
        add(threshold_text(threshold), threshold.span.line)
    for option in rule.options:
        add(option_text(option), option.span.line)
    return [_Line(f"rule {quote(rule.title)} {{", rule.span.line), *body, _Line("}")]


def statement_lines(statement: ast.Statement) -> list[_Line]:
    if isinstance(statement, ast.Rule):
        return _rule_lines(statement)
    if isinstance(statement, ast.Include):
        return [_Line(f"include {quote(statement.path)}", statement.span.line)]
    if isinstance(statement, ast.VariableDefinition):
        value = statement.value
        port_types = (
            ast.AnyPort,
            ast.PortNumber,
            ast.PortRange,
            ast.PortVariable,
            ast.PortList,
            ast.NegatedPort,
        )
        if isinstance(value, port_types):
            text = f"ports {statement.name} = {port_text(value)}"
        else:
            text = f"addresses {statement.name} = {address_text(value)}"
        return [_Line(text, statement.span.line)]
    raise TypeError(f"cannot print statement {statement!r}")


def format_rule(rule: ast.Rule) -> str:
    """One rule in canonical layout, without comments."""
    return "\n".join(line.text for line in _rule_lines(rule)) + "\n"


def _place_comments(lines: list[_Line], comments: list[ast.Comment]) -> list[str]:
    """Weave `comments` (sorted by line) into `lines` by their source anchors."""
    trailing: dict[int, list[str]] = {}
    first_line_of: dict[int, int] = {}
    for index, line in enumerate(lines):
        if line.anchor and line.anchor not in first_line_of:
            first_line_of[line.anchor] = index
    leading: dict[int, list[str]] = {}
    tail: list[str] = []
    anchored = sorted((line.anchor, index) for index, line in enumerate(lines) if line.anchor)
    for comment in comments:
        text = "#" + comment.text if comment.text else "#"
        line_no = comment.span.line
        if line_no in first_line_of:
            trailing.setdefault(first_line_of[line_no], []).append(text)
            continue
        target = next((index for anchor, index in anchored if anchor > line_no), None)
        if target is None:
            tail.append(text)
        else:
            leading.setdefault(target, []).append(text)
    out: list[str] = []
    for index, line in enumerate(lines):
        indent = line.text[: len(line.text) - len(line.text.lstrip())]
        for text in leading.get(index, ()):
            out.append(indent + text)
        rendered = line.text
        if index in trailing:
            # On the first physical line, so the comment keeps the same anchor when re-read.
            first, newline, rest = rendered.partition("\n")
            rendered = first + "  " + "  ".join(trailing[index]) + newline + rest
        out.append(rendered)
    if tail:
        # Comments after the last anchored line go before the closing brace of a rule.
        closing = len(out) - 1 if out and out[-1] == "}" else len(out)
        indent = INDENT if closing < len(out) else ""
        out[closing:closing] = [indent + text for text in tail]
    return out


def format_rule_file(rule_file: ast.RuleFile, source: str | None = None) -> str:
    """The whole file in canonical layout with its comments.

    Top-level statements are separated by one blank line around each rule;
    comments between statements stay with the statement that follows them,
    and comments after the last statement end the file.  `source` is accepted
    for callers that have it but the layout never depends on it.
    """
    del source
    comments = sorted(rule_file.comments, key=lambda c: (c.span.line, c.span.column))
    statements = list(rule_file.statements)
    blocks: list[list[str]] = []
    ci = 0
    for statement in statements:
        end_line = statement.span.end_line
        mine: list[ast.Comment] = []
        while ci < len(comments) and comments[ci].span.line <= end_line:
            mine.append(comments[ci])
            ci += 1
        start = statement.span.line
        before = [c for c in mine if c.span.line < start]
        inside = [c for c in mine if c.span.line >= start]
        lines = _place_comments(statement_lines(statement), inside)
        header = ["#" + c.text if c.text else "#" for c in before]
        blocks.append(header + lines)
    trailing = ["#" + c.text if c.text else "#" for c in comments[ci:]]
    out: list[str] = []
    previous_rule = False
    for statement, block in zip(statements, blocks, strict=True):
        is_rule = isinstance(statement, ast.Rule)
        if out and (is_rule or previous_rule or block[0].startswith("#")):
            out.append("")
        out.extend(block)
        previous_rule = is_rule
    if trailing:
        if out:
            out.append("")
        out.extend(trailing)
    return "\n".join(out) + "\n" if out else ""


def format_statements(statements: Iterable[ast.Statement]) -> str:
    """Statements built in code (importers) in canonical layout, no comments."""
    return format_rule_file(ast.RuleFile("<generated>", tuple(statements)))
