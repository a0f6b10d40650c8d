"""Address and port variables (`$HOME_NET`, `$HTTP_PORTS`) and `include` resolution for rule files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from rules import ast
from rules.errors import IncludeError, RuleError, RuleErrors, VariableError
from rules.parser import RuleParser

#: The shipped variables (`$HOME_NET`, `$HTTP_PORTS`, ...) that rule files may use undefined.
DEFAULT_VARIABLES = Path(__file__).resolve().parents[1] / "config" / "variables.yaml"


@dataclass(frozen=True, slots=True)
class VariableTable:
    """Variable definitions by name (without `$`); values may refer to other variables."""

    addresses: Mapping[str, ast.Address] = field(default_factory=lambda: MappingProxyType({}))
    ports: Mapping[str, ast.Port] = field(default_factory=lambda: MappingProxyType({}))

    def with_definitions(self, definitions: Iterable[ast.VariableDefinition]) -> VariableTable:
        """A new table where `definitions` (from a rule file) override existing entries."""
        addresses = dict(self.addresses)
        ports = dict(self.ports)
        for definition in definitions:
            if _is_port(definition.value):
                ports[definition.name] = definition.value  # type: ignore[assignment]
            else:
                addresses[definition.name] = definition.value  # type: ignore[assignment]
        return VariableTable(MappingProxyType(addresses), MappingProxyType(ports))

    def expand_address(self, address: ast.Address) -> ast.Address:
        """`address` with every variable replaced by its definition (recursively)."""
        return _expand_address(address, self, ())

    def expand_port(self, port: ast.Port) -> ast.Port:
        """`port` with every variable replaced by its definition (recursively)."""
        return _expand_port(port, self, ())


def _is_port(value: ast.Node) -> bool:
    return isinstance(
        value,
        ast.PortNumber
        | ast.PortRange
        | ast.PortVariable
        | ast.PortList
        | ast.NegatedPort
        | ast.AnyPort,
    )


def _expand_address(
    address: ast.Address, table: VariableTable, stack: tuple[str, ...]
) -> ast.Address:
    if isinstance(address, ast.AddressVariable):
        if address.name in stack:
            chain = " -> ".join((*stack, address.name))
            raise VariableError(f"variable cycle: ${chain}", address.span)
        value = table.addresses.get(address.name)
        if value is None:
            raise _undefined(address.name, address.span, table.addresses, table.ports, "address")
        return _expand_address(value, table, (*stack, address.name))
    if isinstance(address, ast.AddressList):
        return ast.AddressList(
            tuple(_expand_address(a, table, stack) for a in address.items), span=address.span
        )
    if isinstance(address, ast.NegatedAddress):
        return ast.NegatedAddress(_expand_address(address.inner, table, stack), span=address.span)
    return address


def _expand_port(port: ast.Port, table: VariableTable, stack: tuple[str, ...]) -> ast.Port:
    if isinstance(port, ast.PortVariable):
        if port.name in stack:
            chain = " -> ".join((*stack, port.name))
            raise VariableError(f"variable cycle: ${chain}", port.span)
        value = table.ports.get(port.name)
        if value is None:
            raise _undefined(port.name, port.span, table.ports, table.addresses, "port")
        return _expand_port(value, table, (*stack, port.name))
    if isinstance(port, ast.PortList):
        return ast.PortList(
            tuple(_expand_port(p, table, stack) for p in port.items), span=port.span
        )
    if isinstance(port, ast.NegatedPort):
        return ast.NegatedPort(_expand_port(port.inner, table, stack), span=port.span)
    return port


def _undefined(
    name: str,
    span: ast.Span,
    same_kind: Mapping[str, Any],
    other_kind: Mapping[str, Any],
    kind: str,
) -> VariableError:
    import difflib

    if name in other_kind:
        other = "port" if kind == "address" else "address"
        return VariableError(
            f"${name} is a {other} variable, used where an {kind} is expected"
            if kind == "address"
            else f"${name} is an {other} variable, used where a {kind} is expected",
            span,
        )
    close = difflib.get_close_matches(name, list(same_kind), n=2)
    hint = f"did you mean {' or '.join('$' + c for c in close)}?" if close else None
    return VariableError(f"undefined {kind} variable ${name}", span, hint=hint)


def _variables_in(rule: ast.Rule) -> Iterator[ast.AddressVariable | ast.PortVariable]:
    header = rule.header
    stack: list[Any] = [
        header.source,
        header.source_ports,
        header.destination,
        header.destination_ports,
    ]
    if rule.condition is not None:
        stack.append(rule.condition)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.AddressVariable | ast.PortVariable):
            yield node
        elif isinstance(node, ast.AddressList | ast.PortList | ast.ValueList):
            stack.extend(node.items)
        elif isinstance(node, ast.NegatedAddress | ast.NegatedPort):
            stack.append(node.inner)
        elif isinstance(node, ast.And | ast.Or):
            stack.extend(node.operands)
        elif isinstance(node, ast.Not):
            stack.append(node.operand)
        elif isinstance(node, ast.Comparison):
            stack.append(node.value)


def check_variables(rules: Iterable[ast.Rule], table: VariableTable) -> list[VariableError]:
    """Every use of an undefined (or wrong-kind, or cyclic) variable in `rules`, located."""
    errors: list[VariableError] = []
    for rule in rules:
        for var in _variables_in(rule):
            try:
                if isinstance(var, ast.AddressVariable):
                    table.expand_address(var)
                else:
                    table.expand_port(var)
            except VariableError as exc:
                exc.span = var.span
                exc.rule_id = rule.id
                errors.append(exc)
    return errors


def load_variables(path: str | Path, parser: RuleParser | None = None) -> VariableTable:
    """Read a variables YAML file (see config/variables.yaml) into a VariableTable.

    Values are written in rule syntax: a string (`"[10.0.0.0/8, !10.1.0.0/16]"`,
    `"!$HOME_NET"`, `"8000..8080"`) or a YAML list of such strings/numbers.
    """
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
        document = yaml.compose(text)
    except OSError as exc:
        raise VariableError(
            f"cannot read variables file: {exc}", ast.Span(str(path), 0, 0, 0, 0)
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise VariableError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}",
            ast.Span(str(path), line, column, line, column),
        ) from exc
    parser = parser or RuleParser()
    definitions: list[ast.VariableDefinition] = []
    errors: list[RuleError] = []
    if document is None:
        return VariableTable()
    if not isinstance(document, yaml.MappingNode):
        raise VariableError(
            "variables file must be a mapping with `addresses` and `ports`",
            _mark_span(path, document),
        )
    for section_key, section in document.value:
        kind = section_key.value
        if kind not in ("addresses", "ports"):
            errors.append(
                VariableError(
                    f"unknown section '{kind}'",
                    _mark_span(path, section_key),
                    hint="use `addresses` or `ports`",
                )
            )
            continue
        if not isinstance(section, yaml.MappingNode):
            errors.append(
                VariableError(f"`{kind}` must map names to values", _mark_span(path, section))
            )
            continue
        for name_node, value_node in section.value:
            value_text = _value_text(value_node)
            span = _mark_span(path, value_node)
            source = f"{kind} {name_node.value} = {value_text}\n"
            result = parser.parse_collecting(source, f"{path}:{name_node.value}")
            if result.errors:
                for err in result.errors:
                    errors.append(
                        VariableError(
                            f"bad value for {name_node.value}: {err.message}", span, hint=err.hint
                        )
                    )
                continue
            definitions.extend(
                s for s in result.file.statements if isinstance(s, ast.VariableDefinition)
            )
    if errors:
        raise RuleErrors(errors)
    return VariableTable().with_definitions(definitions)


def _value_text(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "[" + ", ".join(_value_text(item) for item in node.value) + "]"
    return str(node.value)


def _mark_span(path: str | Path, node: yaml.Node) -> ast.Span:
    start, end = node.start_mark, node.end_mark
    return ast.Span(str(path), start.line + 1, start.column + 1, end.line + 1, end.column + 1)


@dataclass(frozen=True, slots=True)
class Ruleset:
    """A rule file with its includes followed: every rule, the variables in force, the files read."""

    rules: tuple[ast.Rule, ...]
    variables: VariableTable
    files: tuple[str, ...]


def load_ruleset(
    path: str | Path, variables: VariableTable | None = None, parser: RuleParser | None = None
) -> Ruleset:
    """Parse `path` and the files it includes (relative to the including file).

    Variables defined in rule files override `variables`.  Raises `RuleErrors`
    with every parse, include and undefined-variable error found.
    """
    parser = parser or RuleParser()
    rules: list[ast.Rule] = []
    definitions: list[ast.VariableDefinition] = []
    files: list[str] = []
    errors: list[RuleError] = []

    def visit(file_path: Path, chain: tuple[Path, ...], origin: ast.Span | None) -> None:
        resolved = file_path.resolve()
        if resolved in chain:
            errors.append(
                IncludeError(f"include cycle: {file_path} includes itself", origin or ast.NO_SPAN)
            )
            return
        if str(resolved) in files:
            return
        try:
            text = resolved.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(IncludeError(f"cannot read {file_path}: {exc}", origin or ast.NO_SPAN))
            return
        files.append(str(resolved))
        result = parser.parse_collecting(text, str(file_path))
        errors.extend(result.errors)
        for statement in result.file.statements:
            if isinstance(statement, ast.Include):
                visit(file_path.parent / statement.path, (*chain, resolved), statement.span)
            elif isinstance(statement, ast.VariableDefinition):
                definitions.append(statement)
            else:
                rules.append(statement)

    visit(Path(path), (), None)
    table = (variables or VariableTable()).with_definitions(definitions)
    errors.extend(check_variables(rules, table))
    if errors:
        raise RuleErrors(errors)
    return Ruleset(tuple(rules), table, tuple(files))
