"""The Shrike rule language: parse `.shrike` text into a value-comparable AST and print it back.

Public entry points: `parse_text`, `parse_file`, `parse_collecting` (collect-errors
mode), `format_rules`/`format_text` (the canonical layout of `shrike fmt`), and
`load_ruleset` (a file with its includes and variables resolved).
"""

from __future__ import annotations

import functools
from pathlib import Path

from rules import _compiled, ast  # noqa: F401  (_compiled first: it guards the compiled modules)
from rules.errors import (
    IncludeError,
    RuleError,
    RuleErrors,
    RuleSyntaxError,
    RuleValueError,
    UnknownFieldError,
    VariableError,
)
from rules.parser import ParseResult, RuleParser

__all__ = [
    "IncludeError",
    "ParseResult",
    "RuleError",
    "RuleErrors",
    "RuleParser",
    "RuleSyntaxError",
    "RuleValueError",
    "UnknownFieldError",
    "VariableError",
    "ast",
    "default_parser",
    "format_rules",
    "format_text",
    "parse_collecting",
    "parse_file",
    "parse_text",
]


@functools.cache
def default_parser() -> RuleParser:
    """One shared RuleParser per process (building it loads the LALR tables)."""
    return RuleParser()


def parse_text(text: str, path: str = "<string>") -> ast.RuleFile:
    """Parse rule text; raise `RuleErrors` listing every error if any part is wrong."""
    return default_parser().parse(text, path)


def parse_collecting(text: str, path: str = "<string>") -> ParseResult:
    """Parse rule text, returning the statements that parsed and every error found."""
    return default_parser().parse_collecting(text, path)


def parse_file(path: str | Path) -> ast.RuleFile:
    """Read and parse one `.shrike` file (includes are not followed; see `rules.variables`)."""
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"cannot read rule file: {exc}", ast.Span(str(path), 0, 0, 0, 0)) from exc
    return parse_text(text, str(path))


def format_rules(rule_file: ast.RuleFile, source: str | None = None) -> str:
    """The canonical text of `rule_file`; pass its `source` to keep blank-line grouping."""
    from rules.formatter import format_rule_file

    return format_rule_file(rule_file, source)


def format_text(text: str, path: str = "<string>") -> str:
    """Parse `text` and return it in canonical layout (comments kept)."""
    return format_rules(parse_text(text, path), text)
