"""A hand-written recursive-descent parser for clean `.shrike` chunks: the same AST as the Lark path, or a decline.

Lark's LALR parser spends most of its time on per-token and per-reduction
bookkeeping.  This parser cuts a chunk into tokens with one regex, reads each
construct of `grammar.lark` directly from them, and builds the AST nodes the
in-parser transformer builds: same fields, same spans (which follow the
transformer's rule of spanning the kept tokens and child nodes), same value
checks, partly through the transformer's own helpers.  It declines a chunk
(returns None) on any syntax error, on any value the transformer would report,
and on any token it is not sure Lark's contextual lexer would read the same
way; the caller then parses that chunk with Lark, so every error a user sees is
still Lark's.

Staying in step with the contextual lexer: the tokenizer tries the grammar's
terminals in the lexer's priority order (addresses, then durations, hex and
decimal numbers, then integers and words), and a word is always the whole run
of word characters, which must equal the keyword or be a name where the grammar
expects one.  Where the contextual lexer would cut the text differently (a
keyword glued to what follows, `|` between flowbits read as hex, ...) the
tokens do not fit the grammar and the chunk is declined.
`tests/rules/test_fast_parser.py` compares both paths.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import types
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from itertools import accumulate
from typing import Any

from rules import _native_tokens, ast, fields
from rules.errors import RuleError

# Words and strings first (most tokens); then the number and address shapes in the
# lexer's priority order, operators before the punctuation they start with, and a
# catch-all so no character is skipped.
_TOKEN = re.compile(
    r"[ \t\f\r\n]*+(?:"
    + "|".join(
        (
            r"(?P<W>[A-Za-z_][A-Za-z0-9_.\-]*)",
            r'(?P<S>"(?:[^"\\\n]|\\.)*")',
            r"(?P<P>[{}\[\](),])",
            r"(?P<I6>[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*(?:/\d{1,3})?)",
            r"(?P<I4>\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:/\d{1,2})?)",
            r"(?P<D>\d+(?:ms|s|m|h|d)(?![\w.]))",
            r"(?P<X>0[xX][0-9A-Fa-f]+)",
            r"(?P<F>-?\d+\.\d+)",
            r"(?P<N>-?\d+)",
            r"(?P<V>\$[A-Za-z_][A-Za-z0-9_]*)",
            r"(?P<H>\|[0-9A-Fa-f \t]*\|)",
            r"(?P<R>/(?:[^/\\\n]|\\.)+/[A-Za-z]*)",
            r"(?P<DOTS>\.\.)",
            r"(?P<NE><>)",
            r"(?P<O>!?(?:<<|>>|<=|>=|==|!=|=|<|>|&|\^|\+|-|\*|/))",
            r"(?P<Q>[:!|])",
            r"(?P<C>#[^\n]*)",
            r"(?P<B>[^ \t\f\r\n])",
        )
    )
    + ")"
)
# Group number -> group name; ":", "!" and "|" (Q) share a kind with the other punctuation.
_KINDS = tuple(
    "P" if name == "Q" else name
    for name, _ in sorted(_TOKEN.groupindex.items(), key=lambda item: item[1])
)
_KINDS = ("", *_KINDS)
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*").fullmatch
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)").fullmatch
_TECHNIQUE = re.compile(r"T\d{4}(\.\d{3})?").fullmatch
_TACTIC = re.compile(r"TA\d{4}").fullmatch
_END = "$"

_COMPARE = frozenset({"==", "!=", "<=", ">=", "<", ">"})
_CONTENT_VERBS = frozenset({"contains", "starts_with", "ends_with", "equals"})
_CALL_NAMES = frozenset(
    {"byte_test", "byte_jump", "byte_extract", "byte_math", "isdataat", "base64_decode"}
)
_AGGREGATES = frozenset({"count", "sum", "distinct", "min", "max", "avg"})
_FLOW_OPTIONS = frozenset(
    [
        "not_established",
        "established",
        "stateless",
        "to_server",
        "to_client",
        "from_server",
        "from_client",
        "only_stream",
        "no_stream",
        "only_frag",
        "no_frag",
    ]
)
_BIT_KINDS = frozenset({"flowbits", "xbits"})
_STATEMENT_WORDS = frozenset(
    [
        "id",
        "rev",
        "gid",
        "action",
        "severity",
        "priority",
        "classtype",
        "attack",
        "tactic",
        "reference",
        "tags",
        "author",
        "meta",
        "service",
        "enabled",
        "disabled",
        "match",
        "where",
        "window",
        "threshold",
        "detection_filter",
        "option",
        "flowbits",
        "xbits",
    ]
)
# Every word the grammar spells out.  A name (flowbit, transform, ...) equal to one of
# them may be lexed as that keyword in some parser state, so the fast path declines it.
# `RuleParser` adds the words of the grammar it loads (`reserve_words`), so a keyword
# added to `grammar.lark` is declined here before this parser learns about it.
_RESERVED: set[str] = set(
    _STATEMENT_WORDS
    | _CONTENT_VERBS
    | _CALL_NAMES
    | _AGGREGATES
    | _FLOW_OPTIONS
    | frozenset(
        [
            "rule",
            "include",
            "addresses",
            "ports",
            "between",
            "not",
            "in",
            "has",
            "has_any",
            "ignoring",
            "with",
            "true",
            "false",
            "any",
            "nocase",
            "rawbytes",
            "fast_pattern",
            "only",
            "at",
            "matches",
            "size",
            "by",
            "group",
            "track",
            "expire",
            "from",
            "to",
            "port",
            "and",
            "or",
            "offset",
            "depth",
            "distance",
            "within",
            "length",
            "per",
            "multiplier",
            "unique",
            "with_replies",
            "flowint",
        ]
    )
)


def reserve_words(words: Iterable[str]) -> None:
    """Treat `words` as keywords: never read them as names."""
    _RESERVED.update(words)


_REPEATABLE = frozenset(
    [
        "techniques",
        "tactics",
        "references",
        "tags",
        "metadata",
        "services",
        "thresholds",
        "bit_actions",
        "options",
    ]
)
_MODIFIER_KEYS = frozenset({"offset", "depth", "distance", "within"})
_NUMBER_KINDS = frozenset({"X", "F", "N"})
_TRACKS = ("ip_src", "ip_dst", "ip_pair", "tx")


def _slot_constructor(cls: type) -> Any:
    """A function that builds `cls` with the signature of its `__init__`, storing each
    slot directly.

    A frozen dataclass's `__init__` goes through `object.__setattr__` once per field,
    which is most of the cost of building a small node.  This builds the node as an
    instance of an unfrozen twin class with the same slots (`_open_twin`), stores
    the fields with plain attribute stores and then gives the node its real class,
    which CPython allows between classes of the same layout.  Where the twin is
    refused, the fields are stored through the slot descriptors instead.  Only for
    classes without `__post_init__` or default factories (else the class itself is
    returned).
    """
    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or any(
        field.default_factory is not dataclasses.MISSING for field in fields
    ):
        return cls
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    params: list[str] = []
    keyword_only = [field for field in fields if field.kw_only]
    for field in [field for field in fields if not field.kw_only] + keyword_only:
        if keyword_only and field is keyword_only[0]:
            params.append("*")
        if field.default is dataclasses.MISSING:
            params.append(field.name)
        else:
            namespace["default_" + field.name] = field.default
            params.append(f"{field.name}=default_{field.name}")
        slot = next(k.__dict__[field.name] for k in cls.__mro__ if field.name in k.__dict__)
        namespace["set_" + field.name] = slot.__set__
    twin = _open_twin(cls)
    if twin is not None:
        namespace["twin"] = twin
        stores = "".join(f"    node.{field.name} = {field.name}\n" for field in fields)
        body = f"    node = new(twin)\n{stores}    node.__class__ = cls\n"
    else:
        stores = "".join(f"    set_{field.name}(node, {field.name})\n" for field in fields)
        body = f"    node = new(cls)\n{stores}"
    source = f"def build({', '.join(params)}):\n{body}    return node\n"
    exec(source, namespace)
    return namespace["build"]


_TWINS: dict[type, type] = {object: object}


def _open_twin(cls: type) -> type | None:
    """A class with the same slots as `cls` and its bases but no frozen `__setattr__`,
    whose instances may take `cls` as their class; None when CPython refuses that.

    CPython allows it for a class directly under `object` (Span, the most common
    node by far) and for classes that add no slots of their own; a node class that
    adds slots to `Node` has a layout CPython will not match with a twin.
    """
    twin = _TWINS.get(cls)
    if twin is None:
        if len(cls.__bases__) != 1 or "__slots__" not in cls.__dict__:
            return None
        base = _open_twin(cls.__bases__[0])
        if base is None:
            return None
        twin = type(f"_Open{cls.__name__}", (base,), {"__slots__": cls.__dict__["__slots__"]})
        probe: Any = object.__new__(twin)
        try:
            probe.__class__ = cls
        except TypeError:
            return None
        _TWINS[cls] = twin
    return twin


# `_new.Rule(...)` builds an `ast.Rule` as `ast.Rule(...)` would, through
# `_slot_constructor`: one attribute per node class of `rules.ast`.
_new: Any = types.SimpleNamespace(
    **{
        name: _slot_constructor(value)
        for name, value in vars(ast).items()
        if isinstance(value, type) and dataclasses.is_dataclass(value)
    }
)
# `_span` builds spans, the most common node, the way `_slot_constructor` would, inline.
_SPAN = ast.Span
_OPEN_SPAN: Any = _open_twin(ast.Span)
assert _OPEN_SPAN is not None, "Span is a slotted class directly under object"
_object_new = object.__new__


class Decline(Exception):
    """The chunk is not one the fast path is sure to read as Lark does."""


def _decline(error: RuleError) -> None:
    """The transformer's error report, for its helpers run by the fast path: any error declines."""
    raise Decline


class _Spanned:
    """A node with the text offsets of its span, until its parent has used them."""

    __slots__ = ("node", "start", "stop")

    def __init__(self, node: Any, start: int, stop: int) -> None:
        self.node = node
        self.start = start
        self.stop = stop


class FastParser:
    """Parses the chunks of one text; `parse_chunk` returns (statements, comments) or None."""

    def __init__(self, text: str, path: str) -> None:
        from rules import parser as lark_path  # the transformer's helpers and word lists

        self.text = text
        self.path = path
        self._lark: Any = lark_path
        # The C tokenizer works on ASCII text, where characters are bytes.
        self._native = _native_tokens.tokenizer() if text.isascii() else None
        self._ascii = text.encode("ascii") if self._native is not None else b""
        if self._native is not None:
            self._line_starts = self._native.line_starts(self._ascii)
        else:
            self._line_starts = [0, *accumulate(len(line) + 1 for line in text.split("\n"))]
        # The transformer's own checks, reporting through `_decline`.
        self._checker = lark_path._AstBuilder()
        self._checker._report = _decline  # type: ignore[method-assign]
        self._allowed = {"severity": lark_path.SEVERITIES, "action": lark_path.ACTIONS}
        self.k: list[str] = []  # token kinds (the tokenizer's group names)
        self.t: list[str] = []  # token texts
        self.s: list[int] = []  # token start offsets
        self.i = 0
        self._line = 1  # the line of the last span's start, which runs from _line_low to _line_high
        self._line_low = 0
        self._line_high = 0
        self._all: tuple[list[str], list[str], list[int]] | None = None  # the whole text's

    # ---- tokens and positions ---------------------------------------------

    def _tokenize(self, start: int, end: int) -> list[tuple[str, str, int]]:
        """Point the token lists at text[start:end] (kinds, texts, starts); return its comments.

        The whole text is cut into tokens once, on the first call: no token spans a
        line, so a chunk (whole lines) holds exactly the tokens that start in it.  A
        range that cuts through a token is tokenized on its own instead.
        """
        if self._all is None:
            self._all = self._tokens(0, len(self.text))
        kinds, texts, starts = self._all
        lo = bisect_left(starts, start)
        hi = bisect_left(starts, end)
        if (lo and starts[lo - 1] + len(texts[lo - 1]) > start) or (
            hi and starts[hi - 1] + len(texts[hi - 1]) > end
        ):
            kinds, texts, starts = self._tokens(start, end)
            lo, hi = 0, len(kinds)
        k, t, s = kinds[lo:hi], texts[lo:hi], starts[lo:hi]
        comments: list[tuple[str, str, int]] = []
        if "C" in k:
            comments = [
                (kind, text, at) for kind, text, at in zip(k, t, s, strict=True) if kind == "C"
            ]
            kept = [n for n, kind in enumerate(k) if kind != "C"]
            k, t, s = [k[n] for n in kept], [t[n] for n in kept], [s[n] for n in kept]
        k.append(_END)
        t.append("")
        s.append(end)
        self.k, self.t, self.s = k, t, s
        self.i = 0
        return comments

    def _tokens(self, start: int, end: int) -> tuple[list[str], list[str], list[int]]:
        """The tokens of text[start:end], comments included, as three columns: by the C
        tokenizer for ASCII text when it is available, else by the `_TOKEN` regex."""
        names = _KINDS
        native = self._native
        if native is not None:
            codes, starts, texts = native.tokens(self._ascii, start, end)
            return [names[code] for code in codes], texts, starts
        return self._regex_tokens(start, end)

    def _regex_tokens(self, start: int, end: int) -> tuple[list[str], list[str], list[int]]:
        kinds: list[str] = []
        texts: list[str] = []
        starts: list[int] = []
        add_kind, add_text, add_start = kinds.append, texts.append, starts.append
        names = _KINDS
        for m in _TOKEN.finditer(self.text, start, end):
            index = m.lastindex  # every alternative is a group: never 0 or None
            add_kind(names[index])  # type: ignore[index]
            add_text(m.group(index))  # type: ignore[arg-type]
            add_start(m.start(index))  # type: ignore[arg-type]
        return kinds, texts, starts

    def _span(self, start: int, stop: int) -> ast.Span:
        """The span from offset `start` to offset `stop` (past the last character)."""
        starts = self._line_starts
        # Spans come in text order, most on the line of the one before: look that
        # line up again only when the span starts elsewhere.
        if self._line_low <= start < self._line_high:
            line = self._line
        else:
            line = bisect_right(starts, start)
            self._line = line
            self._line_low = starts[line - 1]
            self._line_high = starts[line]  # the line starts end with one past the text
        # Most spans end on the line they start on; only look further when they do not.
        end_line = line if stop <= self._line_high else bisect_right(starts, stop - 1)
        span = _object_new(_OPEN_SPAN)
        span.file = self.path
        span.line = line
        span.column = start - starts[line - 1] + 1
        span.end_line = end_line
        span.end_column = stop - starts[end_line - 1] + 1
        span.__class__ = _SPAN
        return span

    def _word(self) -> str:
        """The word at the current token, or "" when it is not a word (nothing is consumed)."""
        i = self.i
        return self.t[i] if self.k[i] == "W" else ""

    def _take(self, kind: str) -> str:
        i = self.i
        if self.k[i] != kind:
            raise Decline
        self.i = i + 1
        return self.t[i]

    def _take_text(self, text: str) -> None:
        i = self.i
        if self.t[i] != text or self.k[i] in ("S", "H", "R"):
            raise Decline
        self.i = i + 1

    def _peek(self, text: str) -> bool:
        """Whether the current token is the punctuation `text`."""
        i = self.i
        return self.t[i] == text and self.k[i] == "P"

    def _name(self) -> str:
        """A WORD where the lexer could also offer keywords: decline every keyword."""
        word = self._take("W")
        if word in _RESERVED:
            raise Decline
        return word

    def _glued_colon(self, i: int) -> bool:
        """Whether token `i` is a word right before `:`: where an address may stand, the
        lexer tries IPv6 first and could read the two as one address (`fe80::1`)."""
        return self.t[i + 1] == ":" and self.s[i + 1] == self.s[i] + len(self.t[i])

    def _stop(self) -> int:
        """The end offset of the last token taken."""
        i = self.i - 1
        return self.s[i] + len(self.t[i])

    def _start(self) -> int:
        return self.s[self.i]

    def _string(self, token: str) -> str:
        return self._bytes(token).decode("utf-8", errors="surrogateescape")

    def _bytes(self, token: str) -> bytes:
        body = token[1:-1]
        if "\\" not in body:
            return body.encode()
        try:
            return self._lark._unescape(body, lambda: ast.NO_SPAN)
        except RuleError:
            raise Decline from None

    @staticmethod
    def _hex(token: str) -> bytes:
        digits = "".join(token[1:-1].split())
        if len(digits) % 2:
            raise Decline
        return bytes.fromhex(digits)

    def _int(self, low: int, high: int) -> int:
        value = int(self._take("N"))
        if value < low or value > high:
            raise Decline
        return value

    # ---- top level --------------------------------------------------------

    def parse_chunk(self, start: int, end: int) -> tuple[list[Any], list[ast.Comment]] | None:
        comments = self._tokenize(start, end)
        statements: list[Any] = []
        kinds = self.k
        try:
            while kinds[self.i] != _END:
                at = self._start()
                word = self._take("W")
                if word == "rule":
                    statements.append(self._rule(at))
                elif word == "include":
                    path = self._string(self._take("S"))
                    statements.append(_new.Include(path, span=self._span(at, self._stop())))
                elif word == "addresses" or word == "ports":
                    name = self._take("W")
                    self._take_text("=")
                    value = self._address() if word == "addresses" else self._port()
                    statements.append(
                        _new.VariableDefinition(name, value.node, span=self._span(at, value.stop))
                    )
                else:
                    raise Decline
        except Decline:
            return None
        return statements, [
            _new.Comment(text[1:].rstrip(), span=self._span(begin, begin + len(text)))
            for _, text, begin in comments
        ]

    # ---- rules ------------------------------------------------------------

    def _rule(self, start: int) -> ast.Rule:
        title = self._string(self._take("S"))
        self._take_text("{")
        values: dict[str, Any] = {}
        kinds = self.k
        while kinds[self.i] == "W":
            at = self._start()
            word = self.t[self.i]
            self.i += 1
            method = _STATEMENTS.get(word)
            if method is None:
                raise Decline
            key, value = method(self, word, at)
            if key in _REPEATABLE:
                values[key] = values.get(key, ()) + value
            elif key in values:
                raise Decline
            else:
                values[key] = value
        self._take_text("}")
        if "id" not in values or "header" not in values:
            raise Decline
        return _new.Rule(title=title, span=self._span(start, self._stop()), **values)

    def _id(self, word: str, at: int) -> tuple[str, Any]:
        low, high = _NUMBER_STATEMENTS[word]
        return word, self._int(low, high)

    def _choice(self, word: str, at: int) -> tuple[str, Any]:
        value = self._take("W")
        allowed = self._allowed.get(word)
        if allowed is not None and value not in allowed:
            raise Decline
        return word, value

    def _ids(self, word: str, at: int) -> tuple[str, Any]:
        items = self._word_list()
        check = _TECHNIQUE if word == "attack" else _TACTIC
        for item in items:
            if not check(item):
                raise Decline
        return ("techniques" if word == "attack" else "tactics"), items

    def _services(self, word: str, at: int) -> tuple[str, Any]:
        return "services", self._word_list()

    def _word_list(self) -> tuple[str, ...]:
        items = [self._take("W")]
        while self._peek(","):
            self.i += 1
            items.append(self._take("W"))
        return tuple(items)

    def _tags(self, word: str, at: int) -> tuple[str, Any]:
        tags = [self._word_or_string()]
        while self._peek(","):
            self.i += 1
            tags.append(self._word_or_string())
        return "tags", tuple(tags)

    def _word_or_string(self) -> str:
        if self.k[self.i] == "S":
            return self._string(self._take("S"))
        return self._take("W")

    def _author(self, word: str, at: int) -> tuple[str, Any]:
        return "author", self._string(self._take("S"))

    def _reference(self, word: str, at: int) -> tuple[str, Any]:
        kind_at = self._start()
        kind = self._take("W")
        value = self._string(self._take("S"))
        return "references", (_new.Reference(kind, value, span=self._span(kind_at, self._stop())),)

    def _meta(self, word: str, at: int) -> tuple[str, Any]:
        key_at = self._start()
        key = self._take("W")
        kind = self.k[self.i]
        if kind == "S":
            value = self._string(self._take("S"))
        elif kind == "N" or kind == "W":
            value = self._take(kind)
        else:
            raise Decline
        entry = _new.MetadataEntry(key, value, span=self._span(key_at, self._stop()))
        return "metadata", (entry,)

    def _enabled(self, word: str, at: int) -> tuple[str, Any]:
        return "enabled", word == "enabled"

    def _match(self, word: str, at: int) -> tuple[str, Any]:
        return "header", self._header(at)

    def _where(self, word: str, at: int) -> tuple[str, Any]:
        return "condition", self._or().node

    def _threshold(self, word: str, at: int) -> tuple[str, Any]:
        if word == "threshold":
            kind = self._take("W")
            if kind not in self._lark.THRESHOLD_KINDS:
                raise Decline
        else:
            kind = word
        count = self._int(1, 2**31 - 1)
        multiplier = None
        if kind == "backoff":
            self._take_text("multiplier")
            multiplier = self._int(1, 2**31 - 1)
            seconds = 0.0
        else:
            self._take_text("per")
            amount, unit = self._duration()
            seconds = amount * ast._UNIT_SECONDS[unit]
            if seconds != int(seconds) or seconds <= 0:
                raise Decline
        self._take_text("by")
        track = self._take("W")
        if track not in self._lark.TRACKS:
            raise Decline
        threshold = _new.Threshold(
            kind, count, int(seconds), track, span=self._span(at, self._stop())
        )
        if multiplier is not None or (kind == "detection_filter" and self._word() == "unique"):
            threshold = self._threshold_extras(threshold, multiplier, at)
        return "thresholds", (threshold,)

    def _threshold_extras(
        self, threshold: ast.Threshold, multiplier: int | None, at: int
    ) -> ast.Threshold:
        """A backoff's multiplier, or a detection_filter's `unique FIELD`."""
        unique = None
        if multiplier is None:
            self.i += 1  # `unique`
            unique = self._field_ref().name
        return dataclasses.replace(
            threshold, multiplier=multiplier, unique=unique, span=self._span(at, self._stop())
        )

    def _duration(self) -> tuple[int, str]:
        m = _DURATION(self._take("D"))
        assert m is not None  # the D token has this shape
        return int(m.group(1)), m.group(2)

    def _window(self, word: str, at: int) -> tuple[str, Any]:
        duration_at = self._start()
        amount, unit = self._duration()
        duration = _new.Duration(amount, unit, span=self._span(duration_at, self._stop()))
        if duration.seconds <= 0:
            raise Decline
        group_by: list[ast.FieldRef] = []
        if self._word() == "by":
            self.i += 1
            group_by.append(self._field_ref())
            while self._peek(","):
                self.i += 1
                group_by.append(self._field_ref())
        self._take_text(":")
        function_at = self._start()
        function = self._take("W")
        if function not in _AGGREGATES:
            raise Decline
        aggregate_stop = self._stop()
        self._take_text("(")
        ref = None
        if not self._peek(")"):
            ref = self._field_ref()
            aggregate_stop = self._stop()
        self._take_text(")")
        if (function == "count") != (ref is None):
            raise Decline
        aggregate = _new.Aggregate(function, ref, span=self._span(function_at, aggregate_stop))
        operator = self._take("O")
        if operator not in _COMPARE:
            raise Decline
        threshold = self._number()
        window = _new.Window(
            duration,
            tuple(group_by),
            aggregate,
            operator,
            threshold,
            span=self._span(at, self._stop()),
        )
        return "window", window

    def _number(self) -> int | float:
        """INT, FLOAT or HEXINT (the tokenizer already preferred HEXINT and FLOAT to INT)."""
        kind = self.k[self.i]
        text = self._take(kind)
        if kind == "N":
            return int(text)
        if kind == "X":
            return int(text, 16)
        if kind == "F":
            return float(text)
        raise Decline

    def _option_statement(self, word: str, at: int) -> tuple[str, Any]:
        return "options", (self._option(at).node,)

    def _flowint_statement(self, word: str, at: int) -> tuple[str, Any]:
        change = self._flowint(at).node
        if change.operator not in self._lark.FLOWINT_CHANGES:
            raise Decline
        return "int_actions", (change,)

    def _flowint(self, at: int) -> _Spanned:
        """`flowint NAME isset|notset` or `flowint NAME OP (INT | NAME)`."""
        name = self._name()
        i = self.i
        kind, operator = self.k[i], self.t[i]
        self.i = i + 1
        value: int | str | None = None
        if kind == "W":
            if operator not in ("isset", "notset"):
                raise Decline
        elif kind == "O":
            value_kind = self.k[self.i]
            if value_kind == "N":
                value = int(self._take("N"))
            elif value_kind == "W":
                value = self._name()
            else:
                raise Decline
            if operator not in self._lark.FLOWINT_TESTS + self._lark.FLOWINT_CHANGES:
                raise Decline
        else:
            raise Decline
        stop = self._stop()
        return _Spanned(ast.Flowint(name, operator, value, span=self._span(at, stop)), at, stop)

    def _bits_statement(self, word: str, at: int) -> tuple[str, Any]:
        bits = self._bits(word, at).node
        if bits.action not in self._lark.BIT_ACTIONS:
            raise Decline
        return "bit_actions", (bits,)

    # ---- header -----------------------------------------------------------

    def _header(self, at: int) -> ast.Header:
        protocol = self._take("W")
        stop = self._stop()
        values: dict[str, Any] = {}
        word = self._word()
        if word == "from" or word == "between":
            self.i += 1
            values["source"], values["source_ports"], stop = self._endpoint()
            if word == "between":
                self._take_text("and")
                values["direction"] = "<>"
                word = "to"
            else:
                word = self._word()
                if word == "to":
                    self.i += 1
        elif word == "to":
            self.i += 1
        if word == "to":
            values["destination"], values["destination_ports"], stop = self._endpoint()
        if self._word() == "with_replies":
            if values.get("direction") == "<>":
                raise Decline
            self.i += 1
            values["direction"] = "=>"
            stop = self._stop()
        flow: list[str] = []
        while self._word() in _FLOW_OPTIONS:
            flow.append(self.t[self.i])
            self.i += 1
        return _new.Header(protocol, **values, flow=tuple(flow), span=self._span(at, stop))

    def _endpoint(self) -> tuple[ast.Address, ast.Port, int]:
        address = self._address()
        if self._word() == "port":
            self.i += 1
            port = self._port()
            return address.node, port.node, port.stop
        return address.node, _new.AnyPort(), address.stop

    def _address(self) -> _Spanned:
        i = self.i
        kind, text, start = self.k[i], self.t[i], self.s[i]
        self.i = i + 1
        node: Any
        if kind == "P":
            if text == "[":
                items = [self._address().node]
                while self._peek(","):
                    self.i += 1
                    items.append(self._address().node)
                self._take_text("]")
                node = _new.AddressList(tuple(items), span=self._span(start, self._stop()))
            elif text == "!":
                inner = self._address()
                node = _new.NegatedAddress(inner.node, span=self._span(start, inner.stop))
            else:
                raise Decline
        elif kind == "V":
            node = _new.AddressVariable(text[1:], span=self._span(start, self._stop()))
        elif kind == "I6" or kind == "I4":
            _check_network(text)
            node = _new.IpAddress(text, span=self._span(start, self._stop()))
        elif kind == "W" and text == "any" and not self._glued_colon(i):
            node = _new.AnyAddress(span=self._span(start, self._stop()))
        else:
            raise Decline
        return _Spanned(node, start, self._stop())

    def _port(self) -> _Spanned:
        i = self.i
        kind, text, start = self.k[i], self.t[i], self.s[i]
        self.i = i + 1
        node: Any
        if kind == "P":
            if text == "[":
                items = [self._port().node]
                while self._peek(","):
                    self.i += 1
                    items.append(self._port().node)
                self._take_text("]")
                node = _new.PortList(tuple(items), span=self._span(start, self._stop()))
            elif text == "!":
                inner = self._port()
                node = _new.NegatedPort(inner.node, span=self._span(start, inner.stop))
            else:
                raise Decline
        elif kind == "V":
            node = _new.PortVariable(text[1:], span=self._span(start, self._stop()))
        elif kind == "DOTS":
            node = _new.PortRange(None, self._int(0, 65535), span=self._span(start, self._stop()))
        elif kind == "N":
            low = _port_number(text)
            if self.k[self.i] != "DOTS":
                node = _new.PortNumber(low, span=self._span(start, self._stop()))
            else:
                self.i += 1
                if self.k[self.i] == "N":
                    high = self._int(0, 65535)
                    if low > high:
                        raise Decline
                    node = _new.PortRange(low, high, span=self._span(start, self._stop()))
                else:
                    node = _new.PortRange(low, None, span=self._span(start, self._stop()))
        elif kind == "W" and text == "any":
            node = _new.AnyPort(span=self._span(start, self._stop()))
        else:
            raise Decline
        return _Spanned(node, start, self._stop())

    # ---- conditions -------------------------------------------------------

    def _or(self) -> _Spanned:
        first = self._and()
        if self._word() != "or":
            return first
        operands = [first]
        while self._word() == "or":
            self.i += 1
            operands.append(self._and())
        flat: list[Any] = []
        for item in operands:
            node = item.node
            flat.extend(node.operands if isinstance(node, ast.Or) else (node,))
        start, stop = first.start, operands[-1].stop
        return _Spanned(_new.Or(tuple(flat), span=self._span(start, stop)), start, stop)

    def _and(self) -> _Spanned:
        first = self._not()
        if self._word() != "and":
            return first
        operands = [first]
        while self._word() == "and":
            self.i += 1
            operands.append(self._not())
        flat: list[Any] = []
        for item in operands:
            node = item.node
            flat.extend(node.operands if isinstance(node, ast.And) else (node,))
        start, stop = first.start, operands[-1].stop
        return _Spanned(_new.And(tuple(flat), span=self._span(start, stop)), start, stop)

    def _not(self) -> _Spanned:
        if self._peek("("):
            self.i += 1
            inner = self._or()
            self._take_text(")")
            return inner
        at = self._start()
        word = self._take("W")
        if word == "not":
            operand = self._not()
            stop = operand.stop
            return _Spanned(_new.Not(operand.node, span=self._span(at, stop)), at, stop)
        if word in _BIT_KINDS:
            bits = self._bits(word, at)
            if bits.node.action not in self._lark.BIT_TESTS:
                raise Decline
            return bits
        if word == "option":
            return self._option(at)
        if word == "flowint":
            test = self._flowint(at)
            if test.node.operator not in self._lark.FLOWINT_TESTS:
                raise Decline
            return test
        ref = self._make_field_ref(word, at)
        return self._after_field(ref, at)

    def _field_ref(self) -> ast.FieldRef:
        at = self._start()
        return self._make_field_ref(self._take("W"), at)

    def _make_field_ref(self, name: str, at: int) -> ast.FieldRef:
        if name not in _FIELD_NAMES:
            if name not in fields.FIELDS or name in _RESERVED or not _FIELD(name):
                raise Decline
            _FIELD_NAMES.add(name)
        return _new.FieldRef(name, span=self._span(at, at + len(name)))

    def _after_field(self, ref: ast.FieldRef, at: int) -> _Spanned:
        i = self.i
        kind, text = self.k[i], self.t[i]
        if kind == "P" and text == "[":
            return self._indexed_comparison(ref, at)
        if kind == "O":
            if text not in _COMPARE:
                raise Decline
            self.i += 1
            value, stop = self._value()
            return self._comparison(ref, text, value, at, stop, mask_allowed=True)
        if kind == "P" and text == "{":
            return self._block(self._buffer(ref, (), at, at + len(ref.name)), at)
        if kind != "W":
            return self._bare_field(ref, at)
        if text == "in":
            self.i += 1
            value, stop = self._set_value()
            return self._comparison(ref, "in", value, at, stop, mask_allowed=False)
        if text == "has" or text == "has_any":
            self.i += 1
            value, stop = self._value()
            return self._comparison(ref, text, value, at, stop, mask_allowed=True)
        if text == "with":
            self.i += 1
            transforms = [self._name()]
            while self._peek(","):
                self.i += 1
                transforms.append(self._name())
            buffer = self._buffer(ref, tuple(transforms), at, self._stop())
            if self._peek("{"):
                return self._block(buffer, at)
            return self._single(buffer, at)
        if text in _CONTENT_VERBS or text in _CALL_NAMES or text in ("not", "matches", "size"):
            return self._single(self._buffer(ref, (), at, at + len(ref.name)), at)
        return self._bare_field(ref, at)

    def _indexed_comparison(self, ref: ast.FieldRef, at: int) -> _Spanned:
        """`FIELD [INDEX] OP value` / `FIELD [INDEX] in set_value`."""
        self.i += 1
        index_at = self._start()
        kind = self.k[self.i]
        if kind != "N" and kind != "W":
            raise Decline
        text = self._take(kind)
        index: int | str = int(text) if kind == "N" else text
        index_span = self._span(index_at, self._stop())
        self._take_text("]")
        i = self.i
        op_kind, op = self.k[i], self.t[i]
        if op_kind == "O" and op in _COMPARE:
            self.i += 1
            value, stop = self._value()
        elif op_kind == "W" and op == "in":
            self.i += 1
            value, stop = self._set_value()
        else:
            raise Decline
        span = self._span(at, stop)
        self._checker._check_index(ref, index, index_span)
        self._checker._check_value(ref, op, value, span)
        node = ast.Comparison(ref, op, value, index=index, span=span)
        return _Spanned(node, at, stop)

    def _bare_field(self, ref: ast.FieldRef, at: int) -> _Spanned:
        spec = fields.FIELDS.get(ref.name)
        if spec is not None and spec.type != "bool":
            raise Decline
        return _Spanned(_new.Comparison(ref, "==", True, span=ref.span), at, at + len(ref.name))

    def _comparison(
        self,
        ref: ast.FieldRef,
        operator: str,
        value: Any,
        at: int,
        stop: int,
        *,
        mask_allowed: bool,
    ) -> _Spanned:
        mask = None
        if mask_allowed and self._word() == "ignoring":
            self.i += 1
            kind = self.k[self.i]
            if kind != "W" and kind != "N":  # `ignoring CE` or Snort's `ignoring 12`
                raise Decline
            mask = self._take(kind)
            stop = self._stop()
        span = self._span(at, stop)
        self._checker._check_value(ref, operator, value, span)
        if mask is not None:
            self._checker._check_flags(mask, ref, span)
        return _Spanned(_new.Comparison(ref, operator, value, mask, span=span), at, stop)

    def _value(self) -> tuple[Any, int]:
        """One `value` token (the tokenizer tried addresses before numbers and words)."""
        i = self.i
        kind, text, start = self.k[i], self.t[i], self.s[i]
        stop = start + len(text)
        self.i = i + 1
        if kind == "N":
            return int(text), stop
        if kind == "S":
            return self._string(text), stop
        if kind == "W":
            if self._glued_colon(i):
                raise Decline
            if text == "true":
                return True, stop
            if text == "false":
                return False, stop
            if text in _RESERVED or not _FIELD(text):
                raise Decline
            span = self._span(start, stop)
            if text in fields.FIELDS:
                return _new.FieldRef(text, span=span), stop
            return _new.Symbol(text, span=span), stop
        if kind == "H":
            return self._hex(text), stop
        if kind == "X":
            return int(text, 16), stop
        if kind == "F":
            return float(text), stop
        if kind == "V":
            return _new.AddressVariable(text[1:], span=self._span(start, stop)), stop
        if kind == "I6" or kind == "I4":
            _check_network(text)
            return _new.IpAddress(text, span=self._span(start, stop)), stop
        raise Decline

    def _set_value(self) -> tuple[Any, int]:
        start = self._start()
        if self._peek("["):
            self.i += 1
            items = [self._value()[0]]
            while self._peek(","):
                self.i += 1
                items.append(self._value()[0])
            self._take_text("]")
            stop = self._stop()
            return _new.ValueList(tuple(items), span=self._span(start, stop)), stop
        if self.k[self.i] in _NUMBER_KINDS:
            after = self.k[self.i + 1]
            if after == "DOTS" or after == "NE":
                return self._range()
        return self._value()

    def _range(self) -> tuple[ast.Range, int]:
        start = self._start()
        low = self._number()
        inclusive = self.k[self.i] == "DOTS"
        if not inclusive and self.k[self.i] != "NE":
            raise Decline
        self.i += 1
        high = self._number()
        stop = self._stop()
        return _new.Range(low, high, inclusive, span=self._span(start, stop)), stop

    # ---- sequences --------------------------------------------------------

    def _buffer(
        self, ref: ast.FieldRef, transforms: tuple[str, ...], at: int, stop: int
    ) -> ast.Buffer:
        spec = fields.FIELDS.get(ref.name)
        if spec is not None and spec.type != "buffer":
            raise Decline
        for name in transforms:
            if name not in self._lark.TRANSFORMS:
                raise Decline
        return _new.Buffer(ref.name, transforms, span=self._span(at, stop))

    def _block(self, buffer: ast.Buffer, at: int) -> _Spanned:
        self._take_text("{")
        items: list[Any] = []
        while self.k[self.i] == "W":
            if self.t[self.i] == "option":
                option_at = self._start()
                self.i += 1
                items.append(self._option(option_at).node)
            else:
                items.append(self._item().node)
        self._take_text("}")
        if not items:
            raise Decline
        stop = self._stop()
        return _Spanned(_new.Sequence(buffer, tuple(items), span=self._span(at, stop)), at, stop)

    def _single(self, buffer: ast.Buffer, at: int) -> _Spanned:
        item = self._item()
        stop = item.stop
        return _Spanned(_new.Sequence(buffer, (item.node,), span=self._span(at, stop)), at, stop)

    def _item(self) -> _Spanned:
        """One content, regex, call or size test."""
        at = self._start()
        word = self._take("W")
        negated = word == "not"
        if negated:
            word = self._take("W")
        if word in _CONTENT_VERBS:
            return self._content(word, negated, at)
        if word == "matches":
            token = self._take("R")
            end = token.rindex("/")
            stop = self._stop()
            regex = _new.Regex(token[1:end], token[end + 1 :], negated, span=self._span(at, stop))
            return _Spanned(regex, at, stop)
        if word in _CALL_NAMES:
            return self._call(word, negated, at)
        if word == "size" and not negated:
            kind, text = self.k[self.i], self.t[self.i]
            if kind == "O" and text in _COMPARE:
                self.i += 1
                number = int(self._take("N"))
                stop = self._stop()
                size = _new.BufferSize(text, number, span=self._span(at, stop))
                return _Spanned(size, at, stop)
            self._take_text("in")
            if self.k[self.i] not in _NUMBER_KINDS:
                raise Decline
            bounds, stop = self._range()
            return _Spanned(_new.BufferSize("in", bounds, span=self._span(at, stop)), at, stop)
        raise Decline

    def _content(self, verb: str, negated: bool, at: int) -> _Spanned:
        stop = self._stop()
        kinds, texts = self.k, self.t
        pattern = b""
        while True:
            kind = kinds[self.i]
            if kind == "S":
                pattern += self._bytes(texts[self.i])
            elif kind == "H":
                pattern += self._hex(texts[self.i])
            else:
                break
            self.i += 1
        if not pattern:
            raise Decline
        values: dict[str, Any] = {
            "startswith": verb == "starts_with" or verb == "equals",
            "endswith": verb == "ends_with" or verb == "equals",
        }
        while kinds[self.i] == "W":
            word = texts[self.i]
            value: Any
            if word == "nocase" or word == "rawbytes":
                value = True
                self.i += 1
            elif word in _MODIFIER_KEYS:
                kind = kinds[self.i + 1]
                if kind != "N" and kind != "W":
                    raise Decline
                value = int(texts[self.i + 1]) if kind == "N" else texts[self.i + 1]
                self.i += 2
            elif word == "fast_pattern":
                value = self._fast_pattern()
            else:
                break
            if word in values:  # a modifier given twice: the transformer reports it
                raise Decline
            values[word] = value
            stop = self._stop()
        content = _new.Content(pattern, negated=negated, span=self._span(at, stop), **values)
        return _Spanned(content, at, stop)

    def _fast_pattern(self) -> ast.FastPattern:
        at = self._start()
        self.i += 1
        word = self._word()
        if word == "only":
            self.i += 1
            return _new.FastPattern(only=True, span=self._span(at, self._stop()))
        if word == "at":
            self.i += 1
            offset = int(self._take("N"))
            self._take_text("length")
            length = int(self._take("N"))
            return _new.FastPattern(offset=offset, length=length, span=self._span(at, self._stop()))
        return _new.FastPattern(span=self._span(at, self._stop()))

    def _call(self, name: str, negated: bool, at: int) -> _Spanned:
        stop = self._stop()
        self._take_text("(")
        args: list[Any] = []
        if not self._peek(")"):
            args.append(self._call_arg())
            while self._peek(","):
                self.i += 1
                args.append(self._call_arg())
            stop = self._stop()
        self._take_text(")")
        if negated and name != "isdataat":
            raise Decline
        span = self._span(at, stop)
        node = self._lark._CallBuilder(self._checker, name, args, span, negated).build()
        return _Spanned(node, at, stop)

    def _call_arg(self) -> Any:
        """`call_arg`: WORD [value] | OPERATOR value | INT.

        After `(` and `,` the lexer offers WORD, INT and OPERATOR, in that order, so
        `-2` is a number and a lone `-` an operator, as the tokenizer reads them.
        """
        arg_type = self._lark._Arg
        i = self.i
        kind, text, start = self.k[i], self.t[i], self.s[i]
        self.i = i + 1
        if kind == "N":
            return arg_type(None, int(text), self._span(start, self._stop()))
        if kind == "W":
            after = self.t[self.i]
            if self.k[self.i] == "P" and (after == "," or after == ")"):
                return arg_type(text, None, self._span(start, self._stop()))
            value = self._arg_value()
            return arg_type(text, value, self._span(start, self._stop()))
        if kind == "O":
            value = self._arg_value()
            return arg_type("op", (text, value), self._span(start, self._stop()))
        raise Decline

    def _arg_value(self) -> Any:
        """The second token of a call_arg: HEXINT, INT, WORD, STRING or OPERATOR."""
        i = self.i
        kind, text = self.k[i], self.t[i]
        self.i = i + 1
        if kind == "N":
            return int(text)
        if kind == "W":
            return text
        if kind == "X":
            return int(text, 16)
        if kind == "S":
            return self._string(text)
        if kind == "O":
            return text
        raise Decline

    # ---- bits and options -------------------------------------------------

    def _bits(self, kind: str, at: int) -> _Spanned:
        lark = self._lark
        action = self._take("W")
        if action not in lark.BIT_TESTS and action not in lark.BIT_ACTIONS:
            raise Decline
        stop = self._stop()
        names: list[str] = []
        operator: str | None = None
        options: dict[str, Any] = {}
        word = self._word()
        if word and word not in _RESERVED:
            names.append(word)
            self.i += 1
            while True:
                i = self.i
                join = self.t[i]
                if not ((join == "&" and self.k[i] == "O") or (join == "|" and self.k[i] == "P")):
                    break
                if operator is not None and operator != join:
                    raise Decline
                operator = join
                self.i += 1
                names.append(self._name())
            stop = self._stop()
            word = self._word()
        while word == "group" or word == "track" or word == "expire":
            if word in options:
                raise Decline
            self.i += 1
            if word == "expire":
                options[word] = int(self._take("N"))
            else:
                value = self._take("W")
                if word == "track" and value not in _TRACKS:
                    raise Decline
                options[word] = value
            stop = self._stop()
            word = self._word()
        if action not in ("noalert", "reset") and not names:
            raise Decline
        if kind == "flowbits" and ("track" in options or "expire" in options):
            raise Decline
        bits = _new.Flowbits(
            kind,
            action,
            tuple(names),
            operator,
            options.get("group"),
            options.get("track"),
            options.get("expire"),
            span=self._span(at, stop),
        )
        return _Spanned(bits, at, stop)

    def _option(self, at: int) -> _Spanned:
        name = self._take("W")
        value = None
        if self.k[self.i] == "S":
            value = self._string(self._take("S"))
        stop = self._stop()
        return _Spanned(_new.OpaqueOption(name, value, span=self._span(at, stop)), at, stop)


_NUMBER_STATEMENTS = {
    "id": (1, 2**32 - 1),
    "rev": (1, 2**32 - 1),
    "gid": (0, 2**32 - 1),
    "priority": (0, 2**31 - 1),
}
_STATEMENTS = {
    "id": FastParser._id,
    "rev": FastParser._id,
    "gid": FastParser._id,
    "priority": FastParser._id,
    "severity": FastParser._choice,
    "action": FastParser._choice,
    "classtype": FastParser._choice,
    "attack": FastParser._ids,
    "tactic": FastParser._ids,
    "service": FastParser._services,
    "tags": FastParser._tags,
    "author": FastParser._author,
    "reference": FastParser._reference,
    "meta": FastParser._meta,
    "enabled": FastParser._enabled,
    "disabled": FastParser._enabled,
    "match": FastParser._match,
    "where": FastParser._where,
    "window": FastParser._window,
    "threshold": FastParser._threshold,
    "detection_filter": FastParser._threshold,
    "option": FastParser._option_statement,
    "flowbits": FastParser._bits_statement,
    "xbits": FastParser._bits_statement,
    "flowint": FastParser._flowint_statement,
}


def _port_number(text: str) -> int:
    value = int(text)
    if value < 0 or value > 65535:
        raise Decline
    return value


# Field names seen to be catalogued, field-shaped and not keywords.
_FIELD_NAMES: set[str] = set()
_NETWORKS: dict[str, bool] = {}


def _check_network(text: str) -> None:
    valid = _NETWORKS.get(text)
    if valid is None:
        try:
            ipaddress.ip_network(text, strict=False)
            valid = True
        except ValueError:
            valid = False
        _NETWORKS[text] = valid
    if not valid:
        raise Decline
