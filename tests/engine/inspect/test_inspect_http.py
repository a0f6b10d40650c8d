"""HTTP/1.x buffers: suricata-verify captures (evasions, bodies, normalization) and scapy-built
traffic split across segments, pipelined, chunked and compressed."""

from __future__ import annotations

import gzip

import pytest
from inspect_helpers import Conversation, found, run_pcap, shared_file, verify_case

from engine.inspect import InspectConfig, Inspector
from engine.inspect.http import normalize_host, normalize_uri
from engine.inspect.replay import inspect_batches

EICAR = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE"

# (case, buffer, needle, must be found): the content each case's rule looks for in that
# buffer, and whether Suricata alerts on it.
CASES = [
    *[
        (f"http-evader-{n}", "file_data", EICAR, True)
        for n in ("073", "151", "172", "336", "373", "403", "410", "459", "484", "497")
    ],
    ("http-body-inspect", "file_data", bytes.fromhex("605cf3f0292b"), True),
    ("http-uri-spaces", "http.uri", b" afterspace", True),
    ("http-raw-header", "http.header.raw", b"Server:       Yx(", True),
    ("http-close-headers", "http.header", b"ng1nx", True),
    ("http-post-data-decompression", "http.request_body", b"name", True),
    ("http-post-data-decompression", "http.response_body", b"name", False),
    ("http-not09-file", "http.response_line", b"HTTP/1.1 400", True),
    ("http-not09-file", "file_data", b"HTTP/1.1 400", False),
    ("detect-uricontent-04", "http.method", b"GET", True),
    ("detect-uricontent-04", "http.host", b"www.example.com", True),
    ("detect-uricontent-04", "http.uri", b"/images.gif", True),
    ("UriTestSig17", "http.uri", b"this is a big string", False),
    ("http-encoding-gzip-uncompressed", "http.request_body", b'"sdk_version":', True),
]


@pytest.mark.shared
@pytest.mark.parametrize(("case", "buffer", "needle", "present"), CASES)
def test_suricata_verify_buffers(case: str, buffer: str, needle: bytes, present: bool) -> None:
    path, checksums = verify_case(case)
    # the body-inspect case raises the body limit to 1 MB, as its Suricata configuration does
    depth = 1 << 20 if case == "http-body-inspect" else InspectConfig().http_body_depth
    rows = run_pcap(path, Inspector(InspectConfig(http_body_depth=depth)), checksums=checksums)
    values = [v for _, v in found(rows, buffer)]
    hit = any(needle.lower() in v.lower() for v in values)
    assert hit == present, f"{buffer} values: {[v[:80] for v in values]}"


def _all(rows, name: str) -> list[bytes]:
    return [v for _, v in found(rows, name)]


def test_request_split_across_segments_completes_once() -> None:
    conv = Conversation().handshake()
    request = (
        b"GET /a/./b/../c%2Fd?q=a+b%41 HTTP/1.1\r\nHost: WWW.Example.COM:8080\r\n"
        b"User-Agent: curl/8\r\nCookie: a=1\r\nX-Folded: one\r\n two\r\n"
        b"Accept: x\r\nAccept: y\r\n\r\n"
    )
    for k in range(0, len(request), 7):
        conv.send(True, request[k : k + 7])
    rows = conv.run()
    # the request line's buffers come with the packet that ends the line, the
    # header buffers with the packet that ends the head; each once
    line_end = request.index(b"\n")
    carrying = [r for r in rows if "http.method" in r.context.buffers]
    assert len(carrying) == 1
    assert carrying[0].row == 3 + line_end // 7  # three handshake packets, then 7-byte pieces
    headers = [r for r in rows if "http.header" in r.context.buffers]
    assert len(headers) == 1 and headers[0] is rows[-1]
    b = {**carrying[0].context.buffers, **headers[0].context.buffers}
    assert carrying[0].context.app_proto == "http" and carrying[0].context.to_server
    assert b["http.method"] == b"GET"
    assert b["http.uri.raw"] == b"/a/./b/../c%2Fd?q=a+b%41"
    assert b["http.uri"] == b"/a/c/d?q=a bA"
    assert b["http.host"] == b"www.example.com" and b["http.host.raw"] == b"WWW.Example.COM:8080"
    assert b["http.user_agent"] == b"curl/8" and b["http.cookie"] == b"a=1"
    assert b"Cookie" not in b["http.header"]
    assert b"X-Folded: one two\r\n" in b["http.header"]
    assert b"Accept: x, y\r\n" in b["http.header"]
    assert b["http.header.raw"].startswith(b"Host: WWW.Example.COM:8080\r\n")
    assert b["http.request_line"] == b"GET /a/./b/../c%2Fd?q=a+b%41 HTTP/1.1"


def test_pipelined_requests_and_paired_responses() -> None:
    conv = Conversation().handshake()
    conv.send(True, b"HEAD /one HTTP/1.1\r\nHost: h\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\n\r\n")
    # the HEAD response announces a length but carries no body; the GET response has one
    conv.send(False, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    conv.send(False, b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope")
    rows = conv.run()
    assert _all(rows, "http.uri") == [b"/one", b"/two"]
    first = next(r for r in rows if "http.uri" in r.context.buffers)
    assert len(first.context.more) == 1 and first.context.more[0]["http.method"] == b"GET"
    assert _all(rows, "http.stat_code") == [b"200", b"404"]
    assert _all(rows, "http.stat_msg") == [b"OK", b"Not Found"]
    assert _all(rows, "file_data") == [b"nope"]
    assert _all(rows, "http.response_body") == [b"nope"]


def test_chunked_gzip_response_is_dechunked_and_inflated() -> None:
    body = b"<html>" + b"MZ payload " * 400 + b"</html>"
    packed = gzip.compress(body)
    chunked = b""
    for k in range(0, len(packed), 300):
        piece = packed[k : k + 300]
        chunked += f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n"
    chunked += b"0\r\nTrailer: x\r\n\r\n"
    conv = Conversation().handshake()
    conv.send(True, b"GET /f HTTP/1.1\r\nHost: h\r\n\r\n")
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
    stream = head + chunked
    for k in range(0, len(stream), 500):
        conv.send(False, stream[k : k + 500])
    conv.send(True, b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
    rows = conv.run(Inspector(InspectConfig(http_body_section=1 << 20)))
    assert _all(rows, "file_data") == [body]
    assert _all(rows, "http.uri") == [b"/f", b"/next"]


def test_body_sections_and_depth() -> None:
    cfg = InspectConfig(http_body_section=1000, http_body_depth=2500)
    body = bytes(range(256)) * 20  # 5120 bytes
    conv = Conversation().handshake()
    conv.send(True, b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5120\r\n\r\n")
    for k in range(0, len(body), 700):
        conv.send(True, body[k : k + 700])
    conv.send(True, b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
    rows = conv.run(Inspector(cfg))
    sections = _all(rows, "http.request_body")
    assert b"".join(sections) == body[:2500]
    assert all(len(s) < 2000 for s in sections) and len(sections) >= 2
    assert _all(rows, "file_data") == sections
    assert _all(rows, "http.uri") == [b"/up", b"/after"]


def test_close_delimited_response_ends_with_fin() -> None:
    conv = Conversation().handshake()
    conv.send(True, b"GET / HTTP/1.0\r\n\r\n")
    conv.send(False, b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nhello ")
    conv.send(False, b"world", flags="FPA")
    rows = conv.run()
    assert _all(rows, "file_data") == [b"hello world"]


def test_garbage_ends_parsing_of_that_side_only() -> None:
    conv = Conversation().handshake()
    conv.send(True, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    conv.send(False, b"HTTP/1.1 2x0 OK\r\n\r\n")  # bad status code
    conv.send(False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    conv.send(True, b"GET /later HTTP/1.1\r\nHost: h\r\n\r\n")
    insp = Inspector()
    rows = conv.run(insp)
    assert _all(rows, "http.uri") == [b"/", b"/later"]
    assert _all(rows, "http.stat_code") == []
    assert insp.stats().parse_errors == 1
    assert rows[-1].context.stream is not None  # reassembly goes on


def test_oversized_head_is_an_error() -> None:
    conv = Conversation().handshake()
    conv.send(True, b"GET / HTTP/1.1\r\nX: " + b"a" * 3000)
    insp = Inspector(InspectConfig(http_max_header_bytes=1024))
    conv.run(insp)
    assert insp.stats().parse_errors == 1 and insp.stats().held_bytes < 4000


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        (b"/index.html", b"/index.html"),
        (b"/a//b///c", b"/a/b/c"),
        (b"/a/./b/.", b"/a/b/"),
        (b"/a/b/../../../etc/passwd", b"/etc/passwd"),
        (b"/scripts\\..\\winnt\\cmd.exe", b"/winnt/cmd.exe"),
        (b"/%2e%2e/%2E%2e/x", b"/x"),
        (b"/p%zz%4", b"/p%zz%4"),
        (b"/s?a=1+2&b=%3d", b"/s?a=1 2&b=="),
        (b"http://Host/a/../b?x", b"http://Host/b?x"),
        (b"*", b"*"),
    ],
)
def test_normalize_uri(raw: bytes, normalized: bytes) -> None:
    assert normalize_uri(raw) == normalized


def test_normalize_host() -> None:
    assert normalize_host(b" Example.COM.:443 ") == b"example.com"
    assert normalize_host(b"[2001:DB8::1]:80") == b"[2001:db8::1]"


@pytest.mark.shared
def test_evader_file_names() -> None:
    # Suricata logs fileinfo.filename "eicar.txt" for these captures
    for case in ("http-evader-073", "http-evader-403", "http-evader-484"):
        path, checksums = verify_case(case)
        names = [v for _, v in found(run_pcap(path, checksums=checksums), "file.name")]
        assert names == [b"eicar.txt"], case


def test_file_name_from_disposition_or_uri() -> None:
    conv = Conversation().handshake()
    conv.send(True, b"GET /dl/report.pdf?id=3 HTTP/1.1\r\nHost: h\r\n\r\n")
    conv.send(True, b"GET /get?f=1 HTTP/1.1\r\nHost: h\r\n\r\n")
    conv.send(True, b"GET /empty HTTP/1.1\r\nHost: h\r\n\r\n")
    conv.send(False, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    conv.send(
        False,
        b"HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename*=UTF-8''na%C3%AFve.txt\r\n"
        b"Content-Length: 2\r\n\r\nok",
    )
    conv.send(False, b"HTTP/1.1 204 No Content\r\n\r\n")
    rows = conv.run()
    assert _all(rows, "file.name") == [b"report.pdf", "naïve.txt".encode()]


def test_flush_hands_out_what_a_cut_flow_holds() -> None:
    insp = Inspector(InspectConfig(http_body_section=1 << 20))
    conv = Conversation().handshake()
    conv.send(True, b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
    conv.send(False, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"A" * 1000)
    conv.send(False, b"B" * 1000)
    rows = list(inspect_batches(conv.batches(), insp))  # flushes every flow at the end
    assert rows[-1].batch is None and rows[-1].row == -1
    assert not rows[-1].context.to_server
    assert rows[-1].context.buffers["file_data"] == b"A" * 1000 + b"B" * 1000
    assert _all(rows, "file_data") == [b"A" * 1000 + b"B" * 1000]
    assert insp.flush(rows[-1].flow) == []  # handed out once


@pytest.mark.shared
def test_zeek_range_requests_carry_a_windows_executable() -> None:
    path = shared_file("pcaps/zeek/206_example_b.pcap")
    rows = run_pcap(path)
    assert _all(rows, "http.stat_code") == [b"206"] * 3
    assert len(set(_all(rows, "http.uri"))) == 1
    sections = found(rows, "file_data")
    # the first section of the first response starts with the PE header
    assert sections[0][1].startswith(b"MZ")
    assert all(len(v) <= 16384 + 1460 for _, v in sections)
