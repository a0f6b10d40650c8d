"""`http.request_header` / `http.response_header`: one instance per header line."""

from __future__ import annotations

from engine.inspect import Inspector
from engine.match.matcher import header_lines
from tests.engine.match.traffic import data, handshake, matcher_for, run_packets

REQUEST = (
    b"GET /a HTTP/1.1\r\nHost: example.com\r\nUser-Agent:   curl/8.0\r\n"
    b"X-Long: one\r\n two\r\nConnection: close\r\n\r\n"
)
RESPONSE = b"HTTP/1.1 200 OK\r\nServer: custom\r\nDate: today\r\nContent-Length: 0\r\n\r\n"


def rule(rid: int, flow: str, cond: str) -> str:
    return f'rule "r{rid}" {{ id {rid} match http {flow} where {cond} }}\n'


def test_header_lines_normalize_each_instance() -> None:
    lines = header_lines(b"Host:example.com\nUser-Agent:   curl\r\nX: a\r\n\tb\r\n").split(b"\r\n")
    assert lines == [b"Host: example.com", b"User-Agent: curl", b"X: a b"]


def test_rules_match_one_header_line_in_the_right_direction() -> None:
    text = rule(1, "to_server", 'http.request_header starts_with "User-Agent: curl"')
    text += rule(2, "to_server", 'http.request_header equals "X-Long: one two"')
    text += rule(3, "to_client", 'http.response_header starts_with "Date: "')
    text += rule(4, "to_server", 'http.response_header contains "Host"')  # wrong direction
    # an instance never spans two header lines
    text += rule(5, "to_server", 'http.request_header contains "example.com\\r\\nUser"')
    text += rule(6, "to_server", 'http.request_header ends_with "close"')
    m = matcher_for(text, inspector=Inspector())
    pkts = [
        *handshake(),
        data(REQUEST),
        data(RESPONSE, to_server=False, seq=501),
    ]
    got = sorted((a.match.rule_id, a.match.packet) for a in run_packets(m, pkts))
    assert got == [(1, 4), (2, 4), (3, 5), (6, 4)]


def test_every_pipelined_transaction_in_one_packet_is_matched() -> None:
    text = 'rule "two" { id 1 match http where http.uri starts_with "/two/" }\n'
    text += 'rule "any" { id 2 match http where http.method equals "GET" }\n'
    text += 'rule "raw" { id 3 match tcp where pkt_data contains "GET /" }\n'
    text += 'rule "host" { id 4 match http where http.host equals "one.example" }\n'
    m = matcher_for(text, inspector=Inspector())
    both = b"GET /one/ HTTP/1.1\r\nHost: one.example\r\n\r\nGET /two/ HTTP/1.1\r\nHost: two\r\n\r\n"
    got = sorted(
        (a.match.rule_id, a.match.packet) for a in run_packets(m, [*handshake(), data(both)])
    )
    # one alert per transaction for buffer rules; the packet rule once for the packet;
    # the second transaction does not inherit the first one's host
    assert got == [(1, 4), (2, 4), (2, 4), (3, 4), (4, 4)]
