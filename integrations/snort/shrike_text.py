"""Imported rules as `.shrike` text that is checked to parse back to the same rules.

A rule whose printed text does not parse back to an equal AST (a construct
the rule language cannot spell yet) is replaced by a disabled rule that keeps
the original Snort text verbatim, with a diagnostic, so the output file always
parses and no rule is lost.
"""

from __future__ import annotations

from collections.abc import Sequence

import rules
from integrations.snort.errors import Diagnostic, Location
from rules import ast
from rules.formatter import format_statements


def kept_verbatim(rule: ast.Rule, snort_text: str) -> ast.Rule:
    """A disabled stand-in for `rule` holding its Snort text."""
    return ast.Rule(
        title=rule.title,
        id=rule.id,
        header=ast.Header("ip"),
        rev=rule.rev,
        gid=rule.gid,
        enabled=False,
        options=(ast.OpaqueOption("snort_rule", snort_text),),
        span=rule.span,
    )


def shrike_text(
    imported: Sequence[ast.Rule], snort_texts: Sequence[str], path: str = "<generated>"
) -> tuple[str, list[ast.Rule], list[Diagnostic]]:
    """The `.shrike` text of `imported`, the rules it holds, and diagnostics for
    the rules that had to be kept verbatim."""
    chunks = [format_statements([rule]) for rule in imported]
    starts: list[int] = []
    line = 1
    for chunk in chunks:
        starts.append(line)
        line += chunk.count("\n") + 1
    text = "\n".join(chunks)
    result = rules.parse_collecting(text, path)
    failed: dict[int, str] = {}
    for error in result.errors:
        index = _chunk_of(starts, error.span.line)
        failed.setdefault(index, str(error))
    parsed = {_chunk_of(starts, back.span.line): back for back in result.file.rules}
    final: list[ast.Rule] = []
    diagnostics: list[Diagnostic] = []
    for index, rule in enumerate(imported):
        if index not in failed:
            if parsed.get(index) == rule:
                final.append(rule)
                continue
            failed[index] = "printed rule reads back differently"
        final.append(kept_verbatim(rule, snort_texts[index]))
        span = rule.span
        diagnostics.append(
            Diagnostic(
                Location(span.file, span.line, span.column),
                rule.id,
                "rule",
                f"the rule language cannot spell this rule yet ({failed[index]}); kept verbatim",
            )
        )
    if diagnostics:
        text = "\n".join(format_statements([rule]) for rule in final)
    return text, final, diagnostics


def _chunk_of(starts: list[int], line: int) -> int:
    low, high = 0, len(starts) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if starts[middle] <= line:
            low = middle
        else:
            high = middle - 1
    return low
