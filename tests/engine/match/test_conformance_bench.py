"""The suricata-verify runner's reading of `alert_checks`: version bounds and key tests."""

from __future__ import annotations

from tests.engine.match.traffic import load_bench

BENCH = load_bench()


def test_checks_bound_to_other_suricata_versions_do_not_count() -> None:
    applies = BENCH.applies
    assert applies(None) and applies({})
    assert applies({"min-version": "7"}, (8, 0, 0))
    assert not applies({"min-version": "8.0.4"}, (8, 0, 0))
    assert not applies({"lt-version": "8.0"}, (8, 0, 0))
    assert applies({"lt-version": "8.0"}, (7, 0, 12))
    assert applies({"gt-version": "6.0.11"}, (7, 0, 0))
    assert not applies({"gt-version": "8.0"}, (8, 0, 0))
    # exactly one of a pair of mutually exclusive checks counts
    pair = [{"min-version": "8.0"}, {"lt-version": "8.0"}]
    assert [applies(r) for r in pair].count(True) == 1


def test_not_has_key_requires_the_key_absent() -> None:
    matches = BENCH._matches
    flushed = {"alert": {"signature_id": 1}}
    on_packet = {"alert": {"signature_id": 1}, "pcap_cnt": 7}
    want = {"alert.signature_id": 1, "not-has-key": "pcap_cnt"}
    assert matches(flushed, want)
    assert not matches(on_packet, want)
    assert matches(on_packet, {"alert.signature_id": 1, "pcap_cnt": 7})
    assert not matches(on_packet, {"alert.signature_id": 2})


def test_field_paths_read_list_items_and_lengths() -> None:
    matches = BENCH._matches
    record = {"vlan": [23, 6], "packet": "RQAA", "alert": {"signature_id": 1}}
    assert matches(record, {"vlan[0]": 23, "vlan[1]": 6})
    assert not matches(record, {"vlan[2]": 23})
    assert matches(record, {"packet.__len": 4})
    assert not matches(record, {"packet.__len": 8})
    assert not matches({"alert": {"signature_id": 1}}, {"vlan[0]": 23})
