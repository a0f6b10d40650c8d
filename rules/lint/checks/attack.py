"""ATT&CK-family checks: technique and tactic tags against the packaged ATT&CK catalog."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rules.attack import TECHNIQUE_ID_PATTERN, AttackCatalogError
from rules.lint.check import Check, LintContext, LintedRule
from rules.lint.diagnostics import Diagnostic, Family, Severity
from rules.lint.walk import token_position

_RULE_HEAD = 'rule "Scan" {\n  id 9300001\n  match tcp from any to any\n'


class _AttackCheck(Check):
    family = Family.ATTACK

    def at_token(self, linted: LintedRule, token: str, message: str) -> Diagnostic:
        line, column = token_position(linted, token)
        return self.diagnostic(
            linted.path,
            line,
            column,
            message,
            rule_id=str(linted.rule.id),
            end_line=line,
            end_column=column + len(token),
        )


class UnknownTechniqueCheck(_AttackCheck):
    code = "ATK001"
    name = "unknown-technique"
    severity = Severity.ERROR
    description = (
        "An `attack` tag that is not an ATT&CK Enterprise technique id (Tnnnn or Tnnnn.nnn)."
    )
    example_bad = _RULE_HEAD + "  attack T1999\n}\n"
    example_good = _RULE_HEAD + "  attack T1046\n}\n"

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        version = context.catalog.attack_version
        for technique_id in linted.rule.techniques:
            if not TECHNIQUE_ID_PATTERN.match(technique_id):
                found.append(
                    self.at_token(
                        linted,
                        technique_id,
                        f"{technique_id!r} is not an ATT&CK technique id (expected T1234 or T1234.001)",
                    )
                )
            elif technique_id not in context.catalog:
                found.append(
                    self.at_token(
                        linted,
                        technique_id,
                        f"{technique_id} is not a technique in ATT&CK v{version}",
                    )
                )
        return found


class DeprecatedTechniqueCheck(_AttackCheck):
    code = "ATK002"
    name = "deprecated-technique"
    severity = Severity.WARNING
    description = "An `attack` tag naming a technique ATT&CK has deprecated (no longer maintained)."
    example_bad = _RULE_HEAD + "  attack T1043\n}\n"
    example_good = _RULE_HEAD + "  attack T1571\n}\n"

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        for technique_id in linted.rule.techniques:
            if technique_id in context.catalog:
                technique = context.catalog.technique(technique_id)
                if technique.deprecated and not technique.revoked:
                    found.append(
                        self.at_token(
                            linted,
                            technique_id,
                            f"{technique_id} ({technique.name}) is deprecated in ATT&CK "
                            f"v{context.catalog.attack_version}",
                        )
                    )
        return found


class RevokedTechniqueCheck(_AttackCheck):
    code = "ATK003"
    name = "revoked-technique"
    severity = Severity.WARNING
    description = (
        "An `attack` tag naming a technique ATT&CK has revoked (merged into another technique); "
        "tag the technique that replaced it."
    )
    example_bad = _RULE_HEAD + "  attack T1086\n}\n"
    example_good = _RULE_HEAD + "  attack T1059.001\n}\n"

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        for technique_id in linted.rule.techniques:
            if technique_id in context.catalog:
                technique = context.catalog.technique(technique_id)
                if technique.revoked:
                    found.append(
                        self.at_token(
                            linted,
                            technique_id,
                            f"{technique_id} ({technique.name}) is revoked in ATT&CK "
                            f"v{context.catalog.attack_version}",
                        )
                    )
        return found


class UnknownTacticCheck(_AttackCheck):
    code = "ATK004"
    name = "unknown-tactic"
    severity = Severity.ERROR
    description = "A `tactic` tag that is not an ATT&CK Enterprise tactic id (TA0007) or name."
    example_bad = _RULE_HEAD + "  attack T1046\n  tactic TA0099\n}\n"
    example_good = _RULE_HEAD + "  attack T1046\n  tactic TA0007\n}\n"

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        for tactic in linted.rule.tactics:
            if not context.catalog.has_tactic(tactic):
                found.append(
                    self.at_token(
                        linted,
                        tactic,
                        f"{tactic!r} is not a tactic in ATT&CK v{context.catalog.attack_version}",
                    )
                )
        return found


class TechniqueTacticMismatchCheck(_AttackCheck):
    code = "ATK005"
    name = "technique-tactic-mismatch"
    severity = Severity.ERROR
    description = (
        "A rule's `attack` technique and `tactic` do not belong together in ATT&CK: the "
        "technique is listed under none of the rule's tactics, or a tactic has none of its techniques."
    )
    example_bad = _RULE_HEAD + "  attack T1046\n  tactic TA0040\n}\n"
    example_good = _RULE_HEAD + "  attack T1046\n  tactic TA0007\n}\n"

    def __init__(self) -> None:
        # Rules repeat technique/tactic pairs; the verdict depends on nothing else.
        self._findings: dict[tuple[Any, ...], tuple[tuple[str, str], ...]] = {}
        self._catalog: Any = None

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        rule = linted.rule
        if not rule.tactics or not rule.techniques:
            return found
        if context.catalog is not self._catalog:
            self._findings = {}
            self._catalog = context.catalog
        key = (rule.techniques, rule.tactics)
        mismatches = self._findings.get(key)
        if mismatches is None:
            mismatches = self._findings[key] = tuple(self._mismatches(rule, context))
        for token, message in mismatches:
            found.append(self.at_token(linted, token, message))
        return found

    @staticmethod
    def _mismatches(rule: Any, context: LintContext) -> Iterable[tuple[str, str]]:
        catalog = context.catalog
        tactics = {}
        for reference in rule.tactics:
            try:
                tactics[reference] = catalog.tactic(reference)
            except AttackCatalogError:
                continue  # unknown-tactic reports it
        techniques = [catalog.technique(t) for t in dict.fromkeys(rule.techniques) if t in catalog]
        if not tactics or not techniques:
            return
        names = {tactic.short_name for tactic in tactics.values()}
        technique_misfit = False
        for technique in techniques:
            if not names & set(technique.tactics):
                technique_misfit = True
                yield (
                    technique.technique_id,
                    f"{technique.technique_id} ({technique.name}) belongs to "
                    f"{', '.join(technique.tactics)}, not to {', '.join(sorted(names))}",
                )
        if technique_misfit:
            return
        for reference, tactic in tactics.items():
            if not any(tactic.short_name in technique.tactics for technique in techniques):
                yield (
                    reference,
                    f"tactic {tactic.tactic_id} ({tactic.short_name}) has none of the rule's "
                    f"techniques ({', '.join(t.technique_id for t in techniques)})",
                )


class MissingAttackMappingCheck(_AttackCheck):
    code = "ATK006"
    name = "missing-attack-mapping"
    severity = Severity.INFO
    description = (
        "A rule with no `attack` technique: its alerts carry no ATT&CK context and it does not "
        "count in `shrike attack coverage`."
    )
    example_bad = _RULE_HEAD + "}\n"
    example_good = _RULE_HEAD + "  attack T1046\n}\n"

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        if not linted.rule.techniques:
            line, column = token_position(linted, "rule")
            found.append(
                self.diagnostic(
                    linted.path,
                    line,
                    column,
                    f"rule {linted.rule.id} has no ATT&CK technique (add `attack Tnnnn`)",
                    rule_id=str(linted.rule.id),
                )
            )
        return found


class RedundantParentTechniqueCheck(_AttackCheck):
    code = "ATK007"
    name = "redundant-parent-technique"
    severity = Severity.INFO
    description = (
        "A rule tags both a technique and one of its sub-techniques; the sub-technique already "
        "implies the parent."
    )
    example_bad = _RULE_HEAD + "  attack T1059, T1059.001\n}\n"
    example_good = _RULE_HEAD + "  attack T1059.001\n}\n"

    def check_rule(self, linted: LintedRule, context: LintContext) -> Iterable[Diagnostic]:
        found: list[Diagnostic] = []
        tagged = set(linted.rule.techniques)
        for technique_id in dict.fromkeys(linted.rule.techniques):
            if "." in technique_id and technique_id.split(".", 1)[0] in tagged:
                parent = technique_id.split(".", 1)[0]
                found.append(
                    self.at_token(
                        linted, parent, f"{parent} is implied by its sub-technique {technique_id}"
                    )
                )
        return found
