"""The import report: per rule file, how many rules were read, imported, disabled, lost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from integrations.snort.errors import Diagnostic
from rules import ast


@dataclass(slots=True)
class FileReport:
    """Counts for one input file.

    `rules` counts every rule read, enabled and commented-out alike;
    `imported` those whose detection meaning is fully represented;
    `disabled` those kept disabled because something could not be
    represented; `lost` rules read but missing from the output (always 0
    unless something is badly wrong).  `unsupported` counts, per option name,
    the rules it made disabled.
    """

    file: str
    rules: int = 0
    imported: int = 0
    disabled: int = 0
    commented: int = 0
    written: int = 0
    unsupported: Counter[str] = field(default_factory=Counter)

    @property
    def lost(self) -> int:
        return self.rules - self.written

    def add(self, rule: ast.Rule, commented: bool, diagnostics: Sequence[Diagnostic]) -> None:
        self.rules += 1
        self.written += 1
        if commented:
            self.commented += 1
        if diagnostics:
            self.disabled += 1
            for name in sorted({d.option for d in diagnostics}):
                self.unsupported[name] += 1
        else:
            self.imported += 1

    def note_kept_verbatim(self, was_imported: bool) -> None:
        """A rule the rule language could not spell was replaced by its verbatim text."""
        if was_imported:
            self.imported -= 1
            self.disabled += 1
        self.unsupported["rule"] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rules": self.rules,
            "imported": self.imported,
            "disabled": self.disabled,
            "lost": self.lost,
            "commented_out": self.commented,
            "unsupported": dict(self.unsupported.most_common()),
        }


def merge(name: str, reports: Iterable[FileReport]) -> FileReport:
    """One report summing several (a ruleset made of many files)."""
    total = FileReport(name)
    for report in reports:
        total.rules += report.rules
        total.imported += report.imported
        total.disabled += report.disabled
        total.commented += report.commented
        total.written += report.written
        total.unsupported.update(report.unsupported)
    return total


def format_table(reports: Sequence[FileReport], top: int = 8) -> str:
    """A text table: one line per report, then the most frequent unsupported options."""
    header = f"{'file':<48} {'rules':>7} {'imported':>9} {'full %':>7} {'disabled':>9} {'lost':>5}"
    lines = [header, "-" * len(header)]
    for report in reports:
        share = 100.0 * report.imported / report.rules if report.rules else 100.0
        lines.append(
            f"{_short(report.file):<48} {report.rules:>7} {report.imported:>9} "
            f"{share:>6.2f}% {report.disabled:>9} {report.lost:>5}"
        )
        common = report.unsupported.most_common(top)
        if common:
            lines.append(
                "    unsupported: " + ", ".join(f"{name} {count}" for name, count in common)
            )
    return "\n".join(lines) + "\n"


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3) :]
