"""Fields read from what the inspector found in a transaction (TLS certificate chain
length), compared per transaction as Suricata's integer keywords are."""

from __future__ import annotations

from engine.flows import FlowTable
from engine.inspect import Inspector
from tests.engine.match.traffic import data, handshake, matcher_for, run_packets, sids


def der(tag: int, body: bytes) -> bytes:
    assert len(body) < 0x10000
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    return bytes([tag, 0x82]) + len(body).to_bytes(2, "big") + body


def name(common_name: str) -> bytes:
    oid = der(0x06, bytes([0x55, 0x04, 0x03]))  # 2.5.4.3, CN
    return der(0x30, der(0x31, der(0x30, oid + der(0x13, common_name.encode()))))


def certificate(subject: str, issuer: str) -> bytes:
    algorithm = der(0x30, der(0x06, bytes([0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02])))
    validity = der(0x30, der(0x17, b"240101000000Z") + der(0x17, b"250101000000Z"))
    tbs = der(0x02, b"\x01") + algorithm + name(issuer) + validity + name(subject)
    return der(0x30, der(0x30, tbs) + algorithm + der(0x03, b"\x00\x01"))


def handshake_record(message_type: int, body: bytes) -> bytes:
    message = bytes([message_type]) + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + len(message).to_bytes(2, "big") + message


def client_hello() -> bytes:
    body = b"\x03\x03" + b"\xaa" * 32 + b"\x00" + b"\x00\x02\x00\x2f" + b"\x01\x00"
    return handshake_record(1, body)


def server_flight(chain_length: int) -> bytes:
    hello = b"\x03\x03" + bytes(range(32)) + b"\x00" + b"\x00\x2f" + b"\x00"
    certs = b"".join(
        len(c).to_bytes(3, "big") + c
        for c in (certificate(f"host{i}", f"ca{i}") for i in range(chain_length))
    )
    chain = len(certs).to_bytes(3, "big") + certs
    return handshake_record(2, hello) + handshake_record(11, chain) + handshake_record(14, b"")


def tls_session(chain_length: int, cp: int = 40000) -> list[object]:
    hello = client_hello()
    return [
        *handshake(cp=cp, sp=443),
        data(hello, cp=cp, sp=443),
        data(server_flight(chain_length), to_server=False, cp=cp, sp=443, seq=501),
        data(b"\x17\x03\x03\x00\x01\x00", cp=cp, sp=443, seq=101 + len(hello)),
    ]


def rules() -> str:
    tests = ["== 3", "< 4", "in 0<>4", "!= 2"]
    return "".join(
        f'rule "r{i}" {{ id {i} match tls where tls.cert_chain_len {t} }}'
        for i, t in enumerate(tests, start=1)
    )


def test_chain_length_is_compared_once_per_certificate_message() -> None:
    alerts = run_packets(matcher_for(rules(), inspector=Inspector()), tls_session(3))
    assert sids(alerts) == [1, 2, 3, 4]
    assert {a.match.packet for a in alerts} == {5}  # the server's certificate flight


def test_chain_length_tests_that_do_not_hold() -> None:
    alerts = run_packets(matcher_for(rules(), inspector=Inspector()), tls_session(2))
    assert sids(alerts) == [2, 3]


def test_chain_length_is_absent_without_a_certificate_message() -> None:
    text = 'rule "any chain" { id 9 match tls where tls.cert_chain_len >= 0 }'
    session = tls_session(1)[:-2]  # client hello only
    assert sids(run_packets(matcher_for(text, inspector=Inspector()), session)) == []


def dns_exchange() -> list[object]:
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, UDP

    questions = [DNSQR(qname="a.example", qtype="A"), DNSQR(qname="b.example", qtype=28)]
    answers = [
        DNSRR(rrname="a.example", type="CNAME", rdata="c.example"),
        DNSRR(rrname="c.example", type="A", rdata="192.0.2.1"),
    ]
    query = DNS(id=7, qd=questions)
    response = DNS(id=7, qr=1, qd=questions, an=answers)
    return [
        IP(src="10.0.0.1", dst="10.0.0.53") / UDP(sport=3333, dport=53) / query,
        IP(src="10.0.0.53", dst="10.0.0.1") / UDP(sport=53, dport=3333) / response,
    ]


def test_dns_rrtype_reads_questions_of_queries_and_answers_of_responses() -> None:
    tests = {
        1: "dns.rrtype == 28",  # the query's second question
        2: "dns.rrtype[0] == 5",  # the response's first answer
        3: "dns.rrtype[-1] == 1",  # the last answer (the last question is AAAA)
        4: "dns.rrtype[all] == 1",  # never: each message holds another type too
        5: "dns.rrtype[2] >= 0",  # no third value in either message
    }
    text = "".join(f'rule "r{i}" {{ id {i} match dns where {t} }}' for i, t in tests.items())
    alerts = run_packets(matcher_for(text, inspector=Inspector()), dns_exchange())
    assert sorted((a.match.rule_id, a.match.packet) for a in alerts) == [
        (1, 1),
        (2, 2),
        (3, 2),
    ]


def test_tls_random_of_client_and_server_hello() -> None:
    client = "AA " * 32
    text = (
        f'rule "client random" {{ id 1 match tls to_server where tls.random equals |{client}| }}'
        'rule "server random" { id 2 match tls to_client where tls.random starts_with |00 01 02| }'
        'rule "not the client\'s" { id 3 match tls to_client where tls.random contains |AA AA| }'
    )
    alerts = run_packets(matcher_for(text, inspector=Inspector()), tls_session(1))
    assert [(a.match.rule_id, a.match.packet) for a in alerts] == [(1, 4), (2, 5)]


def test_protocol_only_rule_alerts_on_the_packet_that_completed_detection() -> None:
    text = (
        'rule "tls only" { id 1 match tcp where app.protocol == "tls" }'
        'rule "tls to client" { id 2 match tcp to_client where app.protocol == "tls" }'
    )
    alerts = run_packets(matcher_for(text, inspector=Inspector()), tls_session(1))
    # the client hello (packet 4) made the flow TLS; a rule with more to test than the
    # protocol is evaluated on each packet
    assert [(a.match.rule_id, a.match.packet) for a in alerts] == [(1, 4), (2, 5)]


def test_protocol_family_and_its_negation_are_protocol_only_rules() -> None:
    text = (
        'rule "tls family" { id 1 match tcp where app.protocol in ["tls", "dtls"] }'
        'rule "not http" { id 2 match tcp where not app.protocol in ["http", "http2"] }'
        'rule "not tls" { id 3 match tcp where not app.protocol in ["tls"] }'
    )
    alerts = run_packets(matcher_for(text, inspector=Inspector()), tls_session(1))
    # like `==`: once, on the packet that made the flow TLS
    assert [(a.match.rule_id, a.match.packet) for a in alerts] == [(1, 4), (2, 4)]


def ftp_session(port_command: bytes) -> list[object]:
    return [
        *handshake(sp=21),
        data(b"220 FTP server ready\r\n", to_server=False, sp=21, seq=501),
        data(b"USER anonymous\r\n", sp=21),
        data(port_command, sp=21, seq=117),
    ]


def test_ftp_bounce_is_a_port_command_naming_another_host() -> None:
    text = 'rule "bounce" { id 1 match tcp to_server where ftp.bounce }'
    own = ftp_session(b"PORT 10,0,0,1,232,157\r\n")  # the client itself: 10.0.0.1
    assert sids(run_packets(matcher_for(text, inspector=Inspector()), own)) == []
    other = ftp_session(b"PORT 192,168,1,9,0,80\r\n")
    alerts = run_packets(matcher_for(text, inspector=Inspector()), other)
    assert [(a.match.rule_id, a.match.packet) for a in alerts] == [(1, 6)]


def test_application_rule_without_payload_waits_for_the_protocol() -> None:
    text = 'rule "any tls packet" { id 1 match tls where ip.ttl > 0 }'
    alerts = run_packets(matcher_for(text, inspector=Inspector()), tls_session(1))
    # not the handshake before detection: the client hello and what follows
    assert [a.match.packet for a in alerts] == [4, 5, 6]


def one_sided_rules() -> str:
    return (
        'rule "get" { id 1 match http to_server where pkt_data contains "GET /i/" }'
        'rule "get, established" { id 2 match http established to_server '
        'where pkt_data contains "GET /i/" }'
    )


def midstream_requests() -> list[object]:
    first = b"GET /i/1 HTTP/1.1\r\nHost: a\r\n\r\n"
    second = b"GET /i/2 HTTP/1.1\r\nHost: a\r\n\r\n"
    return [data(first, seq=1000), data(second, seq=1000 + len(first))]


def test_session_seen_from_one_side_matches_application_rules_at_its_end() -> None:
    m = matcher_for(one_sided_rules(), inspector=Inspector(), raw_stream=True)
    assert run_packets(m, midstream_requests()) == []
    ended = m.finish()
    # once each, established as Suricata considers the session by then, on no packet
    assert sorted((a.match.rule_id, a.match.packet) for a in ended) == [(1, None), (2, None)]


def test_held_alerts_are_released_when_the_other_side_shows_up() -> None:
    reply = data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", to_server=False, seq=7000)
    m = matcher_for(one_sided_rules(), inspector=Inspector(), raw_stream=True)
    alerts = run_packets(m, [*midstream_requests(), reply])
    # as if they had not been held: on the packets that carried the requests
    assert [(a.match.rule_id, a.match.packet) for a in alerts] == [(1, 1), (1, 2)]
    assert m.finish() == []


def test_each_direction_has_its_own_protocol() -> None:
    text = (
        'rule "http client, ssh server" { id 1 match tcp to_client '
        'where app.protocol.to_server == "http" and app.protocol.to_client == "ssh" }'
        'rule "any packet of it" { id 2 match tcp to_client '
        'where app.protocol.to_client == "ssh" and dsize > 0 }'
    )
    packets = [
        *handshake(sp=22),
        data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", sp=22),
        data(b"SSH-2.0-OpenSSH_6.6.1\r\n", to_server=False, sp=22, seq=501),
        data(b"Protocol mismatch.\n", to_server=False, sp=22, seq=524),
    ]
    alerts = run_packets(matcher_for(text, inspector=Inspector()), packets)
    # the protocol-only rule once, where the server's side was detected; the other on
    # each of the server's packets
    assert [(a.match.rule_id, a.match.packet) for a in alerts] == [(1, 5), (2, 5), (2, 6)]


def test_tls_handshakes_are_parsed_only_while_a_rule_reads_what_they_give() -> None:
    protocol = 'rule "tls" { id 1 match tcp where app.protocol == "tls" }'
    random = 'rule "random" { id 2 match tls to_server where tls.random starts_with |AA AA| }'
    inspector = Inspector()
    m = matcher_for(protocol, inspector=inspector)
    table = FlowTable()
    # no rule reads a TLS buffer: the flow is still TLS, its handshake goes unparsed
    assert 1 in sids(run_packets(m, tls_session(1), table=table))
    assert inspector.stats().tls_client_hellos == 0
    # a reload brings a rule that does: the next session's handshake is parsed
    m.swap(matcher_for(protocol + random).ruleset)
    later = run_packets(m, tls_session(1, cp=40001), table=table, start=1_700_000_060.0)
    assert {1, 2} <= set(sids(later))
    assert inspector.stats().tls_client_hellos == 1
