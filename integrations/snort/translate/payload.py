"""Translators for payload matching: content and its modifiers, buffers, pcre, byte_*, isdataat."""

from __future__ import annotations

import re

from integrations.snort.errors import Decline
from integrations.snort.tokenize import RawOption
from integrations.snort.translate import OpenSequence, PendingContent, RuleBuilder
from integrations.snort.translate.buffers import (
    HEADER_FIELDS,
    MODIFIER_BUFFERS,
    PCRE_BUFFER_FLAGS,
    STICKY_BUFFERS,
    TRANSFORMS,
)
from integrations.snort.values import (
    VARIABLE_NAME,
    decode_pattern,
    parse_comparison,
    parse_int,
    parse_operand,
    split_commas,
    split_negation,
)
from rules import ast

#: Snort 2 / Suricata options that modify the content before them.
CONTENT_MODIFIERS = frozenset(
    {
        "nocase",
        "rawbytes",
        "depth",
        "offset",
        "distance",
        "within",
        "fast_pattern",
        "startswith",
        "endswith",
    }
)

_PCRE_FLAGS = frozenset("ismxAEGRBOKLN") | frozenset(PCRE_BUFFER_FLAGS)


def _set(pending: PendingContent, key: str, value: object) -> None:
    old = pending.fields.get(key)
    if old is not None and old is not False and old != value:
        raise Decline(f"content modifier '{key}' given twice with different values")
    pending.fields[key] = value


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def _split_pattern(text: str) -> tuple[str, str]:
    """(`"pattern"`, modifiers after the closing quote) of a content value."""
    found = _QUOTED.match(text)
    if found is None:
        if not text.startswith('"'):
            raise Decline(f"content pattern must be quoted, got {text[:40]!r}")
        raise Decline("content pattern has no closing quote")
    end = found.end()
    if end == len(text):
        return text, ""
    rest = text[end:].strip()
    if rest and not rest.startswith(","):
        raise Decline(f"unexpected {rest[:20]!r} after the content pattern")
    return text[:end], rest[1:]


def _apply_modifier(pending: PendingContent, name: str, value: str | None) -> None:
    if name in ("nocase", "rawbytes", "startswith", "endswith"):
        if value:
            raise Decline(f"'{name}' takes no value")
        pending.fields[name] = True
    elif name in ("depth", "offset", "distance", "within"):
        if value is None:
            raise Decline(f"'{name}' needs a value")
        _set(pending, name, parse_operand(value, name))
    elif name == "fast_pattern":
        _set(pending, "fast_pattern", _fast_pattern(value))
    elif name == "fast_pattern_only":
        _set(pending, "fast_pattern", ast.FastPattern(only=True))
    elif name in ("fast_pattern_offset", "fast_pattern_length"):
        if value is None:
            raise Decline(f"'{name}' needs a value")
        old = pending.fields.get("fast_pattern")
        current = old if isinstance(old, ast.FastPattern) else ast.FastPattern()
        number = parse_int(value, name)
        if name == "fast_pattern_offset":
            current = ast.FastPattern(current.only, number, current.length)
        else:
            current = ast.FastPattern(current.only, current.offset, number)
        pending.fields["fast_pattern"] = current
    else:
        raise Decline(f"unknown content modifier '{name}'")


def _fast_pattern(value: str | None) -> ast.FastPattern:
    if value is None or not value.strip():
        return ast.FastPattern()
    if value.strip() == "only":
        return ast.FastPattern(only=True)
    parts = split_commas(value)
    if len(parts) != 2:
        raise Decline(f"fast_pattern takes 'only' or 'offset,length', got {value!r}")
    return ast.FastPattern(
        offset=parse_int(parts[0], "offset"), length=parse_int(parts[1], "length")
    )


class ContentOption:
    """`content` (both Snort 2 and Snort 3 spellings) and Snort 2 `uricontent`."""

    names = frozenset({"content", "uricontent"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        if option.value is None:
            raise Decline("content needs a pattern")
        negated, text = split_negation(option.value)
        pattern_text, modifiers = _split_pattern(text)
        pending = PendingContent({"pattern": decode_pattern(pattern_text), "negated": negated})
        if option.name == "uricontent":
            pending.buffer = ast.Buffer("http.uri")
        if modifiers:
            for part in split_commas(modifiers):
                name, _, value = part.partition(" ")
                _apply_modifier(pending, name, value.strip() or None)
        rule.start_content(pending)


class ContentModifier:
    """Snort 2 / Suricata modifiers written as their own options after `content`."""

    names = CONTENT_MODIFIERS

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        _apply_modifier(rule.last_content(), option.name, option.value)


#: Suricata `file.data:DIRECTION` on an HTTP rule: the body of that direction's message.
_HTTP_BODIES = {"to_client": "http.response_body", "to_server": "http.request_body"}


class BufferOption:
    """Buffer selection: sticky buffers, and Snort 2 / Suricata HTTP content modifiers."""

    names = frozenset(MODIFIER_BUFFERS) | frozenset(STICKY_BUFFERS)

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        name = option.name
        if name in MODIFIER_BUFFERS and option.value is None and is_content_modifier(option, rule):
            pending = rule.pending
            assert pending is not None  # is_content_modifier checked it
            buffer = ast.Buffer(MODIFIER_BUFFERS[name])
            if pending.buffer is not None and pending.buffer != buffer:
                raise Decline(f"content already restricted to {pending.buffer.name}")
            pending.buffer = buffer
            return
        direction = (option.value or "").strip()
        if name in ("file_data", "file.data") and rule.protocol == "http" and direction:
            # Suricata `file.data:to_client` on an HTTP rule: the response's body
            body = _HTTP_BODIES.get(direction)
            if body is None:
                raise Decline(f"'{name}:{option.value}' selects a part Shrike has no buffer for")
            rule.set_sticky(ast.Buffer(body))
            return
        if option.value is not None:
            if name != "http_header":
                raise Decline(f"'{name}:{option.value}' selects a part Shrike has no buffer for")
            kind, _, header = option.value.partition(" ")
            mapped = HEADER_FIELDS.get(header.strip().lower())
            if kind != "field" or mapped is None:
                raise Decline(f"no Shrike buffer for http_header:{option.value}")
            rule.set_sticky(ast.Buffer(mapped))
            return
        rule.set_sticky(ast.Buffer(MODIFIER_BUFFERS.get(name) or STICKY_BUFFERS[name]))


def is_content_modifier(option: RawOption, rule: RuleBuilder) -> bool:
    """True when `option` modifies the pending content rather than starting something new."""
    if option.name in CONTENT_MODIFIERS:
        return True
    return (
        rule.flavor == "snort2"
        and option.name in MODIFIER_BUFFERS
        and option.value is None
        and rule.pending is not None
    )


class Transform:
    """Suricata transforms (`dotprefix;`, `to_lowercase;`) on the sticky buffer."""

    names = TRANSFORMS

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        if option.value is not None:
            raise Decline(f"transform '{option.name}' takes no value here")
        rule.add_transform(option.name)


class Pcre:
    names = frozenset({"pcre"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        if option.value is None:
            raise Decline("pcre needs a pattern")
        negated, text = split_negation(option.value)
        # Suricata also reads the pattern without quotes: `pcre:/a.b/U;`
        quoted = len(text) >= 2 and text[0] == '"' and text[-1] == '"'
        body = text[1:-1] if quoted else text
        if len(body) < 2 or body[0] != "/":
            raise Decline('pcre must read "/pattern/flags"')
        end = body.rfind("/")
        if end <= 0:
            raise Decline("pcre pattern has no closing '/'")
        pattern, flags = body[1:end], body[end + 1 :]
        if not pattern:
            raise Decline("empty pcre pattern")
        unknown = set(flags) - _PCRE_FLAGS
        if unknown:
            raise Decline(f"unknown pcre flag(s) {''.join(sorted(unknown))}")
        buffers = [PCRE_BUFFER_FLAGS[f] for f in flags if f in PCRE_BUFFER_FLAGS]
        if len(set(buffers)) > 1:
            raise Decline(f"pcre flags name several buffers: {flags}")
        kept = "".join(f for f in flags if f not in PCRE_BUFFER_FLAGS)
        regex = ast.Regex(_escape_slashes(pattern), kept, negated)
        if buffers:
            rule.add_item(regex, ast.Buffer(buffers[0]))
        else:
            rule.add_relative_item(regex, "R" in kept)


def _escape_slashes(pattern: str) -> str:
    """Escape bare `/` (PCRE reads `\\/` as `/`) so the pattern sits between slashes."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append("\\/" if ch == "/" else ch)
        i += 1
    return "".join(out)


_ENDIANS = {"big": "big", "little": "little", "dce": "dce"}
_BASES = ("hex", "dec", "oct")


class _ByteFlags:
    """Trailing flags shared by byte_test, byte_jump and byte_extract."""

    def __init__(self, parts: list[str], allowed: frozenset[str]) -> None:
        self.values: dict[str, object] = {}
        string = False
        base: str | None = None
        for part in parts:
            word, _, arg = part.partition(" ")
            arg = arg.strip()
            if word not in allowed:
                raise Decline(f"unknown flag '{part}'")
            if word == "relative":
                self.values["relative"] = True
            elif word in _ENDIANS:
                self._put("endian", _ENDIANS[word])
            elif word == "endian":
                if arg not in _ENDIANS:
                    raise Decline(f"unknown endian '{arg}'")
                self._put("endian", arg)
            elif word == "string":
                string = True
                if arg:
                    if arg not in _BASES:
                        raise Decline(f"unknown string base '{arg}'")
                    base = arg
            elif word in _BASES:
                base = word
            elif word == "bitmask":
                self._put("bitmask", parse_int(arg, "bitmask"))
            elif word in ("multiplier",):
                self._put("multiplier", parse_int(arg, word))
            elif word == "post_offset":
                self._put("post_offset", parse_operand(arg, word))
            elif word == "align":
                self._put("align", parse_int(arg, word) if arg else True)
            elif word in ("from_beginning", "from_end"):
                self._put(word, True)
            else:
                raise Decline(f"unknown flag '{part}'")
        if string or base is not None:
            self.values["string"] = base or "dec"

    def _put(self, key: str, value: object) -> None:
        if key in self.values and self.values[key] != value:
            raise Decline(f"'{key}' given twice")
        self.values[key] = value


_COMMON = frozenset(
    {"relative", "big", "little", "dce", "endian", "string", "hex", "dec", "oct", "bitmask"}
)


class ByteTest:
    names = frozenset({"byte_test"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        parts = split_commas(option.value or "")
        if len(parts) < 4:
            raise Decline("byte_test needs bytes, operator, value, offset")
        negated, operator = split_negation(parts[1])
        operator = {"=": "==", "!=": "=="}.get(operator, operator)
        if parts[1].strip() == "!=":
            negated = True
        if operator not in ("<", ">", "<=", ">=", "==", "&", "^"):
            raise Decline(f"unknown byte_test operator '{parts[1]}'")
        flags = _ByteFlags(parts[4:], _COMMON).values
        node = ast.ByteTest(
            bytes=parse_operand(parts[0], "bytes"),  # Suricata: or an extracted name
            operator=operator,
            value=parse_operand(parts[2], "value"),
            offset=parse_operand(parts[3], "offset"),
            negated=negated,
            **flags,  # type: ignore[arg-type]
        )
        rule.add_relative_item(node, node.relative)


class ByteJump:
    names = frozenset({"byte_jump"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        parts = split_commas(option.value or "")
        if len(parts) < 2:
            raise Decline("byte_jump needs bytes and offset")
        allowed = _COMMON | {"multiplier", "align", "from_beginning", "from_end", "post_offset"}
        flags = _ByteFlags(parts[2:], allowed).values
        if flags.get("align") not in (None, True):
            raise Decline("byte_jump align takes no value")
        node = ast.ByteJump(
            bytes=parse_operand(parts[0], "bytes"),
            offset=parse_operand(parts[1], "offset"),
            **flags,  # type: ignore[arg-type]
        )
        rule.add_relative_item(node, node.relative)


class ByteExtract:
    names = frozenset({"byte_extract"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        parts = split_commas(option.value or "")
        if len(parts) < 3:
            raise Decline("byte_extract needs bytes, offset and a name")
        flags = _ByteFlags(parts[3:], _COMMON | {"multiplier", "align"}).values
        if flags.get("align") is True:
            raise Decline("byte_extract align needs a value")
        name = parts[2].strip()
        if not VARIABLE_NAME.match(name):
            raise Decline(f"byte_extract name {name!r} is not a name")
        node = ast.ByteExtract(
            bytes=parse_int(parts[0], "bytes"),
            offset=parse_operand(parts[1], "offset"),
            name=name,
            **flags,  # type: ignore[arg-type]
        )
        rule.add_relative_item(node, node.relative)


class ByteMath:
    names = frozenset({"byte_math"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        keyed: dict[str, str] = {}
        flags: list[str] = []
        for part in split_commas(option.value or ""):
            word, _, arg = part.partition(" ")
            if word in ("bytes", "offset", "oper", "rvalue", "result"):
                keyed[word] = arg.strip()
            else:
                flags.append(part)
        missing = {"bytes", "offset", "oper", "rvalue", "result"} - set(keyed)
        if missing:
            raise Decline(f"byte_math lacks {', '.join(sorted(missing))}")
        if not VARIABLE_NAME.match(keyed["result"]):
            raise Decline(f"byte_math result {keyed['result']!r} is not a name")
        if keyed["oper"] not in ("+", "-", "*", "/", "<<", ">>"):
            raise Decline(f"unknown byte_math operator '{keyed['oper']}'")
        values = _ByteFlags(flags, _COMMON).values
        node = ast.ByteMath(
            bytes=parse_operand(keyed["bytes"], "bytes"),
            offset=parse_operand(keyed["offset"], "offset"),
            operator=keyed["oper"],
            rvalue=parse_operand(keyed["rvalue"], "rvalue"),
            result=keyed["result"],
            **values,  # type: ignore[arg-type]
        )
        rule.add_relative_item(node, node.relative)


class IsDataAt:
    names = frozenset({"isdataat"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        parts = split_commas(option.value or "")
        negated, first = split_negation(parts[0])
        relative = rawbytes = False
        for part in parts[1:]:
            if part == "relative":
                relative = True
            elif part == "rawbytes":
                rawbytes = True
            else:
                raise Decline(f"unknown isdataat flag '{part}'")
        node = ast.IsDataAt(parse_operand(first, "offset"), relative, negated, rawbytes)
        rule.add_relative_item(node, relative)


class Base64Decode:
    names = frozenset({"base64_decode"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        values: dict[str, object] = {}
        for part in split_commas(option.value or "") if option.value else []:
            word, _, arg = part.partition(" ")
            if word in ("bytes", "offset"):
                values[word] = parse_int(arg, word)
            elif word == "relative" and not arg:
                values["relative"] = True
            else:
                raise Decline(f"unknown base64_decode argument '{part}'")
        node = ast.Base64Decode(**values)  # type: ignore[arg-type]
        rule.add_relative_item(node, node.relative)


class BufferLength:
    """Suricata `bsize` and Snort 3 `bufferlen`: the sticky buffer's length."""

    names = frozenset({"bsize", "bufferlen"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        if option.value is None:
            raise Decline(f"{option.name} needs a value")
        operator, value = parse_comparison(option.value, option.name)
        if operator == "!=":
            raise Decline(f"{option.name} cannot be negated in Shrike")
        rule.add_item(ast.BufferSize(operator, value))


class Absent:
    """Suricata `absent` / `absent:or_else` right after a sticky buffer: the packet
    has no such buffer (or else the matchers that follow hold)."""

    names = frozenset({"absent"})

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        mode = (option.value or "").strip()
        if mode not in ("", "or_else"):
            raise Decline(f"cannot read absent {option.value!r}")
        buffer = rule.sticky
        if buffer is None or not buffer.name.startswith("http.") or buffer.transforms:
            raise Decline("absent is read on HTTP buffers only")
        if (rule.open is not None and rule.open.buffer == buffer and rule.open.items) or (
            rule.open is None and len(rule.entries) != rule.sticky_at
        ):
            raise Decline("absent must directly follow its sticky buffer")
        sequence = OpenSequence(buffer, absent="or_else" if mode else "only")
        rule.entries.append(sequence)
        rule.open = sequence if mode else None


_TLS_NAME_BUFFERS = {"tls.issuerdn": "tls.cert_issuer", "tls.subject": "tls.cert_subject"}


class TlsName:
    """Suricata's older `tls.issuerdn:"C=FR, CN=x"` / `tls.subject:!"CN=y"`: the
    certificate's issuer (subject) contains the text, as `tls.cert_issuer;
    content:"..."` does."""

    names = frozenset({"tls.issuerdn", "tls.subject"})
    _TEXT = re.compile(r'"([^"\\|]+)"|([^"\\|]+)')

    def translate(self, option: RawOption, rule: RuleBuilder) -> None:
        negated, text = split_negation(option.value or "")
        found = self._TEXT.fullmatch(text.strip())
        if found is None:
            raise Decline(f"cannot read {option.name} {option.value!r}")
        value = found.group(1) if found.group(1) is not None else found.group(2).strip()
        content = ast.Content(value.encode(), negated=negated)
        rule.add_condition(ast.Sequence(ast.Buffer(_TLS_NAME_BUFFERS[option.name]), (content,)))
        # what follows starts afresh on the sticky buffer, as after any other sequence
        rule.open = None
        rule.last = None


TRANSLATORS = (
    Absent(),
    TlsName(),
    ContentOption(),
    ContentModifier(),
    BufferOption(),
    Transform(),
    Pcre(),
    ByteTest(),
    ByteJump(),
    ByteExtract(),
    ByteMath(),
    IsDataAt(),
    Base64Decode(),
    BufferLength(),
)
