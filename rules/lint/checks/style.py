"""Style-family checks: conventions that keep a signature library readable and its alerts useful."""

from __future__ import annotations

from collections.abc import Iterable

from rules import ast
from rules.lint.check import Check, LintContext, LintedRule
from rules.lint.diagnostics import Diagnostic, Family, Severity
from rules.lint.walk import position, token_position

MAX_TITLE_LENGTH = 100
# Snort reserves sids below 1,000,000 for Talos rules; local rules start above them.
FIRST_LOCAL_RULE_ID = 1_000_000


class MissingSeverityCheck(Check):
    code = "STY001"
    name = "missing-severity"
    family = Family.STYLE
    severity = Severity.INFO
    description = "A rule without `severity`: its alerts fall back to the default and cannot be triaged by it."
    example_bad = 'rule "Telnet login" {\n  id 9500001\n  match tcp from any to any port 23\n}\n'
    example_good = 'rule "Telnet login" {\n  id 9500001\n  severity low\n  match tcp from any to any port 23\n}\n'

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        if linted.rule.severity is None:
            line, column, _, _ = position(linted.rule, linted)
            found.append(
                self.diagnostic(
                    linted.path,
                    line,
                    column,
                    f"rule {linted.rule.id} has no severity",
                    rule_id=str(linted.rule.id),
                )
            )
        return found


class TitleFormatCheck(Check):
    code = "STY002"
    name = "title-format"
    family = Family.STYLE
    severity = Severity.WARNING
    description = (
        f"A rule title that is empty, has leading or trailing blanks, ends with a full stop or "
        f"is longer than {MAX_TITLE_LENGTH} characters (titles become alert messages)."
    )
    example_bad = (
        'rule "Telnet login attempt. " {\n  id 9500002\n  match tcp from any to any port 23\n}\n'
    )
    example_good = (
        'rule "Telnet login attempt" {\n  id 9500002\n  match tcp from any to any port 23\n}\n'
    )

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        title = linted.rule.title
        problems = []
        if not title.strip():
            problems.append("is empty")
        else:
            if title != title.strip():
                problems.append("has leading or trailing blanks")
            if title.rstrip().endswith("."):
                problems.append("ends with a full stop")
            if len(title) > MAX_TITLE_LENGTH:
                problems.append(f"is {len(title)} characters long (max {MAX_TITLE_LENGTH})")
        if problems:
            line, column, _, _ = position(linted.rule, linted)
            found.append(
                self.diagnostic(
                    linted.path,
                    line,
                    column,
                    "title " + " and ".join(problems),
                    rule_id=str(linted.rule.id),
                )
            )
        return found


class DuplicateTechniqueCheck(Check):
    code = "STY003"
    name = "duplicate-technique"
    family = Family.STYLE
    severity = Severity.INFO
    description = "The same ATT&CK technique is listed twice on one rule."
    example_bad = (
        'rule "Scan" {\n  id 9500003\n  match tcp from any to any\n  attack T1046, T1046\n}\n'
    )
    example_good = 'rule "Scan" {\n  id 9500003\n  match tcp from any to any\n  attack T1046\n}\n'

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        seen: set[str] = set()
        for technique_id in linted.rule.techniques:
            if technique_id in seen:
                line, column = token_position(linted, technique_id)
                found.append(
                    self.diagnostic(
                        linted.path,
                        line,
                        column,
                        f"{technique_id} is listed more than once",
                        rule_id=str(linted.rule.id),
                    )
                )
            seen.add(technique_id)
        return found


class UnknownSuppressionCheck(Check):
    """Reported by the lint runner, which reads the `# shrike:` comments."""

    code = "STY004"
    name = "unknown-suppression"
    family = Family.STYLE
    severity = Severity.WARNING
    description = (
        "A `# shrike: disable=...` comment naming a code or check that does not exist, so it "
        "silences nothing."
    )
    example_bad = (
        "# shrike: disable=ATK999\n"
        'rule "Scan" {\n  id 9500004\n  severity low\n  match tcp from any to any port 23\n}\n'
    )
    example_good = (
        "# shrike: disable=missing-attack-mapping\n"
        'rule "Scan" {\n  id 9500004\n  severity low\n  match tcp from any to any port 23\n}\n'
    )

    def for_directive(self, path: str, line: int, column: int, selector: str) -> Diagnostic:
        return self.diagnostic(
            path, line, column, f"suppression names {selector!r}, which is not a lint code or check"
        )


class ReservedRuleIdCheck(Check):
    code = "STY005"
    name = "reserved-rule-id"
    family = Family.STYLE
    severity = Severity.INFO
    description = (
        f"A rule id below {FIRST_LOCAL_RULE_ID:,}: that range belongs to Snort's published "
        "rules, so a local rule there can collide with an imported one."
    )
    example_bad = 'rule "Local" {\n  id 4242\n  match tcp from any to any port 23\n}\n'
    example_good = 'rule "Local" {\n  id 9500005\n  match tcp from any to any port 23\n}\n'

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        if linted.rule.id < FIRST_LOCAL_RULE_ID:
            line, column = token_position(linted, str(linted.rule.id))
            found.append(
                self.diagnostic(
                    linted.path,
                    line,
                    column,
                    f"id {linted.rule.id} is in the range reserved for Snort rules "
                    f"(use {FIRST_LOCAL_RULE_ID:,} or above)",
                    rule_id=str(linted.rule.id),
                )
            )
        return found


class UselessNocaseCheck(Check):
    code = "STY006"
    name = "useless-nocase"
    family = Family.STYLE
    severity = Severity.INFO
    description = "`nocase` on a pattern with no letters changes nothing and misleads readers."
    example_bad = (
        'rule "Magic" {\n  id 9500006\n  match tcp from any to any\n'
        "  where pkt_data contains |00 01 02 03| nocase\n}\n"
    )
    example_good = (
        'rule "Magic" {\n  id 9500006\n  match tcp from any to any\n'
        "  where pkt_data contains |00 01 02 03|\n}\n"
    )

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        for sequence in linted.sequences:
            for item in sequence.items:
                if isinstance(item, ast.Content) and item.nocase and not _has_letters(item.pattern):
                    found.append(
                        self.at(
                            item,
                            linted,
                            "nocase has no effect: the pattern contains no letters",
                        )
                    )
        return found


def _has_letters(pattern: bytes) -> bool:
    return any(65 <= b <= 90 or 97 <= b <= 122 for b in pattern)
