"""Splitting rule files: continuations, commented-out rules, quoting, locations."""

from __future__ import annotations

from integrations.snort.tokenize import RawRule, Unreadable, iter_rules

TEXT = """\
# Emerging Threats: a prose comment, not a rule
alert tcp $HOME_NET any -> $EXTERNAL_NET 80 (msg:"semi\\;colon"; \\
    content:"a|3b|b"; sid:1; rev:2;)

#alert udp any any -> any 53 (msg:"off"; content:"x"; sid:2;)
# alert is what this comment talks about
alert http (msg:"snort3 service rule"; http_uri; content:"/a;b",nocase; sid:3;)
alert tcp any any -> any any (msg:"odd quote"; pcre:"/['"]x/i"; sid:4;)
alert tcp any any -> any any msg:"no parens"; sid:5;
"""


def rules() -> list[RawRule | Unreadable]:
    return list(iter_rules(TEXT, "t.rules"))


def test_finds_every_rule_in_order_with_its_line() -> None:
    found = rules()
    assert [type(r).__name__ for r in found] == ["RawRule"] * 4 + ["Unreadable"]
    first = found[0]
    assert isinstance(first, RawRule)
    assert (first.location.line, first.location.column) == (2, 1)
    assert first.sid == 1
    assert [o.name for o in first.options] == ["msg", "content", "sid", "rev"]


def test_continuation_lines_keep_their_own_line_numbers() -> None:
    first = rules()[0]
    assert isinstance(first, RawRule)
    content = first.options[1]
    assert content.value == '"a|3b|b"'
    assert (content.location.line, content.location.column) == (3, 5)


def test_commented_out_rule_is_kept_and_marked() -> None:
    second = rules()[1]
    assert isinstance(second, RawRule)
    assert second.commented and second.sid == 2
    assert second.location.line == 5


def test_quoted_semicolons_and_snort3_headers() -> None:
    third = rules()[2]
    assert isinstance(third, RawRule)
    assert third.header == ("http",)
    assert third.options[2].value == '"/a;b",nocase'


def test_odd_quote_inside_pcre_ends_at_semicolon() -> None:
    fourth = rules()[3]
    assert isinstance(fourth, RawRule)
    assert fourth.options[1].value == '"/[\'"]x/i"'
    assert fourth.sid == 4


def test_rule_without_option_list_is_reported_not_dropped() -> None:
    broken = rules()[4]
    assert isinstance(broken, Unreadable)
    assert "no option list" in broken.error.message
    assert broken.error.location.line == 9
    assert "sid:5" in broken.text


def test_address_lists_with_blanks_stay_one_word() -> None:
    (rule,) = iter_rules("alert tcp [10.0.0.1, 10.0.0.2] any -> any [80, 443] (sid:9;)")
    assert isinstance(rule, RawRule)
    assert rule.header == ("tcp", "[10.0.0.1,10.0.0.2]", "any", "->", "any", "[80,443]")
