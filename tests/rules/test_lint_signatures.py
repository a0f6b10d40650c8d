"""The shipped signature library lints clean, sits under the right tactic, and has usable test cases."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from rules import parse_file
from rules.attack import load_catalog
from rules.lint.config import discover_config
from rules.lint.runner import lint_paths

SIGNATURES = Path(__file__).resolve().parents[2] / "signatures"
RULE_FILES = sorted(SIGNATURES.rglob("*.shrike"))
PACKET_KEYS = {
    "proto", "src", "dst", "sport", "dport", "direction", "established", "flags",
    "icmp_type", "icmp_code", "payload", "http", "tls_sni", "repeat", "every", "vary",
}  # fmt: skip
HTTP_KEYS = {"method", "uri", "version", "headers", "body", "status", "reason"}
_HEX_RUN = re.compile(r"\|([^|]*)\|")
_DURATION = re.compile(r"^\d+(ms|s|m|h|d)$")


def _payload_bytes(text: str) -> bytes:
    """Decodes rule string notation: text with |hex| runs."""
    out = bytearray()
    position = 0
    for run in _HEX_RUN.finditer(text):
        out += text[position : run.start()].encode()
        out += bytes.fromhex(run.group(1))
        position = run.end()
    return bytes(out + text[position:].encode())


def test_library_has_a_first_handful_of_rules() -> None:
    rules = [rule for path in RULE_FILES for rule in parse_file(path).rules]
    assert len(rules) >= 8
    assert len({rule.id for rule in rules}) == len(rules)


def test_signature_library_lints_clean_with_every_check() -> None:
    config = discover_config([SIGNATURES])
    assert config.source is not None and config.source.endswith("signatures/shrike.yaml")
    report = lint_paths([SIGNATURES], config)
    assert report.diagnostics == ()
    assert report.rules_checked == sum(len(parse_file(p).rules) for p in RULE_FILES)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: str(p.relative_to(SIGNATURES)))
def test_rules_sit_in_their_tactic_folder(path: Path) -> None:
    catalog = load_catalog()
    folder_tactic = catalog.tactic(path.parent.name)
    for rule in parse_file(path).rules:
        assert [catalog.tactic(t) for t in rule.tactics] == [folder_tactic], rule.title
        assert all(catalog.belongs_to(t, folder_tactic.tactic_id) for t in rule.techniques)


def _check_packet(packet: dict[str, object], where: str) -> None:
    assert set(packet) <= PACKET_KEYS, f"{where}: unknown keys {set(packet) - PACKET_KEYS}"
    assert packet["proto"] in ("tcp", "udp", "icmp"), where
    for key in ("src", "dst"):
        ipaddress.IPv4Address(packet[key])
    for key in ("sport", "dport"):
        if key in packet:
            assert isinstance(packet[key], int) and 0 <= packet[key] <= 65535, where
    if "payload" in packet:
        assert _payload_bytes(str(packet["payload"])), where
    if "http" in packet:
        http = packet["http"]
        assert isinstance(http, dict) and set(http) <= HTTP_KEYS, where
    if "every" in packet:
        assert _DURATION.match(str(packet["every"])), where
    repeat = packet.get("repeat", 1)
    assert isinstance(repeat, int) and repeat >= 1, where
    for field, step in dict(packet.get("vary", {})).items():  # type: ignore[call-overload]
        assert field in ("src", "dst", "sport", "dport") and isinstance(step, int), where
        if field in ("src", "dst"):
            last_octet = int(str(packet[field]).rsplit(".", 1)[1])
            assert last_octet + step * (repeat - 1) <= 255, f"{where}: {field} overflows"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: str(p.relative_to(SIGNATURES)))
def test_every_rule_has_matching_and_non_matching_traffic(path: Path) -> None:
    tests_path = path.with_name(path.name.replace(".shrike", ".tests.yaml"))
    assert tests_path.is_file(), f"{tests_path} is missing"
    cases = yaml.safe_load(tests_path.read_text(encoding="utf-8"))["rules"]
    rule_ids = {rule.id for rule in parse_file(path).rules}
    assert set(cases) == rule_ids
    for rule_id, kinds in cases.items():
        assert set(kinds) == {"match", "no_match"}, rule_id
        for kind, case_list in kinds.items():
            assert case_list, f"{rule_id}: no {kind} case"
            for case in case_list:
                assert case["name"] and case["packets"], rule_id
                for packet in case["packets"]:
                    _check_packet(packet, f"{tests_path.name}:{rule_id}:{case['name']}")


def test_payload_notation_decodes_hex_runs() -> None:
    assert _payload_bytes("|FE|SMB|00 24|") == b"\xfeSMB\x00$"
    with pytest.raises(ValueError):
        _payload_bytes("|ZZ|")
