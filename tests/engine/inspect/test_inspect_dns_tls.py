"""DNS query names, TLS SNI and certificate names (suricata-verify captures and scapy-built
traffic), SSH identification, and application protocol detection from content."""

from __future__ import annotations

import struct

import pytest
from inspect_helpers import Conversation, found, run_pcap, shared_file, verify_case
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from dpdk_io.batch import PacketBatch
from engine.inspect import InspectConfig, Inspector
from engine.inspect.dns import DnsError, question_name
from engine.inspect.replay import inspect_batches

# ----------------------------------------------------------------------------- DNS


@pytest.mark.shared
def test_dns_query_names_only_from_queries() -> None:
    path, checksums = verify_case("dns-detect-query-02")
    rows = run_pcap(path, checksums=checksums)
    # Suricata alerts on packets 1 and 3 (1-based): the two queries, not the response
    assert found(rows, "dns.query") == [(0, b"google.com"), (2, b"google.net")]
    assert all(r.context.app_proto == "dns" for r in rows)


@pytest.mark.shared
def test_dns_over_tcp_query_names() -> None:
    path, checksums = verify_case("task-7018-ids-dns-stream-rule")
    rows = run_pcap(path, checksums=checksums)
    names = [v for _, v in found(rows, "dns.query")]
    assert names == [b"suricata.io", b"oisf.net", b"suricata.org"]
    assert all(r.context.to_server for r in rows if "dns.query" in r.context.buffers)


def _dns_batch(payloads: list[bytes], sport: int = 33000, dport: int = 53) -> PacketBatch:
    frames = [
        bytes(
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IP(src="10.0.0.1", dst="10.0.0.53")
            / UDP(sport=sport, dport=dport)
            / p
        )
        for p in payloads
    ]
    return PacketBatch.from_packets(frames, list(range(len(frames))), 1)


def test_dns_query_keeps_case_and_follows_pointers() -> None:
    query = bytes(DNS(id=1, rd=1, qd=DNSQR(qname="WwW.Example.ORG.")))
    assert question_name(query) == b"WwW.Example.ORG"
    # a question whose name ends in a pointer back into the message
    header = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0)
    crafted = header + b"\x03abc\xc0\x18" + b"\x00\x01\x00\x01" + b"\x07example\x03com\x00"
    with pytest.raises(DnsError, match="pointer"):
        question_name(crafted)  # a forward pointer is refused
    looped = header + b"\x03abc\xc0\x0c\x00\x01\x00\x01"
    with pytest.raises(DnsError):
        question_name(looped)
    root = bytes(DNS(id=2, qd=DNSQR(qname=".")))
    assert question_name(root) == b""


def test_dns_response_compression_and_bad_messages_do_not_raise() -> None:
    query = bytes(DNS(id=5, rd=1, qd=DNSQR(qname="a.example.net")))
    reply = bytes(
        DNS(id=5, qr=1, qd=DNSQR(qname="a.example.net"), an=DNSRR(rrname="a.example.net"))
    )
    garbage = query[:12] + b"\x3fshort"
    insp = Inspector()
    rows = list(inspect_batches([_dns_batch([query, reply, garbage])], insp))
    assert [r.context.buffers.get("dns.query") for r in rows] == [b"a.example.net", None, None]
    assert insp.stats().parse_errors == 1 and insp.stats().dns_queries == 1


def test_udp_on_dns_port_that_is_not_dns_stays_unknown() -> None:
    insp = Inspector()
    rows = list(inspect_batches([_dns_batch([b"\x00" * 3 + b"not dns at all"])], insp))
    assert rows[0].context.app_proto is None and rows[0].context.buffers == {}


def test_dns_over_tcp_split_length_prefix() -> None:
    msg = bytes(DNS(id=9, rd=1, qd=DNSQR(qname="split.example")))
    framed = struct.pack(">H", len(msg)) + msg
    conv = Conversation(dport=53).handshake()
    conv.send(True, framed[:1]).send(True, framed[1:10]).send(True, framed[10:] + framed)
    rows = conv.run()
    assert [v for _, v in found(rows, "dns.query")] == [b"split.example"] * 2
    assert rows[-1].context.app_proto == "dns"


# ----------------------------------------------------------------------------- TLS


@pytest.mark.shared
@pytest.mark.parametrize(
    ("case", "buffer", "expected"),
    [
        ("tls-issuerdn", "tls.cert_issuer", b"C=FR, ST=IDF, L=Paris, O=Stamus, CN=SELKS"),
        ("tls-cert-noissuer", "tls.cert_subject", b"localhost"),
        ("tls-issuer-zero", "tls.cert_issuer", b"CN=Microsoft RSA TL\x00 CA 01"),
        ("tls-client-hello-frag-01", "tls.sni", b"google"),
        ("sslv2-tls-upgrade-01", "tls.cert_serial", b"55"),
    ],
)
def test_tls_buffers_from_captures(case: str, buffer: str, expected: bytes) -> None:
    path, checksums = verify_case(case)
    values = [v for _, v in found(run_pcap(path, checksums=checksums), buffer)]
    assert values and all(expected in v for v in values), values


@pytest.mark.shared
def test_tls_issuer_on_every_session() -> None:
    # Suricata logs and alerts 4 times on this capture (4 sessions with the certificate)
    path, checksums = verify_case("tls-issuerdn")
    rows = run_pcap(path, checksums=checksums)
    issuers = found(rows, "tls.cert_issuer")
    assert [v for _, v in issuers] == [b"C=FR, ST=IDF, L=Paris, O=Stamus, CN=SELKS"] * 4
    assert all(not r.context.to_server for r in rows if "tls.cert_issuer" in r.context.buffers)


@pytest.mark.shared
def test_tls_certificate_chain() -> None:
    path, checksums = verify_case("tls-certs-alert")
    rows = run_pcap(path, checksums=checksums)
    certs = [v for _, v in found(rows, "tls.certs")]
    needles = ["30160603550403130f", "30250603550403131e", "301e06035504031317"]
    assert len(certs) == 3
    assert [v for _, v in found(rows, "tls.cert_chain_len")] == [b"3"]
    assert [bytes.fromhex(n) in c for n, c in zip(needles, certs, strict=True)] == [True] * 3


@pytest.mark.shared
def test_subjectaltname_capture_sni_and_subject() -> None:
    path = shared_file("pcaps/suricata-verify/tls-subjectaltname.pcap")
    rows = run_pcap(path)
    assert found(rows, "tls.sni") and found(rows, "tls.cert_subject")
    for _, subject in found(rows, "tls.cert_subject"):
        assert subject.startswith((b"CN=", b"C=", b"O=", b"OU="))


def test_garbage_after_tls_header_is_counted() -> None:
    conv = Conversation(dport=443).handshake()
    # a handshake record announcing a ClientHello whose body is nonsense
    body = b"\x01\x00\x00\x08" + b"\x03\x03" + b"\xff" * 6
    conv.send(True, b"\x16\x03\x01" + struct.pack(">H", len(body)) + body)
    conv.send(True, b"more bytes")
    insp = Inspector()
    rows = conv.run(insp)
    assert rows[-1].context.app_proto == "tls"
    assert insp.stats().parse_errors == 1
    assert rows[-1].context.stream is not None and rows[-1].context.stream.endswith(b"more bytes")


# ----------------------------------------------------------------------- detection


def _detect(first_client: bytes, first_server: bytes, dport: int) -> str | None:
    conv = Conversation(dport=dport).handshake()
    if first_server:
        conv.send(False, first_server)
    if first_client:
        conv.send(True, first_client)
    return conv.run()[-1].context.app_proto


@pytest.mark.parametrize(
    ("client", "server", "port", "proto"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"", 8081, "http"),
        (b"", b"HTTP/1.1 200 OK\r\n\r\n", 3128, "http"),
        (b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", b"", 80, "tls"),
        (b"", b"SSH-2.0-OpenSSH_9.6\r\n", 2222, "ssh"),
        (b"EHLO mail.example\r\n", b"220 mx ready\r\n", 2500, "smtp"),
        (b"", b"220 mail.example ESMTP Postfix\r\n", 2600, "smtp"),
        (b"USER anonymous\r\n", b"220 welcome\r\n", 2700, "ftp"),
        (b"", b"220 ProFTPD Server ready\r\n", 2800, "ftp"),
        (b"\x00\x01\x02\x03\x04\x05binary", b"", 80, None),
    ],
)
def test_app_proto_from_content(client: bytes, server: bytes, port: int, proto: str | None) -> None:
    assert _detect(client, server, port) == proto


def test_unknown_protocol_stops_costing_after_detect_bytes() -> None:
    conv = Conversation(dport=9000).handshake()
    for _ in range(10):
        conv.send(True, b"G" * 100)  # could still become "GET ..."? no: never a method
    insp = Inspector(InspectConfig(detect_bytes=300))
    rows = conv.run(insp)
    assert all(r.context.app_proto is None for r in rows)
    assert rows[-1].context.stream == b"G" * 1000


def test_ssh_identification_buffers() -> None:
    conv = Conversation(dport=22).handshake()
    conv.send(False, b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3\r\n")
    conv.send(True, b"SSH-2.0-")
    conv.send(True, b"PuTTY_Release_0.78\r\n\x00\x00\x01")
    rows = conv.run()
    assert found(rows, "ssh.software") == [(3, b"OpenSSH_8.9p1"), (5, b"PuTTY_Release_0.78")]
    assert [v for _, v in found(rows, "ssh.proto")] == [b"2.0", b"2.0"]


def test_smtp_envelope_buffers() -> None:
    conv = Conversation(dport=25).handshake()
    conv.send(False, b"220 mx.example ESMTP\r\n")
    conv.send(True, b"EHLO client.example\r\n")
    conv.send(True, b"MAIL FROM:<alice@example.org> SIZE=100\r\nRCPT TO:<bob@example.net>\r\n")
    conv.send(True, b"RCPT TO:<carol@example.net>\r\nDATA\r\n")
    # message content that looks like commands, split mid-line, is skipped
    conv.send(True, b"Subject: hi\r\nRCPT TO:<not@a.command>\r\nline ending in a dot.")
    conv.send(True, b"\r\n.\r\nMAIL FROM:<second@example.org>\r\nSTARTTLS\r\n")
    conv.send(True, b"RCPT TO:<hidden@after.tls>\r\n")
    rows = conv.run()
    assert [v for _, v in found(rows, "smtp.helo")] == [b"client.example"]
    assert [v for _, v in found(rows, "smtp.mail_from")] == [
        b"<alice@example.org>",
        b"<second@example.org>",
    ]
    assert [v for _, v in found(rows, "smtp.rcpt_to")] == [
        b"<bob@example.net>",
        b"<carol@example.net>",
    ]
    assert rows[-1].context.app_proto == "smtp"


def test_record_types_of_questions_and_answers() -> None:
    from engine.inspect.dns import record_types

    query = DNS(id=1, qd=[DNSQR(qname="x.example", qtype=15), DNSQR(qname="y", qtype=16)])
    assert record_types(bytes(query)) == [15, 16]
    answer = DNSRR(rrname="x.example", type="A", rdata="192.0.2.9")
    response = DNS(id=1, qr=1, qd=[DNSQR(qname="x.example")], an=[answer, answer])
    assert record_types(bytes(response)) == [1, 1]
    assert record_types(bytes(DNS(id=1, qr=1, qd=[DNSQR(qname="n.example")]))) == []
    with pytest.raises(DnsError):
        record_types(bytes(response)[:-3])


def test_ftp_port_commands_give_their_address() -> None:
    from engine.inspect.ftp import FtpClient, port_address

    assert port_address(b"192,168,1,9,0,80") == bytes([192, 168, 1, 9])
    assert port_address(b"192,168,1,9,0") is None
    assert port_address(b"300,1,1,1,0,80") is None
    client = FtpClient()
    assert client.feed(b"USER x\r\nPORT 10,0,0,1,4,") == []
    assert client.feed(b"1\r\nport 1,2,3,4,0,21\r\n") == [
        {"ftp.port_address": bytes([10, 0, 0, 1])},
        {"ftp.port_address": bytes([1, 2, 3, 4])},
    ]
