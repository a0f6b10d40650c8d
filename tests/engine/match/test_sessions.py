"""Session state: one-sided TCP sessions (Suricata's stream.async-oneside) and flows
picked up at their SYN-ACK."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP

from tests.engine.match.traffic import matcher_for, run_packets

C, S = "10.0.0.1", "10.0.0.2"
RULES = (
    'rule "est-up" { id 1 match tcp established to_server where pkt_data contains "HELLO" }\n'
    'rule "up" { id 2 match tcp to_server where pkt_data contains "HELLO" }\n'
    'rule "est-down" { id 3 match tcp established to_client where pkt_data contains "HELLO" }\n'
    'rule "down" { id 4 match tcp to_client where pkt_data contains "HELLO" }\n'
)


def client_only(with_syn: bool = True) -> list[IP]:
    up = IP(src=C, dst=S)
    pkts = [up / TCP(sport=40000, dport=80, flags="S", seq=100)] if with_syn else []
    return [
        *pkts,
        up / TCP(sport=40000, dport=80, flags="A", seq=101, ack=501),
        up / TCP(sport=40000, dport=80, flags="PA", seq=101, ack=501) / b"HELLO",
    ]


def server_only() -> list[IP]:
    down = IP(src=S, dst=C)
    return [
        down / TCP(sport=80, dport=40000, flags="SA", seq=500, ack=101),
        down / TCP(sport=80, dport=40000, flags="A", seq=501, ack=101),
        down / TCP(sport=80, dport=40000, flags="PA", seq=501, ack=101) / b"HELLO",
    ]


def run(pkts: list[IP], midstream: bool = True, async_oneside: bool = False) -> list[int]:
    m = matcher_for(RULES, midstream=midstream, async_oneside=async_oneside)
    return sorted(a.match.rule_id for a in run_packets(m, pkts))


def test_client_side_only_session_is_established_only_with_async_oneside() -> None:
    assert run(client_only()) == [2]
    assert run(client_only(), async_oneside=True) == [1, 2]
    # picked up mid-stream: established at once with async-oneside, else never (one side)
    assert run(client_only(with_syn=False), midstream=True) == [2]
    assert run(client_only(with_syn=False), midstream=True, async_oneside=True) == [1, 2]
    assert run(client_only(with_syn=False), midstream=False, async_oneside=True) == [2]


def test_flow_first_seen_at_its_syn_ack_has_the_sender_as_server() -> None:
    # the SYN-ACK's sender is the server, so its data travels to the client; with
    # mid-stream pickup (or async-oneside) the server's ACK completes the session
    assert run(server_only(), midstream=False) == [4]
    assert run(server_only(), midstream=False, async_oneside=True) == [3, 4]
    assert run(server_only(), midstream=True) == [3, 4]
    for alert in run_packets(matcher_for(RULES), server_only()):
        assert not alert.to_server
        assert (alert.match.flow.src_ip, alert.match.flow.src_port) == (C, 40000)


def test_stream_size_counts_each_sides_sequence_space() -> None:
    from tests.engine.match.traffic import data, handshake, matcher_for, run_packets

    def r(rid: int, cond: str) -> str:
        return f'rule "s{rid}" {{ id {rid} match tcp where {cond} }}\n'

    text = r(1, "stream.size.client == 1")  # the SYN only
    text += r(2, "stream.size.client == 6")  # SYN + "hello"
    text += r(3, "stream.size.server == 4")  # SYN-ACK + "abc"
    text += r(4, "stream.size.both > 3")
    text += r(5, "stream.size.either > 5")
    m = matcher_for(text)
    pkts = [
        *handshake(),
        data(b"hello"),
        data(b"abc", to_server=False, seq=501),
        data(b"hello", seq=101),  # a retransmission adds nothing
    ]
    got = sorted((a.match.rule_id, a.match.packet) for a in run_packets(m, pkts))
    assert got == [
        (1, 1),
        (1, 2),
        (1, 3),
        (2, 4),
        (2, 5),
        (2, 6),
        (3, 5),
        (3, 6),
        (4, 5),
        (4, 6),
        (5, 4),
        (5, 5),
        (5, 6),
    ]
