"""Read-only traversals of rule ASTs that several checks share (conditions, sequences, variables, positions)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rules import ast
from rules.lint.check import LintedRule

# Type tuples for isinstance: a `A | B` union in the call would be built on every call.
_AND_OR = (ast.And, ast.Or)
_VARIABLES = (ast.AddressVariable, ast.PortVariable)
_LISTS = (ast.AddressList, ast.PortList, ast.ValueList)
_NEGATED = (ast.NegatedAddress, ast.NegatedPort)
_ANY = (ast.AnyAddress, ast.AnyPort)
_VARIABLE_VALUES = (ast.AddressVariable, ast.ValueList)


def position(node: ast.Node | None, linted: LintedRule) -> tuple[int, int, int | None, int | None]:
    """(line, column, end_line, end_column) of `node`, else of its rule, else the file start.

    Nodes built by code (importers, tests) carry NO_SPAN; their rule's span is the
    best place left to point at.
    """
    for candidate in (node, linted.rule):
        span = getattr(candidate, "span", None)
        if span is not None and span.line > 0:
            return span.line, max(span.column, 1), span.end_line or None, span.end_column or None
    return 1, 1, None, None


def token_position(linted: LintedRule, token: str) -> tuple[int, int]:
    """Where `token` first appears inside the rule's text (for values the AST keeps as strings)."""
    span = linted.rule.span
    if span.line > 0 and linted.source_lines:
        last = min(span.end_line or span.line, len(linted.source_lines))
        for line_number in range(span.line, last + 1):
            text = linted.source_lines[line_number - 1]
            start = span.column - 1 if line_number == span.line else 0
            found = text.find(token, start)
            if found >= 0:
                return line_number, found + 1
    line, column, _, _ = position(None, linted)
    return line, column


def conditions(condition: ast.Condition | None) -> Iterator[ast.Condition]:
    """Every condition node, depth first, parents before children."""
    if condition is None:
        return
    stack: list[ast.Condition] = [condition]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _AND_OR):
            stack.extend(reversed(node.operands))
        elif isinstance(node, ast.Not):
            stack.append(node.operand)


def _collect_variables(item: object, found: list[ast.AddressVariable | ast.PortVariable]) -> None:
    if isinstance(item, _VARIABLES):
        found.append(item)
    elif isinstance(item, _LISTS):
        for inner in item.items:
            _collect_variables(inner, found)
    elif isinstance(item, _NEGATED):
        _collect_variables(item.inner, found)


def variable_uses(
    rule: ast.Rule, condition_nodes: Iterable[ast.Condition] | None = None
) -> list[ast.AddressVariable | ast.PortVariable]:
    """Every `$NAME` the rule refers to: in its header and in condition values, in order.

    `condition_nodes` saves walking the condition again (`LintedRule.condition_nodes`)."""
    found: list[ast.AddressVariable | ast.PortVariable] = []
    header = rule.header
    for part in (
        header.source,
        header.source_ports,
        header.destination,
        header.destination_ports,
    ):
        if not isinstance(part, _ANY):
            _collect_variables(part, found)
    nodes = conditions(rule.condition) if condition_nodes is None else condition_nodes
    for node in nodes:
        if isinstance(node, ast.Comparison):
            value = node.value
            if isinstance(value, _VARIABLE_VALUES):
                _collect_variables(value, found)
    return found
