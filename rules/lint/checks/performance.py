"""Performance-family checks: rules the prefilter cannot serve well (no fast pattern, regexes Hyperscan rejects)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from rules import ast
from rules.lint.check import Check, LintContext, LintedRule
from rules.lint.diagnostics import Diagnostic, Family, Severity
from rules.lint.libhs import LibhsUnavailable, analyser, hyperscan_error

SHORT_PATTERN_BYTES = 4
# PCRE option letters Hyperscan understands; the rest are Snort/Suricata buffer and
# position modifiers (R, U, B, P, H, ...) that Shrike handles outside the regex.
_HYPERSCAN_FLAG_NAMES = {"i": "HS_FLAG_CASELESS", "s": "HS_FLAG_DOTALL", "m": "HS_FLAG_MULTILINE"}
# Nested unbounded quantifiers: `(a+)+`, `(.*)*`, `(\w+\s?)*` backtrack exponentially.
_NESTED_QUANTIFIER = re.compile(
    r"\((?:[^()\\]|\\.)*[+*](?:[^()\\]|\\.)*\)[+*]|\((?:[^()\\]|\\.)*[+*]\)\{\d+,\}"
)


def _longest_required_literal(condition: ast.Condition | None) -> int:
    """Length of the longest literal that must appear for the condition to hold.

    Under `and` any operand's literal will do; under `or` every branch must have one
    (the shortest counts); under `not` nothing is required. 0 means none.
    """
    if isinstance(condition, ast.And):
        longest = 0
        for operand in condition.operands:
            found = _longest_required_literal(operand)
            if found > longest:
                longest = found
        return longest
    if isinstance(condition, ast.Or):
        shortest: int | None = None
        for operand in condition.operands:
            found = _longest_required_literal(operand)
            if shortest is None or found < shortest:
                shortest = found
        return shortest or 0
    if isinstance(condition, ast.Sequence):
        longest = 0
        for item in condition.items:
            if isinstance(item, ast.Content) and not item.negated and len(item.pattern) > longest:
                longest = len(item.pattern)
        return longest
    return 0


class NoFastPatternCheck(Check):
    code = "PRF001"
    name = "no-fast-pattern"
    family = Family.PERFORMANCE
    severity = Severity.WARNING
    description = (
        "A rule that inspects payload but has no literal every match must contain, so the "
        "Hyperscan prefilter cannot skip it: it is evaluated on every packet its header allows."
    )
    example_bad = (
        'rule "Only regex" {\n  id 9400001\n  match tcp from any to any port 80\n'
        "  where http.uri matches /\\/[a-z]{8}\\.php/\n}\n"
    )
    example_good = (
        'rule "Literal first" {\n  id 9400001\n  match tcp from any to any port 80\n'
        '  where http.uri { contains ".php" matches /\\/[a-z]{8}\\.php/ }\n}\n'
    )

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        rule = linted.rule
        if linted.sequences and _required_literal(linted) == 0:
            found.append(
                self.at(
                    rule.condition,
                    linted,
                    "no literal content is required for a match, so no fast pattern can be chosen",
                )
            )
        return found


class ShortFastPatternCheck(Check):
    code = "PRF002"
    name = "short-fast-pattern"
    family = Family.PERFORMANCE
    severity = Severity.INFO
    description = (
        f"The longest required literal is shorter than {SHORT_PATTERN_BYTES} bytes: such a "
        "fast pattern hits on a large share of traffic and the prefilter saves little."
    )
    example_bad = (
        'rule "Tiny" {\n  id 9400002\n  match tcp from any to any\n'
        "  where pkt_data contains |00 01|\n}\n"
    )
    example_good = (
        'rule "Long enough" {\n  id 9400002\n  match tcp from any to any\n'
        '  where pkt_data contains "SSH-1."\n}\n'
    )

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        if not linted.sequences:
            return found
        longest = _required_literal(linted)
        if 0 < longest < SHORT_PATTERN_BYTES:
            found.append(
                self.at(
                    linted.rule.condition,
                    linted,
                    f"longest required literal is {longest} byte(s); prefer one of at least "
                    f"{SHORT_PATTERN_BYTES}",
                )
            )
        return found


def _required_literal(linted: LintedRule) -> int:
    """`_longest_required_literal` of the rule's condition, computed once for PRF001 and PRF002."""
    memo = linted.memo
    longest = memo.get("longest_required_literal")
    if longest is None:
        longest = memo["longest_required_literal"] = _longest_required_literal(
            linted.rule.condition
        )
    return longest


class HyperscanIncompatibleRegexCheck(Check):
    code = "PRF003"
    name = "hyperscan-incompatible-regex"
    family = Family.PERFORMANCE
    severity = Severity.WARNING
    description = (
        "A regex Hyperscan cannot compile (back-references, look-around, ...): the matcher "
        "must fall back to a slower engine for it. Skipped when the `hyperscan` package is "
        "not installed."
    )
    example_bad = (
        'rule "Backref" {\n  id 9400003\n  match tcp from any to any\n'
        '  where pkt_data { contains "<" matches /<(\\w+)>.*<\\/\\1>/ }\n}\n'
    )
    example_good = (
        'rule "No backref" {\n  id 9400003\n  match tcp from any to any\n'
        '  where pkt_data { contains "<" matches /<(\\w+)>.*<\\/\\w+>/ }\n}\n'
    )

    def available(self, context: LintContext) -> str | None:
        if context.hyperscan is None:
            return f"{self.code} {self.name} skipped: the hyperscan package is not installed"
        return None

    def __init__(self) -> None:
        self._compile_with: tuple[Any, Callable[[bytes, int], str | None]] | None = None

    def _compiler(self, hyperscan: Any) -> Callable[[bytes, int], str | None]:
        if self._compile_with is None or self._compile_with[0] is not hyperscan:
            self._compile_with = (hyperscan, _compiler(hyperscan))
        return self._compile_with[1]

    def note(self, context: LintContext) -> str | None:
        found = analyser()
        if context.hyperscan is not None and isinstance(found, LibhsUnavailable):
            return (
                f"{self.code} {self.name} compiles every regex that is not plainly supported, "
                f"which is slow: "
                f"hs_expression_info is unavailable ({found})"
            )
        return None

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        hyperscan = context.hyperscan
        if hyperscan is None:
            return found
        for regex in linted.regexes:
            flags = 0
            for letter in regex.flags:
                flag_name = _HYPERSCAN_FLAG_NAMES.get(letter)
                if flag_name is not None:
                    flags |= getattr(hyperscan, flag_name)
            # Hyperscan has no flag for PCRE's extended mode, only the inline option, and
            # unlike PCRE it wants a trailing `# comment` ended by a newline.
            pattern = f"(?x){regex.pattern}\n" if "x" in regex.flags else regex.pattern
            error = hyperscan_error(
                pattern.encode("utf-8", "surrogateescape"), flags, self._compiler(hyperscan)
            )
            if error is not None:
                found.append(
                    self.at(
                        regex,
                        linted,
                        f"Hyperscan cannot compile /{regex.pattern}/: {error}",
                    )
                )
        return found


def _compiler(hyperscan: Any) -> Callable[[bytes, int], str | None]:
    def compile_error(pattern: bytes, flags: int) -> str | None:
        try:
            hyperscan.Database().compile(expressions=[pattern], ids=[0], elements=1, flags=[flags])
        except hyperscan.error as error:
            return str(error) or type(error).__name__
        return None

    return compile_error


class BacktrackingRegexCheck(Check):
    code = "PRF004"
    name = "backtracking-regex"
    family = Family.PERFORMANCE
    severity = Severity.WARNING
    description = (
        "A regex with a quantified group that itself ends in an unbounded quantifier, such "
        "as `(a+)+` or `(\\w+\\s?)*`: backtracking engines take exponential time on near-misses."
    )
    example_bad = (
        'rule "Nested" {\n  id 9400004\n  match tcp from any to any\n'
        '  where pkt_data { contains "id=" matches /id=(\\w+,?)+;/ }\n}\n'
    )
    example_good = (
        'rule "Flat" {\n  id 9400004\n  match tcp from any to any\n'
        '  where pkt_data { contains "id=" matches /id=[\\w,]+;/ }\n}\n'
    )

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        for regex in linted.regexes:
            if _NESTED_QUANTIFIER.search(regex.pattern):
                found.append(
                    self.at(
                        regex,
                        linted,
                        f"/{regex.pattern}/ nests unbounded quantifiers and can backtrack exponentially",
                    )
                )
        return found


def _is_any_address(address: ast.Address) -> bool:
    return isinstance(address, ast.AnyAddress)


class MatchesAllTrafficCheck(Check):
    code = "PRF005"
    name = "matches-all-traffic"
    family = Family.PERFORMANCE
    severity = Severity.WARNING
    description = (
        "A rule with any/any endpoints, no conditions, no window and no flow options "
        "matches every packet of its protocol and floods the alert pipeline."
    )
    example_bad = 'rule "Everything" {\n  id 9400005\n  match tcp from any to any\n}\n'
    example_good = (
        'rule "Telnet" {\n  id 9400005\n  match tcp from any to any port 23\n'
        "  where tcp.flags == S\n}\n"
    )

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        rule = linted.rule
        header = rule.header
        if (
            rule.condition is None
            and rule.window is None
            and not rule.thresholds
            and not header.flow
            and _is_any_address(header.source)
            and _is_any_address(header.destination)
            and isinstance(header.source_ports, ast.AnyPort)
            and isinstance(header.destination_ports, ast.AnyPort)
        ):
            found.append(
                self.at(
                    header,
                    linted,
                    f"rule matches every {header.protocol} packet: add endpoints or conditions",
                )
            )
        return found
