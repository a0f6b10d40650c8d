"""Parser speed paths: batched parsing and the fast lexer must read text exactly as chunk-by-chunk Lark does."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from lark import Lark

from rules import RuleParser, ast, parse_collecting
from rules._lexer import FastContextualLexer
from rules.errors import RuleSyntaxError

REPO = Path(__file__).resolve().parents[2]


def _rule(index: int, where: str = "tcp.flags == S") -> str:
    return (
        f'rule "r{index}" {{  # rule {index}\n'
        f"  id {index + 1}\n"
        "  match tcp from $HOME_NET to any port 80 to_server established\n"
        f"  where {where}\n"
        "}\n"
    )


def test_errors_far_apart_in_a_long_file_are_each_reported() -> None:
    # More rules than one batch, so clean batches take the one-call path and
    # the two broken batches are re-parsed rule by rule.
    rules = [_rule(i) for i in range(100)]
    rules[3] = _rule(3, "tcp.flags = S")
    rules[77] = _rule(77, "dsiz > 3")
    result = parse_collecting("\n".join(rules), "long.shrike")
    assert len(result.file.rules) == 98
    assert len(result.file.comments) == 100  # comments of broken rules are kept too
    assert [(e.span.line, e.rule_id) for e in result.errors] == [(22, None), (466, 78)]
    assert isinstance(result.errors[0], RuleSyntaxError)
    spans = [r.span.line for r in result.file.rules]
    assert spans == [i * 6 + 1 for i in range(100) if i not in (3, 77)]


def test_clean_batch_matches_chunk_by_chunk_parsing() -> None:
    text = "\n".join(_rule(i) for i in range(40))
    parser = RuleParser()
    batched = parser.parse_collecting(text, "x.shrike")
    one_by_one = [parser.parse_collecting(_rule(i), "x.shrike").file.rules[0] for i in range(40)]
    assert batched.file.rules == tuple(one_by_one)
    assert all(isinstance(r, ast.Rule) and r.span.column == 1 for r in batched.file.rules)


def test_keyword_at_line_start_inside_a_rule_still_splits_chunks() -> None:
    # `rule` at the start of a line inside a rule body is where chunking cuts;
    # parsing the whole text at once must not quietly accept what chunking rejects.
    text = _rule(0) + 'rule "r1" {\n  id 2\n  classtype\nrule\n  match tcp\n}\n' + _rule(2)
    result = parse_collecting(text, "x.shrike")
    assert [r.title for r in result.file.rules] == ["r0", "r2"]
    assert len(result.errors) == 2


def test_fast_lexer_is_plugged_in_and_lark_raises_its_errors() -> None:
    parser = RuleParser()
    assert isinstance(parser._lark, Lark)
    assert isinstance(parser._lark.parser.lexer, FastContextualLexer)
    result = parser.parse_collecting('rule "x" {\n  id 1\n  match tcp\n  where dsize ; 3\n}\n')
    (error,) = result.errors
    assert (error.span.line, error.span.column) == (4, 15)
    assert "character ';'" in str(error)


def test_statement_span_of_a_match_line_ends_before_its_flow_options() -> None:
    text = (
        'rule "x" {\n  id 1\n  match tcp\n'
        "  match tcp from any to $HOME_NET port 22 to_server established\n}\n"
    )
    (error,) = parse_collecting(text, "x.shrike").errors
    span = error.span
    assert (span.line, span.column, span.end_line, span.end_column) == (4, 3, 4, 42)


def _with_spans(node: object) -> object:
    """The node as nested tuples that include every span (equality alone ignores spans)."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        fields = [(f.name, _with_spans(getattr(node, f.name))) for f in dataclasses.fields(node)]
        return (type(node).__name__, *fields)
    if isinstance(node, tuple | list):
        return tuple(_with_spans(item) for item in node)
    return node


@pytest.mark.parametrize("name", ["all_constructs.shrike", "design.shrike"])
def test_table_driver_builds_what_lark_parse_builds(name: str) -> None:
    text = (REPO / "docs" / "examples" / name).read_text()
    fast = RuleParser()
    assert fast._driver is not None
    plain = RuleParser()
    plain._driver = None  # batches then go through Lark.parse
    assert _with_spans(fast.parse_collecting(text, name)) == _with_spans(
        plain.parse_collecting(text, name)
    )
