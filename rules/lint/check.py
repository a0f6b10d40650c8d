"""The Check base class and what a check sees: the rule under lint and the run's context."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rules import ast
from rules.attack import AttackCatalog
from rules.lint.diagnostics import Diagnostic, Family, Severity

_AND_OR = (ast.And, ast.Or)  # a tuple: an `A | B` union would be built on every call


class _Walked:
    """A fact about a rule's conditions, filled in (with its siblings) by one walk per rule.

    The values land in the instance `__dict__`, so only the first read of any of them
    runs the walk; unlike `functools.cached_property` on Python 3.11 it takes no lock.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: LintedRule | None, owner: type) -> Any:
        if instance is None:
            return self
        instance._walk()
        return instance.__dict__[self.name]


@dataclass(frozen=True)
class LintedRule:
    """One parsed rule and where it came from. `rule` is a `rules.ast.Rule`.

    `condition_nodes` (every condition node, parents first), `sequences`,
    `flowbit_tests` and `regexes` come from one walk of the condition, shared by
    the checks; `memo` holds other per-rule facts several checks compute alike.
    """

    path: str
    rule: Any
    source_lines: Sequence[str] = field(default=(), repr=False, compare=False)

    condition_nodes: ClassVar[Any] = _Walked()
    sequences: ClassVar[Any] = _Walked()
    flowbit_tests: ClassVar[Any] = _Walked()
    regexes: ClassVar[Any] = _Walked()
    memo: ClassVar[Any] = _Walked()

    @classmethod
    def of_rules(
        cls, path: str, rules: Iterable[Any], source_lines: Sequence[str]
    ) -> list[LintedRule]:
        """One LintedRule per rule of a file, built without the frozen `__init__`'s
        per-field `object.__setattr__` (a ruleset has tens of thousands)."""
        made = []
        new = object.__new__
        for rule in rules:
            linted = new(cls)
            linted.__dict__.update(path=path, rule=rule, source_lines=source_lines)
            made.append(linted)
        return made

    def _walk(self) -> None:
        nodes: list[Any] = []
        sequences: list[Any] = []
        flowbits: list[Any] = []
        regexes: list[Any] = []
        condition = self.rule.condition
        stack = [condition] if condition is not None else []
        while stack:
            node = stack.pop()
            nodes.append(node)
            if isinstance(node, _AND_OR):
                stack.extend(reversed(node.operands))
            elif isinstance(node, ast.Not):
                stack.append(node.operand)
            elif isinstance(node, ast.Sequence):
                sequences.append(node)
                regexes.extend(item for item in node.items if isinstance(item, ast.Regex))
            elif isinstance(node, ast.Flowbits):
                flowbits.append(node)
        facts = self.__dict__
        facts["condition_nodes"] = tuple(nodes)
        facts["sequences"] = tuple(sequences)
        facts["flowbit_tests"] = tuple(flowbits)
        facts["regexes"] = tuple(regexes)
        facts["memo"] = {}


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
    sees one file's top-level statements (includes, variable definitions). Each returns
    or yields diagnostics built with `self.diagnostic`, so code, name and severity come
    from the class. The shipped rule checks return a list: `check_rule` runs once per
    rule and check, and a generator costs more to start than most checks take to find
    nothing.
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
