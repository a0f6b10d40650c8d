"""HTTP/2 cleartext (prior knowledge): frames, HPACK header blocks split over
CONTINUATION frames, DNS over HTTP/2, and what a malformed connection does."""

from __future__ import annotations

from inspect_helpers import Conversation, found, run_pcap, verify_case
from scapy.contrib import http2 as h2

from engine.inspect import Inspector
from engine.inspect.http2 import PREFACE

SETTINGS = bytes(h2.H2Frame() / h2.H2SettingsFrame())


def headers(table: h2.HPackHdrTable, text: bytes, stream: int, frame_size: int = 1 << 14) -> bytes:
    return bytes(table.parse_txt_hdrs(text, stream_id=stream, max_frm_sz=frame_size))


def test_requests_and_responses_give_http_buffers() -> None:
    client, server = h2.HPackHdrTable(), h2.HPackHdrTable()
    conv = Conversation().handshake()
    conv.send(True, PREFACE + SETTINGS)
    conv.send(False, SETTINGS)
    request = b":method GET\n:path /a/./b/../c?x=1\n:authority Example.COM:8080\n:scheme http\n"
    request += b"user-agent: curl/8\ncookie: k=v\n"
    # a header block cut into CONTINUATION frames, and the dynamic table used by the second
    conv.send(True, headers(client, request, 1, frame_size=40))
    conv.send(False, headers(server, b":status 404\ncontent-type: text/html\n", 1))
    conv.send(True, headers(client, request.replace(b"/c?x=1", b"/d"), 3))
    got = conv.run(Inspector())
    assert {r.context.app_proto for r in got if r.context.app_proto} == {"http2"}
    assert [v for _, v in found(got, "http.uri")] == [b"/a/c?x=1", b"/a/d"]
    assert found(got, "http.uri.raw")[0][1] == b"/a/./b/../c?x=1"
    assert [v for _, v in found(got, "http.method")] == [b"GET", b"GET"]
    assert [v for _, v in found(got, "http.host")] == [b"example.com", b"example.com"]
    assert found(got, "http.user_agent")[0][1] == b"curl/8"
    assert found(got, "http.cookie")[0][1] == b"k=v"
    assert b"cookie" not in found(got, "http.header")[0][1]
    assert [v for _, v in found(got, "http.stat_code")] == [b"404"]
    assert found(got, "http.content_type")[0][1] == b"text/html"
    assert found(got, "http.request_line")[0][1] == b"GET /a/./b/../c?x=1 HTTP/2"


def test_dns_messages_turn_the_flow_into_doh2() -> None:
    client = h2.HPackHdrTable()
    conv = Conversation().handshake()
    conv.send(True, PREFACE + SETTINGS)
    post = b":method POST\n:path /dns-query\n:authority dns.example\n:scheme http\n"
    conv.send(True, headers(client, post + b"content-type: application/dns-message\n", 1))
    # a DATA frame passed over in pieces, then the next request's headers
    data = bytes(h2.H2Frame(stream_id=1) / h2.H2DataFrame(data=b"q" * 3000))
    conv.send(True, data[:1000]).send(True, data[1000:])
    conv.send(True, headers(client, post.replace(b"POST", b"PUT"), 3))
    got = conv.run()
    assert [r.context.app_proto for r in got if r.context.app_proto][:2] == ["http2", "doh2"]
    assert [v for _, v in found(got, "http.method")] == [b"POST", b"PUT"]


def test_a_broken_preface_stops_parsing_without_raising() -> None:
    conv = Conversation().handshake()
    conv.send(True, b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SETTINGS)
    inspector = Inspector()
    got = conv.run(inspector)
    assert not found(got, "http.method")
    assert inspector.stats().parse_errors == 1


def test_suricata_verify_http2_uri() -> None:
    path, mode = verify_case("bug-5929-02")
    got = run_pcap(path, checksums=mode)
    assert [v for _, v in found(got, "http.uri")] == [b"/watchdog/watchdog.exe"]
    assert {r.context.app_proto for r in got if r.context.app_proto} == {"http2"}
