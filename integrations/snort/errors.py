"""Typed errors and diagnostics of the Snort integration, each with a location."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Location(NamedTuple):
    """Where something was read: file, 1-based line and column (0 when unknown).

    A named tuple rather than a dataclass: the tokenizer makes one per option."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


class SnortError(ValueError):
    """Bad Snort input: a rule, an alert record or a unified2 file, with its location."""

    def __init__(self, message: str, location: Location, sid: int | None = None) -> None:
        self.message = message
        self.location = location
        self.sid = sid
        where = f"{location}: " if location.file else ""
        rule = f" (sid {sid})" if sid is not None else ""
        super().__init__(f"{where}{message}{rule}")


class Decline(Exception):
    """A translator claimed an option but cannot represent this value."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """Something the importer could not carry over with full meaning.

    `option` is the Snort option concerned (`ssl_state`, `content`, ...), or
    `header`/`rule` for the rule as a whole.
    """

    location: Location
    sid: int | None
    option: str
    message: str

    def __str__(self) -> str:
        rule = f"sid {self.sid}: " if self.sid is not None else ""
        return f"{self.location}: {rule}{self.option}: {self.message}"
