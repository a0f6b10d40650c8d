"""Evaluating one `Sequence` of payload matchers on one buffer with Snort/Suricata semantics.

Relative matchers (`distance`, `within`, `relative`) are measured from a cursor
(the end of the previous match). When a later matcher fails, an earlier content or
pcre is retried at its next occurrence, as Snort and Suricata do, within a budget
of retries so that hostile payloads cannot make a rule run away.
"""

from __future__ import annotations

import base64
import binascii
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rules import ast

#: Retries allowed per sequence evaluation (Snort's default pcre/backtrack limits are similar).
BACKTRACK_BUDGET = 1024

#: Suricata/Snort pcre flags that name the buffer a pcre inspects.
PCRE_BUFFER_FLAGS = {
    "U": "http.uri",
    "I": "http.uri.raw",
    "P": "http.request_body",
    "Q": "file_data",
    "H": "http.header",
    "D": "http.header.raw",
    "M": "http.method",
    "C": "http.cookie",
    "S": "http.stat_code",
    "Y": "http.stat_msg",
    "V": "http.user_agent",
    "W": "http.host",
    "Z": "http.host.raw",
}


class PayloadRuleError(ValueError):
    """A sequence item that cannot be compiled (a pcre Python cannot run, a bad operand)."""


@dataclass(slots=True)
class Scratch:
    """Per-evaluation values: `byte_extract`/`byte_math` results and decoded base64."""

    variables: dict[str, int] = field(default_factory=dict)
    base64: bytes | None = None
    budget: int = BACKTRACK_BUDGET

    # written out, not generated: see `engine.events.FlowKey` (one per evaluation)
    def __init__(
        self,
        variables: dict[str, int] | None = None,
        base64: bytes | None = None,
        budget: int = BACKTRACK_BUDGET,
    ) -> None:
        self.variables = {} if variables is None else variables
        self.base64 = base64
        self.budget = budget


def _read_field(
    step: ast.ByteTest | ast.ByteJump | ast.ByteMath, buf: bytes, cursor: int, scratch: Scratch
) -> tuple[int, int, int] | None:
    """The number byte_test, byte_jump and byte_math read: (position, byte count, value
    after the bitmask), or None when an operand is unset or the bytes are not there."""
    offset = _operand(step.offset, scratch)
    nbytes = _operand(step.bytes, scratch)
    if offset is None or nbytes is None:
        return None
    pos = (cursor if step.relative else 0) + offset
    got = _read_counted(buf, pos, nbytes, step.endian, step.string)
    if got is None:
        return None
    return pos, nbytes, _apply_bitmask(got, step.bitmask)


def _read_counted(
    buf: bytes, pos: int, nbytes: int, endian: str | None, string: str | None
) -> int | None:
    """`read_number`, where a byte count taken from an extracted value may be 0: Suricata
    then reads the value 0 (at a position inside the buffer) and moves on by 0 bytes."""
    if nbytes == 0:
        return 0 if 0 <= pos < len(buf) else None
    return read_number(buf, pos, nbytes, endian, string)


def _operand(value: ast.Operand | None, scratch: Scratch, default: int = 0) -> int | None:
    if value is None:
        return default
    if isinstance(value, int):
        return value
    return scratch.variables.get(value)


def translate_pcre(pattern: str, flags: str) -> re.Pattern[bytes]:
    """A Python bytes regex with the meaning of a PCRE `/pattern/flags`."""
    text = pattern
    # PCRE spellings Python's re lacks
    text = text.replace(r"\z", r"\Z")
    text = re.sub(r"\\x\{([0-9a-fA-F]{1,2})\}", lambda m: "\\x" + m.group(1).rjust(2, "0"), text)
    text = re.sub(r"\(\?<([A-Za-z_]\w*)>", r"(?P<\1>", text)
    text = re.sub(r"\(\?P?=([A-Za-z_]\w*)\)", r"(?P=\1)", text)
    text = _scope_inline_flags(text)
    re_flags = 0
    if "i" in flags:
        re_flags |= re.IGNORECASE
    if "s" in flags:
        re_flags |= re.DOTALL
    if "m" in flags:
        re_flags |= re.MULTILINE
    if "x" in flags:
        re_flags |= re.VERBOSE
    try:
        with warnings.catch_warnings():
            # PCRE's `[[` is a plain bracket; Python warns it may mean a nested set one day
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(text.encode("latin-1"), re_flags)
    except (re.error, UnicodeEncodeError) as exc:
        raise PayloadRuleError(f"pcre /{pattern}/{flags} cannot be compiled: {exc}") from None


_INLINE_FLAGS = re.compile(r"\(\?([imsx]*-?[imsx]*)\)")


def _scope_inline_flags(text: str) -> str:
    """PCRE lets `(?i)` / `(?-i)` appear mid-pattern, changing the flags up to the end of
    the enclosing group; Python wants them scoped, so `a(?-i)b` becomes `a(?-i:b)`."""
    out: list[str] = []
    closers: list[int] = [0]  # per open group: scoped groups to close at its end
    i = 0
    in_class = False
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            if text[i + 1 : i + 2] == "]":
                out.append("]")
                i += 1
            i += 1
            continue
        m = _INLINE_FLAGS.match(text, i)
        if m and m.group(1) and (i > 0 or "-" in m.group(1)):
            out.append(f"(?{m.group(1)}:")
            closers[-1] += 1
            i = m.end()
            continue
        if ch == "(":
            closers.append(0)
        elif ch == ")" and len(closers) > 1:
            out.append(")" * closers.pop())
        elif ch == "|" and closers[-1]:
            # an alternative starts afresh with the group's flags
            out.append(")" * closers[-1])
            closers[-1] = 0
        out.append(ch)
        i += 1
    out.append(")" * closers[0])
    return "".join(out)


def read_number(
    buf: bytes, pos: int, nbytes: int, endian: str | None, string: str | None
) -> int | None:
    """The number stored at `buf[pos:pos+nbytes]`, or None when out of bounds or not a number."""
    if pos < 0 or nbytes <= 0 or pos + nbytes > len(buf):
        return None
    raw = buf[pos : pos + nbytes]
    if string is not None:
        base = {"hex": 16, "dec": 10, "oct": 8}.get(string, 10)
        text = raw.decode("latin-1")
        # Snort reads the leading digits (strtoul); no digit at all is a failure
        digits = ""
        allowed = _DIGITS[base]
        stripped = text.lstrip(" \t")
        for ch in stripped:
            if ch in allowed:
                digits += ch
            else:
                break
        if not digits:
            return None
        return int(digits, base)
    if endian in ("little", "dce"):
        return int.from_bytes(raw, "little")
    return int.from_bytes(raw, "big")


def _apply_bitmask(value: int, bitmask: int | None) -> int:
    if not bitmask:
        return value
    value &= bitmask
    shift = (bitmask & -bitmask).bit_length() - 1
    return value >> shift


_DIGITS = {16: "0123456789abcdefABCDEF", 10: "0123456789", 8: "01234567"}

#: byte_test and isdataat-style comparisons; written with operators only, so they apply
#: elementwise to numpy arrays too (the matcher's batch byte_test prefilter).
COMPARE: dict[str, Callable[[Any, int], Any]] = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "&": lambda a, b: (a & b) != 0,
    "^": lambda a, b: (a ^ b) != 0,
}

_MATH: dict[str, Callable[[int, int], int | None]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a // b if b else None,
    "<<": lambda a, b: (a << b) & 0xFFFFFFFF,
    ">>": lambda a, b: a >> b,
}


@dataclass(frozen=True, slots=True)
class CompiledContent:
    item: ast.Content
    needle: bytes  # lower-cased when nocase


@dataclass(frozen=True, slots=True)
class CompiledRegex:
    item: ast.Regex
    regex: re.Pattern[bytes]
    relative: bool
    anchored: bool  # PCRE `A`: the match must start where the search starts
    buffer: str | None  # a buffer named by the pcre flags, overriding the sequence's

    def find(self, target: bytes, begin: int, at: int | None = None) -> tuple[int, int] | None:
        """(start, end) of the first match in `target[begin:]` starting at `at` or later
        (default: `begin`), in `target` offsets.

        The search runs on the slice, as Snort and Suricata hand pcre the buffer from
        the cursor on, so `^` anchors at the cursor of a relative pcre. A later start
        is pcre's start offset into the same slice: there `^` no longer matches, so
        a retry after a later option failed does not anchor afresh at every byte."""
        hay = target[begin:] if begin else target
        if at is None or at <= begin:
            m = self.regex.match(hay) if self.anchored else self.regex.search(hay)
        else:
            m = self.regex.search(hay, at - begin)
        if m is None:
            return None
        return begin + m.start(), begin + m.end()


Step = CompiledContent | CompiledRegex | ast.SequenceItem


def compile_items(items: tuple[ast.SequenceItem, ...]) -> tuple[Step, ...]:
    """Prepare a sequence's items: needles lowered for nocase, pcres compiled."""
    out: list[Step] = []
    for item in items:
        if isinstance(item, ast.Content):
            needle = item.pattern.lower() if item.nocase else item.pattern
            out.append(CompiledContent(item, needle))
        elif isinstance(item, ast.Regex):
            buffer = next(
                (PCRE_BUFFER_FLAGS[f] for f in item.flags if f in PCRE_BUFFER_FLAGS), None
            )
            out.append(
                CompiledRegex(
                    item,
                    translate_pcre(item.pattern, item.flags),
                    "R" in item.flags,
                    "A" in item.flags,
                    buffer,
                )
            )
        else:
            out.append(item)
    return tuple(out)


class BufferView:
    """A buffer and its lower-cased copy, made on first need."""

    __slots__ = ("_lower", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._lower: bytes | None = None

    @property
    def lower(self) -> bytes:
        if self._lower is None:
            self._lower = self.data.lower()
        return self._lower


def match_sequence(
    steps: tuple[Step, ...],
    view: BufferView,
    scratch: Scratch,
    other_buffer: Callable[[str], bytes | None] | None = None,
) -> bool:
    """Whether every step holds on `view`, with backtracking over earlier matches."""
    return _run(steps, 0, view, 0, scratch, other_buffer)


def _is_relative(step: Step) -> bool:
    if isinstance(step, CompiledContent):
        return step.item.distance is not None or step.item.within is not None
    if isinstance(step, CompiledRegex):
        return step.relative
    if isinstance(step, ast.ByteTest | ast.ByteJump | ast.ByteExtract | ast.ByteMath):
        return step.relative
    if isinstance(step, ast.IsDataAt | ast.Base64Decode):
        return step.relative
    return False


def _later_relative(steps: tuple[Step, ...], i: int) -> bool:
    """Whether a step after i depends on the cursor (so retrying step i can change the outcome)."""
    return any(_is_relative(s) for s in steps[i + 1 :])


def _content_window(
    item: ast.Content, cursor: int, size: int, scratch: Scratch
) -> tuple[int, int] | None:
    """[start, end) in which the content must lie, or None when an operand is unknown."""
    start = 0
    end = size
    relative = item.distance is not None or item.within is not None
    if relative:
        distance = _operand(item.distance, scratch)
        if distance is None:
            return None
        start = cursor + distance
        if item.within is not None:
            within = _operand(item.within, scratch)
            if within is None:
                return None
            end = min(end, start + within)
        start = max(start, 0)
    else:
        offset = _operand(item.offset, scratch)
        if offset is None:
            return None
        start = max(offset, 0)
        if item.depth is not None:
            depth = _operand(item.depth, scratch)
            if depth is None:
                return None
            end = min(end, start + depth)
    if item.startswith:
        end = min(end, start + len(item.pattern))
    return start, end


def _run(
    steps: tuple[Step, ...],
    i: int,
    view: BufferView,
    cursor: int,
    scratch: Scratch,
    other: Callable[[str], bytes | None] | None,
) -> bool:
    buf = view.data
    size = len(buf)
    while i < len(steps):
        step = steps[i]
        if isinstance(step, CompiledContent):
            item = step.item
            window = _content_window(item, cursor, size, scratch)
            if window is None:
                return False
            start, end = window
            hay = view.lower if item.nocase else buf
            needle = step.needle
            if item.negated:
                if item.endswith:
                    found = end == size and size - len(needle) >= start and hay.endswith(needle)
                else:
                    found = hay.find(needle, start, end) >= 0
                if found:
                    return False
                i += 1
                continue
            if item.endswith:
                pos = size - len(needle)
                if pos < start or size > end or hay[pos:] != needle:
                    return False
                cursor = size
                i += 1
                continue
            pos = hay.find(needle, start, end)
            if pos < 0:
                return False
            if not _later_relative(steps, i):
                cursor = pos + len(needle)
                i += 1
                continue
            while pos >= 0:
                saved = dict(scratch.variables), scratch.base64
                if _run(steps, i + 1, view, pos + len(needle), scratch, other):
                    return True
                scratch.variables, scratch.base64 = dict(saved[0]), saved[1]
                scratch.budget -= 1
                if scratch.budget <= 0:
                    return False
                pos = hay.find(needle, pos + 1, end)
            return False
        if isinstance(step, CompiledRegex):
            target = buf
            relative = step.relative
            if step.buffer is not None and other is not None:
                other_buf = other(step.buffer)
                if other_buf is None:
                    return step.item.negated
                target = other_buf
                relative = False
            begin = cursor if relative else 0
            if begin > len(target):
                return step.item.negated
            m = step.find(target, begin)
            if step.item.negated:
                if m is not None:
                    return False
                i += 1
                continue
            if m is None:
                return False
            if target is not buf or not _later_relative(steps, i):
                if target is buf:
                    cursor = m[1]
                i += 1
                continue
            while m is not None:
                saved = dict(scratch.variables), scratch.base64
                if _run(steps, i + 1, view, m[1], scratch, other):
                    return True
                scratch.variables, scratch.base64 = dict(saved[0]), saved[1]
                scratch.budget -= 1
                if scratch.budget <= 0:
                    return False
                m = None if step.anchored else step.find(target, begin, m[0] + 1)
            return False
        if isinstance(step, ast.ByteTest):
            value = _operand(step.value, scratch)
            read = _read_field(step, buf, cursor, scratch)
            if value is None or read is None:
                return False
            got = read[2]
            result = COMPARE[step.operator](got, value)
            if result == step.negated:
                return False
        elif isinstance(step, ast.ByteJump):
            read = _read_field(step, buf, cursor, scratch)
            if read is None:
                return False
            pos, nbytes, got = read
            if step.multiplier:
                got *= step.multiplier
            if step.align and got % 4:
                got += 4 - got % 4
            if step.from_beginning:
                base = 0
            elif step.from_end:
                base = size
            else:
                base = pos + nbytes
            post = _operand(step.post_offset, scratch) or 0
            new = base + got + post
            if new < 0 or new > size:
                return False
            cursor = new
        elif isinstance(step, ast.ByteExtract):
            offset = _operand(step.offset, scratch)
            if offset is None:
                return False
            pos = (cursor if step.relative else 0) + offset
            number = read_number(buf, pos, step.bytes, step.endian, step.string)
            if number is None:
                return False
            extracted = _apply_bitmask(number, step.bitmask)
            if step.multiplier:
                extracted *= step.multiplier
            if step.align and extracted % step.align:
                extracted += step.align - extracted % step.align
            scratch.variables[step.name] = extracted
            cursor = pos + step.bytes
        elif isinstance(step, ast.ByteMath):
            rvalue = _operand(step.rvalue, scratch)
            read = _read_field(step, buf, cursor, scratch)
            if rvalue is None or read is None:
                return False
            math_result = _MATH[step.operator](read[2], rvalue)
            if math_result is None:
                return False
            scratch.variables[step.result] = math_result
        elif isinstance(step, ast.IsDataAt):
            offset = _operand(step.offset, scratch)
            if offset is None:
                return False
            present = cursor + offset < size if step.relative else offset < size
            if present == step.negated:
                return False
        elif isinstance(step, ast.Base64Decode):
            begin = (cursor if step.relative else 0) + (step.offset or 0)
            chunk = buf[begin:] if step.bytes is None else buf[begin : begin + step.bytes]
            scratch.base64 = decode_base64(chunk)
        elif isinstance(step, ast.BufferSize) and not _size_ok(step, size):
            return False
        # OpaqueOption: kept, not evaluated
        i += 1
    return True


def _size_ok(step: ast.BufferSize, size: int) -> bool:
    if isinstance(step.value, ast.Range):
        lo, hi = step.value.low, step.value.high
        return lo <= size <= hi if step.value.inclusive else lo < size < hi
    return COMPARE[step.operator](size, step.value)


def decode_base64(data: bytes) -> bytes:
    """Decode as much base64 as `data` holds, ignoring what follows (Snort's base64_decode)."""
    m = re.match(rb"[\sA-Za-z0-9+/]*=*", data)
    text = re.sub(rb"\s", b"", m.group(0) if m else b"").rstrip(b"=")
    text = text[: len(text) - len(text) % 4] if len(text) % 4 == 1 else text
    pad = b"=" * (-len(text) % 4)
    try:
        return base64.b64decode(text + pad)
    except (binascii.Error, ValueError):
        return b""
