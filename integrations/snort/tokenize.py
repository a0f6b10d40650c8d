"""Split Snort/Suricata rule files into rules, headers and options, keeping line and column.

Handles `\\` line continuations, commented-out rules (`# alert ...`, kept as
disabled rules) and quoted option values holding `;`.  Knows nothing about
what options mean; see `integrations.snort.translate` for that.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from integrations.snort.errors import Location, SnortError

#: Rule actions of Snort 2, Snort 3 and Suricata.
RULE_ACTIONS = frozenset(
    {
        "alert",
        "log",
        "pass",
        "drop",
        "reject",
        "sdrop",
        "rejectsrc",
        "rejectdst",
        "rejectboth",
        "block",
        "rewrite",
        "react",
        "activate",
        "dynamic",
    }
)

_RULE_START = re.compile(r"([A-Za-z]+)\s+\S")
_OPTION_NAME = re.compile(r"\s*([A-Za-z0-9_.\-]+)\s*")


class RawOption(NamedTuple):
    """One `name[:value];` option; `value` is None for a flag (`nocase;`) and is
    stripped of surrounding blanks.  `location` points at the option name."""

    name: str
    value: str | None
    location: Location


@dataclass(frozen=True, slots=True)
class RawRule:
    """One rule as text: action, header words, options, and where it was read.

    `commented` is True for a rule written after `#` (disabled in Snort).
    `header` holds the words between the action and `(`: protocol, then
    source, source ports, direction, destination, destination ports (Snort 3
    service rules may give the protocol alone).
    """

    action: str
    header: tuple[str, ...]
    options: tuple[RawOption, ...]
    location: Location
    commented: bool
    text: str

    @property
    def sid(self) -> int | None:
        for option in self.options:
            if option.name == "sid" and option.value is not None:
                try:
                    return int(option.value.strip())
                except ValueError:
                    return None
        return None


@dataclass(frozen=True, slots=True)
class _Logical:
    """A logical line: continuation lines joined, with the map back to the file."""

    text: str
    starts: tuple[tuple[int, int, int], ...]  # (offset in text, file line, file column)

    def locate(self, path: str, offset: int) -> Location:
        if len(self.starts) == 1:
            _, file_line, file_column = self.starts[0]
            return Location(path, file_line, file_column + offset)
        line, column = 0, 0
        for start, file_line, file_column in self.starts:
            if start > offset:
                break
            line, column = file_line, file_column + (offset - start)
        return Location(path, line, column)


def _logical_lines(text: str) -> Iterator[_Logical]:
    pending: list[str] = []
    starts: list[tuple[int, int, int]] = []
    size = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.rstrip()
        column = 1
        if pending:
            # A continuation line's leading blanks are layout; keep one space.
            body = stripped.lstrip()
            column += len(stripped) - len(body)
            stripped = body
        starts.append((size, number, column))
        if stripped.endswith("\\"):
            piece = stripped[:-1]
            pending.append(piece)
            size += len(piece)
            continue
        pending.append(stripped)
        yield _Logical("".join(pending), tuple(starts))
        pending, starts, size = [], [], 0
    if pending:
        yield _Logical("".join(pending), tuple(starts))


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A line that starts like a rule but cannot be split into header and options."""

    error: SnortError
    text: str
    commented: bool


def iter_rules(text: str, path: str = "<string>") -> Iterator[RawRule | Unreadable]:
    """Every rule in `text`, in order; a line that starts like a rule but cannot
    be split yields an `Unreadable` in its place (so nothing is silently dropped)."""
    for logical in _logical_lines(text):
        body = logical.text
        offset = len(body) - len(body.lstrip())
        commented = False
        if body.startswith("#", offset):
            commented = True
            offset += 1
            while offset < len(body) and body[offset] in "# \t":
                offset += 1
        head = _RULE_START.match(body, offset)
        if head is None or head.group(1) not in RULE_ACTIONS:
            continue
        if commented and not body.rstrip().endswith(")"):
            continue  # prose in a comment that happens to start with "alert"
        try:
            yield split_rule(body, offset, logical, path, commented)
        except SnortError as error:
            if commented:
                continue  # a comment that only resembles a rule
            yield Unreadable(error, body[offset:].rstrip(), commented)


def split_rule(
    body: str, offset: int, logical: _Logical, path: str, commented: bool = False
) -> RawRule:
    location = logical.locate(path, offset)
    open_paren = body.find("(", offset)
    if open_paren < 0:
        raise SnortError("rule has no option list '( ... )'", location)
    words = body[offset:open_paren].split()
    action = words[0]
    header = tuple(_join_brackets(words[1:]))
    if not header:
        raise SnortError("rule header names no protocol", location)
    close = body.rstrip()
    if not close.endswith(")"):
        raise SnortError("rule does not end with ')'", logical.locate(path, len(close)))
    options = tuple(_split_options(body, open_paren + 1, len(close) - 1, logical, path))
    return RawRule(action, header, options, location, commented, body[offset:].rstrip())


def _join_brackets(words: list[str]) -> list[str]:
    """Rejoin `[a, b]` lists that blanks split into several words."""
    if not any("[" in word for word in words):
        return words
    return list(_joined(words))


def _joined(words: list[str]) -> Iterator[str]:
    current: list[str] = []
    depth = 0
    for word in words:
        current.append(word)
        depth += word.count("[") - word.count("]")
        if depth <= 0:
            yield "".join(current)
            current, depth = [], 0
    if current:
        yield "".join(current)


#: One `name[:value];` option; the value may hold quoted text with `;` and escapes.
_OPTION = re.compile(  # possessive: a value is read one way only, and fast
    r'[\s;]*+([A-Za-z0-9_.\-]++)[ \t]*+(?:(:)((?:[^;"\\]++|\\.|"(?:[^"\\]++|\\.)*+")*+))?(?:;|\Z)'
)


def _split_options(
    body: str, start: int, end: int, logical: _Logical, path: str
) -> Iterator[RawOption]:
    i = start
    match = _OPTION.match
    single = len(logical.starts) == 1  # no continuation lines: columns are offsets
    _, line, column = logical.starts[0]
    while i < end:
        found = match(body, i, end)
        if found is None:
            if not body[i:end].strip(" \t;"):
                return
            option, i = _slow_option(body, i, end, logical, path)
            yield option
            continue
        name_start = found.start(1)
        where = (
            Location(path, line, column + name_start)
            if single
            else logical.locate(path, name_start)
        )
        value = found.group(3)
        yield RawOption(found.group(1), value.strip() if found.group(2) else None, where)
        i = found.end()


def _slow_option(
    body: str, i: int, end: int, logical: _Logical, path: str
) -> tuple[RawOption, int]:
    """One option the fast pattern did not match: an odd quote, or a syntax error."""
    while i < end and body[i] in " \t;":
        i += 1
    name_match = _OPTION_NAME.match(body, i, end)
    if name_match is None or not name_match.group(1):
        raise SnortError(
            f"expected an option name, found {body[i : i + 12]!r}", logical.locate(path, i)
        )
    name = name_match.group(1)
    where = logical.locate(path, name_match.start(1))
    j = name_match.end()
    if j >= end or body[j] == ";":
        return RawOption(name, None, where), j + 1
    if body[j] != ":":
        raise SnortError(f"expected ':' or ';' after option '{name}'", logical.locate(path, j))
    value_start = j + 1
    # An odd quote inside a pcre (`['"]`): Snort itself ends the value at `;`.
    found = _PLAIN_VALUE.match(body, value_start, end)
    j = found.end() if found is not None else value_start
    return RawOption(name, body[value_start:j].strip(), where), j + 1


#: A value read up to the first unescaped `;`, quotes or not.
_PLAIN_VALUE = re.compile(r"(?:[^;\\]|\\.)*")
