"""Fuzzing the parser and linter together: any text yields diagnostics (or a clean report), never a crash."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.lint.diagnostics import LintReport
from rules.lint.runner import lint_text

SEED_RULE = (
    "addresses HOME_NET = [10.0.0.0/8, !10.1.0.0/16]\n"
    "# shrike: disable=STY001\n"
    'rule "Seed" {\n  id 9000001 rev 2\n  severity high\n  attack T1046, T1059.001\n'
    "  tactic TA0007\n  match tcp from any to $HOME_NET port [22, 80..90] to_server established\n"
    '  where tcp.flags == S and dsize > 10 and dsize < 5 and http.uri { contains "GET" nocase\n'
    '    contains "x" distance 0 within 4 matches /a(b)+\\1/i byte_test(bytes 2, > 10, offset 0, relative) }\n'
    "    and flowbits isset seen and not ip.ttl in 1..3\n"
    "  flowbits set other\n"
    "  window 60s by src.ip: distinct(dst.port) >= 25\n}\n"
)
TOKENS = [
    "rule",
    '"t"',
    "{",
    "}",
    "id",
    "1",
    "9000001",
    "match",
    "tcp",
    "udp",
    "icmp",
    "ip",
    "from",
    "to",
    "any",
    "port",
    "$HOME_NET",
    "where",
    "and",
    "or",
    "not",
    "(",
    ")",
    "dsize",
    ">",
    "<",
    "==",
    "..",
    "pkt_data",
    "contains",
    '"abc"',
    "|00 01|",
    "distance",
    "within",
    "depth",
    "matches",
    "/a+/i",
    "flowbits",
    "isset",
    "set",
    "x",
    "window",
    "60s",
    "by",
    "src.ip",
    ":",
    "count()",
    ">=",
    "attack",
    "T1046",
    "T9999",
    "tactic",
    "TA0040",
    "severity",
    "high",
    "byte_test(",
    ",",
    "relative",
    "addresses",
    "=",
    "[",
    "]",
    "!",
    "include",
    "\n",
    " ",
    "# shrike: disable=ALL\n",
    "# shrike: disable=NOPE\n",
]


def _assert_well_formed(report: LintReport) -> None:
    for diagnostic in report.diagnostics:
        assert diagnostic.line >= 1 and diagnostic.column >= 1
        assert diagnostic.code[:3] in {"SYN", "SEM", "ATK", "PRF", "STY"}
        assert diagnostic.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _assert_well_formed(lint_text(text, "fuzz.shrike"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=80).map(" ".join))
def test_token_soup_never_crashes(text: str) -> None:
    _assert_well_formed(lint_text(text, "fuzz.shrike"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(SEED_RULE)),
            st.integers(min_value=0, max_value=6),
            st.text(max_size=6),
        ),
        max_size=4,
    )
)
def test_mutated_valid_rule_never_crashes(edits: list[tuple[int, int, str]]) -> None:
    text = SEED_RULE
    for position, deleted, inserted in edits:
        text = text[:position] + inserted + text[position + deleted :]
    _assert_well_formed(lint_text(text, "fuzz.shrike"))


def test_seed_rule_is_itself_interesting() -> None:
    """The seed reaches deep checks, so its mutations exercise them."""
    codes = {d.code for d in lint_text(SEED_RULE, "seed.shrike").diagnostics}
    assert {"SEM003", "SEM006", "SEM007"} <= codes
