"""FlowTable: Zeek conn_state/history semantics, roles, timeouts, bounded table, features, Community ID."""

from __future__ import annotations

import ipaddress
import struct

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6ND_NS, IPv6
from scapy.packet import Packet

from dpdk_io.batch import PacketBatch
from engine.decode import decode
from engine.flows import (
    FEATURES,
    FlowTable,
    FlowTableConfig,
    community_id,
    community_ids,
    group,
    ip_text,
    ip_texts,
)

NS = 1_000_000_000

C, S = "10.0.0.1", "10.0.0.2"
CP, SP = 40000, 80


def batch(pkts: list[tuple[float, Packet | bytes]]) -> PacketBatch:
    return PacketBatch.from_packets(
        [bytes(p) for _, p in pkts], [round(t * NS) for t, _ in pkts], 101
    )


def run(
    pkts: list[tuple[float, Packet | bytes]],
    config: FlowTableConfig | None = None,
    *,
    table: FlowTable | None = None,
) -> list[dict]:
    table = table or FlowTable(config or FlowTableConfig())
    ev = table.update(decode(batch(pkts)))
    return [*ev.ended.to_dicts(), *table.flush().to_dicts()]


def one(recs: list[dict]) -> dict:
    assert len(recs) == 1, recs
    return recs[0]


def c2s(flags: str, seq: int, ack: int = 0, data: bytes = b"") -> Packet:
    return IP(src=C, dst=S) / TCP(sport=CP, dport=SP, flags=flags, seq=seq, ack=ack) / data


def s2c(flags: str, seq: int, ack: int = 0, data: bytes = b"") -> Packet:
    return IP(src=S, dst=C) / TCP(sport=SP, dport=CP, flags=flags, seq=seq, ack=ack) / data


def ip_len(p: Packet) -> int:
    return len(bytes(p[IP] if IP in p else p[IPv6]))


# --------------------------------------------------------------------------- TCP


def test_full_tcp_connection_sf() -> None:
    pkts = [
        (0.0, c2s("S", 1000)),
        (0.1, s2c("SA", 5000, 1001)),
        (0.2, c2s("A", 1001, 5001)),
        (0.3, c2s("PA", 1001, 5001, b"G" * 100)),
        (0.4, s2c("A", 5001, 1101)),
        (0.5, s2c("PA", 5001, 1101, b"R" * 300)),
        (0.6, c2s("A", 1101, 5301)),
        (0.7, c2s("FA", 1101, 5301)),
        (0.8, s2c("FA", 5301, 1102)),
        (0.9, c2s("A", 1102, 5302)),
    ]
    r = one(run(pkts))
    orig = [p for _, p in pkts if p[IP].src == C]
    resp = [p for _, p in pkts if p[IP].src == S]
    assert (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"], r["proto"]) == (
        C,
        CP,
        S,
        SP,
        "tcp",
    )
    assert r["conn_state"] == "SF"
    # S (SYN), h (SYN-ACK), A (pure ACK), D (orig data), a, d, F, f; repeats add nothing
    assert r["history"] == "ShADadFf"
    assert (r["orig_pkts"], r["resp_pkts"]) == (len(orig), len(resp))
    assert r["orig_ip_bytes"] == sum(ip_len(p) for p in orig)
    assert r["resp_ip_bytes"] == sum(ip_len(p) for p in resp)
    assert (r["orig_bytes"], r["resp_bytes"]) == (100, 300)
    assert r["duration"] == pytest.approx(0.9)
    assert r["syn"] == 2 and r["fin"] == 2
    assert r["fwd_data_pkts"] == 1


def test_full_connection_split_over_batches() -> None:
    pkts = [
        (0.0, c2s("S", 1000)),
        (0.1, s2c("SA", 5000, 1001)),
        (0.2, c2s("A", 1001, 5001)),
        (0.3, c2s("FA", 1001, 5001)),
        (0.4, s2c("FA", 5001, 1002)),
        (0.5, c2s("A", 1002, 5002)),
    ]
    table = FlowTable(FlowTableConfig())
    ended = []
    for p in pkts:
        ended += list(table.update(decode(batch([p]))).ended.to_dicts())
    ended += list(table.flush().to_dicts())
    r = one(ended)
    assert r["conn_state"] == "SF" and r["history"] == "ShAFf"
    assert (r["orig_pkts"], r["resp_pkts"]) == (4, 2)


def test_syn_only_is_s0() -> None:
    r = one(run([(0.0, c2s("S", 1000))]))
    assert (r["conn_state"], r["history"]) == ("S0", "S")
    assert (r["orig_pkts"], r["resp_pkts"], r["resp_ip_bytes"]) == (1, 0, 0)
    assert r["orig_ip_bytes"] == 40


def test_syn_retransmitted_is_still_one_s0() -> None:
    r = one(run([(0.0, c2s("S", 1000)), (1.0, c2s("S", 1000)), (3.0, c2s("S", 1000))]))
    assert (r["conn_state"], r["history"], r["orig_pkts"]) == ("S0", "S", 3)


def test_syn_then_rst_from_responder_is_rej() -> None:
    r = one(run([(0.0, c2s("S", 1000)), (0.01, s2c("RA", 0, 1001))]))
    assert r["conn_state"] == "REJ"
    assert r["history"] == "Sr"
    assert (r["orig_pkts"], r["resp_pkts"]) == (1, 1)


def test_established_then_orig_reset_is_rsto() -> None:
    pkts = [
        (0.0, c2s("S", 1000)),
        (0.1, s2c("SA", 5000, 1001)),
        (0.2, c2s("A", 1001, 5001)),
        (0.3, c2s("RA", 1001, 5001)),
    ]
    r = one(run(pkts))
    assert (r["conn_state"], r["history"]) == ("RSTO", "ShAR")


def test_first_packet_syn_ack_flips_roles() -> None:
    r = one(run([(0.0, s2c("SA", 5000, 1001))]))
    # the SYN-ACK comes from the responder, so the client is the originator
    assert (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"]) == (C, CP, S, SP)
    assert r["history"].startswith("^")
    assert r["history"] == "^h"
    assert (r["orig_pkts"], r["resp_pkts"]) == (0, 1)


def test_midstream_from_server_port_flips_roles() -> None:
    r = one(run([(0.0, s2c("PA", 5000, 1001, b"x" * 10)), (0.1, c2s("A", 1001, 5010))]))
    assert (r["src_ip"], r["dst_port"]) == (C, SP)
    assert r["history"].startswith("^")
    assert (r["orig_pkts"], r["resp_pkts"]) == (1, 1)


# --------------------------------------------------------------------------- UDP / ICMP


def dns_q(t: float = 0.0) -> tuple[float, Packet]:
    return t, IP(src="192.168.1.52", dst="8.8.8.8") / UDP(sport=54585, dport=53) / (b"q" * 30)


def dns_r(t: float = 0.05) -> tuple[float, Packet]:
    return t, IP(src="8.8.8.8", dst="192.168.1.52") / UDP(sport=53, dport=54585) / (b"r" * 90)


def test_udp_dns_query_response() -> None:
    r = one(run([dns_q(), dns_r()]))
    assert (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"], r["proto"]) == (
        "192.168.1.52",
        54585,
        "8.8.8.8",
        53,
        "udp",
    )
    assert (r["conn_state"], r["history"]) == ("SF", "Dd")
    assert (r["orig_pkts"], r["resp_pkts"]) == (1, 1)
    assert (r["orig_ip_bytes"], r["resp_ip_bytes"]) == (28 + 30, 28 + 90)
    assert (r["orig_bytes"], r["resp_bytes"]) == (30, 90)
    assert r["community_id"] == "1:d/FP5EW3wiY1vCndhwleRRKHowQ="


def test_dns_response_first_flips_roles() -> None:
    r = one(run([dns_r(0.0), dns_q(0.1)]))
    assert (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"]) == (
        "192.168.1.52",
        54585,
        "8.8.8.8",
        53,
    )
    assert r["history"] == "^dD"
    assert (r["orig_pkts"], r["resp_pkts"]) == (1, 1)
    assert r["conn_state"] == "SF"


def test_lone_dns_response() -> None:
    r = one(run([dns_r(0.0)]))
    assert (r["src_ip"], r["dst_port"], r["history"], r["conn_state"]) == (
        "192.168.1.52",
        53,
        "^d",
        "SHR",
    )


def test_udp_between_two_ephemeral_ports_keeps_first_sender() -> None:
    p = IP(src="10.9.9.9", dst="10.8.8.8") / UDP(sport=50000, dport=40000)
    r = one(run([(0.0, p)]))
    assert (r["src_ip"], r["src_port"], r["history"], r["conn_state"]) == (
        "10.9.9.9",
        50000,
        "D",
        "S0",
    )


def test_icmp_echo_request_reply_one_flow() -> None:
    req = IP(src="192.168.0.89", dst="192.168.0.1") / ICMP(type=8, id=7, seq=1) / (b"x" * 32)
    rep = IP(src="192.168.0.1", dst="192.168.0.89") / ICMP(type=0, id=7, seq=1) / (b"x" * 32)
    r = one(run([(0.0, req), (0.001, rep)]))
    assert (r["src_ip"], r["dst_ip"], r["proto"]) == ("192.168.0.89", "192.168.0.1", "icmp")
    assert (r["src_port"], r["dst_port"]) == (8, 0)  # Zeek: type and counterpart type
    assert (r["orig_pkts"], r["resp_pkts"]) == (1, 1)
    assert r["orig_ip_bytes"] == r["resp_ip_bytes"] == 20 + 8 + 32
    assert r["community_id"] == "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="


def test_icmp_unpaired_type_uses_code() -> None:
    p = IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=11, code=0) / (b"\x00" * 28)
    r = one(run([(0.0, p)]))
    assert (r["src_port"], r["dst_port"]) == (11, 0)
    assert r["community_id"] == "1:YHxtAirCG//0OzkcVAukqKQN9xM="


# --------------------------------------------------------------------------- timeouts


def _udp(t: float, sport: int = 40001, dport: int = 9999) -> tuple[float, Packet]:
    return t, IP(src="10.1.1.1", dst="10.2.2.2") / UDP(sport=sport, dport=dport) / b"abc"


def test_udp_idle_timeout_splits_flow() -> None:
    cfg = FlowTableConfig(udp_timeout=2.0)
    recs = run([_udp(0.0), _udp(1.5), _udp(5.0)], cfg)
    assert len(recs) == 2
    recs.sort(key=lambda r: r["ts"])
    assert [r["orig_pkts"] for r in recs] == [2, 1]
    assert recs[0]["end_reason"] == "idle_timeout"
    assert recs[0]["duration"] == pytest.approx(1.5)
    # within the timeout the same 5-tuple is one flow
    assert len(run([_udp(0.0), _udp(1.9), _udp(3.8)], cfg)) == 1


def test_idle_flow_swept_by_a_later_batch() -> None:
    table = FlowTable(FlowTableConfig(udp_timeout=2.0))
    assert len(table.update(decode(batch([_udp(0.0)]))).ended) == 0
    ev = table.update(decode(batch([_udp(10.0, sport=40002)])))
    ended = list(ev.ended.to_dicts())
    assert len(ended) == 1
    assert ended[0]["src_port"] == 40001 and ended[0]["end_reason"] == "idle_timeout"
    assert table.stats().active == 1


def test_dns_port_times_out_sooner() -> None:
    cfg = FlowTableConfig(udp_timeout=60.0, dns_timeout=3.0)
    assert len(run([_udp(0.0, dport=53), _udp(5.0, dport=53)], cfg)) == 2
    assert len(run([_udp(0.0, dport=9999), _udp(5.0, dport=9999)], cfg)) == 1


def test_tcp_timeout_default_300s() -> None:
    pk = [(0.0, c2s("S", 1000)), (0.1, s2c("SA", 5000, 1001)), (0.2, c2s("A", 1001, 5001))]
    assert len(run([*pk, (250.0, c2s("A", 1001, 5001))])) == 1
    assert len(run([*pk, (301.0, c2s("A", 1001, 5001))])) == 2


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        FlowTableConfig(max_flows=0)
    with pytest.raises(ValueError):
        FlowTableConfig(udp_timeout=0)
    with pytest.raises(ValueError):
        FlowTableConfig(active_timeout=-1)


# --------------------------------------------------------------------------- bounded table


def _syn_flood(n: int, seed: int = 1) -> list[bytes]:
    """n SYNs from n distinct sources (random order of addresses and random ports)."""
    rng = np.random.default_rng(seed)
    tmpl = bytearray(bytes(IP(src="1.1.1.1", dst="192.0.2.80") / TCP(sport=1, dport=80, flags="S")))
    srcs = rng.permutation(np.arange(0x0B000000, 0x0B000000 + n, dtype=np.uint64))
    ports = rng.integers(1024, 65536, n)
    out = []
    for a, p in zip(srcs.tolist(), ports.tolist(), strict=True):
        struct.pack_into(">I", tmpl, 12, a)
        struct.pack_into(">H", tmpl, 20, p)
        out.append(bytes(tmpl))
    return out


def test_syn_flood_bounded_table_evicts_lru() -> None:
    n, cap = 20_000, 1000
    pkts = _syn_flood(n)
    table = FlowTable(FlowTableConfig(max_flows=cap, export_buffer=256))
    shapes = (table._I.shape, table._F.shape, table._U.shape, table._H.shape, table._table.shape)
    recs = []
    for k in range(0, n, 5000):  # several batches; timestamps 1 µs apart
        chunk = pkts[k : k + 5000]
        b = PacketBatch.from_packets(chunk, [NS + (k + i) * 1000 for i in range(len(chunk))], 101)
        ev = table.update(decode(b))
        assert ev.created == len(chunk)
        recs += list(ev.ended.to_dicts())
    st = table.stats()
    assert st.created == n
    assert st.evicted == n - cap
    assert st.active == cap
    recs_flush = list(table.flush().to_dicts())
    recs += recs_flush
    assert len(recs) == n
    assert sum(r["orig_pkts"] for r in recs) == n
    assert sum(r["end_reason"] == "evicted" for r in recs) == n - cap
    # least recently used first: the survivors are the last `cap` sources
    last_srcs = {".".join(str(b) for b in p[12:16]) for p in pkts[-cap:]}
    assert {r["src_ip"] for r in recs_flush} == last_srcs
    assert all(r["conn_state"] == "S0" for r in recs)
    assert table.stats().active == 0
    assert shapes == (
        table._I.shape,
        table._F.shape,
        table._U.shape,
        table._H.shape,
        table._table.shape,
    )


def test_lru_touch_protects_a_flow() -> None:
    table = FlowTable(FlowTableConfig(max_flows=2))
    recs = run([_udp(0.0, 1), _udp(0.1, 2), _udp(0.2, 1), _udp(0.3, 3)], table=table)
    evicted = [r for r in recs if r["end_reason"] == "evicted"]
    assert [r["src_port"] for r in evicted] == [2]
    assert sorted(r["src_port"] for r in recs) == [1, 2, 3]
    assert table.stats().evicted == 1


# --------------------------------------------------------------------------- features


def test_features_match_independent_computation() -> None:
    a, b = "10.5.5.5", "10.6.6.6"
    spec = [(0.0, 0, 100), (0.25, 1, 300), (0.5, 0, 20), (1.75, 0, 0), (2.0, 1, 50), (2.1, 1, 7)]
    pkts = []
    for t, d, n in spec:
        src, dst, sp, dp = (a, b, 41000, 7777) if d == 0 else (b, a, 7777, 41000)
        pkts.append(
            (t, IP(src=src, dst=dst, ttl=64 - d * 10) / UDP(sport=sp, dport=dp) / (b"x" * n))
        )
    r = one(run(pkts))
    ts = np.array([t for t, _, _ in spec])
    lens = np.array([28 + n for _, _, n in spec], dtype=float)
    fwd = np.array([d == 0 for _, d, _ in spec])
    approx = lambda v: pytest.approx(v, abs=2e-6)  # noqa: E731 - records are rounded to 1 µs
    assert r["orig_pkts"] == fwd.sum() and r["resp_pkts"] == (~fwd).sum()
    assert r["duration"] == approx(ts[-1] - ts[0])
    assert r["pkt_len_min"] == lens.min() and r["pkt_len_max"] == lens.max()
    assert r["pkt_len_mean"] == approx(lens.mean())
    assert r["pkt_len_std"] == approx(lens.std())
    assert r["pkt_len_var"] == approx(lens.var())
    for side, m in (("fwd", fwd), ("bwd", ~fwd)):
        assert r[f"{side}_pkt_len_min"] == lens[m].min()
        assert r[f"{side}_pkt_len_max"] == lens[m].max()
        assert r[f"{side}_pkt_len_mean"] == approx(lens[m].mean())
        assert r[f"{side}_pkt_len_std"] == approx(lens[m].std())
        iat = np.diff(ts[m])
        assert r[f"{side}_iat_total"] == approx(iat.sum())
        assert r[f"{side}_iat_mean"] == approx(iat.mean())
        assert r[f"{side}_iat_min"] == approx(iat.min())
        assert r[f"{side}_iat_max"] == approx(iat.max())
        assert r[f"{side}_iat_std"] == approx(iat.std())
    iat = np.diff(ts)
    assert r["iat_mean"] == approx(iat.mean())
    assert r["iat_min"] == approx(iat.min())
    assert r["iat_max"] == approx(iat.max())
    assert r["iat_std"] == approx(iat.std())
    dur = ts[-1] - ts[0]
    assert r["flow_pkts_per_s"] == approx(len(spec) / dur)
    assert r["flow_bytes_per_s"] == approx(lens.sum() / dur)
    assert r["down_up_ratio"] == approx((~fwd).sum() / fwd.sum())
    assert (r["first_ttl"], r["min_ttl"], r["max_ttl"]) == (64, 54, 64)
    assert r["fwd_hdr_bytes"] == 28 * fwd.sum() and r["bwd_hdr_bytes"] == 28 * (~fwd).sum()
    assert r["fwd_data_pkts"] == 2  # the empty datagram carries no data
    for name in FEATURES:
        assert name in r


def test_active_idle_periods() -> None:
    cfg = FlowTableConfig(activity_gap=1.0)
    times = [0.0, 0.2, 0.5, 3.5, 3.9, 10.0]  # active 0-0.5, idle 3.0, active 3.5-3.9, idle 6.1
    r = one(run([_udp(t) for t in times], cfg))
    assert r["idle_min"] == pytest.approx(3.0) and r["idle_max"] == pytest.approx(6.1)
    assert r["idle_mean"] == pytest.approx(4.55)
    assert r["active_min"] == pytest.approx(0.4) and r["active_max"] == pytest.approx(0.5)


# --------------------------------------------------------------------------- Community ID

VECTORS = [
    (
        58,
        "fe80::200:86ff:fe05:80da",
        "fe80::260:97ff:fe07:69ea",
        135,
        136,
        "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
    ),
    (
        58,
        "fe80::260:97ff:fe07:69ea",
        "fe80::200:86ff:fe05:80da",
        136,
        135,
        "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
    ),
    (
        58,
        "fe80::260:97ff:fe07:69ea",
        "fe80::200:86ff:fe05:80da",
        135,
        136,
        "1:zavyT/cezQr1fmImYCwYnMXbgck=",
    ),
    (
        58,
        "3ffe:501:1800:2345::2",
        "3ffe:507:0:1:200:86ff:fe05:80da",
        3,
        0,
        "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=",
    ),
    (
        58,
        "3ffe:501:410:0:2c0:dfff:fe47:33e",
        "3ffe:507:0:1:200:86ff:fe05:80da",
        1,
        4,
        "1:hLZd0XGWojozrvxqE0dWB1iM6R0=",
    ),
    (
        58,
        "3ffe:507:0:1:200:86ff:fe05:80da",
        "3ffe:501:0:1001::2",
        128,
        129,
        "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
    ),
    (58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 134, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0="),
    (58, "fe80::260:97ff:fe07:69ea", "ff02::1", 134, 133, "1:pkvHqCL88/tg1k4cPigmZXUtL00="),
    (1, "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="),
    (1, "192.168.0.1", "192.168.0.89", 0, 8, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="),
    (1, "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM="),
    (
        6,
        "2001:470:e5bf:dead:4957:2174:e82c:4887",
        "2607:f8b0:400c:c03::1a",
        63943,
        25,
        "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
    ),
    (132, "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="),
    (6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    (17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    (17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    (46, "10.1.12.1", "10.1.12.2", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="),
]


@pytest.mark.parametrize(("proto", "src", "dst", "sport", "dport", "expected"), VECTORS)
def test_community_id_vectors(
    proto: int, src: str, dst: str, sport: int, dport: int, expected: str
) -> None:
    assert community_id(src, dst, proto, sport, dport) == expected


def _halves(address: str) -> tuple[int, int]:
    value = int(ipaddress.ip_address(address))
    if ipaddress.ip_address(address).version == 4:
        value |= 0xFFFF << 32
    return value >> 64, value & (2**64 - 1)


def test_community_ids_of_many_flows_match_one_at_a_time() -> None:
    flows = [(p, s, d, sp, dp) for p, s, d, sp, dp, _ in VECTORS]
    flows += [
        (6, "10.0.0.1", "10.0.0.1", 9, 3),  # same address: the ports decide the order
        (6, "10.0.0.1", "10.0.0.1", 3, 9),
        (1, "10.0.0.2", "10.0.0.1", 8, 0),  # echo request: ordered like its reply
        (1, "10.0.0.2", "10.0.0.1", 3, 1),  # unreachable: one way, never reordered
        (58, "2001:db8::2", "2001:db8::1", 135, 0),
        (6, "2001:db8::1", "10.0.0.1", 1, 2),  # mixed families, one at a time
    ]
    src = [_halves(s) for _, s, _, _, _ in flows]
    dst = [_halves(d) for _, _, d, _, _ in flows]
    got = community_ids(
        np.array([h for h, _ in src], dtype=np.uint64),
        np.array([lo for _, lo in src], dtype=np.uint64),
        np.array([h for h, _ in dst], dtype=np.uint64),
        np.array([lo for _, lo in dst], dtype=np.uint64),
        np.array([p for p, *_ in flows]),
        np.array([sp for *_, sp, _ in flows]),
        np.array([dp for *_, dp in flows]),
    )
    assert got[: len(VECTORS)] == [v[5] for v in VECTORS]
    assert got == [community_id(s, d, p, sp, dp) for p, s, d, sp, dp in flows]
    assert got[-6] == got[-5]  # the same flow seen from either end
    assert community_ids(*(np.zeros(0, np.uint64),) * 4, *(np.zeros(0, np.int64),) * 3) == []


def test_ip_texts_write_each_address_as_ip_text_does() -> None:
    addresses = ["10.0.0.1", "2001:db8::1", "10.0.0.1", "0.0.0.0", "::", "2001:db8::1", "1.2.3.4"]
    halves = [_halves(a) for a in addresses]
    hi = np.array([h for h, _ in halves], dtype=np.uint64)
    lo = np.array([low for _, low in halves], dtype=np.uint64)
    assert ip_texts(hi, lo) == [ip_text(h, low) for h, low in halves]
    assert ip_texts(hi, lo) == [str(ipaddress.ip_address(a)) for a in addresses]


def test_community_id_seed_changes_hash() -> None:
    a = community_id("10.0.0.1", "10.0.0.2", 6, 1, 2)
    assert community_id("10.0.0.1", "10.0.0.2", 6, 1, 2, seed=1) != a
    assert community_id("10.0.0.2", "10.0.0.1", 6, 2, 1) == a


def _vector(src: str, dst: str, proto: int) -> str:
    return next(v[5] for v in VECTORS if v[1] == src and v[2] == dst and v[0] == proto)


@pytest.mark.parametrize(
    ("pkt", "vector"),
    [
        (
            IP(src="128.232.110.120", dst="66.35.250.204") / TCP(sport=34855, dport=80, flags="S"),
            ("128.232.110.120", "66.35.250.204", 6),
        ),
        (
            IPv6(src="2001:470:e5bf:dead:4957:2174:e82c:4887", dst="2607:f8b0:400c:c03::1a")
            / TCP(sport=63943, dport=25, flags="S"),
            ("2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 6),
        ),
        (
            IPv6(src="fe80::200:86ff:fe05:80da", dst="fe80::260:97ff:fe07:69ea")
            / ICMPv6ND_NS(tgt="fe80::260:97ff:fe07:69ea"),
            ("fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 58),
        ),
        (
            IP(src="10.1.12.1", dst="10.1.12.2", proto=46) / (b"\x10" * 24),
            ("10.1.12.1", "10.1.12.2", 46),
        ),
        (
            IP(src="8.8.8.8", dst="192.168.1.52") / UDP(sport=53, dport=54585) / b"r",
            ("192.168.1.52", "8.8.8.8", 17),
        ),
    ],
    ids=["tcp4", "tcp6", "icmp6-ns", "rsvp", "udp-flipped"],
)
def test_flow_record_community_id(pkt: Packet, vector: tuple[str, str, int]) -> None:
    r = one(run([(0.0, pkt)]))
    assert r["community_id"] == _vector(*vector)


def test_ip_text_takes_row_halves_as_numpy_integers() -> None:
    v6 = ipaddress.IPv6Address("2001:db8::c5:8f1e")
    hi, lo = np.uint64(int(v6) >> 64), np.uint64(int(v6) & (2**64 - 1))
    assert ip_text(hi, lo) == "2001:db8::c5:8f1e"
    assert ip_text(np.uint64(0), np.uint64(0xFFFF_C0A8_0001)) == "192.168.0.1"


def test_group_orders_groups_by_the_rows_bytes_and_keeps_first_rows() -> None:
    # 256 is 00 01 ... in little-endian bytes and 1 is 01 00 ...: 256's group first,
    # as sorting the rows as raw records would put it
    first, inverse = group(np.array([1, 256, 1, 256, 7]), np.array([5, 5, 5, 6, 0]))
    assert first.tolist() == [1, 3, 0, 4]
    assert inverse.tolist() == [2, 0, 2, 1, 3]
    empty_first, empty_inverse = group(np.zeros(0, np.uint64))
    assert empty_first.shape == empty_inverse.shape == (0,)
