"""Property tests: any text yields located diagnostics or an AST, never an uncaught exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import RuleError, parse_collecting, parse_text
from rules.formatter import format_rule_file

FRAGMENTS = [
    'rule "t" {',
    "}",
    "id 1",
    "match tcp",
    "match http",
    "where",
    "and",
    "or",
    "not",
    "(",
    ")",
    "ip.ttl",
    "==",
    "<",
    "5",
    "-3",
    "0x1f",
    "1.5",
    '"x"',
    "|4d 5a|",
    "|4|",
    "pkt_data",
    "http.uri",
    "contains",
    "nocase",
    "distance",
    "within",
    "offset",
    "fast_pattern",
    "only",
    "matches",
    "/a\\/b/i",
    "{",
    "byte_test(bytes 4, offset 0, > 5)",
    "isdataat(",
    ",",
    "flowbits",
    "isset",
    "set",
    "a.b",
    "&",
    "window 60s by src.ip: count() > 5",
    "threshold limit 1 per 60s by src",
    "from",
    "to",
    "$HOME_NET",
    "port",
    "[80, 90..]",
    "!",
    "10.0.0.0/8",
    "::1",
    "established",
    "in",
    "1..5",
    "<>",
    "#c\n",
    "\n",
    "include",
    "addresses",
    "ports",
    "=",
    'alert tcp any any -> any any (msg:"x";)',
    "severity",
    "high",
    "attack",
    "T1046",
    "option",
    "disabled",
    "tcp.flags",
    "has",
    "S",
    "ignoring",
]


def _check(text: str) -> None:
    result = parse_collecting(text, "fuzz.shrike")
    for error in result.errors:
        assert isinstance(error, RuleError)
        assert error.span.file == "fuzz.shrike"
        assert error.span.line >= 1
        error.render()
    if not result.errors and result.file.statements:
        # Whatever parses must print back to text that parses to the same AST.
        again = parse_text(format_rule_file(result.file))
        assert again == result.file


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(" ".join))
def test_token_soup_never_crashes(text: str) -> None:
    _check(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _check(text)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["ip.ttl", "dsize", "icmp.type", "tcp.window"]),
    st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.binary(max_size=30),
)
def test_generated_rules_round_trip(field: str, op: str, number: int, pattern: bytes) -> None:
    from rules.formatter import pattern_text

    text = (
        f'rule "g" {{ id 1 match tcp where {field} {op} {number}'
        f" and pkt_data contains {pattern_text(pattern) if pattern else '|00|'} nocase }}"
    )
    _check(text)
    parsed = parse_text(text)
    assert parsed.rules[0].condition is not None
