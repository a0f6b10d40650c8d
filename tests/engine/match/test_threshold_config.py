"""Suricata `threshold.config` files applied to loaded rules."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP

from engine.match import Matcher, compile_ruleset
from engine.match.loading import apply_thresholds, read_threshold_config
from rules import parse_text
from tests.engine.match.traffic import run_packets

RULES = (
    'rule "a" { id 10 match udp where pkt_data contains "QQQQ" }\n'
    'rule "b" { id 11 match udp where pkt_data contains "QQQQ" }\n'
    'rule "c" { id 12 gid 3 match udp where pkt_data contains "QQQQ" }\n'
)


def alerts_per_rule(config: str) -> dict[int, int]:
    entries, _ = read_threshold_config(config)
    rules = apply_thresholds(parse_text(RULES).rules, entries)
    m = Matcher(compile_ruleset(rules))
    pkts = [
        IP(src=f"10.0.0.{1 + i % 3}", dst="10.0.0.9") / UDP(sport=5, dport=53) / b"QQQQ"
        for i in range(9)
    ]
    out: dict[int, int] = {}
    for a in run_packets(m, pkts):
        out[a.match.rule_id] = out.get(a.match.rule_id, 0) + 1
    return out


def test_limit_by_rule_and_by_source() -> None:
    assert alerts_per_rule("") == {10: 9, 11: 9, 12: 9}
    got = alerts_per_rule(
        "# comment\n"
        "threshold gen_id 1, sig_id 10, type limit, track by_rule, count 3, seconds 60\n"
        "event_filter gen_id 1, sig_id 11, type limit, track by_src, count 1, seconds 60\n"
    )
    assert got == {10: 3, 11: 3, 12: 9}  # sid 11: one per each of three sources


def test_suppress_and_sid_zero_cover_rules_of_their_gid() -> None:
    assert alerts_per_rule("suppress gen_id 1, sig_id 10\n") == {11: 9, 12: 9}
    got = alerts_per_rule(
        "threshold gen_id 3, sig_id 0, type both, track by_rule, count 4, seconds 60\n"
    )
    assert got == {10: 9, 11: 9, 12: 1}


def test_lines_not_applied_are_noted() -> None:
    entries, notes = read_threshold_config(
        "rate_filter gen_id 1, sig_id 1, track by_rule, count 1, seconds 1, new_action drop, timeout 5\n"
        "suppress gen_id 1, sig_id 2, track by_src, ip 10.0.0.1\n"
        "threshold gen_id 1, sig_id 3, type limit, track by_flow, count 1, seconds 1\n"
        "threshold sig_id x\n",
        "t.config",
    )
    assert entries == {}
    assert [n.split(":")[1] for n in notes] == ["1", "2", "3", "4"]
