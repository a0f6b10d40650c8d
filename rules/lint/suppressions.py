"""`# shrike: disable=CODE` comments: which diagnostics the rule author has chosen to silence."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# `disable` applies to the rule right below the comment block; `disable-file` to the whole file.
DIRECTIVE_PATTERN = re.compile(
    r"#\s*shrike:\s*(?P<kind>disable|disable-file)\s*=\s*(?P<selectors>[A-Za-z0-9_,\- ]+)"
)


@dataclass(frozen=True, slots=True)
class SuppressionDirective:
    line: int  # 1-based line of the comment
    column: int  # 1-based column of the `#`
    file_wide: bool
    selectors: tuple[str, ...]


def find_directives(source_lines: Sequence[str]) -> tuple[SuppressionDirective, ...]:
    found = []
    for index, text in enumerate(source_lines):
        if "shrike:" not in text:
            continue
        match = DIRECTIVE_PATTERN.search(text)
        if match is None:
            continue
        selectors = tuple(s.strip() for s in match.group("selectors").split(",") if s.strip())
        found.append(
            SuppressionDirective(
                line=index + 1,
                column=match.start() + 1,
                file_wide=match.group("kind") == "disable-file",
                selectors=selectors,
            )
        )
    return tuple(found)


def directives_above(
    source_lines: Sequence[str], rule_line: int, directives: Sequence[SuppressionDirective]
) -> tuple[SuppressionDirective, ...]:
    """Rule-level directives in the unbroken run of comment lines right above `rule_line`."""
    by_line = {d.line: d for d in directives if not d.file_wide}
    attached = []
    line = rule_line - 1
    while line >= 1 and source_lines[line - 1].lstrip().startswith("#"):
        if line in by_line:
            attached.append(by_line[line])
        line -= 1
    return tuple(attached)
