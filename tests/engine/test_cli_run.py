"""`shrike run --rules`: alerts to EVE JSON, checksum mode, profile, verdict count, bad rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from engine.cli import main

MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
RULES = """
rule "admin page requested" {
  id 2000001
  rev 3
  classtype web-application-attack
  priority 1
  match tcp from any to any port 80 established to_server
  where pkt_data { starts_with "GET " contains "/admin" distance 0 }
}
rule "SYN to telnet" {
  id 2000002
  match tcp to any port 23
  where tcp.flags == S
}
"""


def _capture(path: Path, *, bad_checksum: bool = False) -> None:
    c, s = "192.168.1.10", "192.168.1.20"
    get = IP(src=c, dst=s) / TCP(sport=40000, dport=80, flags="PA", seq=101, ack=501)
    get = get / b"GET /admin HTTP/1.1\r\n\r\n"
    if bad_checksum:
        get[TCP].chksum = 0x1234
    pkts = [
        IP(src=c, dst=s) / TCP(sport=40000, dport=80, flags="S", seq=100),
        IP(src=s, dst=c) / TCP(sport=80, dport=40000, flags="SA", seq=500, ack=101),
        IP(src=c, dst=s) / TCP(sport=40000, dport=80, flags="A", seq=101, ack=501),
        get,
        IP(src=c, dst=s) / TCP(sport=40001, dport=23, flags="S", seq=7),
    ]
    frames = [Ether(**MACS) / p for p in pkts]
    for i, f in enumerate(frames):
        f.time = 1_700_000_000 + i * 0.01
    wrpcap(str(path), frames)


def _cut_short(workdir: Path) -> None:
    """cut.pcap: an HTTP response whose body the capture cuts short, and body.shrike,
    rules of which one matches only the body flushed when the input ends."""
    from tests.engine.match.test_flush import RULES as BODY_RULES
    from tests.engine.match.test_flush import cut_short

    frames = [Ether(**MACS) / p for p in cut_short()]
    for i, f in enumerate(frames):
        f.time = 1_700_000_000 + i * 0.01
    wrpcap(str(workdir / "cut.pcap"), frames)
    (workdir / "body.shrike").write_text(BODY_RULES)


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHRIKE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "web.shrike").write_text(RULES)
    return tmp_path


def test_run_writes_eve_alerts(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _capture(workdir / "t.pcap")
    eve = workdir / "eve.json"
    argv = ["run", "--pcap", str(workdir / "t.pcap"), "--rules", str(workdir / "web.shrike")]
    status = main([*argv, "--eve", str(eve), "--no-progress", "--profile"])
    assert status == 0
    records = [json.loads(line) for line in eve.read_text().splitlines()]
    by_sid = {r["alert"]["signature_id"]: r for r in records}
    assert sorted(by_sid) == [2000001, 2000002]
    web = by_sid[2000001]
    assert web["event_type"] == "alert"
    assert (web["src_ip"], web["src_port"], web["dest_ip"], web["dest_port"]) == (
        "192.168.1.10",
        40000,
        "192.168.1.20",
        80,
    )
    assert web["proto"] == "TCP" and web["pcap_cnt"] == 4
    assert web["alert"]["rev"] == 3 and web["alert"]["severity"] == 1
    assert web["alert"]["category"] == "web-application-attack"
    assert web["community_id"].startswith("1:")
    assert web["timestamp"].startswith("2023-11-14T22:13:20.03")
    assert by_sid[2000002]["pcap_cnt"] == 5
    out = capsys.readouterr().out
    assert "alerts: 2;" in out
    # both alerts became verdicts in the embedded store
    assert "verdicts stored: 2 in embedded store" in out
    assert "rule profile" in out and "1:2000001:3" in out


def test_unknown_rule_file_is_a_usage_error(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _capture(workdir / "t.pcap")
    status = main(
        ["run", "--pcap", str(workdir / "t.pcap"), "--rules", str(workdir / "nope.shrike")]
    )
    assert status == 2
    assert "nope.shrike" in capsys.readouterr().err


def test_broken_rule_file_names_the_location(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _capture(workdir / "t.pcap")
    (workdir / "bad.shrike").write_text('rule "x" {\n  id 1\n  match tcp\n  where ip.ttl = 5\n}\n')
    status = main(
        ["run", "--pcap", str(workdir / "t.pcap"), "--rules", str(workdir / "bad.shrike")]
    )
    assert status == 2
    assert "bad.shrike:4" in capsys.readouterr().err


def test_bad_checksums_are_skipped_unless_mode_none(workdir: Path) -> None:
    _capture(workdir / "t.pcap", bad_checksum=True)
    base = ["run", "--pcap", str(workdir / "t.pcap"), "--rules", str(workdir / "web.shrike")]
    checked = workdir / "all.json"
    assert main([*base, "--eve", str(checked), "--no-progress"]) == 0
    sids_checked = {
        json.loads(x)["alert"]["signature_id"] for x in checked.read_text().splitlines()
    }
    assert 2000001 not in sids_checked  # verified by default: the bad packet is skipped
    assert 2000002 in sids_checked
    eve = workdir / "none.json"
    assert main([*base, "-k", "none", "--eve", str(eve), "--no-progress"]) == 0
    sids = {json.loads(line)["alert"]["signature_id"] for line in eve.read_text().splitlines()}
    assert 2000001 in sids


def test_reload_compiles_beside_the_running_rules_and_swaps_between_batches(
    workdir: Path,
) -> None:
    import time

    from engine.cli.run import RuleReloader
    from engine.match import Matcher, compile_ruleset, load_rules

    path = workdir / "web.shrike"
    rules, table, _ = load_rules([path])
    matcher = Matcher(compile_ruleset(rules, table))
    running = matcher.ruleset
    reloader = RuleReloader([str(path)], table, matcher)
    path.write_text(RULES.replace("2000002", "2000003"))
    reloader.request()
    for _ in range(200):
        if reloader._ready is not None:
            break
        time.sleep(0.05)
    assert matcher.ruleset is running  # nothing changes until the next batch boundary
    reloader.between_batches()
    assert matcher.ruleset is not running
    assert sorted(r.rule.id for r in matcher.ruleset.rules) == [2000001, 2000003]
    assert reloader.reloads == 1


def test_reload_of_a_broken_file_keeps_the_running_rules(workdir: Path) -> None:
    import time

    from engine.cli.run import RuleReloader
    from engine.match import Matcher, compile_ruleset, load_rules

    path = workdir / "web.shrike"
    rules, table, _ = load_rules([path])
    matcher = Matcher(compile_ruleset(rules, table))
    running = matcher.ruleset
    reloader = RuleReloader([str(path)], table, matcher)
    path.write_text('rule "x" { id 1 match tcp where ip.ttl = 5 }')
    reloader.request()
    for _ in range(200):
        if not reloader._busy:
            break
        time.sleep(0.05)
    reloader.between_batches()
    assert matcher.ruleset is running and reloader.reloads == 0


def test_a_body_held_back_at_the_end_of_input_still_alerts(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cut_short(workdir)
    eve = workdir / "eve.json"
    argv = ["run", "--pcap", str(workdir / "cut.pcap"), "--rules", str(workdir / "body.shrike")]
    assert main([*argv, "--eve", str(eve), "--no-progress", "-k", "none"]) == 0
    sids = sorted(
        json.loads(line)["alert"]["signature_id"] for line in eve.read_text().splitlines()
    )
    # rule 2 matches the packet; rule 1 only the body section flushed when the input ends
    assert sids == [1, 2]
    assert main(["alerts", "--format", "json"]) == 0
    stored = capsys.readouterr().out.splitlines()[-2:]
    assert {json.loads(line)["rule"]["id"] for line in stored} == {"1", "2"}


def test_workers_write_the_eve_and_verdicts_one_process_writes(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cut_short(workdir)
    _capture(workdir / "t.pcap")
    argv = [
        "run",
        "--pcap",
        str(workdir / "t.pcap"),
        str(workdir / "cut.pcap"),
        "--rules",
        str(workdir / "web.shrike"),
        str(workdir / "body.shrike"),
        "--no-progress",
        "-k",
        "none",
        "--profile",
    ]
    outputs = []
    for workers in ("1", "2"):
        eve = workdir / f"eve{workers}.json"
        data = workdir / f"data{workers}"
        assert main([*argv, "--eve", str(eve), "--workers", workers, "--data-dir", str(data)]) == 0
        outputs.append((eve.read_text(), capsys.readouterr().out))
    (one, one_out), (two, two_out) = outputs
    # the body held back to the end of the second capture comes from a worker's finish
    assert [json.loads(line)["alert"]["signature_id"] for line in two.splitlines()] == [
        2000001,
        2000002,
        2,
        1,
    ]
    assert two == one
    for line in ("alerts: 4;", "verdicts stored: 4 in embedded store", "1:2000001:3"):
        assert line in one_out and line in two_out


def test_workers_fall_back_to_one_process_for_per_host_bits(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _capture(workdir / "t.pcap")
    (workdir / "x.shrike").write_text(
        'rule "x" { id 7 match tcp where pkt_data contains "GET" xbits set s track ip_src }'
    )
    argv = ["run", "--pcap", str(workdir / "t.pcap"), "--rules", str(workdir / "x.shrike")]
    assert main([*argv, "--workers", "2", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "rules 7 keep bits per host" in captured.err and "alerts: 1;" in captured.out
    with pytest.raises(SystemExit):
        main([*argv, "--workers", "0"])
    assert "expected a count of 1 or more, or 'auto'" in capsys.readouterr().err
