"""The Check base class and what a check sees: the rule under lint and the run's context."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from rules.attack import AttackCatalog
from rules.lint.diagnostics import Diagnostic, Family, Severity


@dataclass(frozen=True)
class LintedRule:
    """One parsed rule and where it came from. `rule` is a `rules.ast.Rule`."""

    path: str
    rule: Any
    source_lines: Sequence[str] = field(default=(), repr=False, compare=False)

    # Many checks walk the same condition tree; walk it once per rule.
    @cached_property
    def condition_nodes(self) -> tuple[Any, ...]:
        from rules.lint.walk import conditions

        return tuple(conditions(self.rule.condition))

    @cached_property
    def sequences(self) -> tuple[Any, ...]:
        from rules import ast

        return tuple(node for node in self.condition_nodes if isinstance(node, ast.Sequence))

    @cached_property
    def flowbit_tests(self) -> tuple[Any, ...]:
        from rules import ast

        return tuple(node for node in self.condition_nodes if isinstance(node, ast.Flowbits))


@dataclass(frozen=True)
class LintContext:
    """Read-only facts every check may consult."""

    catalog: AttackCatalog
    defined_variables: frozenset[str] = frozenset()  # variables known from config or the files
    hyperscan: Any = None  # the imported `hyperscan` module, or None when it is not installed


class Check:
    """One lint check. Subclasses set the class attributes and override one of the hooks.

    `check_rule` sees one rule at a time; `check_ruleset` sees every rule of the run (for
    duplicate ids, flowbits set in one rule and tested in another, ...); `check_statements`
    sees one file's top-level statements (includes, variable definitions). All yield
    diagnostics built with `self.diagnostic`, so code, name and severity come from the class.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    family: ClassVar[Family]
    severity: ClassVar[Severity]
    description: ClassVar[str]
    # Rule text the check flags, and a corrected version it accepts (docs and tests use both).
    example_bad: ClassVar[str]
    example_good: ClassVar[str]

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        return ()

    def check_ruleset(
        self, rules: Sequence[LintedRule], context: LintContext
    ) -> Iterable[Diagnostic]:
        return ()

    def check_statements(
        self, path: str, statements: Sequence[Any], context: LintContext
    ) -> Iterable[Diagnostic]:
        """Sees one file's top-level statements (rules, includes, variable definitions)."""
        return ()

    def available(self, context: LintContext) -> str | None:
        """None when the check can run; otherwise why it is skipped (a missing dependency)."""
        return None

    def note(self, context: LintContext) -> str | None:
        """A remark for the report about how a runnable check runs (a slower fallback), or None."""
        return None

    def at(self, node: Any, linted: LintedRule, message: str) -> Diagnostic:
        """A diagnostic about `node` of `linted` (or the rule itself when the node has no span)."""
        from rules.lint.walk import position

        line, column, end_line, end_column = position(node, linted)
        return self.diagnostic(
            linted.path,
            line,
            column,
            message,
            rule_id=str(linted.rule.id),
            end_line=end_line,
            end_column=end_column,
        )

    def diagnostic(
        self,
        path: str,
        line: int,
        column: int,
        message: str,
        *,
        rule_id: str | None = None,
        end_line: int | None = None,
        end_column: int | None = None,
    ) -> Diagnostic:
        return Diagnostic(
            path=path,
            line=line,
            column=column,
            code=self.code,
            name=self.name,
            severity=self.severity,
            message=message,
            rule_id=rule_id,
            end_line=end_line,
            end_column=end_column,
        )
