"""The per-rule facts lint checks share (one walk of the condition) and the paused collector."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from rules import ast, parse_text
from rules._fast_gc import collector_paused
from rules.attack import load_catalog
from rules.lint.check import LintContext, LintedRule
from rules.lint.checks.attack import TechniqueTacticMismatchCheck
from rules.lint.walk import conditions, variable_uses

ALL_CONSTRUCTS = Path(__file__).resolve().parents[2] / "docs/examples/all_constructs.shrike"


def _rules() -> tuple[ast.Rule, ...]:
    return parse_text(ALL_CONSTRUCTS.read_text(encoding="utf-8")).rules


@pytest.mark.parametrize("index", range(len(_rules())))
def test_one_walk_gives_what_separate_walks_give(index: int) -> None:
    rule = _rules()[index]
    linted = LintedRule("t.shrike", rule)
    nodes = tuple(conditions(rule.condition))
    assert linted.condition_nodes == nodes
    assert linted.sequences == tuple(n for n in nodes if isinstance(n, ast.Sequence))
    assert linted.flowbit_tests == tuple(n for n in nodes if isinstance(n, ast.Flowbits))
    assert linted.regexes == tuple(
        item for s in linted.sequences for item in s.items if isinstance(item, ast.Regex)
    )
    assert linted.memo == {}


def test_walked_facts_are_per_rule_and_do_not_change_equality() -> None:
    first, second = _rules()[:2]
    a, b = LintedRule("t", first), LintedRule("t", second)
    a.memo["x"] = 1
    assert b.memo == {}
    assert a == LintedRule("t", first)
    assert LintedRule("t", ast.Rule("t", 1, ast.Header("tcp"))).condition_nodes == ()


def test_variable_uses_are_in_order_header_first() -> None:
    rule = parse_text(
        'rule "v" {\n  id 9000001\n'
        "  match tcp from [$A, !$B] port $P to !$C port [$Q, 80]\n"
        "  where ip.src in $D and ip.dst in [$E, 10.0.0.1] and not ip.ttl == 5\n}\n"
    ).rules[0]
    names = [use.name for use in variable_uses(rule)]
    assert names == ["A", "B", "P", "C", "Q", "D", "E"]
    assert variable_uses(rule, LintedRule("t", rule).condition_nodes) == variable_uses(rule)


def test_technique_tactic_verdicts_follow_the_catalog_in_use() -> None:
    rule = ast.Rule("t", 9000001, ast.Header("tcp"), techniques=("T1046",), tactics=("TA0040",))
    check = TechniqueTacticMismatchCheck()
    linted = LintedRule("t", rule)
    context = LintContext(catalog=load_catalog())
    first = list(check.check_rule(linted, context))
    assert [d.code for d in first] == ["ATK005"]
    assert list(check.check_rule(linted, context)) == first  # from the memo, same diagnostics
    fitting = ast.Rule("t", 9000002, ast.Header("tcp"), techniques=("T1046",), tactics=("TA0007",))
    assert list(check.check_rule(LintedRule("t", fitting), context)) == []


def test_collector_is_paused_and_restored() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before, so it stays off
    finally:
        gc.enable()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError
    assert gc.isenabled()


def test_objects_made_while_paused_leave_the_young_generation_without_a_collection() -> None:
    gc.collect()
    collections = gc.get_stats()[0]["collections"]
    with collector_paused():
        made = [[index] for index in range(50_000)]  # tracked objects, far over gen0's threshold
    assert gc.get_count()[0] < gc.get_threshold()[0]
    assert gc.get_stats()[0]["collections"] == collections
    assert gc.get_freeze_count() == 0
    assert len(made) == 50_000


def test_objects_an_application_froze_stay_frozen() -> None:
    gc.collect()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector_paused():
            made = [[index] for index in range(1_000)]
        assert gc.get_freeze_count() == frozen
        assert len(made) == 1_000
    finally:
        gc.unfreeze()


def test_linted_rules_built_in_bulk_equal_those_built_one_by_one() -> None:
    regex = ast.Regex("a+b", "")
    rule = ast.Rule(
        "t", 9000003, ast.Header("tcp"), condition=ast.Sequence(ast.Buffer("pkt_data"), (regex,))
    )
    lines = ["rule ..."]
    (bulk,) = LintedRule.of_rules("f.shrike", [rule], lines)
    single = LintedRule("f.shrike", rule, lines)
    assert bulk == single
    assert hash(bulk) == hash(single)
    assert bulk.source_lines is lines
    assert bulk.regexes == single.regexes == (regex,)
