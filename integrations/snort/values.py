"""Snort value syntax: quoted content patterns, comma lists, numbers and comparisons, both ways."""

from __future__ import annotations

import re

from integrations.snort.errors import Decline
from rules import ast

_HEX_BYTE = re.compile(r"[0-9A-Fa-f]{2}")
#: A `byte_extract`/`byte_math` variable (Emerging Threats uses dotted names: `Certs.len`).
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
#: Bytes written as themselves inside an exported pattern; the rest become |hex|.
_PLAIN = frozenset(range(0x20, 0x7F)) - set(b'"|;\\:')


def split_commas(text: str) -> list[str]:
    """Split on commas outside double quotes; parts are stripped."""
    if '"' not in text and "\\" not in text:
        return [part.strip() for part in text.split(",")]
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current).strip())
    return parts


def unquote(text: str) -> str:
    """The text of a `"..."` value with Snort escapes (`\\"`, `\\;`, `\\\\`) removed."""
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def quote_text(text: str) -> str:
    """`text` as a Snort quoted value (`msg`, `reference` ...)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace(";", "\\;")
    return f'"{escaped}"'


def split_negation(text: str) -> tuple[bool, str]:
    text = text.strip()
    if text.startswith("!"):
        return True, text[1:].strip()
    return False, text


def decode_pattern(text: str) -> bytes:
    """The bytes of a quoted content pattern: `"GET |0D 0A|\\"x\\""`."""
    text = text.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise Decline(f"content pattern must be quoted, got {text[:40]!r}")
    body = text[1:-1]
    if "|" not in body and "\\" not in body and body:
        return body.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    n = len(body)
    while i < n:
        ch = body[i]
        if ch == "|":
            close = body.find("|", i + 1)
            if close < 0:
                raise Decline("unterminated |hex| run in content")
            digits = "".join(body[i + 1 : close].split())
            if len(digits) % 2 or (
                digits and not all(_HEX_BYTE.match(digits, k) for k in range(0, len(digits), 2))
            ):
                raise Decline(f"bad hex bytes |{body[i + 1 : close]}| in content")
            out += bytes.fromhex(digits)
            i = close + 1
        elif ch == "\\" and i + 1 < n:
            out += body[i + 1].encode("utf-8", "surrogateescape")
            i += 2
        else:
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
    if not out:
        raise Decline("empty content pattern")
    return bytes(out)


def encode_pattern(data: bytes) -> str:
    """Bytes as a quoted Snort pattern: printable text, `|hex|` for the rest."""
    parts: list[str] = ['"']
    i = 0
    n = len(data)
    while i < n:
        if data[i] in _PLAIN:
            j = i
            while j < n and data[j] in _PLAIN:
                j += 1
            parts.append(data[i:j].decode("ascii"))
        else:
            j = i
            while j < n and data[j] not in _PLAIN:
                j += 1
            parts.append("|" + " ".join(f"{b:02X}" for b in data[i:j]) + "|")
        i = j
    parts.append('"')
    return "".join(parts)


def parse_int(text: str, what: str) -> int:
    text = text.strip()
    try:
        if text.lower().startswith(("0x", "-0x")):
            return int(text, 16)
        return int(text, 10)
    except ValueError:
        raise Decline(f"{what} must be a number, got {text!r}") from None


def parse_operand(text: str, what: str) -> ast.Operand:
    """A number, or the name of a `byte_extract`/`byte_math` variable."""
    text = text.strip()
    if VARIABLE_NAME.match(text):
        return text
    return parse_int(text, what)


_RANGE = re.compile(r"^\s*(-?\d+)\s*(<=>|<>|-)\s*(-?\d+)\s*$")
_COMPARE = re.compile(r"^\s*(<=|>=|!=|<|>|=|!)?\s*(-?(?:0[xX][0-9A-Fa-f]+|\d+))\s*$")
_OPEN_RANGE = re.compile(r"^\s*(\d+)?-(\d+)?\s*$")


def parse_comparison(text: str, what: str, dash_range: bool = False) -> tuple[str, int | ast.Range]:
    """`>5`, `!=3`, `7`, `1<>9`, `1<=>9` (and `1-9`, `-9`, `1-` when `dash_range`)
    as (operator, value); a range has operator `in`."""
    match = _RANGE.match(text)
    if match and (match.group(2) != "-" or dash_range):
        low, sep, high = int(match.group(1)), match.group(2), int(match.group(3))
        return "in", ast.Range(low, high, inclusive=sep != "<>")
    if dash_range:
        open_match = _OPEN_RANGE.match(text)
        if open_match and (open_match.group(1) or open_match.group(2)):
            if open_match.group(1) is None:
                return "<=", int(open_match.group(2))
            if open_match.group(2) is None:
                return ">=", int(open_match.group(1))
    match = _COMPARE.match(text)
    if match is None:
        raise Decline(f"cannot read {what} value {text.strip()!r}")
    op = match.group(1) or "=="
    op = {"=": "==", "!": "!="}.get(op, op)
    return op, parse_int(match.group(2), what)


def comparison_text(operator: str, value: object) -> str:
    """The Snort form of (operator, value) as read by `parse_comparison` (Snort 3 spelling)."""
    if isinstance(value, ast.Range):
        sep = "<=>" if value.inclusive else "<>"
        return f"{value.low}{sep}{value.high}"
    if operator == "==":
        return str(value)
    return f"{operator}{value}"
