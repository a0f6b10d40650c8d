"""Semantic-family checks: rules that parse but cannot work as written (or not as their author meant)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

from rules import ast
from rules.lint.check import Check, LintContext, LintedRule
from rules.lint.diagnostics import Diagnostic, Family, Severity
from rules.lint.walk import position, variable_uses

_SET_ACTIONS = frozenset({"set", "setx", "toggle"})
_TEST_ACTIONS = frozenset({"isset", "isnotset"})
PORTLESS_PROTOCOLS = frozenset({"ip", "icmp", "icmp6", "icmpv6"})


class DuplicateRuleIdCheck(Check):
    code = "SEM001"
    name = "duplicate-rule-id"
    family = Family.SEMANTIC
    severity = Severity.ERROR
    description = (
        "Two rules share an id (and gid): alerts and suppressions could not tell them apart."
    )
    example_bad = (
        'rule "First" {\n  id 9200001\n  match tcp from any to any\n}\n'
        'rule "Second" {\n  id 9200001\n  match udp from any to any\n}\n'
    )
    example_good = (
        'rule "First" {\n  id 9200001\n  match tcp from any to any\n}\n'
        'rule "Second" {\n  id 9200002\n  match udp from any to any\n}\n'
    )

    def check_ruleset(
        self, rules: Sequence[LintedRule], context: LintContext
    ) -> Iterable[Diagnostic]:
        first_seen: dict[tuple[int | None, int], LintedRule] = {}
        for linted in rules:
            key = (linted.rule.gid, linted.rule.id)
            earlier = first_seen.get(key)
            if earlier is None:
                first_seen[key] = linted
                continue
            line, column, _, _ = position(linted.rule, linted)
            where, _, _, _ = position(earlier.rule, earlier)
            yield self.diagnostic(
                linted.path,
                line,
                column,
                f"rule id {linted.rule.id} is already used by {earlier.rule.title!r} "
                f"at {earlier.path}:{where}",
                rule_id=str(linted.rule.id),
            )


class UndefinedVariableCheck(Check):
    code = "SEM002"
    name = "undefined-variable"
    family = Family.SEMANTIC
    severity = Severity.ERROR
    description = (
        "A `$NAME` that no `addresses`/`ports` definition in the linted files, the lint "
        "configuration's `variables` or Shrike's defaults defines."
    )
    example_bad = 'rule "Web" {\n  id 9200002\n  match tcp from any to $WEB_SERVERS port 80\n}\n'
    example_good = (
        "addresses WEB_SERVERS = [10.0.0.0/24]\n"
        'rule "Web" {\n  id 9200002\n  match tcp from any to $WEB_SERVERS port 80\n}\n'
    )

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        reported: set[str] = set()
        for use in variable_uses(linted.rule, linted.condition_nodes):
            if use.name in context.defined_variables or use.name in reported:
                continue
            reported.add(use.name)
            found.append(
                self.at(
                    use,
                    linted,
                    f"variable ${use.name} is not defined",
                )
            )
        return found


# Interval arithmetic over one numeric field: (low, low_closed, high, high_closed).
_Interval = tuple[float, bool, float, bool]
_EVERYTHING: _Interval = (-math.inf, False, math.inf, False)


def _interval_of(comparison: ast.Comparison) -> _Interval | None:
    value = comparison.value
    if isinstance(value, ast.Range) and comparison.operator in ("==", "in"):
        return (value.low, value.inclusive, value.high, value.inclusive)
    if isinstance(value, bool) or not isinstance(value, _NUMBERS):
        return None
    number = float(value)
    return {
        "==": (number, True, number, True),
        "<": (-math.inf, False, number, False),
        "<=": (-math.inf, False, number, True),
        ">": (number, False, math.inf, False),
        ">=": (number, True, math.inf, False),
    }.get(comparison.operator)


def _intersect(a: _Interval, b: _Interval) -> _Interval:
    low, low_closed = max((a[0], a[1]), (b[0], b[1]), key=lambda end: (end[0], not end[1]))
    high, high_closed = min((a[2], a[3]), (b[2], b[3]), key=lambda end: (end[0], end[1]))
    return (low, low_closed, high, high_closed)


def _is_empty(interval: _Interval, *, integral: bool) -> bool:
    low, low_closed, high, high_closed = interval
    if integral:
        # Over integers `x > 3 and x < 4` is empty although the real interval is not.
        if math.isfinite(low):
            low = float(math.ceil(low) if low_closed else math.floor(low) + 1)
            low_closed = True
        if math.isfinite(high):
            high = float(math.floor(high) if high_closed else math.ceil(high) - 1)
            high_closed = True
    if low < high:
        return False
    return not (low == high and low_closed and high_closed)


def _conjunction_groups(condition: ast.Condition | None) -> Iterator[tuple[ast.Condition, ...]]:
    """Each list of conditions that must hold together: the operands of every And reached
    without passing a Not (under a Not, a contradiction is a tautology), or the root alone."""
    if condition is None:
        return
    stack: list[ast.Condition] = [condition]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.And):
            yield node.operands
            stack.extend(node.operands)
        elif isinstance(node, ast.Or):
            stack.extend(node.operands)
    if not isinstance(condition, ast.And):
        yield (condition,)


class ContradictoryConditionsCheck(Check):
    code = "SEM003"
    name = "contradictory-conditions"
    family = Family.SEMANTIC
    severity = Severity.ERROR
    description = (
        "Conditions joined by `and` that no packet can satisfy together, such as "
        "`dsize > 100 and dsize < 10` or `ip.ttl == 1 and ip.ttl == 2`: the rule never fires."
    )
    example_bad = (
        'rule "Never" {\n  id 9200003\n  match udp from any to any\n'
        "  where dsize > 100 and dsize < 10\n}\n"
    )
    example_good = (
        'rule "Sometimes" {\n  id 9200003\n  match udp from any to any\n'
        "  where dsize > 10 and dsize < 100\n}\n"
    )

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        for group in _conjunction_groups(linted.rule.condition):
            narrowed: dict[str, tuple[_Interval, list[ast.Comparison]]] = {}
            reported: set[str] = set()
            for operand in group:
                if not isinstance(operand, ast.Comparison):
                    continue
                interval = _interval_of(operand)
                if interval is None:
                    continue
                name = operand.field.name
                if name in reported:
                    continue
                current, involved = narrowed.get(name, (_EVERYTHING, []))
                combined = _intersect(current, interval)
                involved = [*involved, operand]
                narrowed[name] = (combined, involved)
                integral = all(isinstance(c.value, (int, ast.Range)) for c in involved)
                if _is_empty(combined, integral=integral):
                    reported.add(name)
                    found.append(
                        self.at(
                            operand,
                            linted,
                            f"conditions on {name} can never hold together: "
                            + " and ".join(_describe(c) for c in involved),
                        )
                    )
        return found


def _describe(comparison: ast.Comparison) -> str:
    value = comparison.value
    if isinstance(value, ast.Range):
        separator = ".." if value.inclusive else "<>"
        text = f"{value.low}{separator}{value.high}"
    else:
        text = str(value)
    return f"{comparison.field.name} {comparison.operator} {text}"


# Type tuples for isinstance: a `A | B` union in the call would be built on every call.
_NUMBERS = (int, float)
_MATCHES = (ast.Content, ast.Regex)
_BYTE_OPERATIONS = (ast.ByteJump, ast.ByteExtract, ast.ByteMath, ast.ByteTest)
_CURSOR_TESTS = (ast.IsDataAt, ast.Base64Decode)


# Matchers that leave the cursor somewhere a later relative matcher can start from.
def _sets_cursor(item: ast.SequenceItem) -> bool:
    if isinstance(item, _MATCHES):
        return not item.negated
    return isinstance(item, _BYTE_OPERATIONS)


def _is_relative(item: ast.SequenceItem) -> bool:
    if isinstance(item, ast.Content):
        return item.distance is not None or item.within is not None
    if isinstance(item, ast.Regex):
        return "R" in item.flags
    if isinstance(item, _BYTE_OPERATIONS):
        return item.relative
    if isinstance(item, _CURSOR_TESTS):
        return item.relative
    return False


class RelativeWithoutAnchorCheck(Check):
    code = "SEM004"
    name = "relative-without-anchor"
    family = Family.SEMANTIC
    severity = Severity.WARNING
    description = (
        "A relative matcher (`distance`, `within`, `relative`, regex flag R) with no earlier "
        "match in the same buffer to be relative to; it silently counts from the buffer start."
    )
    example_bad = (
        'rule "Floating" {\n  id 9200004\n  match tcp from any to any\n'
        '  where pkt_data { contains "USER" distance 4 }\n}\n'
    )
    example_good = (
        'rule "Anchored" {\n  id 9200004\n  match tcp from any to any\n'
        '  where pkt_data { contains "USER" contains "root" distance 1 }\n}\n'
    )

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        for sequence in linted.sequences:
            anchored = False
            for item in sequence.items:
                if _is_relative(item) and not anchored:
                    found.append(
                        self.at(
                            item,
                            linted,
                            f"relative {type(item).__name__.lower()} in {sequence.buffer.name} has no "
                            "earlier match to be relative to",
                        )
                    )
                anchored = anchored or _sets_cursor(item)
        return found


class WindowWithoutKeyCheck(Check):
    code = "SEM005"
    name = "window-without-key"
    family = Family.SEMANTIC
    severity = Severity.WARNING
    description = (
        "A `window` with no `by` key aggregates every host's traffic into one counter, so "
        "one busy network crosses the threshold without any single actor doing so."
    )
    example_bad = (
        'rule "Scan" {\n  id 9200005\n  match tcp from any to any\n  where tcp.flags == S\n'
        "  window 60s: distinct(dst.port) >= 25\n}\n"
    )
    example_good = (
        'rule "Scan" {\n  id 9200005\n  match tcp from any to any\n  where tcp.flags == S\n'
        "  window 60s by src.ip: distinct(dst.port) >= 25\n}\n"
    )

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        window = linted.rule.window
        if window is not None and not window.group_by:
            found.append(
                self.at(
                    window,
                    linted,
                    "window has no `by` key; add one such as `by src.ip`",
                )
            )
        return found


def _bit_key(bits: ast.Flowbits, name: str) -> tuple[str, str]:
    return (bits.kind, name)


class FlowbitNeverSetCheck(Check):
    code = "SEM006"
    name = "flowbit-never-set"
    family = Family.SEMANTIC
    severity = Severity.WARNING
    description = "A rule tests `flowbits isset NAME` but no linted rule sets NAME, so the test is never true."
    example_bad = (
        'rule "Second stage" {\n  id 9200006\n  match tcp from any to any\n'
        "  where flowbits isset stage1\n}\n"
    )
    example_good = (
        'rule "First stage" {\n  id 9200106\n  match tcp from any to any\n'
        '  where pkt_data contains "HELLO"\n  flowbits set stage1\n  flowbits noalert\n}\n'
        'rule "Second stage" {\n  id 9200006\n  match tcp from any to any\n'
        "  where flowbits isset stage1\n}\n"
    )

    def check_ruleset(
        self, rules: Sequence[LintedRule], context: LintContext
    ) -> Iterable[Diagnostic]:
        set_somewhere = {
            _bit_key(action, name)
            for linted in rules
            for action in linted.rule.bit_actions
            if action.action in _SET_ACTIONS
            for name in action.names
        }
        for linted in rules:
            for test in linted.flowbit_tests:
                if test.action != "isset":
                    continue
                unset = [name for name in test.names if _bit_key(test, name) not in set_somewhere]
                # `isset a|b` holds when any one is set: only all-unset is dead.
                if test.operator == "|" and len(unset) < len(test.names):
                    continue
                for name in unset:
                    yield self.at(
                        test,
                        linted,
                        f"{test.kind} {name!r} is tested but no rule sets it",
                    )


class FlowbitNeverCheckedCheck(Check):
    code = "SEM007"
    name = "flowbit-never-checked"
    family = Family.SEMANTIC
    severity = Severity.INFO
    description = "A rule sets a flowbit that no linted rule tests: state is kept for nothing."
    example_bad = (
        'rule "Marks" {\n  id 9200007\n  match tcp from any to any\n'
        '  where pkt_data contains "HELLO"\n  flowbits set greeted\n}\n'
    )
    example_good = (
        'rule "Marks" {\n  id 9200007\n  match tcp from any to any\n'
        '  where pkt_data contains "HELLO"\n  flowbits set greeted\n}\n'
        'rule "Uses" {\n  id 9200107\n  match tcp from any to any\n'
        '  where flowbits isset greeted and pkt_data contains "PASS"\n}\n'
    )

    def check_ruleset(
        self, rules: Sequence[LintedRule], context: LintContext
    ) -> Iterable[Diagnostic]:
        tested = {
            _bit_key(test, name)
            for linted in rules
            for test in linted.flowbit_tests
            if test.action in _TEST_ACTIONS
            for name in test.names
        }
        for linted in rules:
            for action in linted.rule.bit_actions:
                if action.action not in _SET_ACTIONS:
                    continue
                for name in action.names:
                    if _bit_key(action, name) not in tested:
                        yield self.at(
                            action,
                            linted,
                            f"{action.kind} {name!r} is set but no rule tests it",
                        )


class ContentLongerThanBoundCheck(Check):
    code = "SEM008"
    name = "content-exceeds-bound"
    family = Family.SEMANTIC
    severity = Severity.ERROR
    description = (
        "A content whose `depth` or `within` is shorter than the pattern itself can never match."
    )
    example_bad = (
        'rule "Too tight" {\n  id 9200008\n  match tcp from any to any\n'
        '  where pkt_data { contains "GET /admin" depth 4 }\n}\n'
    )
    example_good = (
        'rule "Fits" {\n  id 9200008\n  match tcp from any to any\n'
        '  where pkt_data { contains "GET /admin" depth 10 }\n}\n'
    )

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        for sequence in linted.sequences:
            for item in sequence.items:
                if not isinstance(item, ast.Content) or item.negated:
                    continue
                for bound_name in ("depth", "within"):
                    bound = getattr(item, bound_name)
                    if isinstance(bound, int) and bound < len(item.pattern):
                        found.append(
                            self.at(
                                item,
                                linted,
                                f"{bound_name} {bound} is shorter than the {len(item.pattern)}-byte "
                                "pattern, so it can never match",
                            )
                        )
        return found


def _has_ports(port: ast.Port) -> bool:
    return not isinstance(port, ast.AnyPort)


class PortsOnPortlessProtocolCheck(Check):
    code = "SEM009"
    name = "ports-on-portless-protocol"
    family = Family.SEMANTIC
    severity = Severity.ERROR
    description = (
        "Ports on an `ip` or `icmp` rule: those packets have no ports, so the rule never fires."
    )
    example_bad = 'rule "Ping" {\n  id 9200009\n  match icmp from any to any port 80\n}\n'
    example_good = 'rule "Ping" {\n  id 9200009\n  match icmp from any to any\n}\n'

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        header = linted.rule.header
        if header.protocol.lower() not in PORTLESS_PROTOCOLS:
            return found
        for port in (header.source_ports, header.destination_ports):
            if _has_ports(port):
                found.append(
                    self.at(
                        port,
                        linted,
                        f"{header.protocol} packets have no ports; this port condition never holds",
                    )
                )
        return found


_CONFLICTING_FLOW = (
    frozenset({"to_server", "to_client"}),
    frozenset({"to_server", "from_server"}),
    frozenset({"to_client", "from_client"}),
    frozenset({"from_server", "from_client"}),
    frozenset({"established", "not_established"}),
    frozenset({"established", "stateless"}),
    frozenset({"only_stream", "no_stream"}),
    frozenset({"only_frag", "no_frag"}),
)


class ConflictingFlowOptionsCheck(Check):
    code = "SEM010"
    name = "conflicting-flow-options"
    family = Family.SEMANTIC
    severity = Severity.ERROR
    description = "Flow options that exclude each other, such as `to_server` with `to_client`."
    example_bad = 'rule "Both ways" {\n  id 9200010\n  match tcp to_server to_client\n}\n'
    example_good = 'rule "One way" {\n  id 9200010\n  match tcp to_server established\n}\n'

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        flow = linted.rule.header.flow
        if len(flow) < 2:
            return found
        options = set(flow)
        for pair in _CONFLICTING_FLOW:
            if pair <= options:
                first, second = sorted(pair)
                found.append(
                    self.at(
                        linted.rule.header,
                        linted,
                        f"flow options {first} and {second} exclude each other",
                    )
                )
        return found


class DuplicateVariableCheck(Check):
    code = "SEM011"
    name = "duplicate-variable"
    family = Family.SEMANTIC
    severity = Severity.ERROR
    description = (
        "A file defines the same `addresses`/`ports` variable twice; only one definition can win."
    )
    example_bad = (
        "addresses HOME_NET = [10.0.0.0/8]\naddresses HOME_NET = [192.168.0.0/16]\n"
        'rule "Inbound" {\n  id 9200011\n  match tcp from any to $HOME_NET port 22\n}\n'
    )
    example_good = (
        "addresses HOME_NET = [10.0.0.0/8, 192.168.0.0/16]\n"
        'rule "Inbound" {\n  id 9200011\n  match tcp from any to $HOME_NET port 22\n}\n'
    )

    def check_statements(
        self, path: str, statements: Sequence[ast.Statement], context: LintContext
    ) -> Iterable[Diagnostic]:
        first_line: dict[str, int] = {}
        for statement in statements:
            if not isinstance(statement, ast.VariableDefinition):
                continue
            span = statement.span
            if statement.name in first_line:
                yield self.diagnostic(
                    path,
                    max(span.line, 1),
                    max(span.column, 1),
                    f"variable {statement.name} is already defined on line "
                    f"{first_line[statement.name]}",
                    end_line=span.end_line or None,
                    end_column=span.end_column or None,
                )
            else:
                first_line[statement.name] = span.line
