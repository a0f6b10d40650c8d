"""Turns `.shrike` text into the AST: the LALR parser, its in-parser transformer, and located errors.

The transformer is handed to Lark itself, so the parser builds AST nodes as it
reduces and no parse tree is ever materialised.  Because Lark gives such a
transformer no `meta`, spans are computed here from the tokens and the spans of
child nodes.  A file is cut into top-level chunks (each `rule`, `include`,
variable definition, or pasted Snort rule).  Each chunk is first offered to the
hand-written parser of `rules._fast_parser`, which builds the same AST for
clean text and declines anything else.  Declined chunks go to Lark: runs of them
are parsed in one go by `TableDriver` (Lark's tables and callbacks in a tighter
loop), and a run with any error is parsed again chunk by chunk with
`Lark.parse`, so ten broken rules give ten errors, each worded by Lark.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from rules import ast, fields
from rules._driver import FAILED, TableDriver
from rules._fast_gc import collector_paused
from rules._fast_parser import FastParser, reserve_words
from rules._lexer import FastContextualLexer
from rules.errors import (
    RuleError,
    RuleErrors,
    RuleSyntaxError,
    RuleValueError,
    UnknownFieldError,
)

SEVERITIES = ("info", "low", "medium", "high", "critical")
ACTIONS = (
    "alert",
    "log",
    "pass",
    "drop",
    "reject",
    "sdrop",
    "rejectsrc",
    "rejectdst",
    "rejectboth",
)
THRESHOLD_KINDS = ("limit", "threshold", "both", "backoff")
TRACKS = ("src", "dst", "rule", "both", "flow")
BIT_TESTS = ("isset", "isnotset")
#: `flowint` tests (conditions) and changes (rule statements).
FLOWINT_TESTS = ("isset", "notset", "==", "!=", "<", "<=", ">", ">=")
FLOWINT_CHANGES = ("=", "+", "-")
BIT_ACTIONS = ("set", "unset", "toggle", "setx", "reset", "noalert")
ENDIANS = ("big", "little", "dce")
NUMBER_STRINGS = ("hex", "dec", "oct")
TRANSFORMS = (
    "dotprefix",
    "to_lowercase",
    "to_uppercase",
    "url_decode",
    "header_lowercase",
    "strip_whitespace",
    "compress_whitespace",
    "to_md5",
    "to_sha1",
    "to_sha256",
    "pcrexform",
    "xor",
    "strip_pseudo_headers",
)
BYTE_TEST_OPERATORS = ("<", ">", "<=", ">=", "==", "&", "^")
BYTE_MATH_OPERATORS = ("+", "-", "*", "/", "<<", ">>")

_TECHNIQUE = re.compile(r"T\d{4}(\.\d{3})?")
_TACTIC = re.compile(r"TA\d{4}")
# A line starting a top-level statement, found by the newline before it (a search for
# a literal newline is much faster than for `^` in multi-line mode); the text's first
# line always starts a chunk.
_CHUNK_START = re.compile(r"\n(?:rule|include|addresses|ports|alert|drop|pass|reject|log|sdrop)\b")
_SNORT_ACTIONS = ("alert", "drop", "pass", "reject", "log", "sdrop")
_SNORT_OPTION = re.compile(r"\b[a-z_.]+\s*:\s*[^;]*;")

# How expected terminals read in an error message.
_TERMINAL_NAMES = {
    "STRING": 'a quoted string ("...")',
    "INT": "a number",
    "HEXINT": "a hex number",
    "FLOAT": "a decimal number",
    "WORD": "a name",
    "FIELD": "a field name",
    "VARIABLE": "a $VARIABLE",
    "IPV4": "an IPv4 address",
    "IPV6": "an IPv6 address",
    "HEX": "hex bytes (|4d 5a|)",
    "REGEX": "a regex (/.../flags)",
    "DURATION": "a duration (60s, 5m)",
    "COMPARE": "a comparison (== != < <= > >=)",
    "OPERATOR": "an operator",
    "FLOW_OPTION": "a flow option (established, to_server, ...)",
    "CONTENT_VERB": "contains/starts_with/ends_with/equals",
    "CALL_NAME": "byte_test/byte_jump/byte_extract/byte_math/isdataat/base64_decode",
    "AGGREGATE": "count/sum/distinct/min/max/avg",
    "BITS_KIND": "flowbits/xbits",
    "HAS": "has/has_any",
    "BIT_JOIN": "& or |",
    "$END": "end of input",
}

# Snort option names people type inside a rule body, and what Shrike says instead.
_SNORT_STATEMENT_HINTS = {
    "msg": 'the title goes after `rule`: rule "message" { ... }',
    "sid": "write `id N`",
    "content": 'write the match in `where`, e.g. `where pkt_data contains "..."`',
    "pcre": "write `where pkt_data matches /regex/flags`",
    "flow": "put flow options on the match line: `match tcp ... established to_server`",
    "metadata": 'write `meta key "value"`',
    "description": 'use `meta description "..."`',
    "name": 'the title goes after `rule`: rule "name" { ... }',
    "sev": "write `severity low|medium|high|critical`",
    "technique": "write `attack T1046`",
    "mitre": "write `attack T1046`",
    "condition": "write `where <condition>`",
}


@dataclass(frozen=True, slots=True)
class _Statement:
    """One rule-body statement before it is folded into the Rule."""

    key: str
    value: Any
    span: ast.Span


@dataclass(frozen=True, slots=True)
class _Arg:
    """One argument of a call such as byte_test(...)."""

    key: str | None
    value: Any
    span: ast.Span


@dataclass(frozen=True, slots=True)
class _Located:
    """A plain condition value (int, str, ...) with the span of its token, until a node takes it."""

    value: Any
    span: ast.Span


def _unwrap(item: Any) -> Any:
    return item.value if isinstance(item, _Located) else item


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What a collect-errors parse yields: every statement that parsed, and every error."""

    file: ast.RuleFile
    errors: tuple[RuleError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def _unescape(body: str, where: Callable[[], ast.Span]) -> bytes:
    """The bytes a quoted string denotes: `\\xHH` is one byte, other characters are UTF-8."""
    if "\\" not in body:
        return body.encode()
    out = bytearray()
    i = 0
    n = len(body)
    simple = {"n": b"\n", "t": b"\t", "r": b"\r", "0": b"\0", '"': b'"', "\\": b"\\"}
    while i < n:
        ch = body[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < n else ""
        if nxt in simple:
            out += simple[nxt]
            i += 2
        elif nxt == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", body[i + 2 : i + 4]):
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        else:
            raise RuleValueError(
                f"unknown escape '\\{nxt}' in string",
                where(),
                hint=r"escapes are \" \\ \n \t \r \0 \xHH; for other bytes use |hex|",
            )
    return bytes(out)


class _AstBuilder(Transformer):
    """Lark callbacks, one per grammar rule, each returning an AST node (or a piece of one).

    The per-parse context (file name, line offset of the chunk, collected
    comments and errors) lives on the instance; `RuleParser` sets it under a lock.
    """

    def __init__(self) -> None:
        super().__init__(visit_tokens=False)
        self.file = "<string>"
        self.line_offset = 0
        self.comments: list[ast.Comment] = []
        self.errors: list[RuleError] = []

    # ---- spans and errors -------------------------------------------------

    def _tok_span(self, tok: Token) -> ast.Span:
        off = self.line_offset
        line = (tok.line or 1) + off
        column = tok.column or 1
        end_line = (tok.end_line or tok.line or 1) + off
        end_column = tok.end_column or column + len(tok.value)
        return ast.Span(self.file, line, column, end_line, end_column)

    def _span_of(self, item: Any) -> ast.Span | None:
        if isinstance(item, Token):
            return self._tok_span(item)
        span = getattr(item, "span", None)
        if isinstance(span, ast.Span) and span is not ast.NO_SPAN:
            return span
        if isinstance(item, tuple | list):
            return self._span(item)
        return None

    def _span(self, children: Any) -> ast.Span:
        # The hot path of every reduction: tokens are read directly rather
        # than through a Span each, and only the result is built.
        off = self.line_offset
        line: int
        column: int
        for child in children:
            if isinstance(child, Token):
                line, column = child.line + off, child.column  # type: ignore[operator,assignment]
                break
            first = self._span_of(child)
            if first is not None:
                line, column = first.line, first.column
                break
        else:
            return ast.NO_SPAN
        for child in reversed(children):
            if isinstance(child, Token):
                return ast.Span(self.file, line, column, child.end_line + off, child.end_column)  # type: ignore[operator,arg-type]
            last = self._span_of(child)
            if last is not None:
                return ast.Span(self.file, line, column, last.end_line, last.end_column)
        return ast.NO_SPAN  # pragma: no cover - the forward loop found a span

    def _report(self, error: RuleError) -> None:
        self.errors.append(error)

    def on_comment(self, tok: Token) -> Token:
        self.comments.append(ast.Comment(tok.value[1:].rstrip(), span=self._tok_span(tok)))
        return tok

    # ---- small helpers ----------------------------------------------------

    def _int(
        self, tok: Token, low: int | None = None, high: int | None = None, what: str = ""
    ) -> int:
        text = tok.value
        value = int(text, 16) if text[:2].lower() == "0x" else int(text)
        if (low is not None and value < low) or (high is not None and value > high):
            self._report(
                RuleValueError(
                    f"{what or 'number'} {value} is out of range {low}..{high}",
                    self._tok_span(tok),
                )
            )
        return value

    def _string(self, tok: Token) -> str:
        raw = _unescape(tok.value[1:-1], lambda: self._tok_span(tok))
        return raw.decode("utf-8", errors="surrogateescape")

    def _bytes(self, tok: Token) -> bytes:
        return _unescape(tok.value[1:-1], lambda: self._tok_span(tok))

    def _hex(self, tok: Token) -> bytes:
        digits = "".join(tok.value[1:-1].split())
        if len(digits) % 2:
            self._report(
                RuleValueError(
                    "hex bytes need an even number of digits",
                    self._tok_span(tok),
                    hint="write each byte as two digits: |0d 0a|",
                )
            )
            digits = digits[:-1]
        return bytes.fromhex(digits)

    def _choice(self, tok: Token, allowed: tuple[str, ...], what: str) -> str:
        value = str(tok.value)
        if value not in allowed:
            self._report(
                RuleValueError(
                    f"unknown {what} '{value}'",
                    self._tok_span(tok),
                    hint="expected one of: " + ", ".join(allowed),
                )
            )
        return value

    @staticmethod
    def _tokens(children: list[Any], *types: str) -> list[Token]:
        return [c for c in children if isinstance(c, Token) and c.type in types]

    # ---- top level --------------------------------------------------------

    def start(self, children: list[Any]) -> list[ast.Statement]:
        return children

    def include(self, children: list[Any]) -> ast.Include:
        return ast.Include(self._string(children[1]), span=self._span(children))

    def address_def(self, children: list[Any]) -> ast.VariableDefinition:
        return ast.VariableDefinition(str(children[1]), children[2], span=self._span(children))

    def port_def(self, children: list[Any]) -> ast.VariableDefinition:
        return ast.VariableDefinition(str(children[1]), children[2], span=self._span(children))

    def rule(self, children: list[Any]) -> ast.Rule:
        title_tok = children[1]
        span = self._span(children)
        title = self._string(title_tok)
        values: dict[str, Any] = {}
        seen: dict[str, ast.Span] = {}
        repeatable = {
            "techniques",
            "tactics",
            "references",
            "tags",
            "metadata",
            "services",
            "thresholds",
            "bit_actions",
            "options",
            "int_actions",
        }
        for stmt in children[3] if len(children) == 5 else ():
            if stmt.key in repeatable:
                values[stmt.key] = values.get(stmt.key, ()) + tuple(stmt.value)
                continue
            if stmt.key in seen:
                self._report(
                    RuleValueError(
                        f"'{_STATEMENT_WORDS.get(stmt.key, stmt.key)}' given twice in one rule",
                        stmt.span,
                        hint=f"the first one is at line {seen[stmt.key].line}",
                    )
                )
                continue
            seen[stmt.key] = stmt.span
            values[stmt.key] = stmt.value
        title_span = self._tok_span(title_tok)
        for required, word in (("id", "id N"), ("header", "match PROTOCOL ...")):
            if required not in values:
                self._report(
                    RuleValueError(
                        f"rule {title!r} has no `{word.split()[0]}` statement",
                        title_span,
                        hint=f"add `{word}` inside the braces",
                    )
                )
        values.setdefault("id", 0)
        values.setdefault("header", ast.Header("ip"))
        return ast.Rule(title=title, span=span, **values)

    # ---- statements -------------------------------------------------------

    @staticmethod
    def _append(c: list[Any]) -> list[Any]:
        """A left-recursive list rule: the first reduction starts the list, later ones extend it."""
        if len(c) == 1:
            return c
        items: list[Any] = c[0]
        items.append(c[1])
        return items

    statements = block_items = content_modifiers = _append

    def flow_options(self, c: list[Any]) -> list[str]:
        if len(c) == 1:
            return [str(c[0])]
        options: list[str] = c[0]
        options.append(str(c[1]))
        return options

    def _stmt(self, key: str, value: Any, children: list[Any]) -> _Statement:
        return _Statement(key, value, self._span(children))

    def id_stmt(self, c: list[Any]) -> _Statement:
        return self._stmt("id", self._int(c[0], 1, 2**32 - 1, "rule id"), c)

    def rev_stmt(self, c: list[Any]) -> _Statement:
        return self._stmt("rev", self._int(c[0], 1, 2**32 - 1, "revision"), c)

    def gid_stmt(self, c: list[Any]) -> _Statement:
        return self._stmt("gid", self._int(c[0], 0, 2**32 - 1, "gid"), c)

    def priority_stmt(self, c: list[Any]) -> _Statement:
        return self._stmt("priority", self._int(c[0], 0, 2**31 - 1, "priority"), c)

    def action_stmt(self, c: list[Any]) -> _Statement:
        return self._stmt("action", self._choice(c[0], ACTIONS, "action"), c)

    def severity_stmt(self, c: list[Any]) -> _Statement:
        return self._stmt("severity", self._choice(c[0], SEVERITIES, "severity"), c)

    def classtype_stmt(self, c: list[Any]) -> _Statement:
        return self._stmt("classtype", str(c[0]), c)

    def attack_stmt(self, c: list[Any]) -> _Statement:
        for tok in c:
            if not _TECHNIQUE.fullmatch(tok.value):
                self._report(
                    RuleValueError(
                        f"'{tok.value}' is not an ATT&CK technique id",
                        self._tok_span(tok),
                        hint="technique ids look like T1046 or T1059.001; tactics go in `tactic TA0007`",
                    )
                )
        return self._stmt("techniques", [str(t) for t in c], c)

    def tactic_stmt(self, c: list[Any]) -> _Statement:
        for tok in c:
            if not _TACTIC.fullmatch(tok.value):
                self._report(
                    RuleValueError(
                        f"'{tok.value}' is not an ATT&CK tactic id",
                        self._tok_span(tok),
                        hint="tactic ids look like TA0007",
                    )
                )
        return self._stmt("tactics", [str(t) for t in c], c)

    def reference_stmt(self, c: list[Any]) -> _Statement:
        ref = ast.Reference(str(c[0]), self._string(c[1]), span=self._span(c))
        return self._stmt("references", [ref], c)

    def tags_stmt(self, c: list[Any]) -> _Statement:
        tags = [self._string(t) if t.type == "STRING" else str(t) for t in c]
        return self._stmt("tags", tags, c)

    def author_stmt(self, c: list[Any]) -> _Statement:
        return self._stmt("author", self._string(c[0]), c)

    def meta_stmt(self, c: list[Any]) -> _Statement:
        value = self._string(c[1]) if c[1].type == "STRING" else str(c[1])
        entry = ast.MetadataEntry(str(c[0]), value, span=self._span(c))
        return self._stmt("metadata", [entry], c)

    def service_stmt(self, c: list[Any]) -> _Statement:
        return self._stmt("services", [str(t) for t in c], c)

    def enabled_stmt(self, c: list[Any]) -> _Statement:
        return self._stmt("enabled", c[0].type == "ENABLED", c)

    def option_stmt(self, c: list[Any]) -> _Statement:
        return self._stmt("options", [c[0]], c)

    def bits_stmt(self, c: list[Any]) -> _Statement:
        bits: ast.Flowbits = c[0]
        if bits.action not in BIT_ACTIONS:
            self._report(
                RuleValueError(
                    f"'{bits.kind} {bits.action}' is a test; tests go in `where`",
                    bits.span,
                    hint="rule-level flowbits statements are actions: " + ", ".join(BIT_ACTIONS),
                )
            )
        return self._stmt("bit_actions", [bits], c)

    def flowint_stmt(self, c: list[Any]) -> _Statement:
        node: ast.Flowint = c[0]
        if node.operator not in FLOWINT_CHANGES:
            self._report(
                RuleValueError(
                    f"'flowint {node.name} {node.operator}' is a test; tests go in `where`",
                    node.span,
                    hint="rule-level flowint statements change it: " + ", ".join(FLOWINT_CHANGES),
                )
            )
        return self._stmt("int_actions", [node], c)

    def flowint(self, c: list[Any]) -> ast.Flowint:
        name = str(c[1].value)
        op_tok: Token = c[2]
        operator = str(op_tok.value)
        value: int | str | None = None
        if len(c) > 3:
            value = int(c[3].value) if c[3].type == "INT" else str(c[3].value)
        if operator not in FLOWINT_TESTS + FLOWINT_CHANGES or (
            value is None and operator not in ("isset", "notset")
        ):
            self._report(
                RuleValueError(
                    f"unknown flowint operation '{operator}'",
                    self._tok_span(op_tok),
                    hint="expected isset, notset, a comparison or = + - with a value",
                )
            )
        return ast.Flowint(name, operator, value, span=self._span(c))

    def where_stmt(self, c: list[Any]) -> _Statement:
        condition = c[1]
        self._check_condition(condition)
        return self._stmt("condition", condition, c)

    def _check_condition(self, node: ast.Condition) -> None:
        if isinstance(node, ast.And | ast.Or):
            for operand in node.operands:
                self._check_condition(operand)
        elif isinstance(node, ast.Not):
            self._check_condition(node.operand)
        elif isinstance(node, ast.Flowint) and node.operator in FLOWINT_CHANGES:
            self._report(
                RuleValueError(
                    f"'flowint {node.name} {node.operator}' changes it; changes are rule statements",
                    node.span,
                    hint="move it out of `where` onto its own line",
                )
            )
        elif isinstance(node, ast.Flowbits) and node.action not in BIT_TESTS:
            self._report(
                RuleValueError(
                    f"'{node.kind} {node.action}' is an action; actions are rule statements",
                    node.span,
                    hint=f"move `{node.kind} {node.action} ...` out of `where` onto its own line",
                )
            )

    # ---- header -----------------------------------------------------------

    def match_stmt(self, c: list[Any]) -> _Statement:
        fields_: dict[str, Any] = {"protocol": str(c[1])}
        flow: list[str] = []
        for part in c[2:]:
            if isinstance(part, Token) and part.type == "REPLIES":
                if fields_.get("direction") == "<>":
                    self._report(
                        RuleValueError(
                            "`between` already matches both ways: drop `with_replies`",
                            self._tok_span(part),
                        )
                    )
                else:
                    fields_["direction"] = "=>"
            elif isinstance(part, tuple):
                kind, payload = part
                if kind == "source":
                    fields_["source"], fields_["source_ports"] = payload
                elif kind == "destination":
                    fields_["destination"], fields_["destination_ports"] = payload
                else:
                    fields_["direction"] = "<>"
                    (fields_["source"], fields_["source_ports"]) = payload[0]
                    (fields_["destination"], fields_["destination_ports"]) = payload[1]
            elif isinstance(part, list):
                flow = part
        # Flow options are plain words and never took part in the header's span.
        spanned = c[:-1] if flow else c
        header = ast.Header(**fields_, flow=tuple(flow), span=self._span(spanned))
        return self._stmt("header", header, spanned)

    def _endpoint(self, items: list[Any]) -> tuple[ast.Address, ast.Port]:
        nodes = [i for i in items if not isinstance(i, Token)]
        address = nodes[0]
        port = nodes[1].port if len(nodes) > 1 else ast.AnyPort()
        return address, port

    def source(self, c: list[Any]) -> tuple[str, Any]:
        return ("source", self._endpoint(c))

    def destination(self, c: list[Any]) -> tuple[str, Any]:
        return ("destination", self._endpoint(c))

    def between(self, c: list[Any]) -> tuple[str, Any]:
        nodes = [i for i in c if not isinstance(i, Token)]
        ends: list[tuple[ast.Address, ast.Port]] = []
        i = 0
        while i < len(nodes):
            address = nodes[i]
            port: ast.Port = ast.AnyPort()
            if i + 1 < len(nodes) and isinstance(nodes[i + 1], _PortSpec):
                port = nodes[i + 1].port
                i += 1
            ends.append((address, port))
            i += 1
        return ("between", ends)

    def port_spec(self, c: list[Any]) -> Any:
        return _PortSpec(c[0])

    def any_address(self, c: list[Any]) -> ast.AnyAddress:
        return ast.AnyAddress(span=self._span(c))

    def ip_address(self, c: list[Any]) -> ast.IpAddress:
        tok = c[0]
        try:
            ipaddress.ip_network(tok.value, strict=False)
        except ValueError as exc:
            self._report(
                RuleValueError(f"bad IP address '{tok.value}': {exc}", self._tok_span(tok))
            )
        return ast.IpAddress(str(tok.value), span=self._span(c))

    def address_variable(self, c: list[Any]) -> ast.AddressVariable:
        return ast.AddressVariable(c[0].value[1:], span=self._span(c))

    def address_list(self, c: list[Any]) -> ast.AddressList:
        return ast.AddressList(tuple(i for i in c if not isinstance(i, Token)), span=self._span(c))

    def negated_address(self, c: list[Any]) -> ast.NegatedAddress:
        return ast.NegatedAddress(c[1], span=self._span(c))

    def any_port(self, c: list[Any]) -> ast.AnyPort:
        return ast.AnyPort(span=self._span(c))

    def port_number(self, c: list[Any]) -> ast.PortNumber:
        return ast.PortNumber(self._int(c[0], 0, 65535, "port"), span=self._span(c))

    def port_range(self, c: list[Any]) -> ast.PortRange:
        low = self._int(c[0], 0, 65535, "port")
        high = self._int(c[2], 0, 65535, "port")
        if low > high:
            self._report(RuleValueError(f"port range {low}..{high} is empty", self._span(c)))
        return ast.PortRange(low, high, span=self._span(c))

    def port_range_from(self, c: list[Any]) -> ast.PortRange:
        return ast.PortRange(self._int(c[0], 0, 65535, "port"), None, span=self._span(c))

    def port_range_to(self, c: list[Any]) -> ast.PortRange:
        return ast.PortRange(None, self._int(c[1], 0, 65535, "port"), span=self._span(c))

    def port_variable(self, c: list[Any]) -> ast.PortVariable:
        return ast.PortVariable(c[0].value[1:], span=self._span(c))

    def port_list(self, c: list[Any]) -> ast.PortList:
        return ast.PortList(tuple(i for i in c if not isinstance(i, Token)), span=self._span(c))

    def negated_port(self, c: list[Any]) -> ast.NegatedPort:
        return ast.NegatedPort(c[1], span=self._span(c))

    # ---- conditions -------------------------------------------------------

    def or_cond(self, c: list[Any]) -> ast.Or:
        operands: list[Any] = []
        for item in c:
            operands.extend(item.operands if isinstance(item, ast.Or) else (item,))
        return ast.Or(tuple(operands), span=self._span(c))

    def and_cond(self, c: list[Any]) -> ast.And:
        operands: list[Any] = []
        for item in c:
            operands.extend(item.operands if isinstance(item, ast.And) else (item,))
        return ast.And(tuple(operands), span=self._span(c))

    def not_cond(self, c: list[Any]) -> ast.Not:
        return ast.Not(c[1], span=self._span(c))

    def field_ref(self, c: list[Any]) -> ast.FieldRef:
        tok = c[0]
        name = str(tok.value)
        if name not in fields.FIELDS:
            close = fields.suggest(name)
            hint = f"did you mean {' or '.join(repr(s) for s in close)}?" if close else None
            self._report(
                UnknownFieldError(f"unknown field '{name}'", self._tok_span(tok), hint=hint)
            )
        return ast.FieldRef(name, span=self._tok_span(tok))

    def bare_field(self, c: list[Any]) -> ast.Comparison:
        ref: ast.FieldRef = c[0]
        spec = fields.FIELDS.get(ref.name)
        if spec is not None and spec.type != "bool":
            hint = (
                f'match its content, e.g. `{ref.name} contains "..."`'
                if spec.type == "buffer"
                else f"compare it, e.g. `{ref.name} == ...`"
            )
            self._report(
                RuleValueError(
                    f"field '{ref.name}' is a {spec.type}, not a true/false test",
                    ref.span,
                    hint=hint,
                )
            )
        return ast.Comparison(ref, "==", True, span=ref.span)

    def comparison(self, c: list[Any]) -> ast.Comparison:
        ref: ast.FieldRef = c[0]
        op_tok: Token = c[1]
        value = _unwrap(c[2])
        mask = str(c[4]) if len(c) > 4 else None
        operator = str(op_tok.value)
        span = self._span(c)
        self._check_value(ref, operator, value, span)
        if mask is not None:
            self._check_flags(mask, ref, self._tok_span(c[4]))
        return ast.Comparison(ref, operator, value, mask, span=span)

    def indexed_comparison(self, c: list[Any]) -> ast.Comparison:
        ref: ast.FieldRef = c[0]
        index_tok: Token = c[2]
        index: int | str = int(index_tok.value) if index_tok.type == "INT" else index_tok.value
        operator = str(c[4].value)
        value = _unwrap(c[5])
        span = self._span(c)
        self._check_index(ref, index, self._tok_span(index_tok))
        self._check_value(ref, operator, value, span)
        return ast.Comparison(ref, operator, value, index=index, span=span)

    def _check_index(self, ref: ast.FieldRef, index: int | str, span: ast.Span) -> None:
        if ref.name not in fields.INDEXED_FIELDS:
            self._report(
                RuleValueError(f"field '{ref.name}' holds one value: it takes no index", span)
            )
        elif isinstance(index, str) and index not in fields.INDEX_WORDS:
            self._report(
                RuleValueError(
                    f"unknown index '{index}'",
                    span,
                    hint="an index is a number (negative counts from the end) or `all`",
                )
            )

    def _check_flags(self, letters: str, ref: ast.FieldRef, span: ast.Span) -> None:
        spec = fields.FIELDS.get(ref.name)
        allowed = (
            fields.FRAG_FLAG_LETTERS
            if spec and spec.type == "frag_flags"
            else fields.TCP_FLAG_LETTERS
        )
        bad = sorted(set(letters) - allowed)
        if bad:
            self._report(
                RuleValueError(
                    f"'{''.join(bad)}' is not a flag of {ref.name}",
                    span,
                    hint="flags are letters from " + "".join(sorted(allowed)),
                )
            )

    def _check_value(self, ref: ast.FieldRef, operator: str, value: Any, span: ast.Span) -> None:
        """Reject values that cannot be compared with the field's type."""
        spec = fields.FIELDS.get(ref.name)
        if spec is None:
            return
        items = value.items if isinstance(value, ast.ValueList) else (value,)
        for item in items:
            problem = _type_problem(spec, operator, item)
            if problem:
                self._report(RuleValueError(problem, span))
                return
            if spec.type in ("tcp_flags", "frag_flags") and isinstance(item, ast.Symbol):
                self._check_flags(item.name, ref, span)

    def int_value(self, c: list[Any]) -> _Located:
        return _Located(int(c[0].value), self._tok_span(c[0]))

    def hexint_value(self, c: list[Any]) -> _Located:
        return _Located(int(c[0].value, 16), self._tok_span(c[0]))

    def float_value(self, c: list[Any]) -> _Located:
        return _Located(float(c[0].value), self._tok_span(c[0]))

    def string_value(self, c: list[Any]) -> _Located:
        return _Located(self._string(c[0]), self._tok_span(c[0]))

    def hex_value(self, c: list[Any]) -> _Located:
        return _Located(self._hex(c[0]), self._tok_span(c[0]))

    def true_value(self, c: list[Any]) -> _Located:
        return _Located(True, self._tok_span(c[0]))

    def false_value(self, c: list[Any]) -> _Located:
        return _Located(False, self._tok_span(c[0]))

    def name_value(self, c: list[Any]) -> ast.Symbol | ast.FieldRef:
        name = str(c[0].value)
        if name in fields.FIELDS:
            return ast.FieldRef(name, span=self._span(c))
        return ast.Symbol(name, span=self._span(c))

    def ip_value(self, c: list[Any]) -> ast.IpAddress:
        return self.ip_address(c)

    def variable_value(self, c: list[Any]) -> ast.AddressVariable:
        return self.address_variable(c)

    def range(self, c: list[Any]) -> ast.Range:
        low, high = (self._num_value(c[0]), self._num_value(c[2]))
        return ast.Range(low, high, c[1].type == "RANGE_DOTS", span=self._span(c))

    @staticmethod
    def _num_value(tok: Token) -> int | float:
        if tok.type == "FLOAT":
            return float(tok.value)
        if tok.type == "HEXINT":
            return int(tok.value, 16)
        return int(tok.value)

    def value_list(self, c: list[Any]) -> ast.ValueList:
        items = tuple(
            _unwrap(i) for i in c if not (isinstance(i, Token) and i.type in ("LSQB", "RSQB"))
        )
        return ast.ValueList(items, span=self._span(c))

    # ---- sequences --------------------------------------------------------

    def buffer(self, c: list[Any]) -> ast.Buffer:
        ref: ast.FieldRef = c[0]
        spec = fields.FIELDS.get(ref.name)
        if spec is not None and spec.type != "buffer":
            self._report(
                RuleValueError(
                    f"field '{ref.name}' is a {spec.type}, not a buffer to match content in",
                    ref.span,
                    hint="content, regex and byte_* work on buffers such as pkt_data, http.uri, dns.query",
                )
            )
        transforms = [t for t in c[1:] if isinstance(t, Token) and t.type == "WORD"]
        for tok in transforms:
            self._choice(tok, TRANSFORMS, "transform")
        return ast.Buffer(ref.name, tuple(str(t) for t in transforms), span=self._span(c))

    def sequence(self, c: list[Any]) -> ast.Sequence:
        items = tuple(c[2]) if len(c) == 4 else (c[1],)
        return ast.Sequence(c[0], items, span=self._span(c))

    def pattern(self, c: list[Any]) -> bytes:
        tok = c[-1]
        part = self._hex(tok) if tok.type == "HEX" else self._bytes(tok)
        return c[0] + part if len(c) == 2 else part

    def content(self, c: list[Any]) -> ast.Content:
        negated = c[0].type == "NOT" if isinstance(c[0], Token) else False
        rest = c[1:] if negated else c
        verb = str(rest[0].value)
        pattern: bytes = rest[1]
        values: dict[str, Any] = {
            "startswith": verb in ("starts_with", "equals"),
            "endswith": verb in ("ends_with", "equals"),
        }
        for mod in rest[2] if len(rest) > 2 else ():
            value: bool | ast.FastPattern
            if isinstance(mod, Token):
                key, value, span = mod.value, True, self._tok_span(mod)
            elif isinstance(mod, ast.FastPattern):
                key, value, span = "fast_pattern", mod, mod.span
            else:
                key, value, span = mod.key, mod.value, mod.span
            if key in values and key not in ("startswith", "endswith"):
                self._report(RuleValueError(f"content modifier '{key}' given twice", span))
            values[key] = value
        if not pattern:
            self._report(RuleValueError("empty content pattern", self._span(c)))
        return ast.Content(pattern, negated=negated, span=self._span(c), **values)

    def _operand_value(self, tok: Token) -> ast.Operand:
        return int(tok.value) if tok.type == "INT" else str(tok.value)

    def offset_mod(self, c: list[Any]) -> _Arg:
        return _Arg("offset", self._operand_value(c[0]), self._span(c))

    def depth_mod(self, c: list[Any]) -> _Arg:
        return _Arg("depth", self._operand_value(c[0]), self._span(c))

    def distance_mod(self, c: list[Any]) -> _Arg:
        return _Arg("distance", self._operand_value(c[0]), self._span(c))

    def within_mod(self, c: list[Any]) -> _Arg:
        return _Arg("within", self._operand_value(c[0]), self._span(c))

    def fast_pattern(self, c: list[Any]) -> ast.FastPattern:
        span = self._span(c)
        if len(c) == 1:
            return ast.FastPattern(span=span)
        if c[1].type == "ONLY":
            return ast.FastPattern(only=True, span=span)
        return ast.FastPattern(offset=int(c[2].value), length=int(c[3].value), span=span)

    def regex(self, c: list[Any]) -> ast.Regex:
        negated = c[0].type == "NOT"
        text = str(c[-1].value)
        end = text.rindex("/")
        pattern, flags = text[1:end], text[end + 1 :]
        return ast.Regex(pattern, flags, negated, span=self._span(c))

    def call_arg(self, c: list[Any]) -> _Arg:
        span = self._span(c)
        first: Token = c[0]
        if first.type == "INT":
            return _Arg(None, int(first.value), span)
        value: Any = None
        if len(c) > 1:
            tok: Token = c[1]
            if tok.type == "INT":
                value = int(tok.value)
            elif tok.type == "HEXINT":
                value = int(tok.value, 16)
            elif tok.type == "STRING":
                value = self._string(tok)
            else:
                value = str(tok.value)
        if first.type == "OPERATOR":
            return _Arg("op", (str(first.value), value), span)
        return _Arg(str(first.value), value, span)

    def size_test(self, c: list[Any]) -> ast.BufferSize:
        if c[1].type == "IN":
            return ast.BufferSize("in", c[2], span=self._span(c))
        return ast.BufferSize(str(c[1].value), int(c[2].value), span=self._span(c))

    def call(self, c: list[Any]) -> Any:
        negated = c[0].type == "NOT"
        name_tok: Token = c[1] if negated else c[0]
        args = [a for a in c if isinstance(a, _Arg)]
        span = self._span(c)
        name = str(name_tok.value)
        if negated and name != "isdataat":
            self._report(
                RuleValueError(
                    f"`not` applies to content, matches and isdataat, not {name}",
                    span,
                    hint="byte_test negates its operator instead: `!& 0x80`",
                )
            )
        return _CallBuilder(self, name, args, span, negated).build()

    # ---- bits, options, rate limits, windows -----------------------------

    def bits(self, c: list[Any]) -> ast.Flowbits:
        kind = str(c[0].value)
        action_tok: Token = c[1]
        action = str(action_tok.value)
        if action not in BIT_TESTS + BIT_ACTIONS:
            self._report(
                RuleValueError(
                    f"unknown {kind} operation '{action}'",
                    self._tok_span(action_tok),
                    hint="expected one of: " + ", ".join(BIT_TESTS + BIT_ACTIONS),
                )
            )
        names: list[str] = []
        joins: set[str] = set()
        opts: dict[str, Any] = {}
        for item in c[2:]:
            if isinstance(item, Token) and item.type == "WORD":
                names.append(str(item.value))
            elif isinstance(item, Token) and item.type == "BIT_JOIN":
                joins.add(str(item.value))
            elif isinstance(item, _Arg):
                if item.key in opts:
                    self._report(RuleValueError(f"'{item.key}' given twice", item.span))
                opts[item.key] = item.value  # type: ignore[index]
        span = self._span(c)
        if len(joins) > 1:
            self._report(RuleValueError("cannot mix & and | in one bit list", span))
        if action not in ("noalert", "reset") and not names:
            self._report(RuleValueError(f"'{kind} {action}' needs a bit name", span))
        if kind == "flowbits" and ("track" in opts or "expire" in opts):
            self._report(
                RuleValueError(
                    "track and expire belong to xbits", span, hint=f"write `xbits {action} ...`"
                )
            )
        return ast.Flowbits(
            kind,
            action,
            tuple(names),
            joins.pop() if joins else None,
            opts.get("group"),
            opts.get("track"),
            opts.get("expire"),
            span=span,
        )

    def bit_option(self, c: list[Any]) -> _Arg:
        key = str(c[0].value)
        value: Any = int(c[1].value) if key == "expire" else str(c[1].value)
        if key == "track":
            self._choice(c[1], ("ip_src", "ip_dst", "ip_pair", "tx"), "xbits track")
        return _Arg(key, value, self._span(c))

    def option(self, c: list[Any]) -> ast.OpaqueOption:
        value = self._string(c[2]) if len(c) > 2 else None
        return ast.OpaqueOption(str(c[1].value), value, span=self._span(c))

    def _duration(self, tok: Token) -> ast.Duration:
        match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", tok.value)
        assert match is not None  # the DURATION terminal only lexes this shape
        return ast.Duration(int(match.group(1)), match.group(2), span=self._tok_span(tok))

    def window_stmt(self, c: list[Any]) -> _Statement:
        duration = self._duration(c[1])
        group_by = tuple(x for x in c if isinstance(x, ast.FieldRef))
        aggregate = next(x for x in c if isinstance(x, ast.Aggregate))
        operator = str(c[-2].value)
        threshold = self._num_value(c[-1])
        if duration.seconds <= 0:
            self._report(RuleValueError("window duration must be positive", duration.span))
        window = ast.Window(duration, group_by, aggregate, operator, threshold, span=self._span(c))
        return self._stmt("window", window, c)

    def aggregate(self, c: list[Any]) -> ast.Aggregate:
        function = str(c[0].value)
        ref = c[1] if len(c) > 1 and isinstance(c[1], ast.FieldRef) else None
        span = self._span(c)
        if function == "count" and ref is not None:
            self._report(RuleValueError("count() takes no field", span, hint="write `count()`"))
        if function != "count" and ref is None:
            self._report(
                RuleValueError(
                    f"{function}() needs a field", span, hint=f"e.g. `{function}(dst.port)`"
                )
            )
        return ast.Aggregate(function, ref, span=span)

    def _seconds(self, tok: Token) -> int:
        duration = self._duration(tok)
        seconds = duration.seconds
        if seconds != int(seconds) or seconds <= 0:
            self._report(RuleValueError("threshold periods are whole seconds", self._tok_span(tok)))
        return int(seconds)

    def threshold_stmt(self, c: list[Any]) -> _Statement:
        kind = self._choice(c[1], THRESHOLD_KINDS, "threshold type")
        count = self._int(c[2], 1, 2**31 - 1, "count")
        seconds, multiplier = 0, None
        if c[3].type == "INT":  # `multiplier M`: a backoff has no period
            multiplier = self._int(c[3], 1, 2**31 - 1, "multiplier")
            if kind != "backoff":
                self._report(
                    RuleValueError(
                        f"threshold {kind} counts per period, not with a multiplier",
                        self._tok_span(c[3]),
                        hint=f"write `threshold {kind} {count} per 60s by ...`",
                    )
                )
        elif kind == "backoff":
            self._report(
                RuleValueError(
                    "threshold backoff takes a multiplier, not a period",
                    self._tok_span(c[3]),
                    hint=f"write `threshold backoff {count} multiplier 2 by flow`",
                )
            )
        else:
            seconds = self._seconds(c[3])
        threshold = ast.Threshold(
            kind,
            count,
            seconds,
            self._choice(c[4], TRACKS, "track"),
            multiplier,
            span=self._span(c),
        )
        return self._stmt("thresholds", [threshold], c)

    def filter_stmt(self, c: list[Any]) -> _Statement:
        count = self._int(c[1], 1, 2**31 - 1, "count")
        unique: ast.FieldRef | None = c[4] if len(c) > 4 else None
        threshold = ast.Threshold(
            "detection_filter",
            count,
            self._seconds(c[2]),
            self._choice(c[3], TRACKS, "track"),
            unique=None if unique is None else unique.name,
            span=self._span(c),
        )
        return self._stmt("thresholds", [threshold], c)


_STATEMENT_WORDS = {"header": "match", "condition": "where", "enabled": "enabled/disabled"}


@dataclass(frozen=True, slots=True)
class _PortSpec:
    """`port P` inside `between`, kept apart so the two endpoints can be told apart."""

    port: ast.Port

    @property
    def span(self) -> ast.Span:
        return self.port.span


def _type_problem(spec: fields.FieldSpec, operator: str, value: Any) -> str | None:
    """Why `value` cannot be compared with a field of `spec`'s type, or None."""
    kind = spec.type
    if isinstance(value, ast.FieldRef):
        other = fields.FIELDS.get(value.name)
        if other is not None and other.type != kind and {other.type, kind} != {"int", "float"}:
            return f"cannot compare {spec.name} ({kind}) with {value.name} ({other.type})"
        return None
    if operator in ("has", "has_any") and kind not in ("tcp_flags", "frag_flags", "symbol_set"):
        return f"`{operator}` tests flags and option sets; {spec.name} is a {kind}"
    numeric = isinstance(value, int | float | ast.Range) and not isinstance(value, bool)
    if kind in ("int", "float"):
        if not numeric:
            return f"{spec.name} is a number; got {_describe(value)}"
    elif kind == "port":
        if not numeric and not isinstance(value, ast.AddressVariable):
            return f"{spec.name} is a port number; got {_describe(value)}"
    elif kind == "bool":
        if not isinstance(value, bool):
            return f"{spec.name} is true/false; got {_describe(value)}"
    elif kind == "buffer":
        # Numbers are allowed because some buffers are numeric text (http.stat_code == 200).
        if not isinstance(value, str | bytes | ast.Symbol | int) or isinstance(value, bool):
            return f"{spec.name} is text; got {_describe(value)}"
    elif kind == "string":
        if not isinstance(value, str | bytes | ast.Symbol):
            return f"{spec.name} is text; got {_describe(value)}"
    elif kind == "address":
        if not isinstance(value, ast.IpAddress | ast.AddressVariable):
            return f"{spec.name} is an address; got {_describe(value)}"
    elif kind in ("tcp_flags", "frag_flags"):
        if not isinstance(value, ast.Symbol):
            return f"{spec.name} takes flag letters such as S or SA; got {_describe(value)}"
    elif kind in ("symbol", "symbol_set") and (
        not isinstance(value, ast.Symbol) or value.name not in spec.symbols
    ):
        return f"{spec.name} takes one of {', '.join(sorted(spec.symbols))}; got {_describe(value)}"
    return None


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bytes):
        return "hex bytes"
    if isinstance(value, ast.Symbol):
        return f"'{value.name}'"
    return type(value).__name__


class _CallBuilder:
    """Validates the keyword arguments of one byte_*/isdataat/base64_decode call and builds its node."""

    def __init__(
        self, owner: _AstBuilder, name: str, args: list[_Arg], span: ast.Span, negated: bool
    ) -> None:
        self.owner = owner
        self.name = name
        self.span = span
        self.negated = negated
        self.args: dict[str, _Arg] = {}
        self.positional: list[_Arg] = []
        for arg in args:
            if arg.key is None:
                self.positional.append(arg)
            elif arg.key in self.args:
                self._error(f"'{arg.key}' given twice in {name}", arg.span)
            else:
                self.args[arg.key] = arg

    def _error(self, message: str, span: ast.Span | None = None, hint: str | None = None) -> None:
        self.owner._report(RuleValueError(message, span or self.span, hint=hint))

    def _take(self, key: str, required: bool = False, kind: str = "operand") -> Any:
        arg = self.args.pop(key, None)
        if arg is None:
            if required:
                self._error(f"{self.name} needs `{key}`", hint=_CALL_SHAPES[self.name])
            return None
        value = arg.value
        if kind == "flag":
            if value is not None:
                self._error(f"`{key}` takes no value in {self.name}", arg.span)
            return True
        if value is None:
            self._error(f"`{key}` needs a value in {self.name}", arg.span)
            return None
        if kind == "int" and not isinstance(value, int):
            self._error(f"`{key}` must be a number in {self.name}", arg.span)
            return None
        if kind == "operand" and not isinstance(value, int | str):
            self._error(f"`{key}` must be a number or an extracted name", arg.span)
            return None
        if kind == "name" and not isinstance(value, str):
            self._error(f"`{key}` must be a name in {self.name}", arg.span)
            return None
        return value

    def _choice(self, key: str, allowed: tuple[str, ...]) -> str | None:
        arg = self.args.get(key)
        value = self._take(key, kind="name")
        if value is not None and value not in allowed:
            self._error(
                f"unknown {key} '{value}' in {self.name}",
                arg.span if arg else None,
                hint="expected one of: " + ", ".join(allowed),
            )
        return value

    def _finish(self) -> None:
        for key, arg in self.args.items():
            self._error(
                f"unknown argument '{key}' to {self.name}", arg.span, hint=_CALL_SHAPES[self.name]
            )
        for arg in self.positional:
            self._error(
                f"unexpected bare number in {self.name}", arg.span, hint=_CALL_SHAPES[self.name]
            )

    def _common(self) -> dict[str, Any]:
        return {
            "relative": bool(self._take("relative", kind="flag")),
            "endian": self._choice("endian", ENDIANS),
            "string": self._choice("string", NUMBER_STRINGS),
            "bitmask": self._take("bitmask", kind="int"),
        }

    def _bytes(self) -> int:
        value = self._take("bytes", required=True, kind="int")
        return value if isinstance(value, int) else 0

    def _bytes_operand(self) -> ast.Operand:
        """`bytes N` or, where Suricata allows it, `bytes NAME` of an extracted value."""
        value = self._take("bytes", required=True, kind="operand")
        return value if isinstance(value, int | str) else 0

    def build(self) -> Any:
        method = getattr(self, f"_build_{self.name}")
        node = method()
        self._finish()
        return node

    def _build_byte_test(self) -> ast.ByteTest:
        nbytes = self._bytes_operand()
        offset = self._take("offset", required=True)
        op_arg = self.args.pop("op", None)
        operator, value, negated = "==", 0, False
        if op_arg is None:
            self._error(
                "byte_test needs a comparison such as `> 1000`", hint=_CALL_SHAPES["byte_test"]
            )
        else:
            raw_op, value = op_arg.value
            negated = raw_op.startswith("!") and raw_op != "!="
            operator = raw_op[1:] if negated else raw_op
            if operator == "=":
                operator = "=="
            if operator == "!=":
                operator, negated = "==", True
            if operator not in BYTE_TEST_OPERATORS:
                self._error(f"byte_test cannot use operator '{raw_op}'", op_arg.span)
            if not isinstance(value, int | str):
                self._error("byte_test compares with a number or an extracted name", op_arg.span)
                value = 0
        return ast.ByteTest(
            nbytes,
            operator,
            value,
            offset if offset is not None else 0,
            negated=negated,
            span=self.span,
            **self._common(),
        )

    def _build_byte_jump(self) -> ast.ByteJump:
        nbytes = self._bytes_operand()
        offset = self._take("offset", required=True)
        return ast.ByteJump(
            nbytes,
            offset if offset is not None else 0,
            multiplier=self._take("multiplier", kind="int"),
            align=bool(self._take("align", kind="flag")),
            from_beginning=bool(self._take("from_beginning", kind="flag")),
            from_end=bool(self._take("from_end", kind="flag")),
            post_offset=self._take("post_offset"),
            span=self.span,
            **self._common(),
        )

    def _build_byte_extract(self) -> ast.ByteExtract:
        nbytes = self._bytes()
        offset = self._take("offset", required=True)
        name = self._take("name", required=True, kind="name")
        return ast.ByteExtract(
            nbytes,
            offset if offset is not None else 0,
            name or "",
            multiplier=self._take("multiplier", kind="int"),
            align=self._take("align", kind="int"),
            span=self.span,
            **self._common(),
        )

    def _build_byte_math(self) -> ast.ByteMath:
        nbytes = self._bytes_operand()
        offset = self._take("offset", required=True)
        oper_arg = self.args.get("oper")
        operator = self._take("oper", required=True, kind="name")
        if operator is not None and operator not in BYTE_MATH_OPERATORS:
            self._error(
                f"byte_math cannot use operator '{operator}'",
                oper_arg.span if oper_arg else None,
                hint="expected one of: " + " ".join(BYTE_MATH_OPERATORS),
            )
        rvalue = self._take("rvalue", required=True)
        result = self._take("result", required=True, kind="name")
        return ast.ByteMath(
            nbytes,
            offset if offset is not None else 0,
            operator or "+",
            rvalue if rvalue is not None else 0,
            result or "",
            span=self.span,
            **self._common(),
        )

    def _build_isdataat(self) -> ast.IsDataAt:
        offset = self._take("offset")
        if offset is None and self.positional:
            offset = self.positional.pop(0).value
        if offset is None:
            self._error("isdataat needs an offset", hint=_CALL_SHAPES["isdataat"])
            offset = 0
        return ast.IsDataAt(
            offset,
            relative=bool(self._take("relative", kind="flag")),
            negated=self.negated,
            rawbytes=bool(self._take("rawbytes", kind="flag")),
            span=self.span,
        )

    def _build_base64_decode(self) -> ast.Base64Decode:
        return ast.Base64Decode(
            bytes=self._take("bytes", kind="int"),
            offset=self._take("offset", kind="int"),
            relative=bool(self._take("relative", kind="flag")),
            span=self.span,
        )


_CALL_SHAPES = {
    "byte_test": "byte_test(bytes N, offset O, > VALUE[, relative][, endian big|little|dce]"
    "[, string hex|dec|oct][, bitmask 0xFF])",
    "byte_jump": "byte_jump(bytes N, offset O[, relative][, multiplier M][, align][, from_beginning]"
    "[, from_end][, post_offset P][, endian E][, string S][, bitmask B])",
    "byte_extract": "byte_extract(bytes N, offset O, name VAR[, relative][, multiplier M][, align A]"
    "[, endian E][, string S][, bitmask B])",
    "byte_math": "byte_math(bytes N, offset O, oper +|-|*|/|<<|>>, rvalue V, result VAR[, relative]"
    "[, endian E][, string S][, bitmask B])",
    "isdataat": "isdataat(offset N[, relative][, rawbytes])",
    "base64_decode": "base64_decode([bytes N][, offset O][, relative])",
}


class RuleParser:
    """A reusable parser for `.shrike` text.

    Building one loads the grammar (LALR tables cached on disk by Lark), so
    make one and reuse it.  Parsing is serialised by a lock because the
    in-parser transformer carries the per-parse context.
    """

    def __init__(self, *, fast: bool = True) -> None:
        """`fast=False` parses everything with Lark (the reference the fast path is tested against)."""
        self._fast = fast
        self._builder = _AstBuilder()
        self._lark = Lark.open_from_package(
            "rules",
            "grammar.lark",
            ("",),
            parser="lalr",
            lexer="contextual",
            # Lark hands an in-parser transformer no meta, so spans are computed
            # from tokens here; propagating positions would only add a wrapper
            # call per reduction (about 30% of parse time).
            propagate_positions=False,
            maybe_placeholders=False,
            transformer=self._builder,
            lexer_callbacks={"COMMENT": self._builder.on_comment},
            cache=True,
            _plugins={"ContextualLexer": FastContextualLexer},
        )
        self._driver: TableDriver | None
        try:
            self._driver = TableDriver(self._lark)
        except (AttributeError, KeyError, TypeError):  # another Lark layout: use Lark.parse only
            self._driver = None
        self._lock = threading.Lock()
        reserve_words(_grammar_words(self._lark))
        self._terminal_display = {
            t.name: (
                f"'{t.pattern.value}'"
                if t.pattern.type == "str"
                else _TERMINAL_NAMES.get(t.name, t.name.lower())
            )
            for t in self._lark.terminals
        }

    def parse_collecting(self, text: str, path: str = "<string>") -> ParseResult:
        """Parse every top-level chunk; return what parsed and every error (collect-errors mode)."""
        statements: list[ast.Statement] = []
        comments: list[ast.Comment] = []
        errors: list[RuleError] = []
        lines = text.splitlines()
        chunks = _chunk_bounds(text)
        fast = FastParser(text, path) if self._fast and chunks else None
        with self._lock, collector_paused():
            declined: list[tuple[int, int, int]] = []
            for chunk in chunks:
                found = fast.parse_chunk(chunk[1], chunk[2]) if fast is not None else None
                if found is None:
                    declined.append(chunk)
                    continue
                if declined:
                    self._parse_with_lark(text, path, declined, lines, statements, comments, errors)
                    declined = []
                statements.extend(found[0])
                comments.extend(found[1])
            if declined:
                self._parse_with_lark(text, path, declined, lines, statements, comments, errors)
        file_span = ast.Span(path, 1, 1, max(len(lines), 1), 1)
        rule_file = ast.RuleFile(path, tuple(statements), tuple(comments), span=file_span)
        return ParseResult(rule_file, tuple(errors))

    def _parse_with_lark(
        self,
        text: str,
        path: str,
        chunks: list[tuple[int, int, int]],
        lines: list[str],
        statements: list[ast.Statement],
        comments: list[ast.Comment],
        errors: list[RuleError],
    ) -> None:
        """Parse consecutive chunks with Lark: in batches, and chunk by chunk after an error."""
        for first in range(0, len(chunks), _BATCH):
            batch = chunks[first : first + _BATCH]
            parsed, batch_comments = self._parse_batch(text, path, batch, lines)
            if parsed is not None:
                statements.extend(parsed)
                comments.extend(batch_comments)
                continue
            for start_line, start, end in batch:
                parsed, chunk_comments, chunk_errors = self._parse_chunk(
                    text[start:end], path, start_line, lines
                )
                statements.extend(parsed)
                comments.extend(chunk_comments)
                errors.extend(chunk_errors)

    def parse(self, text: str, path: str = "<string>") -> ast.RuleFile:
        """Parse `text`; raise `RuleErrors` (holding every error found) if any part is wrong."""
        result = self.parse_collecting(text, path)
        if result.errors:
            raise RuleErrors(result.errors)
        return result.file

    def _parse_batch(
        self, text: str, path: str, batch: list[tuple[int, int, int]], lines: list[str]
    ) -> tuple[list[ast.Statement] | None, list[ast.Comment]]:
        """Parse consecutive chunks in one go, with the table driver when there is one.

        Only a clean result is kept: on any error, or if a chunk boundary does
        not start a statement (so chunk-by-chunk parsing could read it
        differently), this returns None and the caller parses chunk by chunk
        with `Lark.parse`, which reports every error against its own rule.
        """
        start_line = batch[0][0]
        chunk = text[batch[0][1] : batch[-1][2]]
        if self._driver is not None:
            builder = self._builder
            builder.file = path
            builder.line_offset = start_line - 1
            builder.comments = []
            builder.errors = []
            try:
                result = self._driver.parse(chunk)
            except RuleError:
                return None, []
            if result is FAILED or builder.errors:
                return None, []
            statements, comments = result, builder.comments
        elif len(batch) == 1:
            return None, []
        else:
            statements, comments, errors = self._parse_chunk(chunk, path, start_line, lines)
            if errors:
                return None, []
        starts = {(s.span.line, s.span.column) for s in statements}
        if any((line, 1) not in starts for line, _, _ in batch[1:]):
            return None, []
        return statements, comments

    def _parse_chunk(
        self, chunk: str, path: str, start_line: int, lines: list[str]
    ) -> tuple[list[ast.Statement], list[ast.Comment], list[RuleError]]:
        builder = self._builder
        builder.file = path
        builder.line_offset = start_line - 1
        builder.comments = []
        builder.errors = []
        statements: list[ast.Statement]
        try:
            statements = self._lark.parse(chunk)  # type: ignore[assignment]
        except UnexpectedInput as exc:
            error = self._syntax_error(exc, chunk, path, start_line, lines)
            return [], builder.comments, [error]
        except RuleError as exc:
            builder.errors.append(exc)
            statements = []
        errors = builder.errors
        for err in errors:
            if err.source_line is None and 0 < err.span.line <= len(lines):
                err.source_line = lines[err.span.line - 1]
        if errors:
            rule_id = next((s.id for s in statements if isinstance(s, ast.Rule)), None)
            for err in errors:
                if err.rule_id is None:
                    err.rule_id = rule_id
            return [], builder.comments, list(errors)
        return statements, builder.comments, []

    def _syntax_error(
        self, exc: UnexpectedInput, chunk: str, path: str, start_line: int, lines: list[str]
    ) -> RuleSyntaxError:
        off = start_line - 1
        expected: set[str] = set()
        hint: str | None = None
        if isinstance(exc, UnexpectedToken | UnexpectedEOF):
            expected = set(exc.expected)
            token = exc.token
            if token.type == "$END":
                last_line = off + max(chunk.rstrip().count("\n") + 1, 1)
                last_text = lines[last_line - 1] if 0 < last_line <= len(lines) else ""
                line, column = last_line, len(last_text.rstrip()) + 1
                end_line, end_column = line, column + 1
                found = "end of the rule"
                if "RBRACE" in expected:
                    hint = (
                        f"missing '}}': the block opened at line {start_line} is not closed"
                        " before the next rule"
                    )
            else:
                line, column = (token.line or 1) + off, token.column or 1
                end_line = (token.end_line or token.line or 1) + off
                end_column = token.end_column or column + len(token.value)
                found = f"'{token.value}'"
                hint = self._token_hint(token, expected)
        else:
            assert isinstance(exc, UnexpectedCharacters)
            line, column = exc.line + off, exc.column
            end_line, end_column = line, column + 1
            expected = set(exc.allowed or ())
            pos = exc.pos_in_stream or 0
            found = f"character {chunk[pos]!r}" if pos < len(chunk) else "end"
            char = chunk[pos] if pos < len(chunk) else ""
            if char in ";:" or chunk[pos : pos + 2] in ("&&", "||"):
                hint = self._char_hint(chunk, pos)
        first_word = chunk.lstrip().split(None, 1)[0] if chunk.strip() else ""
        if first_word in _SNORT_ACTIONS or _SNORT_OPTION.search(
            lines[line - 1] if 0 < line <= len(lines) else ""
        ):
            hint = (
                "this looks like Snort/Suricata syntax; Shrike rules read "
                '`rule "title" { id N  match tcp from ... to ...  where ... }` '
                "(see docs/language.md), or convert with `shrike import-snort`"
            )
        shown = sorted(self._terminal_display.get(name, name) for name in expected)
        message = f"unexpected {found}"
        if shown:
            more = f" (and {len(shown) - 8} more)" if len(shown) > 8 else ""
            message += "; expected " + ", ".join(shown[:8]) + more
        source_line = lines[line - 1] if 0 < line <= len(lines) else None
        return RuleSyntaxError(
            message,
            ast.Span(path, line, column, end_line, end_column),
            hint=hint,
            source_line=source_line,
        )

    @staticmethod
    def _token_hint(token: Token, expected: set[str]) -> str | None:
        value = str(token.value)
        if value in _SNORT_STATEMENT_HINTS and "RBRACE" in expected:
            return _SNORT_STATEMENT_HINTS[value]
        if token.type == "RULE" or value == "rule":
            return "missing '}': the previous rule is not closed"
        if "COMPARE" in expected and value == "=":
            return "compare with `==`"
        if value in ("&&", "||", "&", "|") and expected & {"AND", "OR"}:
            return "combine conditions with `and` / `or`"
        if token.type in ("FIELD", "WORD") and "RBRACE" in expected:
            return f"'{value}' is not a rule statement; see docs/language.md for the statements"
        return None

    @staticmethod
    def _char_hint(chunk: str, pos: int) -> str:
        if chunk[pos : pos + 2] in ("&&", "||"):
            return "combine conditions with `and` / `or`"
        return "Shrike does not use `option:value;` pairs; see docs/language.md"


def _grammar_words(lark: Lark) -> set[str]:
    """The keywords of the loaded grammar: word-like literals, and the alternatives of
    prioritised word terminals such as CONTENT_VERB (`(contains|starts_with|...)`)."""
    words: set[str] = set()
    for terminal in lark.terminals:
        value = terminal.pattern.value
        if terminal.pattern.type == "str":
            if _KEYWORD.fullmatch(value):
                words.add(value)
        elif terminal.priority > 0:
            alternatives = _KEYWORD_ALTERNATIVES.match(value)
            if alternatives:
                words.update(alternatives.group(1).split("|"))
    return words


_KEYWORD = re.compile(r"[A-Za-z_]\w*")
_KEYWORD_ALTERNATIVES = re.compile(r"\(([\w|]+)\)")

# Chunks parsed per Lark call when the text is clean; an error costs one
# re-parse of its batch, chunk by chunk.
_BATCH = 32


def _chunk_bounds(text: str) -> list[tuple[int, int, int]]:
    """Split `text` at lines that start a top-level statement; return (first line, start, end)."""
    starts = [0, *(m.start() + 1 for m in _CHUNK_START.finditer(text))]
    chunks: list[tuple[int, int, int]] = []
    line = 1
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        if not text[start:end].isspace() and start != end:
            chunks.append((line, start, end))
        line += text.count("\n", start, end)
    return chunks
