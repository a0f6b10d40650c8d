"""Exporting Shrike rules as Snort 3 rules, and import -> export -> import identity."""

from __future__ import annotations

import dataclasses

from integrations.snort.export import export_rules, rule_text
from integrations.snort.importer import import_text
from rules import ast, parse_text

RULES = r"""
alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (msg:"snort2 \"http\""; flow:established,to_server; content:"GET"; http_method; content:"/a|3b|b"; nocase; http_uri; fast_pattern:1,3; pcre:"/a\/b/Ui"; byte_test:4,>,1000,0,relative,string,dec; flowbits:set,x; threshold:type both, track by_dst, count 2, seconds 10; metadata:mitre_technique_id T1190, created_at 2020_01_01; reference:cve,2020-1234; classtype:web-application-attack; sid:1; rev:2;)
alert http (msg:"snort3"; http_header:field host; content:"evil",nocase,fast_pattern; bufferlen:5<=>40; http_uri; content:"x",within 10,distance len; service:http; sid:2; rev:1; gid:1;)
alert dns $HOME_NET any -> any any (msg:"suricata"; dns.query; dotprefix; content:".bad.example"; endswith; fast_pattern; xbits:isset,s,track ip_src; target:src_ip; sid:3; rev:1;)
alert icmp any any <> any any (msg:"packet"; itype:8; icode:0; dsize:>100; ttl:<5; flags:!AP,12; ipopts:lsrr; sameip; app-layer-protocol:dns; detection_filter:track by_src, count 3, seconds 60; tag:session,10,packets; sid:4;)
# alert tcp any any -> any any (msg:"disabled"; content:"a"; ssl_state:client_hello; isdataat:!1,relative; sid:5;)
alert tcp any any -> any any (msg:"unknown"; content:"a"; cvs:invalid-entry; foo_bar:1,2; content:"b"; sid:6;)
alert tcp any any -> any any (msg:"no parens"; sid:7;
"""


def test_import_export_import_is_identity() -> None:
    first = import_text(RULES, "a.rules")
    exported = export_rules(first.rules)
    second = import_text(exported.text, "b.rules")
    assert len(first.rules) == 7
    assert second.rules == first.rules
    assert [r.enabled for r in second.rules] == [True, True, True, True, False, False, False]


def test_snort3_spelling_of_snort2_rule() -> None:
    rule = import_text(RULES, "a.rules").rules[0]
    text, remarks = rule_text(rule)
    assert text.startswith("alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS ( ")
    assert (
        'http_method; content:"GET"; http_uri; content:"/a|3B|b",nocase,fast_pattern,'
        'fast_pattern_offset 1,fast_pattern_length 3; pcre:"/a\\/b/i";'
    ) in text
    assert "byte_test:4,>,1000,0,relative,string,dec;" in text
    assert "metadata:created_at 2020_01_01, mitre_technique_id T1190;" in text
    assert remarks == ["written with keywords Snort 3 lacks: threshold"]


def test_suricata_keywords_are_noted_not_dropped() -> None:
    rule = import_text(RULES, "a.rules").rules[2]
    text, remarks = rule_text(rule)
    assert 'dns.query; dotprefix; content:".bad.example",fast_pattern; endswith;' in text
    assert remarks == ["written with keywords Snort 3 lacks: dns.query, dotprefix, endswith, xbits"]


def test_options_kept_verbatim_are_noted() -> None:
    rule = import_text(RULES, "a.rules").rules[4]
    text, remarks = rule_text(rule)
    assert text.startswith("# alert tcp any any -> any any ")
    assert "ssl_state:client_hello; isdataat:!1,relative;" in text
    assert remarks == ["options Shrike keeps without evaluating: ssl_state"]


def test_rules_snort_cannot_say_are_reported_and_left_out() -> None:
    source = """
    rule "windowed" { id 9000001 match tcp window 60s by src.ip: distinct(dst.port) >= 25 }
    rule "anomalous" { id 9000002 match tcp where anomaly.score >= 0.8 }
    rule "plain" { id 9000003 match tcp where tcp.flags == S }
    """
    result = export_rules(parse_text(source).rules)
    assert result.exported == 1 and result.skipped == 2
    assert [n.rule_id for n in result.notes if n.skipped] == [9000001, 9000002]
    assert "window" in result.notes[0].message
    assert "anomaly.score" in result.notes[1].message
    assert (
        'alert tcp any any -> any any ( msg:"plain"; flags:S; sid:9000003; rev:1; )' in result.text
    )


def test_shrike_rule_exports_and_imports_back() -> None:
    source = """
    rule "Windows executable fetched over plain HTTP" {
      id 9000002  rev 3
      classtype trojan-activity
      attack T1105
      match http from $EXTERNAL_NET to $HOME_NET established to_client
      where file_data starts_with |4D 5A| and http.stat_code contains "200"
    }
    """
    (rule,) = parse_text(source).rules
    (back,) = import_text(export_rules([rule]).text, "x.rules", flavor="snort3").rules
    # Snort ranks it by its classtype's default priority (trojan-activity: 1, high).
    assert rule.severity is None and back.severity == "high"
    assert back == dataclasses.replace(rule, severity="high")
    assert isinstance(back.condition, ast.And)
