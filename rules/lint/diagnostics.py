"""What the linter reports: severities, check families, diagnostics and the report of one run."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field


class Severity(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def at_least(self, threshold: Severity) -> bool:
        return self.rank >= threshold.rank

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().lower())
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of {choices})") from None


class LintInputError(OSError):
    """A path given to the linter that does not exist or cannot be read (the tool fails, exit 2)."""


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class Family(enum.Enum):
    """Groups of checks; the value is the prefix of every code in the group."""

    SYNTAX = "SYN"
    SEMANTIC = "SEM"
    ATTACK = "ATK"
    PERFORMANCE = "PRF"
    STYLE = "STY"

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding at one place. Positions are 1-based, columns count characters."""

    path: str
    line: int
    column: int
    code: str  # e.g. ATK001
    name: str  # e.g. unknown-technique
    severity: Severity
    message: str
    rule_id: str | None = None  # the `id` of the rule concerned, when there is one
    end_line: int | None = None
    end_column: int | None = None

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.line, self.column, self.code, self.message)


def sorted_diagnostics(diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """Stable order for every output: path, position, code, then message."""
    return tuple(sorted(diagnostics, key=Diagnostic.sort_key))


@dataclass(frozen=True)
class LintReport:
    """Everything one lint run found, in output order."""

    diagnostics: tuple[Diagnostic, ...]
    files_checked: tuple[str, ...] = ()
    rules_checked: int = 0
    notes: tuple[str, ...] = field(default=())  # e.g. checks skipped for a missing dependency

    def count(self, severity: Severity) -> int:
        return sum(1 for d in self.diagnostics if d.severity is severity)

    def worst_at_least(self, threshold: Severity) -> bool:
        return any(d.severity.at_least(threshold) for d in self.diagnostics)

    def files_with_findings(self) -> int:
        return len({d.path for d in self.diagnostics})
