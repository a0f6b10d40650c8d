"""Behavioural detectors on generated traffic: each fires on its behaviour and stays quiet on the near miss."""

from __future__ import annotations

import base64
import dataclasses
import json
import random

import pytest
from detector_traffic import T0, arp_requests, ether, run, stamp, tcp_probe_scan

from engine.detectors import DetectorsConfig, DetectorSet, load_detectors_config
from engine.detectors.config import DetectorConfigError, ExfilConfig, FloodConfig, PortScanConfig
from engine.detectors.dns import entropy, query_name, split_domain
from rules.attack import load_catalog
from rules.fields import DETECTOR_NAMES


def _dns_queries(client: str, names: list[str], step: float = 1.0) -> list:
    from scapy.layers.dns import DNS, DNSQR
    from scapy.layers.inet import IP, UDP

    return [
        stamp(
            ether()
            / IP(src=client, dst="192.168.1.1")
            / UDP(sport=50000 + k, dport=53)
            / DNS(id=k, rd=1, qd=DNSQR(qname=name, qtype="TXT")),
            T0 + k * step,
        )
        for k, name in enumerate(names)
    ]


def test_dns_tunnel_fires_on_encoded_subdomains() -> None:
    rnd = random.Random(3)
    names = []
    for _ in range(60):
        chunk = base64.b32encode(rnd.randbytes(30)).decode().rstrip("=").lower()
        names.append(f"{chunk}.t.exfil-example.org")
    dets = [d for d in run(_dns_queries("192.168.1.50", names)) if d.detector == "dns_tunnel"]
    assert len(dets) == 1
    d = dets[0]
    assert d.techniques == ("T1071.004", "T1048")
    assert d.key == "192.168.1.50"
    assert d.evidence["domain"] == "exfil-example.org"
    assert d.evidence["names"] >= 30
    assert d.evidence["mean_length"] > 40


def test_dns_tunnel_quiet_on_short_ordinary_names() -> None:
    names = [f"host{k}.corp-example.com" for k in range(60)]
    assert not [d for d in run(_dns_queries("192.168.1.50", names)) if d.detector == "dns_tunnel"]


def test_dns_name_helpers() -> None:
    from scapy.layers.dns import DNS, DNSQR

    assert query_name(bytes(DNS(id=1, qd=DNSQR(qname="A.Example.COM")))) == "a.example.com"
    assert query_name(bytes(DNS(id=1, qr=1, qd=DNSQR(qname="a.example.com")))) is None
    assert query_name(b"\x00" * 5) is None
    assert split_domain("x.y.example.co.uk") == ("x.y", "example.co.uk")
    assert split_domain("example.com") == ("", "example.com")
    assert entropy("aaaa") == 0.0
    assert entropy("abcd") == pytest.approx(2.0)


def _udp_beacons(times: list[float]) -> list:
    from scapy.layers.inet import IP, UDP

    return [
        stamp(
            ether()
            / IP(src="10.1.1.5", dst="198.51.100.7")
            / UDP(sport=41000 + k, dport=8443)
            / b"ping",
            t,
        )
        for k, t in enumerate(times)
    ]


def test_beaconing_fires_on_regular_intervals() -> None:
    rnd = random.Random(1)
    times = [T0 + 30.0 * k + rnd.uniform(-0.3, 0.3) for k in range(12)]
    dets = [d for d in run(_udp_beacons(times)) if d.detector == "beaconing"]
    assert len(dets) == 1
    assert dets[0].techniques == ("T1071",)
    assert dets[0].evidence["target"] == "198.51.100.7:8443"
    assert 29.0 < dets[0].evidence["interval_s"] < 31.0


def test_beaconing_quiet_on_irregular_intervals() -> None:
    rnd = random.Random(2)
    t, times = T0, []
    for _ in range(12):
        t += rnd.uniform(5, 120)
        times.append(t)
    assert not [d for d in run(_udp_beacons(times)) if d.detector == "beaconing"]


def _upload(src: str, dst: str, n: int, reverse: bool = False) -> list:
    from scapy.layers.inet import IP, TCP

    payload = b"x" * 1400
    a, b = (dst, src) if reverse else (src, dst)
    pkts = [
        stamp(ether() / IP(src=src, dst=dst) / TCP(sport=50500, dport=443, flags="S", seq=0), T0),
        stamp(
            ether(True)
            / IP(src=dst, dst=src)
            / TCP(sport=443, dport=50500, flags="SA", seq=0, ack=1),
            T0 + 0.01,
        ),
        stamp(
            ether() / IP(src=src, dst=dst) / TCP(sport=50500, dport=443, flags="A", seq=1, ack=1),
            T0 + 0.02,
        ),
    ]
    seq = 1
    for k in range(n):
        if reverse:
            p = (
                ether(True)
                / IP(src=a, dst=b)
                / TCP(sport=443, dport=50500, flags="PA", seq=seq, ack=1)
                / payload
            )
        else:
            p = (
                ether()
                / IP(src=a, dst=b)
                / TCP(sport=50500, dport=443, flags="PA", seq=seq, ack=1)
                / payload
            )
        pkts.append(stamp(p, T0 + 0.03 + k * 0.001))
        seq += len(payload)
    return pkts


def test_exfiltration_fires_on_outbound_volume() -> None:
    cfg = dataclasses.replace(DetectorsConfig(), exfiltration=ExfilConfig(min_bytes=1_000_000))
    dets = [
        d
        for d in run(_upload("192.168.7.20", "203.0.113.9", 900), cfg)
        if d.detector == "exfiltration"
    ]
    assert len(dets) == 1
    assert dets[0].techniques == ("T1048",)
    assert dets[0].evidence["bytes_out"] == 900 * 1400


def test_exfiltration_quiet_on_downloads_and_inside_traffic() -> None:
    cfg = dataclasses.replace(DetectorsConfig(), exfiltration=ExfilConfig(min_bytes=1_000_000))
    down = run(_upload("192.168.7.20", "203.0.113.9", 900, reverse=True), cfg)
    inside = run(_upload("192.168.7.20", "10.0.0.9", 900), cfg)
    assert not [d for d in down + inside if d.detector == "exfiltration"]


def test_icmp_flood_per_destination_and_single_source() -> None:
    from scapy.layers.inet import ICMP, IP

    pkts = [
        stamp(
            ether() / IP(src="198.51.100.99", dst="10.9.9.9") / ICMP(type=8, id=1, seq=k),
            T0 + k * 0.005,
        )
        for k in range(400)
    ]
    flood = FloodConfig(min_packets=300, min_single_source=200)
    cfg = dataclasses.replace(DetectorsConfig(), icmp_flood=flood)
    dets = [d for d in run(pkts, cfg) if d.detector == "icmp_flood"]
    titles = sorted(d.title for d in dets)
    assert len(dets) == 2, titles
    assert all(d.key == "10.9.9.9" and d.techniques == ("T1498.001",) for d in dets)
    assert all(d.key_role == "destination" for d in dets)  # the key is the victim
    assert any("from 198.51.100.99" in t for t in titles)  # the count-min pair path
    assert not [d for d in run(pkts[:150], cfg) if d.detector == "icmp_flood"]


def test_port_scan_and_allow_list() -> None:
    pkts = tcp_probe_scan("203.0.113.66", "10.0.0.5", range(20, 60))
    dets = [d for d in run(pkts) if d.detector == "port_scan"]
    assert len(dets) == 1
    assert dets[0].key == "203.0.113.66" and dets[0].evidence["target"] == "10.0.0.5"
    assert dets[0].key_role == "source"
    assert dets[0].techniques == ("T1046",)
    allowed = dataclasses.replace(
        DetectorsConfig(), port_scan=PortScanConfig(allow=("203.0.113.0/24",))
    )
    assert not [d for d in run(pkts, allowed) if d.detector == "port_scan"]
    few = tcp_probe_scan("203.0.113.66", "10.0.0.5", range(20, 30))
    assert not [d for d in run(few) if d.detector == "port_scan"]


def test_replay_is_deterministic() -> None:
    pkts = tcp_probe_scan("203.0.113.66", "10.0.0.5", range(1, 200))
    first, second = run(pkts), run(pkts)
    assert [(d.detector, d.key, d.ts, d.title) for d in first] == [
        (d.detector, d.key, d.ts, d.title) for d in second
    ]


def test_arp_scan_state_survives_a_snapshot() -> None:
    targets = [f"10.0.0.{k}" for k in range(1, 41)]
    pkts = arp_requests("10.0.0.200", "02:00:00:00:00:aa", targets)
    whole = [d for d in run(pkts) if d.detector == "arp_scan"]
    assert len(whole) == 1 and whole[0].techniques == ("T1018",)
    first = DetectorSet.from_config()
    assert not run(pkts[:20], detectors=first)
    snap = json.loads(json.dumps(first.snapshot()))
    second = DetectorSet.from_config()
    second.restore(snap)
    resumed = [d for d in run(pkts[20:], detectors=second) if d.detector == "arp_scan"]
    assert [(d.key, d.ts, d.title) for d in resumed] == [(d.key, d.ts, d.title) for d in whole]
    fresh = [d for d in run(pkts[20:]) if d.detector == "arp_scan"]
    assert not fresh  # 20 targets alone stay under the threshold


def test_arp_spoof_binding_change() -> None:
    from scapy.layers.l2 import ARP, Ether

    def reply(mac: str, t: float) -> object:
        return stamp(
            Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
            / ARP(op=2, hwsrc=mac, psrc="10.0.0.1", hwdst="ff:ff:ff:ff:ff:ff", pdst="10.0.0.255"),
            t,
        )

    dets = run([reply("02:00:00:00:00:01", T0), reply("02:00:00:00:00:66", T0 + 5)])
    spoof = [d for d in dets if d.detector == "arp_spoof"]
    assert len(spoof) == 1
    assert "changed from 02:00:00:00:00:01 to 02:00:00:00:00:66" in spoof[0].title
    assert spoof[0].techniques == ("T1557.002",)


def test_shipped_config_is_the_defaults() -> None:
    assert load_detectors_config() == DetectorsConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "port_scan:\n  min_port: 3\n",
            "port_scan.min_port: unknown setting (did you mean min_ports?)",
        ),
        ("port_scan:\n  min_ports: many\n", "port_scan.min_ports: expected a number"),
        ("syn_flood:\n  severity: huge\n", "syn_flood: severity must be one of"),
        ("host_sweep:\n  window: -1\n", "host_sweep: window must be positive"),
        ("brute_force:\n  ports: [22, ssh]\n", "brute_force.ports: expected a list of int"),
        ("port_scan: [1\n", "line 2, column 1: not valid YAML"),
        ("port_scan: 5\n", "port_scan: must be a mapping of settings"),
        ("host_sweep:\n  allow: [nowhere]\n", "host_sweep: allow: 'nowhere' is not an address"),
        ("exfiltration:\n  home_nets: [lan]\n", "exfiltration: home_nets: 'lan' is not a network"),
    ],
)
def test_bad_config_is_located(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "detectors.yaml"
    path.write_text(text)
    with pytest.raises(DetectorConfigError) as err:
        load_detectors_config(path)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_bad_allow_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="allow: 'not-an-address' is not an address"):
        PortScanConfig(allow=("not-an-address",))
    assert PortScanConfig(allow=("10.0.0.0/8", "2001:db8::1", "02:00:00:00:00:aa")).allow


def test_snapshot_of_every_detector_is_plain_data() -> None:
    pkts = tcp_probe_scan("203.0.113.66", "10.0.0.5", range(1, 40))
    pkts += arp_requests("10.0.0.200", "02:00:00:00:00:aa", [f"10.0.0.{k}" for k in range(1, 9)])
    pkts.sort(key=lambda p: float(p.time))
    ds = DetectorSet.from_config()
    run(pkts, detectors=ds)
    snap = json.loads(json.dumps(ds.snapshot()))
    again = DetectorSet.from_config()
    again.restore(snap)
    assert json.loads(json.dumps(again.snapshot())) == snap


def test_detector_tags_are_current_attack_techniques_of_their_tactics() -> None:
    catalog = load_catalog()
    detectors = DetectorSet.from_config().detectors
    assert {d.name for d in detectors} <= set(DETECTOR_NAMES)
    for d in detectors:
        tag = getattr(d, "tag")  # noqa: B009
        assert tag.techniques, d.name
        for technique in tag.techniques:
            assert technique in catalog and catalog.technique(technique).is_current, technique
            assert any(catalog.belongs_to(technique, tactic) for tactic in tag.tactics), (
                d.name,
                technique,
            )


def _periodic_uploads(sizes: list[int], period: float) -> list:
    """One UDP flow per period from a home host to an outside host, `size` packets of 1400 bytes."""
    from scapy.layers.inet import IP, UDP

    pkts = []
    for k, n in enumerate(sizes):
        for j in range(n):
            pkts.append(
                stamp(
                    ether()
                    / IP(src="192.168.7.30", dst="198.51.100.40")
                    / UDP(sport=30000 + k, dport=443)
                    / (b"u" * 1400),
                    T0 + k * period + j * 0.001,
                )
            )
    return pkts


def test_outbound_volume_against_the_hosts_own_baseline() -> None:
    exfil = ExfilConfig(window=100.0, min_bytes=10**9, min_anomaly_bytes=300_000)
    cfg = dataclasses.replace(DetectorsConfig(), exfiltration=exfil)
    usual = [15, 12, 16, 14, 15, 13]  # about 20 kB every 100 s
    dets = [
        d
        for d in run(_periodic_uploads([*usual, 15, 450], 100.0), cfg)
        if d.detector == "exfiltration"
    ]
    assert len(dets) == 1
    d = dets[0]
    assert d.title.startswith("Outbound volume anomaly from 192.168.7.30")
    assert d.evidence["bytes_out"] >= 450 * 1400 and d.evidence["windows_seen"] >= 3
    assert d.evidence["usual_bytes"] < 100_000
    steady = run(_periodic_uploads([*usual, 15, 16], 100.0), cfg)
    assert not [d for d in steady if d.detector == "exfiltration"]
