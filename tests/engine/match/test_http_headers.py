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


def test_alerts_name_their_transaction_and_log_its_http_fields() -> None:
    from engine.eve import alert_record

    text = rule(1, "to_server", 'http.method equals "GET"')
    text += rule(2, "to_client", 'http.stat_code equals "404"')
    text += 'rule "raw" { id 3 match tcp to_server where pkt_data contains "GET /" }\n'
    m = matcher_for(text, inspector=Inspector())
    second = b"GET /b?x=1 HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: wget\r\n\r\n"
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html; charset=utf-8\r\n"
    missing += b"Content-Length: 0\r\n\r\n"
    pkts = [
        *handshake(),
        data(REQUEST.replace(b"Connection: close", b"Connection: keep-alive")),
        data(RESPONSE, to_server=False, seq=501),
        data(second, seq=101 + len(REQUEST) + 5),
        data(missing, to_server=False, seq=501 + len(RESPONSE)),
    ]
    records = [alert_record(a) for a in run_packets(m, pkts)]
    by_rule = {(r["alert"]["signature_id"], r.get("tx_id")): r for r in records}
    got = sorted((r["alert"]["signature_id"], r.get("tx_id", -1)) for r in records)
    assert got == [(1, 0), (1, 1), (2, 1), (3, -1), (3, -1)]
    assert by_rule[(1, 0)]["http"] == {
        "hostname": "example.com",
        "url": "/a",
        "http_user_agent": "curl/8.0",
        "http_method": "GET",
        "protocol": "HTTP/1.1",
    }
    assert by_rule[(1, 1)]["http"]["url"] == "/b?x=1"
    response = by_rule[(2, 1)]["http"]
    assert (response["status"], response["http_content_type"]) == (404, "text/html")
    assert response["http_method"] == "GET" and response["hostname"] == "example.com"
    # a packet rule is not bound to a transaction
    assert all("http" not in r for r in records if r["alert"]["signature_id"] == 3)


def test_a_rule_on_the_detected_protocol_alone_matches_where_detection_happened() -> None:
    text = 'rule "pd" { id 1 match tcp where app.protocol == "http" }\n'
    text += 'rule "dir" { id 2 match tcp to_server where app.protocol == "http" }\n'
    text += 'rule "est" { id 3 match tcp established to_server where app.protocol == "http" }\n'
    m = matcher_for(text, inspector=Inspector())
    keep = REQUEST.replace(b"Connection: close", b"Connection: keep-alive")
    pkts = [
        *handshake(),
        data(keep),
        data(RESPONSE, to_server=False, seq=501),
        data(keep, seq=101 + len(keep)),
    ]
    got = sorted((a.match.rule_id, a.match.packet) for a in run_packets(m, pkts))
    # the protocol-only rules once, on the request that revealed HTTP (a bare direction
    # is a signature flag in Suricata, not a test); with another flow option it is an
    # ordinary packet rule
    assert got == [(1, 4), (2, 4), (3, 4), (3, 6)]
