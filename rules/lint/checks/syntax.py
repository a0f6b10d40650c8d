"""Syntax-family checks: the parser's errors, one diagnostic each, with the parser's location."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from rules import ast
from rules.errors import (
    IncludeError,
    RuleError,
    RuleSyntaxError,
    RuleValueError,
    UnknownFieldError,
)
from rules.lint.check import Check, LintContext
from rules.lint.diagnostics import Diagnostic, Family, Severity


class ParserErrorCheck(Check):
    """A check whose findings come from the parser rather than from walking an AST."""

    family = Family.SYNTAX
    severity = Severity.ERROR
    claims: ClassVar[tuple[type[Exception], ...]] = ()

    def from_error(self, error: RuleError, path: str) -> Diagnostic:
        span = error.span
        line, column = (span.line, max(span.column, 1)) if span.line > 0 else (1, 1)
        end_line = span.end_line if span.line > 0 and span.end_line else None
        end_column = span.end_column if span.line > 0 and span.end_column else None
        message = error.message if not error.hint else f"{error.message} (hint: {error.hint})"
        return self.diagnostic(
            path,
            line,
            column,
            message,
            rule_id=None if error.rule_id is None else str(error.rule_id),
            end_line=end_line,
            end_column=end_column,
        )


class SyntaxErrorCheck(ParserErrorCheck):
    code = "SYN001"
    name = "syntax-error"
    description = "The text does not follow the rule grammar (unexpected token or character)."
    claims = (RuleSyntaxError, RuleError)
    example_bad = (
        'rule "Broken" {\n  id 9100001\n  match tcp from any to any\n  where tcp.flags ==\n}\n'
    )
    example_good = (
        'rule "Fixed" {\n  id 9100001\n  match tcp from any to any\n  where tcp.flags == S\n}\n'
    )


class InvalidValueCheck(ParserErrorCheck):
    code = "SYN002"
    name = "invalid-value"
    description = (
        "A well-formed value that cannot be right: port 70000, a bad CIDR, an unknown option."
    )
    claims = (RuleValueError,)
    example_bad = 'rule "Bad port" {\n  id 9100002\n  match tcp from any to any port 70000\n}\n'
    example_good = 'rule "Good port" {\n  id 9100002\n  match tcp from any to any port 7000\n}\n'


class UnknownFieldCheck(ParserErrorCheck):
    code = "SYN003"
    name = "unknown-field"
    description = "A condition names a field that is not in the field catalog."
    claims = (UnknownFieldError,)
    example_bad = 'rule "Typo" {\n  id 9100003\n  match ip from any to any\n  where ip.tll < 5\n}\n'
    example_good = (
        'rule "No typo" {\n  id 9100003\n  match ip from any to any\n  where ip.ttl < 5\n}\n'
    )


class IncludeErrorCheck(ParserErrorCheck):
    code = "SYN004"
    name = "include-error"
    description = "An `include` names a file that does not exist, or the including file itself."
    claims = (IncludeError,)
    example_bad = 'include "does-not-exist.shrike"\n'
    example_good = 'include "variables.shrike"\n'  # with variables.shrike beside the file

    def check_statements(
        self, path: str, statements: Sequence[Any], context: LintContext
    ) -> Iterable[Diagnostic]:
        if path.startswith("<"):
            return  # text held in memory has no folder to resolve includes against
        including = Path(path)
        for statement in statements:
            if not isinstance(statement, ast.Include):
                continue
            target = including.parent / statement.path
            problem = None
            if not target.is_file():
                problem = f"included file {statement.path!r} does not exist ({target})"
            elif target.resolve() == including.resolve():
                problem = f"{statement.path!r} includes itself"
            if problem is not None:
                span = statement.span
                yield self.diagnostic(
                    path,
                    max(span.line, 1),
                    max(span.column, 1),
                    problem,
                    end_line=span.end_line or None,
                    end_column=span.end_column or None,
                )


class UnreadableFileCheck(ParserErrorCheck):
    code = "SYN005"
    name = "unreadable-file"
    description = (
        "A rule file that is not UTF-8 text (or cannot be decoded), so nothing in it is checked."
    )
    claims = ()
    example_bad = "\udcff"  # stands for a byte sequence that is not UTF-8
    example_good = 'rule "Plain text" {\n  id 9100005\n  match tcp from any to any\n}\n'

    def from_decode_error(self, error: UnicodeDecodeError, path: str, data: bytes) -> Diagnostic:
        before = data[: error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        return self.diagnostic(
            path, line, column, f"not UTF-8 text: byte 0x{data[error.start]:02x} cannot be decoded"
        )
