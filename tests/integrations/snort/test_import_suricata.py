"""Suricata spellings the importer translates into conditions the matcher evaluates."""

from __future__ import annotations

from integrations.snort.export import export_rules
from integrations.snort.importer import import_text
from rules import ast


def one(body: str, head: str = "alert tcp any any -> any any") -> ast.Rule:
    result = import_text(f'{head} (msg:"t"; {body} sid:1;)', "t.rules", "suricata")
    assert len(result.rules) == 1
    assert result.diagnostics == ()
    return result.rules[0]


def test_prefilter_is_kept_without_disabling_the_rule() -> None:
    rule = one("ttl:64; prefilter;", head="alert ip any any -> any any")
    assert rule.enabled
    assert rule.condition == ast.Comparison(ast.FieldRef("ip.ttl"), "==", 64)
    assert ast.OpaqueOption("prefilter", None) in rule.options
    (back,) = import_text(export_rules([rule]).text, "b.rules").rules
    assert back.enabled and back.condition == rule.condition


def test_tcp_flags_is_the_flags_option() -> None:
    assert one("tcp.flags:R,A;").condition == one("flags:R,A;").condition
    assert one("tcp.flags:S;").condition == ast.Comparison(
        ast.FieldRef("tcp.flags"), "==", ast.Symbol("S")
    )


def test_dns_opcode_is_a_field_comparison() -> None:
    field = ast.FieldRef("dns.opcode")
    assert one("dns.opcode:4;").condition == ast.Comparison(field, "==", 4)
    rule = one("dns.opcode:!0;")
    assert rule.condition == ast.Comparison(field, "!=", 0)
    exported = export_rules([rule])
    assert "dns.opcode:!=0" in exported.text
    (back,) = import_text(exported.text, "b.rules").rules
    assert back.condition == rule.condition


def test_hostbits_are_xbits_tracked_by_host() -> None:
    rule = one("hostbits:set,abc,dst,expire 30; hostbits:isset,x|y; hostbits:noalert;")
    assert rule.condition == ast.Flowbits("xbits", "isset", ("x", "y"), "|", None, "ip_src")
    assert rule.bit_actions == (
        ast.Flowbits("xbits", "set", ("abc",), None, None, "ip_dst", 30),
        ast.Flowbits("flowbits", "noalert"),
    )
    (back,) = import_text(export_rules([rule]).text, "b.rules").rules
    assert (back.condition, back.bit_actions) == (rule.condition, rule.bit_actions)


def test_hostbits_both_directions_is_declined() -> None:
    result = import_text("alert ip any any -> any any (hostbits:set,a,both; sid:1;)", "t.rules")
    assert not result.rules[0].enabled
    assert [d.option for d in result.diagnostics] == ["hostbits"]


def test_threshold_by_flow() -> None:
    rule = one("detection_filter:track by_flow, count 2, seconds 60;")
    assert rule.thresholds == (ast.Threshold("detection_filter", 2, 60, "flow"),)
    (back,) = import_text(export_rules([rule]).text, "b.rules").rules
    assert back.thresholds == rule.thresholds


def test_header_buffers_are_sticky_buffers() -> None:
    rule = one('tcp.hdr; content:"|00 50|"; offset:2; depth:2;')
    assert isinstance(rule.condition, ast.Sequence)
    assert rule.condition.buffer == ast.Buffer("tcp.hdr")
    (back,) = import_text(export_rules([rule]).text, "b.rules").rules
    assert back.condition == rule.condition


def test_app_layer_protocol_exact_is_the_equality_test() -> None:
    rule = one("app-layer-protocol:dns,exact;")
    assert rule.condition == ast.Comparison(ast.FieldRef("app.protocol"), "==", "dns")
    result = import_text(
        "alert tcp any any -> any any (app-layer-protocol:http,final; sid:1;)", "t.rules"
    )
    assert not result.rules[0].enabled


def test_app_layer_protocol_without_exact_covers_the_protocols_carrying_it() -> None:
    field = ast.FieldRef("app.protocol")
    assert one("app-layer-protocol:dns;").condition == ast.Comparison(
        field, "in", ast.ValueList(("dns", "doh2"))
    )
    assert one("app-layer-protocol:!http;").condition == ast.Not(
        ast.Comparison(field, "in", ast.ValueList(("http", "http2")))
    )
    # A protocol nothing else carries is the equality test either way.
    assert one("app-layer-protocol:tls;").condition == ast.Comparison(field, "==", "tls")
    for option in ("dns", "!http", "doh2", "dns,exact", "!dns,exact", "tls", "!ssh"):
        rule = one(f"app-layer-protocol:{option};")
        exported = export_rules([rule]).text
        assert f"app-layer-protocol:{option};" in exported
        (back,) = import_text(exported, "b.rules").rules
        assert back.condition == rule.condition


def test_absent_on_http_buffers() -> None:
    referer = ast.Buffer("http.referer")
    present = (ast.BufferSize(">=", 0),)
    only = one("http.referer; absent;", head="alert http any any -> any any")
    assert only.condition == ast.And(
        (ast.Not(ast.Sequence(referer, present)), ast.Sequence(ast.Buffer("http.method"), present))
    )
    or_else = one(
        'http.referer; absent:or_else; content:!"x";', head="alert http any any -> any any"
    )
    assert isinstance(or_else.condition, ast.Or)
    assert or_else.condition.operands == (
        only.condition,
        ast.Sequence(referer, (ast.Content(b"x", negated=True),)),
    )
    for rule in (only, or_else):
        (back,) = import_text(export_rules([rule]).text, "b.rules").rules
        assert back.condition == rule.condition and back.enabled


def test_absent_outside_http_buffers_is_declined() -> None:
    for body in ("absent;", "dns.query; absent;", 'http.uri; content:"a"; absent;'):
        result = import_text(f"alert ip any any -> any any ({body} sid:1;)", "t.rules")
        assert not result.rules[0].enabled
        assert "absent" in [d.option for d in result.diagnostics]


def test_imported_absent_alerts_on_requests_without_the_buffer() -> None:
    from engine.inspect import Inspector
    from engine.match import Matcher, compile_ruleset
    from tests.engine.match.traffic import data, handshake, run_packets, sids

    rules = import_text(
        "alert http any any -> any any (flow:established,to_server; http.referer; absent; sid:1;)",
        "t.rules",
    ).rules

    def alerts(request: bytes) -> list[int]:
        matcher = Matcher(compile_ruleset(rules), inspector=Inspector())
        return sids(run_packets(matcher, [*handshake(), data(request)]))

    assert alerts(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") == [1]
    assert alerts(b"GET / HTTP/1.1\r\nHost: a\r\nReferer: http://b/\r\n\r\n") == []


def test_unquoted_pcre_reads_as_the_quoted_one() -> None:
    quoted = one('pcre:"/one(self)?/Ui";')
    bare = one("pcre:/one(self)?/Ui;")
    assert bare.condition == quoted.condition
    assert bare.condition == ast.Sequence(ast.Buffer("http.uri"), (ast.Regex("one(self)?", "i"),))
    (back,) = import_text(export_rules([bare]).text, "b.rules").rules
    assert back.condition == bare.condition


def test_unquoted_pcre_without_slashes_is_declined() -> None:
    result = import_text("alert tcp any any -> any any (pcre:abc; sid:1;)", "t.rules")
    assert not result.rules[0].enabled
    assert [d.option for d in result.diagnostics] == ["pcre"]


def test_tls_issuerdn_is_a_content_on_the_certificate_issuer() -> None:
    rule = one('tls.issuerdn:"C=FR, CN=SELKS";', head="alert tls any any -> any any")
    assert rule.condition == ast.Sequence(
        ast.Buffer("tls.cert_issuer"), (ast.Content(b"C=FR, CN=SELKS"),)
    )
    negated = one('tls.subject:!"CN=x";', head="alert tls any any -> any any")
    assert negated.condition == ast.Sequence(
        ast.Buffer("tls.cert_subject"), (ast.Content(b"CN=x", negated=True),)
    )
    (back,) = import_text(export_rules([rule]).text, "b.rules").rules
    assert back.condition == rule.condition


def test_metadata_entry_without_a_key_value_shape_is_kept_on_the_rule() -> None:
    rule = one('content:"www"; metadata:created_at 2022_25_07,priority:5;')
    assert rule.enabled
    assert rule.metadata == (ast.MetadataEntry("created_at", "2022_25_07"),)
    assert ast.OpaqueOption("metadata", "priority:5") in rule.options
    exported = export_rules([rule]).text
    assert "metadata:priority:5" in exported
    (back,) = import_text(exported, "b.rules").rules
    assert back == rule


def test_tls_cert_chain_len_is_a_field_comparison() -> None:
    field = ast.FieldRef("tls.cert_chain_len")
    head = "alert tls any any -> any any"
    assert one("tls.cert_chain_len:3;", head).condition == ast.Comparison(field, "==", 3)
    assert one("tls.cert_chain_len:!2;", head).condition == ast.Comparison(field, "!=", 2)
    rule = one("tls.cert_chain_len:0<>4;", head)
    assert rule.condition == ast.Comparison(field, "in", ast.Range(0, 4, inclusive=False))
    exported = export_rules([rule])
    assert "tls.cert_chain_len:0<>4" in exported.text
    (back,) = import_text(exported.text, "b.rules").rules
    assert back.condition == rule.condition


def test_byte_count_may_be_a_byte_extract_name() -> None:
    rule = one(
        'content:"|00 00 00|"; byte_extract:1,4,len,relative; byte_jump:len,0,relative; '
        "byte_test:len,=,1,0; byte_math:bytes len, offset 1, oper +, rvalue 2, result r;"
    )
    assert isinstance(rule.condition, ast.Sequence)
    items = rule.condition.items
    assert [type(i).__name__ for i in items[1:]] == [
        "ByteExtract",
        "ByteJump",
        "ByteTest",
        "ByteMath",
    ]
    assert [i.bytes for i in items[1:]] == [1, "len", "len", "len"]  # type: ignore[union-attr]
    (back,) = import_text(export_rules([rule]).text, "b.rules").rules
    assert back.condition == rule.condition


def test_backoff_threshold_and_unique_on_detection_filter() -> None:
    backoff = one("dsize:>0; threshold:type backoff, track by_flow, count 3, multiplier 2;")
    assert backoff.thresholds == (ast.Threshold("backoff", 3, 0, "flow", multiplier=2),)
    distinct = one("detection_filter: track by_src, count 1, seconds 60, unique_on src_port;")
    assert distinct.thresholds == (
        ast.Threshold("detection_filter", 1, 60, "src", unique="src.port"),
    )
    exported = export_rules([backoff, distinct]).text
    assert "threshold:type backoff,track by_flow,count 3,multiplier 2" in exported
    assert "detection_filter:track by_src,count 1,seconds 60,unique_on src_port" in exported
    back = import_text(exported, "b.rules").rules
    assert [r.thresholds for r in back] == [backoff.thresholds, distinct.thresholds]


def test_backoff_without_multiplier_and_unique_on_other_fields_are_declined() -> None:
    for body in (
        "threshold:type backoff, track by_flow, count 3, seconds 60;",
        "detection_filter: track by_src, count 1, seconds 60, unique_on src_ip;",
        "threshold:type limit, track by_src, count 1, seconds 60, unique_on src_port;",
    ):
        result = import_text(f"alert tcp any any -> any any ({body} sid:1;)", "t.rules")
        assert not result.rules[0].enabled, body


def test_dns_rrtype_is_an_indexed_comparison() -> None:
    field = ast.FieldRef("dns.rrtype")
    head = "alert dns any any -> any any"
    assert one("dns.rrtype:1;", head).condition == ast.Comparison(field, "==", 1)
    assert one("dns.rrtype:!28,any;", head).condition == ast.Comparison(field, "!=", 28)
    assert one("dns.rrtype:1,all;", head).condition == ast.Comparison(field, "==", 1, index="all")
    rule = one("dns.rrtype:>5,-1;", head)
    assert rule.condition == ast.Comparison(field, ">", 5, index=-1)
    exported = export_rules([rule]).text
    assert "dns.rrtype:>5,-1" in exported
    (back,) = import_text(exported, "b.rules").rules
    assert back.condition == rule.condition
    declined = import_text(f"{head} (dns.rrtype:1,or_absent; sid:1;)", "t.rules")
    assert not declined.rules[0].enabled


def test_tls_random_is_a_sticky_buffer() -> None:
    rule = one('flow:to_client; tls.random; content:"|54 b8 f7 73|"; bsize:>1;')
    assert rule.condition == ast.Sequence(
        ast.Buffer("tls.random"), (ast.Content(b"\x54\xb8\xf7\x73"), ast.BufferSize(">", 1))
    )
    (back,) = import_text(export_rules([rule]).text, "b.rules").rules
    assert back.condition == rule.condition


def test_ftpbounce_is_the_ftp_bounce_field() -> None:
    rule = one('flow:to_server,established; content:"PORT"; nocase; ftpbounce;')
    assert isinstance(rule.condition, ast.And)
    assert rule.condition.operands[1] == ast.Comparison(ast.FieldRef("ftp.bounce"), "==", True)
    exported = export_rules([rule]).text
    assert "ftpbounce;" in exported
    (back,) = import_text(exported, "b.rules").rules
    assert back.condition == rule.condition


def test_transaction_rule_and_directed_file_data() -> None:
    head = "alert http any any => any 80"
    rule = one(
        'http.method; content:"POST"; http.stat_code; content:"500"; '
        'file.data:to_client; content:"error"; file.data:to_server; content:"x";',
        head,
    )
    assert rule.header.direction == "=>"
    assert isinstance(rule.condition, ast.And)
    buffers = [s.buffer.name for s in rule.condition.operands]  # type: ignore[union-attr]
    assert buffers == ["http.method", "http.stat_code", "http.response_body", "http.request_body"]
    result = export_rules([rule])
    exported = result.text
    assert "alert http any any => any 80" in exported
    assert any("direction =>" in note.message for note in result.notes)
    (back,) = import_text(exported, "b.rules", "snort3").rules
    assert back.header == rule.header and back.condition == rule.condition
    # outside HTTP the direction of file.data names no Shrike buffer
    smtp = import_text("alert smtp any any -> any any (file.data:to_server; sid:1;)", "t.rules")
    assert not smtp.rules[0].enabled


def test_flowint_tests_and_changes() -> None:
    rule = one("flowint:count,isnotset; flowint:count,>,limit; flowint:count,+,1; noalert;")
    assert rule.condition == ast.And(
        (ast.Flowint("count", "notset"), ast.Flowint("count", ">", "limit"))
    )
    assert rule.int_actions == (ast.Flowint("count", "+", 1),)
    exported = export_rules([rule]).text
    assert "flowint:count,notset; flowint:count,>,limit;" in exported
    assert "flowint:count,+,1" in exported
    (back,) = import_text(exported, "b.rules").rules
    assert (back.condition, back.int_actions) == (rule.condition, rule.int_actions)
    for bad in ("flowint:count,isset,3;", "flowint:count,+;", "flowint:count,*,2;"):
        result = import_text(f"alert tcp any any -> any any ({bad} sid:1;)", "t.rules")
        assert not result.rules[0].enabled, bad


def test_app_layer_protocol_of_one_direction() -> None:
    rule = one(
        "flow:to_client; app-layer-protocol:http1,to_server; app-layer-protocol:!ssh,to_client;"
    )
    assert rule.condition == ast.And(
        (
            ast.Comparison(ast.FieldRef("app.protocol.to_server"), "==", "http"),
            ast.Comparison(ast.FieldRef("app.protocol.to_client"), "!=", "ssh"),
        )
    )
    exported = export_rules([rule]).text
    assert "app-layer-protocol:http,to_server; app-layer-protocol:!ssh,to_client" in exported
    (back,) = import_text(exported, "b.rules").rules
    assert back.condition == rule.condition
    result = import_text("alert tcp any any -> any any (app-layer-protocol:tls,final; sid:1;)", "t")
    assert not result.rules[0].enabled
