"""Read-only traversals of rule ASTs that several checks share (conditions, sequences, variables, positions)."""

from __future__ import annotations

from collections.abc import Iterator

from rules import ast
from rules.lint.check import LintedRule


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
        if isinstance(node, ast.And | ast.Or):
            stack.extend(reversed(node.operands))
        elif isinstance(node, ast.Not):
            stack.append(node.operand)


def _address_variables(address: ast.Address) -> Iterator[ast.AddressVariable]:
    if isinstance(address, ast.AddressVariable):
        yield address
    elif isinstance(address, ast.AddressList):
        for item in address.items:
            yield from _address_variables(item)
    elif isinstance(address, ast.NegatedAddress):
        yield from _address_variables(address.inner)


def _port_variables(port: ast.Port) -> Iterator[ast.PortVariable]:
    if isinstance(port, ast.PortVariable):
        yield port
    elif isinstance(port, ast.PortList):
        for item in port.items:
            yield from _port_variables(item)
    elif isinstance(port, ast.NegatedPort):
        yield from _port_variables(port.inner)


def _value_variables(value: object) -> Iterator[ast.AddressVariable]:
    if isinstance(value, ast.AddressVariable):
        yield value
    elif isinstance(value, ast.ValueList):
        for item in value.items:
            yield from _value_variables(item)


def variable_uses(rule: ast.Rule) -> Iterator[ast.AddressVariable | ast.PortVariable]:
    """Every `$NAME` the rule refers to: in its header and in condition values."""
    header = rule.header
    yield from _address_variables(header.source)
    yield from _port_variables(header.source_ports)
    yield from _address_variables(header.destination)
    yield from _port_variables(header.destination_ports)
    for node in conditions(rule.condition):
        if isinstance(node, ast.Comparison):
            yield from _value_variables(node.value)
