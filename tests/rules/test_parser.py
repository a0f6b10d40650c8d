"""Parser tests: each construct parses to the expected AST; errors are located and helpful."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules import RuleErrors, ast, parse_collecting, parse_file, parse_text
from rules.errors import RuleSyntaxError, UnknownFieldError, VariableError
from rules.formatter import format_rule
from rules.variables import VariableTable, check_variables, load_ruleset, load_variables

REPO = Path(__file__).resolve().parents[2]


def one_rule(body: str) -> ast.Rule:
    rules = parse_text(f'rule "t" {{\n  id 1\n{body}\n}}\n', "t.shrike").rules
    assert len(rules) == 1
    return rules[0]


def condition(where: str, match: str = "match tcp") -> ast.Condition:
    rule = one_rule(f"  {match}\n  where {where}")
    assert rule.condition is not None
    return rule.condition


def seq(buffer: str, *items: ast.SequenceItem) -> ast.Sequence:
    return ast.Sequence(ast.Buffer(buffer), tuple(items))


def test_design_examples_parse_to_expected_ast() -> None:
    text = (REPO / "docs" / "examples" / "design.shrike").read_text()
    scan, exe = parse_text(text).rules
    assert scan == ast.Rule(
        title="TCP SYN scan from one source",
        id=9000001,
        rev=2,
        severity="high",
        techniques=("T1046",),
        header=ast.Header("tcp", destination=ast.AddressVariable("HOME_NET")),
        condition=ast.Comparison(ast.FieldRef("tcp.flags"), "==", ast.Symbol("S")),
        window=ast.Window(
            ast.Duration(60, "s"),
            (ast.FieldRef("src.ip"),),
            ast.Aggregate("distinct", ast.FieldRef("dst.port")),
            ">=",
            25,
        ),
    )
    assert exe.header.flow == ("to_client", "established")
    assert exe.condition == ast.And(
        (
            ast.Comparison(ast.FieldRef("http.stat_code"), "==", 200),
            seq("file_data", ast.Content(b"MZ", startswith=True)),
            ast.Not(seq("http.host", ast.Content(b".windowsupdate.com", endswith=True))),
        )
    )


def test_metadata_statements() -> None:
    rule = one_rule(
        """  rev 4
  gid 3
  action drop
  disabled
  severity critical
  priority 1
  classtype trojan-activity
  attack T1071.001, T1105
  tactic TA0011
  tags c2, "needs review"
  author "Jane"
  reference url "example.com/x"
  reference cve "2021-44228"
  meta created_at "2024_01_02"
  meta created_at 2025
  service http, ssl
  match ip
  option tag "session,10,packets"
  flowbits set a.b & c group g
  threshold both 5 per 2m by dst
  detection_filter 3 per 10s by rule"""
    )
    assert (rule.rev, rule.gid, rule.action, rule.enabled) == (4, 3, "drop", False)
    assert (rule.severity, rule.priority, rule.classtype) == ("critical", 1, "trojan-activity")
    assert rule.techniques == ("T1071.001", "T1105") and rule.tactics == ("TA0011",)
    assert rule.tags == ("c2", "needs review") and rule.author == "Jane"
    assert rule.references == (
        ast.Reference("url", "example.com/x"),
        ast.Reference("cve", "2021-44228"),
    )
    assert rule.metadata == (
        ast.MetadataEntry("created_at", "2024_01_02"),
        ast.MetadataEntry("created_at", "2025"),
    )
    assert rule.services == ("http", "ssl")
    assert rule.options == (ast.OpaqueOption("tag", "session,10,packets"),)
    assert rule.bit_actions == (ast.Flowbits("flowbits", "set", ("a.b", "c"), "&", "g"),)
    assert rule.thresholds == (
        ast.Threshold("both", 5, 120, "dst"),
        ast.Threshold("detection_filter", 3, 10, "rule"),
    )


@pytest.mark.parametrize(
    ("match", "header"),
    [
        ("match udp", ast.Header("udp")),
        (
            "match tcp from [10.0.0.0/8, !10.1.0.0/16] port !22 to any port [80, 8000..8080, 9000.., ..10]",
            ast.Header(
                "tcp",
                source=ast.AddressList(
                    (ast.IpAddress("10.0.0.0/8"), ast.NegatedAddress(ast.IpAddress("10.1.0.0/16")))
                ),
                source_ports=ast.NegatedPort(ast.PortNumber(22)),
                destination_ports=ast.PortList(
                    (
                        ast.PortNumber(80),
                        ast.PortRange(8000, 8080),
                        ast.PortRange(9000, None),
                        ast.PortRange(None, 10),
                    )
                ),
            ),
        ),
        (
            "match dns between $HOME_NET port $DNS_PORTS and 2001:db8::/32 stateless",
            ast.Header(
                "dns",
                source=ast.AddressVariable("HOME_NET"),
                source_ports=ast.PortVariable("DNS_PORTS"),
                direction="<>",
                destination=ast.IpAddress("2001:db8::/32"),
                flow=("stateless",),
            ),
        ),
        (
            "match tls to $EXTERNAL_NET to_server",
            ast.Header("tls", destination=ast.AddressVariable("EXTERNAL_NET"), flow=("to_server",)),
        ),
    ],
)
def test_headers(match: str, header: ast.Header) -> None:
    assert one_rule(f"  {match}").header == header


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("ip.ttl < 5", ast.Comparison(ast.FieldRef("ip.ttl"), "<", 5)),
        ("dsize in 10..20", ast.Comparison(ast.FieldRef("dsize"), "in", ast.Range(10, 20))),
        ("dsize in 10<>20", ast.Comparison(ast.FieldRef("dsize"), "in", ast.Range(10, 20, False))),
        (
            "tcp.flags has SA ignoring 12",
            ast.Comparison(ast.FieldRef("tcp.flags"), "has", ast.Symbol("SA"), "12"),
        ),
        (
            "ip.options has_any rr",
            ast.Comparison(ast.FieldRef("ip.options"), "has_any", ast.Symbol("rr")),
        ),
        ("ip.src == ip.dst", ast.Comparison(ast.FieldRef("ip.src"), "==", ast.FieldRef("ip.dst"))),
        (
            "ip.dst in $HOME_NET",
            ast.Comparison(ast.FieldRef("ip.dst"), "in", ast.AddressVariable("HOME_NET")),
        ),
        (
            "ip.dst == 10.0.0.1",
            ast.Comparison(ast.FieldRef("ip.dst"), "==", ast.IpAddress("10.0.0.1")),
        ),
        (
            'http.method in ["GET", "PUT"]',
            ast.Comparison(ast.FieldRef("http.method"), "in", ast.ValueList(("GET", "PUT"))),
        ),
        ("anomaly.score >= 0.9", ast.Comparison(ast.FieldRef("anomaly.score"), ">=", 0.9)),
        ("detector.port_scan", ast.Comparison(ast.FieldRef("detector.port_scan"), "==", True)),
        ("detector.dga == false", ast.Comparison(ast.FieldRef("detector.dga"), "==", False)),
        ("flowbits isset a | b", ast.Flowbits("flowbits", "isset", ("a", "b"), "|")),
        (
            "xbits isnotset k track ip_pair",
            ast.Flowbits("xbits", "isnotset", ("k",), track="ip_pair"),
        ),
        ('option ssl_state "client_hello"', ast.OpaqueOption("ssl_state", "client_hello")),
    ],
)
def test_condition_atoms(where: str, expected: ast.Condition) -> None:
    assert condition(where) == expected


def test_boolean_precedence_and_flattening() -> None:
    a = ast.Comparison(ast.FieldRef("ip.ttl"), "==", 1)
    b = ast.Comparison(ast.FieldRef("ip.ttl"), "==", 2)
    c = ast.Comparison(ast.FieldRef("ip.ttl"), "==", 3)
    assert condition("ip.ttl == 1 or ip.ttl == 2 and ip.ttl == 3") == ast.Or((a, ast.And((b, c))))
    assert condition("(ip.ttl == 1 or ip.ttl == 2) and ip.ttl == 3") == ast.And((ast.Or((a, b)), c))
    assert condition("ip.ttl == 1 and (ip.ttl == 2 and ip.ttl == 3)") == ast.And((a, b, c))
    assert condition("not not ip.ttl == 1") == ast.Not(ast.Not(a))


def test_content_sequence_keeps_order_and_modifiers() -> None:
    got = condition(
        """http.uri with to_lowercase {
      contains "/gate" |00| nocase offset 1 depth 20 fast_pattern at 0 length 4
      not contains "x\\x41\\"" distance 0 within len rawbytes
      equals "a" fast_pattern only
      matches /a\\/b/Ri
      not matches /z/
    }"""
    )
    assert got == ast.Sequence(
        ast.Buffer("http.uri", ("to_lowercase",)),
        (
            ast.Content(
                b"/gate\x00",
                nocase=True,
                offset=1,
                depth=20,
                fast_pattern=ast.FastPattern(offset=0, length=4),
            ),
            ast.Content(b'xA"', negated=True, distance=0, within="len", rawbytes=True),
            ast.Content(
                b"a", startswith=True, endswith=True, fast_pattern=ast.FastPattern(only=True)
            ),
            ast.Regex("a\\/b", "Ri"),
            ast.Regex("z", "", negated=True),
        ),
    )


def test_byte_options_keep_every_parameter() -> None:
    got = condition(
        """pkt_data {
      byte_extract(bytes 2, offset 0, name Dridex.Pivot, relative, endian little, multiplier 4, align 2)
      byte_test(bytes 4, offset Dridex.Pivot, !& 0x80, relative, string dec, bitmask 0xff)
      byte_test(bytes 1, offset 0, != 7)
      byte_jump(bytes 4, offset 12, relative, align, from_beginning, post_offset -2, endian dce)
      byte_math(bytes 2, offset 0, oper >>, rvalue 1, result r)
      not isdataat(offset 10, relative)
      isdataat(5)
      base64_decode(bytes 100, offset 0, relative)
      base64_decode()
      size in 1..64
      size > 3
    }"""
    )
    assert isinstance(got, ast.Sequence)
    assert got.items == (
        ast.ByteExtract(
            2, 0, "Dridex.Pivot", relative=True, endian="little", multiplier=4, align=2
        ),
        ast.ByteTest(
            4, "&", 0x80, "Dridex.Pivot", negated=True, relative=True, string="dec", bitmask=0xFF
        ),
        ast.ByteTest(1, "==", 7, 0, negated=True),
        ast.ByteJump(
            4, 12, relative=True, align=True, from_beginning=True, post_offset=-2, endian="dce"
        ),
        ast.ByteMath(2, 0, ">>", 1, "r"),
        ast.IsDataAt(10, relative=True, negated=True),
        ast.IsDataAt(5),
        ast.Base64Decode(100, 0, True),
        ast.Base64Decode(),
        ast.BufferSize("in", ast.Range(1, 64)),
        ast.BufferSize(">", 3),
    )


def test_spans_point_at_source() -> None:
    text = 'rule "t" {\n  id 1\n  match tcp\n  where ip.ttl < 5\n    and pkt_data contains "x"\n}\n'
    rule = parse_text(text, "s.shrike").rules[0]
    assert rule.span == ast.Span("s.shrike", 1, 1, 6, 2)
    assert isinstance(rule.condition, ast.And)
    ttl, content = rule.condition.operands
    assert (ttl.span.line, ttl.span.column, ttl.span.end_column) == (4, 9, 19)
    assert (content.span.line, content.span.column) == (5, 9)


def test_ast_equality_ignores_spans_but_not_values() -> None:
    a = parse_text('rule "t" { id 1 match tcp where ip.ttl < 5 }').rules[0]
    b = parse_text('\n\nrule "t" {\n id 1\n   match tcp\n where ip.ttl<5\n}').rules[0]
    c = parse_text('rule "t" { id 1 match tcp where ip.ttl < 6 }').rules[0]
    assert a == b and hash(a) == hash(b)
    assert a != c


def test_ten_broken_rules_give_ten_located_errors() -> None:
    rules = []
    for i in range(10):
        rules.append(f'rule "r{i}" {{\n  id {i + 1}\n  match tcp\n  where ip.ttl >> {i}\n}}\n')
    rules.append('rule "fine" {\n  id 99\n  match tcp\n}\n')
    result = parse_collecting("".join(rules), "ten.shrike")
    assert len(result.errors) == 10
    assert [(e.span.line, e.span.column) for e in result.errors] == [
        (4 + 5 * i, 17) for i in range(10)
    ]
    assert all(isinstance(e, RuleSyntaxError) for e in result.errors)
    assert [r.id for r in result.file.rules] == [99]
    with pytest.raises(RuleErrors) as raised:
        parse_text("".join(rules), "ten.shrike")
    assert len(raised.value) == 10
    assert str(raised.value.errors[0]).startswith("ten.shrike:4:17: unexpected '>'")


def test_snort_syntax_gets_a_hint() -> None:
    text = 'alert tcp $EXTERNAL_NET any -> $HOME_NET 445 (msg:"SMB"; content:"|ff|SMB"; sid:1;)\n'
    (error,) = parse_collecting(text, "snort.shrike").errors
    assert (error.span.line, error.span.column) == (1, 1)
    assert error.hint is not None and "Snort" in error.hint
    assert "snort.shrike:1:1" in error.render()


def test_snort_option_inside_rule_gets_a_hint() -> None:
    (error,) = parse_collecting('rule "x" {\n  id 1\n  sid 5\n  match tcp\n}\n').errors
    assert (error.span.line, error.span.column) == (3, 3)
    assert error.hint == "write `id N`"


def test_missing_brace_is_reported_with_hint_and_next_rule_still_parses() -> None:
    text = 'rule "a" {\n  id 1\n  match tcp\n\nrule "b" {\n  id 2\n  match udp\n}\n'
    result = parse_collecting(text)
    (error,) = result.errors
    assert error.span.line == 3
    assert "missing '}'" in (error.hint or "")
    assert [r.id for r in result.file.rules] == [2]


def test_unknown_field_has_did_you_mean() -> None:
    result = parse_collecting(
        'rule "x" {\n  id 7\n  match http\n  where http.user_agnet contains "curl"\n}\n'
    )
    (error,) = result.errors
    assert isinstance(error, UnknownFieldError)
    assert (error.span.line, error.span.column, error.rule_id) == (4, 9, 7)
    assert error.hint is not None and "'http.user_agent'" in error.hint
    (snort,) = parse_collecting('rule "x" { id 7 match http where http_uri contains "a" }').errors
    assert snort.hint is not None and snort.hint.startswith("did you mean 'http.uri'")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ('ip.ttl == "x"', "ip.ttl is a number"),
        ("tcp.flags == SZ", "'Z' is not a flag"),
        ('ip.ttl contains "a"', "not a buffer"),
        ("http.uri", "not a true/false test"),
        ("pkt_data byte_test(bytes 4, offset 0)", "byte_test needs a comparison"),
        ("pkt_data byte_jump(bytes 4, offset 0, wobble 3)", "unknown argument 'wobble'"),
        ("flowbits set a", "is an action"),
        ("pkt_data contains |0 0 0|", "even number of digits"),
        ('pkt_data contains "\\q"', "unknown escape"),
    ],
)
def test_value_errors_are_located(where: str, message: str) -> None:
    (error,) = parse_collecting(f'rule "x" {{\n  id 1\n  match tcp\n  where {where}\n}}\n').errors
    assert message in error.message
    assert error.span.line == 4


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("severity urgent", "unknown severity 'urgent'"),
        ("attack TA0001", "not an ATT&CK technique id"),
        ("id 2", "'id' given twice"),
        ("match tcp from any port 70000", "port 70000 is out of range"),
        ("match tcp from 10.0.0.300", "bad IP address"),
        ("threshold sometimes 1 per 5s by src", "unknown threshold type"),
        ("threshold backoff 1 per 5s by flow", "backoff takes a multiplier"),
        ("threshold limit 1 multiplier 2 by src", "not with a multiplier"),
        ("detection_filter 1 per 5s by src unique src.prot", "unknown field"),
    ],
)
def test_statement_errors(statement: str, message: str) -> None:
    text = f'rule "x" {{\n  id 1\n  {statement}\n}}\n'
    if not statement.startswith("match"):
        text = text.replace("  id 1\n", "  id 1\n  match tcp\n")
    errors = parse_collecting(text).errors
    assert any(message in e.message for e in errors), [e.message for e in errors]


def test_includes_variables_and_undefined_variables(tmp_path: Path) -> None:
    (tmp_path / "vars.shrike").write_text("addresses LAB = [10.9.0.0/16]\nports WEB = [80, 8080]\n")
    (tmp_path / "main.shrike").write_text(
        'include "vars.shrike"\nrule "x" {\n  id 1\n  match tcp from $LAB to $HOME_NET port $WEB\n}\n'
    )
    defaults = load_variables(REPO / "config" / "variables.yaml")
    ruleset = load_ruleset(tmp_path / "main.shrike", defaults)
    assert [r.id for r in ruleset.rules] == [1]
    assert ruleset.variables.expand_address(ast.AddressVariable("LAB")) == ast.AddressList(
        (ast.IpAddress("10.9.0.0/16"),)
    )
    with pytest.raises(RuleErrors) as raised:
        load_ruleset(tmp_path / "main.shrike", VariableTable())
    (error,) = raised.value.errors
    assert isinstance(error, VariableError) and "$HOME_NET" in error.message
    assert (error.span.line, error.span.column, error.rule_id) == (4, 26, 1)


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.shrike").write_text('include "b.shrike"\n')
    (tmp_path / "b.shrike").write_text('include "a.shrike"\n')
    with pytest.raises(RuleErrors) as raised:
        load_ruleset(tmp_path / "a.shrike")
    assert "include cycle" in raised.value.errors[0].message


def test_default_variables_cover_the_usual_names() -> None:
    table = load_variables(REPO / "config" / "variables.yaml")
    for name in (
        "HOME_NET",
        "EXTERNAL_NET",
        "HTTP_SERVERS",
        "DNS_SERVERS",
        "SMTP_SERVERS",
        "SQL_SERVERS",
    ):
        table.expand_address(ast.AddressVariable(name))
    for name in ("HTTP_PORTS", "SSH_PORTS", "FILE_DATA_PORTS"):
        table.expand_port(ast.PortVariable(name))
    assert table.expand_address(ast.AddressVariable("EXTERNAL_NET")) == ast.NegatedAddress(
        table.expand_address(ast.AddressVariable("HOME_NET"))
    )
    rule = one_rule("  match tcp from $NOPE to any")
    (error,) = check_variables([rule], table)
    assert "undefined address variable $NOPE" in error.message


def test_parse_file_reports_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(Exception) as raised:
        parse_file(tmp_path / "missing.shrike")
    assert "cannot read rule file" in str(raised.value)


def test_signature_library_parses() -> None:
    files = sorted((REPO / "signatures").rglob("*.shrike"))
    if not files:
        pytest.skip("no .shrike files under signatures/ yet")
    for path in files:
        parse_file(path)


def test_byte_count_may_be_an_extracted_name_except_in_byte_extract() -> None:
    got = condition(
        """pkt_data {
      byte_extract(bytes 1, offset 4, name n, relative)
      byte_jump(bytes n, offset 0, relative)
      byte_test(bytes n, offset 0, == 1)
      byte_math(bytes n, offset 1, oper +, rvalue 2, result r)
    }"""
    )
    assert isinstance(got, ast.Sequence)
    assert [item.bytes for item in got.items] == [1, "n", "n", "n"]  # type: ignore[union-attr]
    with pytest.raises(RuleErrors, match="`bytes` must be a number in byte_extract"):
        parse_text(
            'rule "a" { id 1 match tcp where pkt_data byte_extract(bytes n, offset 0, name m) }'
        )


def test_backoff_threshold_and_distinct_detection_filter() -> None:
    text = (
        'rule "x" { id 1 match tcp threshold backoff 5 multiplier 5 by flow '
        "detection_filter 1 per 60s by src unique src.port }"
    )
    (rule,) = parse_text(text).rules
    assert rule.thresholds == (
        ast.Threshold("backoff", 5, 0, "flow", multiplier=5),
        ast.Threshold("detection_filter", 1, 60, "src", unique="src.port"),
    )
    assert "threshold backoff 5 multiplier 5 by flow" in format_rule(rule)
    assert "detection_filter 1 per 60s by src unique src.port" in format_rule(rule)
    (again,) = parse_text(format_rule(rule)).rules
    assert again == rule


def test_indexed_comparison_on_a_field_of_several_values() -> None:
    got = condition("dns.rrtype[0] == 1 and dns.rrtype[-1] in [1, 28] and dns.rrtype[all] > 0")
    field = ast.FieldRef("dns.rrtype")
    assert got == ast.And(
        (
            ast.Comparison(field, "==", 1, index=0),
            ast.Comparison(field, "in", ast.ValueList((1, 28)), index=-1),
            ast.Comparison(field, ">", 0, index="all"),
        )
    )
    text = 'rule "x" { id 1 match dns where dns.rrtype[-1] == 1 or dns.rrtype == 5 }'
    (rule,) = parse_text(text).rules
    assert "where dns.rrtype[-1] == 1\n    or dns.rrtype == 5\n" in format_rule(rule)
    assert parse_text(format_rule(rule)).rules == (rule,)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("ip.ttl[0] == 1", "takes no index"),
        ("dns.rrtype[first] == 1", "unknown index 'first'"),
    ],
)
def test_index_errors(where: str, message: str) -> None:
    errors = parse_collecting(f'rule "x" {{ id 1 match dns where {where} }}').errors
    assert [e.message for e in errors if message in e.message], [e.message for e in errors]


def test_flowint_tests_are_conditions_and_changes_are_statements() -> None:
    text = (
        'rule "x" { id 1 match tcp where flowint hits notset or flowint hits < limit '
        "flowint hits + 1 flowint seen = 0 }"
    )
    (rule,) = parse_text(text).rules
    assert rule.condition == ast.Or(
        (ast.Flowint("hits", "notset"), ast.Flowint("hits", "<", "limit"))
    )
    assert rule.int_actions == (ast.Flowint("hits", "+", 1), ast.Flowint("seen", "=", 0))
    assert "  flowint hits + 1\n  flowint seen = 0\n" in format_rule(rule)
    assert parse_text(format_rule(rule)).rules == (rule,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("where flowint a + 1", "changes are rule statements"),
        ("flowint a > 1", "tests go in `where`"),
        ("where flowint a & 1", "unknown flowint operation"),
        ("where flowint a > ", "unexpected"),
    ],
)
def test_flowint_errors(text: str, message: str) -> None:
    errors = parse_collecting(f'rule "x" {{ id 1 match tcp {text} }}').errors
    assert any(message in e.message for e in errors), [e.message for e in errors]
