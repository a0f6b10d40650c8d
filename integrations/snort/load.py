"""`.rules` files as Shrike rules, for `shrike lint`, `shrike run` and anything else taking rule files."""

from __future__ import annotations

from pathlib import Path

from integrations.snort.errors import Diagnostic
from integrations.snort.importer import import_file, import_text
from rules import ast
from rules.errors import RuleValueError
from rules.lint.runner import ParsedSource

#: File suffixes read as Snort/Suricata rules rather than `.shrike` text.
SNORT_SUFFIXES = (".rules",)


def is_snort_rules(path: str | Path) -> bool:
    return Path(path).suffix in SNORT_SUFFIXES


def load_rules_file(
    path: str | Path, flavor: str = "auto"
) -> tuple[list[ast.Rule], list[Diagnostic]]:
    """Every rule of a Snort/Suricata `.rules` file, and the import diagnostics.

    Rules that could not be represented fully come back disabled (never
    dropped); each diagnostic names the file, line, column, sid and option.
    An unreadable file raises `integrations.snort.errors.SnortError`.
    """
    result = import_file(path, flavor)
    return list(result.rules), list(result.diagnostics)


def as_rule_error(diagnostic: Diagnostic) -> RuleValueError:
    location = diagnostic.location
    span = ast.Span(location.file, location.line, location.column, location.line, location.column)
    return RuleValueError(
        f"Snort option '{diagnostic.option}': {diagnostic.message}",
        span,
        hint="the rule is imported disabled",
        rule_id=diagnostic.sid,
    )


def parse_snort_source(path: str, text: str) -> ParsedSource:
    """A `.rules` file as the linter's `ParsedSource`: imported rules, and each
    import diagnostic as an error located at the Snort option."""
    result = import_text(text, path)
    return ParsedSource(
        path=path,
        text=text,
        statements=result.rules,
        errors=tuple(as_rule_error(d) for d in result.diagnostics),
    )
