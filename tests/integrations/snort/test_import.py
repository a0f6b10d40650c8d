"""Importing Snort 2.9, Snort 3 and Suricata rules: each option's meaning, and what is not representable."""

from __future__ import annotations

import pytest

from integrations.snort.importer import import_text
from rules import ast

HEAD = "alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS"


def one(body: str, flavor: str = "auto", head: str = HEAD) -> ast.Rule:
    result = import_text(f'{head} (msg:"t"; {body} sid:1000; rev:3;)', "t.rules", flavor)
    assert len(result.rules) == 1
    return result.rules[0]


def parts(rule: ast.Rule) -> tuple[ast.Condition, ...]:
    condition = rule.condition
    if condition is None:
        return ()
    return condition.operands if isinstance(condition, ast.And) else (condition,)


def test_header_and_identity() -> None:
    rule = one("classtype:trojan-activity; priority:2; gid:1; reference:url,example.com/a;")
    assert (rule.id, rule.rev, rule.gid, rule.priority, rule.title) == (1000, 3, 1, 2, "t")
    assert rule.classtype == "trojan-activity"
    assert rule.references == (ast.Reference("url", "example.com/a"),)
    assert rule.header == ast.Header(
        "tcp",
        ast.AddressVariable("HOME_NET"),
        ast.AnyPort(),
        "->",
        ast.AddressVariable("EXTERNAL_NET"),
        ast.PortVariable("HTTP_PORTS"),
    )
    assert rule.enabled


def test_ports_ranges_lists_and_negation() -> None:
    rule = one("", head="alert udp [10.0.0.0/8,!10.1.0.0/16] 1024: <> any ![53,5353,1:10]")
    header = rule.header
    assert header.direction == "<>"
    assert header.source == ast.AddressList(
        (ast.IpAddress("10.0.0.0/8"), ast.NegatedAddress(ast.IpAddress("10.1.0.0/16")))
    )
    assert header.source_ports == ast.PortRange(1024, None)
    assert header.destination_ports == ast.NegatedPort(
        ast.PortList((ast.PortNumber(53), ast.PortNumber(5353), ast.PortRange(1, 10)))
    )


def test_snort2_modifiers_put_content_on_its_http_buffer() -> None:
    rule = one(
        'flow:established,to_server; content:"GET"; http_method; content:"/x.php"; nocase; '
        'http_uri; fast_pattern:only; content:"id="; distance:0; http_uri; pcre:"/id=\\d+/Ui";'
    )
    assert rule.header.flow == ("established", "to_server")
    method, uri = parts(rule)
    assert method == ast.Sequence(ast.Buffer("http.method"), (ast.Content(b"GET"),))
    assert isinstance(uri, ast.Sequence) and uri.buffer == ast.Buffer("http.uri")
    assert uri.items == (
        ast.Content(b"/x.php", nocase=True, fast_pattern=ast.FastPattern(only=True)),
        ast.Content(b"id=", distance=0),
        ast.Regex("id=\\d+", "i"),
    )


def test_snort3_sticky_buffers_and_comma_modifiers() -> None:
    rule = one(
        'http_uri; content:"/a",fast_pattern,nocase,depth 2; content:"b",distance 0; '
        'http_header:field user-agent; content:"curl"; bufferlen:<20; service:http;'
    )
    uri, agent = parts(rule)
    assert uri == ast.Sequence(
        ast.Buffer("http.uri"),
        (
            ast.Content(b"/a", nocase=True, depth=2, fast_pattern=ast.FastPattern()),
            ast.Content(b"b", distance=0),
        ),
    )
    assert agent == ast.Sequence(
        ast.Buffer("http.user_agent"), (ast.Content(b"curl"), ast.BufferSize("<", 20))
    )
    assert rule.services == ("http",)


def test_suricata_sticky_buffers_transforms_and_late_modifiers() -> None:
    rule = one(
        'dns.query; dotprefix; content:".evil.com"; endswith; isdataat:!1,relative; nocase; '
        'bsize:>10; tls.sni; content:"x"; startswith;',
        head="alert dns any any -> any any",
    )
    query, sni = parts(rule)
    assert query == ast.Sequence(
        ast.Buffer("dns.query", ("dotprefix",)),
        (
            ast.Content(b".evil.com", nocase=True, endswith=True),
            ast.IsDataAt(1, relative=True, negated=True),
            ast.BufferSize(">", 10),
        ),
    )
    assert sni == ast.Sequence(ast.Buffer("tls.sni"), (ast.Content(b"x", startswith=True),))


def test_suricata_naming_a_buffer_again_continues_its_matches() -> None:
    rule = one(
        'content:"GET"; tcp.hdr; content:"|00 50|"; offset:2; depth:2; '
        'tcp.hdr; content:"|50 18|"; distance:8; within:2;',
        "snort2",
    )
    payload, header = parts(rule)
    assert payload == ast.Sequence(ast.Buffer("pkt_data"), (ast.Content(b"GET"),))
    assert header == ast.Sequence(
        ast.Buffer("tcp.hdr"),
        (
            ast.Content(b"\x00\x50", offset=2, depth=2),
            ast.Content(b"\x50\x18", distance=8, within=2),
        ),
    )
    # a buffer inspected per instance starts a match of its own each time
    lines = parts(
        one(
            'http.request_header; content:"a"; http.request_header; content:"b"; distance:0;',
            "snort2",
            head="alert http any any -> any any",
        )
    )
    assert len(lines) == 2


def test_flavor_decides_whether_http_uri_after_content_is_sticky() -> None:
    body = 'content:"a"; http_uri; content:"b";'
    snort2 = parts(one(body, "snort2"))
    snort3 = parts(one(body, "snort3"))
    assert snort2[0] == ast.Sequence(ast.Buffer("http.uri"), (ast.Content(b"a"),))
    assert snort2[1] == ast.Sequence(ast.Buffer("pkt_data"), (ast.Content(b"b"),))
    assert snort3[0] == ast.Sequence(ast.Buffer("pkt_data"), (ast.Content(b"a"),))
    assert snort3[1] == ast.Sequence(ast.Buffer("http.uri"), (ast.Content(b"b"),))


def test_patterns_escapes_and_negation() -> None:
    (sequence,) = parts(one('content:!"a|0D 0A|\\"b\\;";'))
    assert isinstance(sequence, ast.Sequence)
    assert sequence.items == (ast.Content(b'a\r\n"b;', negated=True),)


def test_byte_options() -> None:
    (sequence,) = parts(
        one(
            'content:"x"; byte_extract:2,0,len,relative,little; '
            "byte_test:4,!&,0x80,len,relative,string,hex; "
            "byte_jump:4,12,relative,align,multiplier 2,post_offset -2,big; "
            "byte_math:bytes 2,offset 0,oper *,rvalue 4,result size,relative,endian little; "
            "isdataat:10,relative; base64_decode:bytes 100,offset 0,relative;"
        )
    )
    assert isinstance(sequence, ast.Sequence)
    assert sequence.items[1:] == (
        ast.ByteExtract(2, 0, "len", relative=True, endian="little"),
        ast.ByteTest(4, "&", 0x80, "len", negated=True, relative=True, string="hex"),
        ast.ByteJump(4, 12, relative=True, multiplier=2, endian="big", align=True, post_offset=-2),
        ast.ByteMath(2, 0, "*", 4, "size", relative=True, endian="little"),
        ast.IsDataAt(10, relative=True),
        ast.Base64Decode(100, 0, relative=True),
    )


def test_dotted_variable_names_as_emerging_threats_writes_them() -> None:
    (sequence,) = parts(one('byte_extract:2,0,Certs.len,relative; content:"x"; within:Certs.len;'))
    assert isinstance(sequence, ast.Sequence)
    assert sequence.items == (
        ast.ByteExtract(2, 0, "Certs.len", relative=True),
        ast.Content(b"x", within="Certs.len"),
    )


def test_packet_fields() -> None:
    found = parts(
        one(
            "dsize:100<>200; ttl:5-10; itype:>30; flags:S,12; flags:!FS; fragbits:M+; "
            "ip_proto:!udp; ipopts:rr; sameip; stream_size:server,>=,100; urilen:<5,raw; "
            "window:!1024; app-layer-protocol:!tls;"
        )
    )
    field = ast.FieldRef
    assert found == (
        ast.Comparison(field("dsize"), "in", ast.Range(100, 200, inclusive=False)),
        ast.Comparison(field("ip.ttl"), "in", ast.Range(5, 10)),
        ast.Comparison(field("icmp.type"), ">", 30),
        ast.Comparison(field("tcp.flags"), "==", ast.Symbol("S"), "12"),
        ast.Not(ast.Comparison(field("tcp.flags"), "has_any", ast.Symbol("FS"))),
        ast.Comparison(field("ip.fragbits"), "has", ast.Symbol("M")),
        ast.Comparison(field("ip.proto"), "!=", 17),
        ast.Comparison(field("ip.options"), "has", ast.Symbol("rr")),
        ast.Comparison(field("sameip"), "==", True),
        ast.Comparison(field("stream.size.server"), ">=", 100),
        ast.Comparison(field("http.uri.raw.len"), "<", 5),
        ast.Comparison(field("tcp.window"), "!=", 1024),
        ast.Comparison(field("app.protocol"), "!=", "tls"),
    )


def test_state_and_rate() -> None:
    rule = one(
        "flowbits:isset,a|b; flowbits:set,c; flowbits:noalert; "
        "xbits:set,scan,track ip_src,expire 300; "
        "threshold:type limit, track by_src, count 1, seconds 60; "
        "detection_filter:track by_dst, count 5, seconds 30;"
    )
    assert parts(rule) == (ast.Flowbits("flowbits", "isset", ("a", "b"), "|"),)
    assert rule.bit_actions == (
        ast.Flowbits("flowbits", "set", ("c",)),
        ast.Flowbits("flowbits", "noalert"),
        ast.Flowbits("xbits", "set", ("scan",), track="ip_src", expire=300),
    )
    assert rule.thresholds == (
        ast.Threshold("limit", 1, 60, "src"),
        ast.Threshold("detection_filter", 5, 30, "dst"),
    )


def test_et_attack_metadata_becomes_attack_tags() -> None:
    rule = one(
        "metadata:created_at 2024_01_02, mitre_tactic_id TA0011, mitre_tactic_name "
        "Command_And_Control, mitre_technique_id T1071.001, signature_severity Major;"
    )
    assert rule.techniques == ("T1071.001",)
    assert rule.tactics == ("TA0011",)
    assert rule.metadata == (
        ast.MetadataEntry("created_at", "2024_01_02"),
        ast.MetadataEntry("mitre_tactic_name", "Command_And_Control"),
        ast.MetadataEntry("signature_severity", "Major"),
    )


def test_unknown_option_keeps_rule_disabled_with_located_diagnostic() -> None:
    text = f'{HEAD} (msg:"t"; content:"a"; krb5_cname; content:"b"; flowbits:set,x; sid:77;)'
    result = import_text(text, "u.rules")
    (rule,) = result.rules
    assert not rule.enabled
    (diagnostic,) = result.diagnostics
    assert (diagnostic.sid, diagnostic.option) == (77, "krb5_cname")
    assert (diagnostic.location.file, diagnostic.location.line) == ("u.rules", 1)
    assert diagnostic.location.column == text.index("krb5_cname") + 1
    # payload options after the unknown option are kept as written; the rest is read
    assert parts(rule)[1:] == (
        ast.OpaqueOption("krb5_cname"),
        ast.OpaqueOption("content", '"b"'),
    )
    assert rule.bit_actions == (ast.Flowbits("flowbits", "set", ("x",)),)
    assert result.report.as_json()["unsupported"] == {"krb5_cname": 1}
    assert (result.report.imported, result.report.disabled, result.report.lost) == (0, 1, 0)


def test_known_but_not_evaluated_option_disables_and_stays_in_place() -> None:
    result = import_text(f'{HEAD} (msg:"t"; content:"a"; ssl_state:client_hello; sid:8;)')
    (rule,) = result.rules
    assert not rule.enabled
    (sequence,) = parts(rule)
    assert isinstance(sequence, ast.Sequence)
    assert sequence.items[1] == ast.OpaqueOption("ssl_state", "client_hello")
    assert result.diagnostics[0].option == "ssl_state"


@pytest.mark.parametrize(
    ("body", "option"),
    [
        ('content:"a|zz|";', "content"),
        ("byte_test:4,%,1,0;", "byte_test"),
        ("flags:Q;", "flags"),
        ('pcre:"/a/Uq";', "pcre"),
        ("threshold:type limit, track by_nobody, count 1, seconds 60;", "threshold"),
    ],
)
def test_values_a_translator_declines_are_diagnosed(body: str, option: str) -> None:
    result = import_text(f'{HEAD} (msg:"t"; {body} sid:9;)')
    (rule,) = result.rules
    assert not rule.enabled
    assert [d.option for d in result.diagnostics] == [option]


def test_commented_rules_are_disabled_but_fully_imported() -> None:
    result = import_text(f'# {HEAD} (msg:"t"; content:"a"; sid:5;)\n')
    (rule,) = result.rules
    assert not rule.enabled and rule.id == 5
    report = result.report
    assert (report.rules, report.imported, report.disabled, report.commented) == (1, 1, 0, 1)


def test_bad_header_keeps_rule_with_header_text() -> None:
    result = import_text('alert tcp any any <- any any (msg:"t"; sid:6;)')
    (rule,) = result.rules
    assert not rule.enabled
    assert ast.OpaqueOption("snort_header", "tcp any any <- any any") in rule.options
    assert result.diagnostics[0].option == "header"


@pytest.mark.parametrize(
    ("body", "severity"),
    [
        ("classtype:trojan-activity;", "high"),
        ("classtype:bad-unknown;", "medium"),
        ("classtype:misc-activity;", "low"),
        ("classtype:tcp-connection;", "info"),
        ("classtype:exploit-kit;", "high"),  # an Emerging Threats classtype
        ("classtype:trojan-activity; priority:3;", "low"),  # explicit priority wins
        ("priority:2; classtype:misc-activity;", "medium"),  # in any order
        ("priority:1;", "high"),
        ("priority:9;", "info"),  # less urgent than 4 counts as 4
        ("classtype:local-custom-class;", None),
        ("", None),
    ],
)
def test_severity_from_priority_or_classtype(body: str, severity: str | None) -> None:
    rule = one(body)
    assert rule.severity == severity
    assert rule.priority == (int(body.split("priority:")[1][0]) if "priority:" in body else None)


@pytest.mark.parametrize(
    ("value", "severity"),
    [
        ("Critical", "critical"),
        ("Major", "high"),
        ("Minor", "low"),
        ("Informational", "info"),
        ("Unknown", "low"),  # not a severity: the classtype decides
    ],
)
def test_et_signature_severity_wins_over_priority(value: str, severity: str) -> None:
    rule = one(
        "classtype:misc-activity; metadata:created_at 2020_01_01, "
        f"signature_severity {value}, updated_at 2020_01_02;"
    )
    assert rule.severity == severity
    assert ast.MetadataEntry("signature_severity", value) in rule.metadata


def test_severity_survives_export_and_reimport_without_a_new_option() -> None:
    from integrations.snort.export import export_rules

    source = (
        f'{HEAD} (msg:"a"; content:"x"; classtype:attempted-user; sid:1; rev:1;)\n'
        f'{HEAD} (msg:"b"; content:"x"; classtype:attempted-user; priority:4; sid:2; rev:1;)\n'
        f'{HEAD} (msg:"c"; content:"x"; metadata:signature_severity Minor; priority:1; sid:3; rev:1;)\n'
    )
    first = import_text(source, "a.rules").rules
    assert [rule.severity for rule in first] == ["high", "info", "low"]
    exported = export_rules(first).text
    assert "severity" not in exported.replace("signature_severity", "")
    assert import_text(exported, "b.rules").rules == first
