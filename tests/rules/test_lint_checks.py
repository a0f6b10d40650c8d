"""Behaviour of individual lint checks beyond their documented examples, compared as Diagnostics."""

from __future__ import annotations

from dataclasses import replace

from rules import ast
from rules.attack import load_catalog
from rules.lint.check import LintContext, LintedRule
from rules.lint.checks.attack import TechniqueTacticMismatchCheck, UnknownTechniqueCheck
from rules.lint.checks.performance import HyperscanIncompatibleRegexCheck, NoFastPatternCheck
from rules.lint.checks.semantic import (
    ContradictoryConditionsCheck,
    DuplicateRuleIdCheck,
    FlowbitNeverSetCheck,
    RelativeWithoutAnchorCheck,
    UndefinedVariableCheck,
)
from rules.lint.config import LintConfig
from rules.lint.diagnostics import Diagnostic, Severity
from rules.lint.runner import Linter, lint_text, parse_shrike_source

CONTEXT = LintContext(catalog=load_catalog())


def _codes(text: str, **config: object) -> list[str]:
    report = Linter(LintConfig(**config)).lint(  # type: ignore[arg-type]
        [parse_shrike_source("t.shrike", text)]
    )
    return [d.code for d in report.diagnostics]


def _rule(condition: ast.Condition | None = None, **fields: object) -> ast.Rule:
    values: dict[str, object] = {"title": "t", "id": 9000001, "header": ast.Header("tcp")}
    values.update(fields)
    return ast.Rule(condition=condition, **values)  # type: ignore[arg-type]


def _dsize(operator: str, value: object) -> ast.Comparison:
    return ast.Comparison(ast.FieldRef("dsize"), operator, value)  # type: ignore[arg-type]


def _contradictions(*operands: ast.Condition) -> list[str]:
    rule = _rule(ast.And(operands))
    check = ContradictoryConditionsCheck()
    return [d.message for d in check.check_rule(LintedRule("t.shrike", rule), CONTEXT)]


def test_contradiction_is_reported_as_an_equal_diagnostic() -> None:
    text = (
        'rule "Never" {\n  id 9000001\n  match udp from any to any\n'
        "  where dsize > 100 and dsize < 10\n}\n"
    )
    report = lint_text(text, "never.shrike", LintConfig(select=("SEM003",)))
    # The end column is the parser's span of the comparison; only the start is the linter's.
    assert tuple(replace(d, end_column=None) for d in report.diagnostics) == (
        Diagnostic(
            path="never.shrike",
            line=4,
            column=25,
            code="SEM003",
            name="contradictory-conditions",
            severity=Severity.ERROR,
            message="conditions on dsize can never hold together: dsize > 100 and dsize < 10",
            rule_id="9000001",
            end_line=4,
            end_column=None,
        ),
    )


def test_contradictions_over_integers_and_ranges() -> None:
    assert _contradictions(_dsize(">", 3), _dsize("<", 4))  # no integer strictly between
    assert not _contradictions(_dsize(">=", 3), _dsize("<=", 3))  # exactly 3
    assert _contradictions(_dsize("==", 1), _dsize("==", 2))
    assert _contradictions(_dsize("in", ast.Range(10, 20)), _dsize(">", 20))
    assert not _contradictions(_dsize("in", ast.Range(10, 20)), _dsize(">", 19))
    assert _contradictions(_dsize("in", ast.Range(10, 11, inclusive=False)), _dsize(">", 0))
    assert not _contradictions(_dsize(">", 3.5), _dsize("<", 3.7))  # floats fit between
    assert not _contradictions(_dsize("!=", 3), _dsize("==", 4))


def test_contradiction_under_not_or_across_or_is_not_reported() -> None:
    both = ast.And((_dsize(">", 100), _dsize("<", 10)))
    negated = _rule(ast.Not(both))
    check = ContradictoryConditionsCheck()
    assert list(check.check_rule(LintedRule("t", negated), CONTEXT)) == []
    either = _rule(ast.Or((_dsize(">", 100), _dsize("<", 10))))
    assert list(check.check_rule(LintedRule("t", either), CONTEXT)) == []
    nested = _rule(ast.Or((both, _dsize("==", 5))))
    assert len(list(check.check_rule(LintedRule("t", nested), CONTEXT))) == 1


def test_duplicate_id_is_reported_once_per_repeat_across_files() -> None:
    first = LintedRule("a.shrike", _rule(title="one"))
    second = LintedRule("b.shrike", _rule(title="two"))
    other_gid = LintedRule("c.shrike", _rule(title="three", gid=3))
    found = list(DuplicateRuleIdCheck().check_ruleset([first, second, other_gid], CONTEXT))
    assert [(d.path, d.rule_id) for d in found] == [("b.shrike", "9000001")]
    assert "already used by 'one' at a.shrike" in found[0].message


def test_undefined_variable_sees_definitions_and_condition_values() -> None:
    header = ast.Header("tcp", destination=ast.AddressVariable("HOME_NET"))
    rule = _rule(
        ast.Comparison(ast.FieldRef("src.ip"), "in", ast.AddressVariable("BAD_HOSTS")),
        header=header,
    )
    check = UndefinedVariableCheck()
    context = LintContext(catalog=load_catalog(), defined_variables=frozenset({"HOME_NET"}))
    messages = [d.message for d in check.check_rule(LintedRule("t", rule), context)]
    assert messages == ["variable $BAD_HOSTS is not defined"]


def test_variables_from_configuration_count_as_defined() -> None:
    text = 'rule "r" {\n  id 9000001\n  match tcp from any to $HOME_NET port 22\n}\n'
    assert "SEM002" in _codes(text)
    assert "SEM002" not in _codes(text, variables=frozenset({"HOME_NET"}))


def test_relative_matchers_need_an_earlier_positive_match() -> None:
    negated_first = ast.Sequence(
        ast.Buffer("pkt_data"),
        (ast.Content(b"abc", negated=True), ast.Content(b"def", distance=0)),
    )
    anchored = ast.Sequence(
        ast.Buffer("pkt_data"), (ast.Content(b"abc"), ast.Content(b"def", within=10))
    )
    byte_test = ast.Sequence(ast.Buffer("pkt_data"), (ast.ByteTest(2, ">", 10, 0, relative=True),))
    check = RelativeWithoutAnchorCheck()

    def found(sequence: ast.Sequence) -> int:
        return len(list(check.check_rule(LintedRule("t", _rule(sequence)), CONTEXT)))

    assert found(negated_first) == 1
    assert found(anchored) == 0
    assert found(byte_test) == 1


def test_flowbit_sets_and_tests_are_matched_by_kind_and_name() -> None:
    setter = _rule(bit_actions=(ast.Flowbits("flowbits", "set", ("stage1",)),))
    xbits_setter = _rule(id=2, bit_actions=(ast.Flowbits("xbits", "set", ("stage2",)),))
    tester = _rule(
        ast.And(
            (
                ast.Flowbits("flowbits", "isset", ("stage1",)),
                ast.Flowbits("flowbits", "isset", ("stage2",)),
                ast.Flowbits("flowbits", "isnotset", ("never",)),
            )
        ),
        id=3,
    )
    either = _rule(ast.Flowbits("flowbits", "isset", ("stage1", "nowhere"), operator="|"), id=4)
    both = _rule(ast.Flowbits("flowbits", "isset", ("stage1", "nowhere"), operator="&"), id=5)
    rules = [LintedRule("t", r) for r in (setter, xbits_setter, tester, either, both)]
    messages = [d.message for d in FlowbitNeverSetCheck().check_ruleset(rules, CONTEXT)]
    # stage2 is set only as an xbit, a separate namespace; isnotset is not a dependency.
    # `stage1|nowhere` can still hold; `stage1&nowhere` cannot.
    assert messages == [
        "flowbits 'stage2' is tested but no rule sets it",
        "flowbits 'nowhere' is tested but no rule sets it",
    ]


def test_fast_pattern_needs_a_literal_in_every_or_branch() -> None:
    literal = ast.Sequence(ast.Buffer("pkt_data"), (ast.Content(b"GET "),))
    regex = ast.Sequence(ast.Buffer("pkt_data"), (ast.Regex("a+b"),))
    check = NoFastPatternCheck()

    def flagged(condition: ast.Condition) -> bool:
        return bool(list(check.check_rule(LintedRule("t", _rule(condition)), CONTEXT)))

    assert not flagged(literal)
    assert flagged(regex)
    assert flagged(ast.Or((literal, regex)))
    assert not flagged(ast.And((literal, regex)))
    assert flagged(ast.Not(literal))
    assert flagged(
        ast.Sequence(ast.Buffer("pkt_data"), (ast.Content(b"GET ", negated=True), ast.Regex("x")))
    )


def test_hyperscan_check_is_skipped_without_the_package() -> None:
    text = (
        'rule "r" {\n  id 9000001\n  match tcp from any to any port 80\n'
        '  where pkt_data { contains "<" matches /(a)\\1/ }\n}\n'
    )
    source = parse_shrike_source("t.shrike", text)
    without = Linter(LintConfig(select=("PRF003",)), hyperscan=None).lint([source])
    assert without.diagnostics == ()
    assert without.notes == (
        "PRF003 hyperscan-incompatible-regex skipped: the hyperscan package is not installed",
    )
    check = HyperscanIncompatibleRegexCheck()
    assert check.available(LintContext(catalog=load_catalog())) is not None


def test_hyperscan_check_reports_the_compiler_message() -> None:
    import pytest

    hyperscan = pytest.importorskip("hyperscan")
    rule = _rule(ast.Sequence(ast.Buffer("pkt_data"), (ast.Content(b"<"), ast.Regex("(?<=a)b"))))
    context = LintContext(catalog=load_catalog(), hyperscan=hyperscan)
    found = list(HyperscanIncompatibleRegexCheck().check_rule(LintedRule("t", rule), context))
    assert len(found) == 1
    assert "Zero-width assertions are not supported" in found[0].message
    extended = _rule(ast.Sequence(ast.Buffer("pkt_data"), (ast.Regex("a b # note", flags="x"),)))
    assert (
        list(HyperscanIncompatibleRegexCheck().check_rule(LintedRule("t", extended), context)) == []
    )
    flags_only = _rule(ast.Sequence(ast.Buffer("pkt_data"), (ast.Regex("abc", flags="iRU"),)))
    assert (
        list(HyperscanIncompatibleRegexCheck().check_rule(LintedRule("t", flags_only), context))
        == []
    )


def test_malformed_technique_id_from_an_importer_is_reported() -> None:
    rule = _rule(techniques=("t1046", "T1046"))
    messages = [
        d.message for d in UnknownTechniqueCheck().check_rule(LintedRule("t", rule), CONTEXT)
    ]
    assert messages == ["'t1046' is not an ATT&CK technique id (expected T1234 or T1234.001)"]


def test_tactic_with_none_of_the_rules_techniques() -> None:
    # T1078 Valid Accounts fits initial-access; impact has none of the rule's techniques.
    rule = _rule(techniques=("T1078",), tactics=("TA0001", "TA0040"))
    messages = [
        d.message for d in TechniqueTacticMismatchCheck().check_rule(LintedRule("t", rule), CONTEXT)
    ]
    assert messages == ["tactic TA0040 (impact) has none of the rule's techniques (T1078)"]
    fitting = _rule(techniques=("T1078",), tactics=("TA0001", "TA0003"))
    assert list(TechniqueTacticMismatchCheck().check_rule(LintedRule("t", fitting), CONTEXT)) == []


def test_ten_broken_rules_give_ten_syntax_diagnostics() -> None:
    broken = "".join(
        f'rule "broken {n}" {{\n  id {9000000 + n}\n  match tcp from any to any port 9999{n}\n}}\n'
        for n in range(10)
    )
    report = lint_text(broken, "broken.shrike", LintConfig(select=("syntax",)))
    assert [d.code for d in report.diagnostics] == ["SYN002"] * 10
    assert [d.line for d in report.diagnostics] == [3 + 4 * n for n in range(10)]
    assert [d.rule_id for d in report.diagnostics] == [str(9000000 + n) for n in range(10)]
