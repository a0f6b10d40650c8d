"""The catalog of fields a condition may name, with their types, and did-you-mean lookup for unknown ones."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One condition field.

    `type` is one of: `int`, `float`, `bool`, `string`, `buffer` (a byte buffer
    a Sequence can inspect; also comparable to strings), `address`, `port`,
    `tcp_flags`, `frag_flags`, `symbol` (one of `symbols`), `symbol_set` (a set
    of `symbols`, tested with `has`/`has_any`).  `kind` says who produces it:
    `packet`, `flow`, `protocol`, `detector` or `anomaly`.
    """

    name: str
    type: str
    kind: str
    description: str
    symbols: frozenset[str] = frozenset()


TCP_FLAG_LETTERS = frozenset("FSRPAUCE120")
FRAG_FLAG_LETTERS = frozenset("MDR")
IP_OPTIONS = frozenset(
    {"rr", "eol", "nop", "ts", "sec", "esec", "lsrr", "lsrre", "ssrr", "satid", "any"}
)
FLOW_STATES = frozenset({"new", "established", "closed"})

#: Behavioural detectors whose results rules may refer to (engine/detectors).
DETECTOR_NAMES = (
    "port_scan",
    "host_sweep",
    "brute_force",
    "syn_flood",
    "dns_tunnel",
    "dga",
    "beaconing",
    "exfiltration",
    "lateral_movement",
    "udp_flood",
    "icmp_flood",
    "reflection",
    "fan_in_ddos",
    "arp_scan",
    "arp_spoof",
)

_PACKET: tuple[tuple[str, str, str], ...] = (
    ("src.ip", "address", "source address"),
    ("dst.ip", "address", "destination address"),
    ("src.port", "port", "source port"),
    ("dst.port", "port", "destination port"),
    ("ip.src", "address", "IP source address (same as src.ip)"),
    ("ip.dst", "address", "IP destination address (same as dst.ip)"),
    ("ip.ttl", "int", "IP time to live (Snort ttl)"),
    ("ip.tos", "int", "IP type of service (Snort tos)"),
    ("ip.id", "int", "IP identification (Snort id)"),
    ("ip.proto", "int", "IP protocol number (Snort ip_proto)"),
    ("ip.len", "int", "IP total length"),
    ("ip.version", "int", "IP version, 4 or 6"),
    ("ip.frag_offset", "int", "IP fragment offset"),
    ("ip.fragbits", "frag_flags", "IP fragment bits M, D, R (Snort fragbits)"),
    ("tcp.flags", "tcp_flags", "TCP flags F S R P A U C E (Snort flags)"),
    ("tcp.seq", "int", "TCP sequence number (Snort seq)"),
    ("tcp.ack", "int", "TCP acknowledgement number (Snort ack)"),
    ("tcp.window", "int", "TCP window size (Snort window)"),
    ("udp.len", "int", "UDP length"),
    ("icmp.type", "int", "ICMP type (Snort itype)"),
    ("icmp.code", "int", "ICMP code (Snort icode)"),
    ("icmp.id", "int", "ICMP echo identifier (Snort icmp_id)"),
    ("icmp.seq", "int", "ICMP echo sequence (Snort icmp_seq)"),
    ("dsize", "int", "payload size in bytes"),
    ("pkt.len", "int", "packet length on the wire"),
    ("sameip", "bool", "source and destination address are equal"),
)

_FLOW: tuple[tuple[str, str, str], ...] = (
    ("flow.age", "float", "seconds since the flow's first packet"),
    ("flow.packets", "int", "packets in both directions"),
    ("flow.bytes", "int", "bytes in both directions"),
    ("flow.pkts_toserver", "int", "packets client to server"),
    ("flow.pkts_toclient", "int", "packets server to client"),
    ("flow.bytes_toserver", "int", "bytes client to server"),
    ("flow.bytes_toclient", "int", "bytes server to client"),
    ("stream.size.server", "int", "bytes sent by the server (Snort stream_size server)"),
    ("stream.size.client", "int", "bytes sent by the client (Snort stream_size client)"),
    ("stream.size.both", "int", "bytes both ways (Snort stream_size both)"),
    ("stream.size.either", "int", "bytes either way (Snort stream_size either)"),
    ("app.protocol", "string", "detected application protocol (Suricata app-layer-protocol)"),
    ("app.protocol.to_server", "string", "the protocol the client's data shows"),
    ("app.protocol.to_client", "string", "the protocol the server's data shows"),
    ("http.uri.len", "int", "normalized URI length (Snort urilen)"),
    ("http.uri.raw.len", "int", "raw URI length (Snort urilen raw)"),
    ("tls.version", "string", "negotiated TLS version"),
    ("dns.opcode", "int", "DNS opcode"),
    (
        "tls.cert_chain_len",
        "int",
        "certificates in the server's chain (Suricata tls.cert_chain_len)",
    ),
    ("dns.rrtype", "int", "record types: a query's questions, a response's answers"),
    ("ftp.bounce", "bool", "an FTP PORT command names another host than the client (ftpbounce)"),
)

_BUFFERS: tuple[tuple[str, str], ...] = (
    ("pkt_data", "packet payload (normalized)"),
    ("raw_data", "packet payload before normalization"),
    ("file_data", "file or HTTP body data"),
    ("base64_data", "output of base64_decode"),
    ("ipv4.hdr", "IPv4 header with its options"),
    ("ipv6.hdr", "IPv6 fixed header"),
    ("tcp.hdr", "TCP header with its options"),
    ("udp.hdr", "UDP header"),
    ("http.uri", "normalized request URI"),
    ("http.uri.raw", "raw request URI"),
    ("http.method", "request method"),
    ("http.header", "normalized headers"),
    ("http.header.raw", "raw headers"),
    ("http.header_names", "header names"),
    ("http.request_header", "one request header"),
    ("http.response_header", "one response header"),
    ("http.cookie", "Cookie header"),
    ("http.user_agent", "User-Agent header"),
    ("http.host", "Host header, normalized"),
    ("http.host.raw", "Host header, raw"),
    ("http.referer", "Referer header"),
    ("http.location", "Location header"),
    ("http.accept", "Accept header"),
    ("http.accept_enc", "Accept-Encoding header"),
    ("http.accept_lang", "Accept-Language header"),
    ("http.content_type", "Content-Type header"),
    ("http.content_len", "Content-Length header"),
    ("http.server", "Server header"),
    ("http.connection", "Connection header"),
    ("http.protocol", "protocol version of request or response"),
    ("http.start", "start line and headers"),
    ("http.request_line", "request line"),
    ("http.response_line", "response line"),
    ("http.request_body", "request body (Snort http_client_body)"),
    ("http.response_body", "response body (Snort http_server_body)"),
    ("http.stat_code", "response status code"),
    ("http.stat_msg", "response status message"),
    ("dns.query", "query name"),
    ("tls.sni", "server name indication"),
    ("tls.cert_subject", "certificate subject"),
    ("tls.cert_issuer", "certificate issuer"),
    ("tls.cert_serial", "certificate serial"),
    ("tls.cert_fingerprint", "certificate SHA1 fingerprint"),
    ("tls.certs", "each certificate in the chain"),
    ("tls.random", "the 32 random bytes of the ClientHello or ServerHello"),
    ("ja3.hash", "JA3 client fingerprint hash"),
    ("ja3.string", "JA3 client fingerprint string"),
    ("ja3s.hash", "JA3S server fingerprint hash"),
    ("ja3s.string", "JA3S server fingerprint string"),
    ("ssh.proto", "SSH protocol version string"),
    ("ssh.software", "SSH software version string"),
    ("smtp.helo", "SMTP HELO/EHLO argument"),
    ("smtp.mail_from", "SMTP MAIL FROM argument"),
    ("smtp.rcpt_to", "SMTP RCPT TO argument"),
    ("sip.method", "SIP method"),
    ("sip.stat_code", "SIP status code"),
    ("sip.header", "SIP headers"),
    ("dce_stub_data", "DCE/RPC stub data"),
    ("file.name", "transferred file name"),
)


def _build() -> dict[str, FieldSpec]:
    table: dict[str, FieldSpec] = {}
    for name, type_, description in _PACKET:
        table[name] = FieldSpec(name, type_, "packet", description)
    for name, type_, description in _FLOW:
        table[name] = FieldSpec(name, type_, "flow", description)
    for name, description in _BUFFERS:
        table[name] = FieldSpec(name, "buffer", "protocol", description)
    table["ip.options"] = FieldSpec(
        "ip.options", "symbol_set", "packet", "IP options present (Snort ipopts)", IP_OPTIONS
    )
    table["flow.state"] = FieldSpec("flow.state", "symbol", "flow", "flow state", FLOW_STATES)
    for detector in DETECTOR_NAMES:
        table[f"detector.{detector}"] = FieldSpec(
            f"detector.{detector}", "bool", "detector", f"the {detector} detector fired"
        )
        table[f"detector.{detector}.score"] = FieldSpec(
            f"detector.{detector}.score", "float", "detector", f"{detector} confidence 0-1"
        )
    table["anomaly.score"] = FieldSpec(
        "anomaly.score", "float", "anomaly", "anomaly score of the flow, 0-1, higher is stranger"
    )
    table["anomaly.model_version"] = FieldSpec(
        "anomaly.model_version", "string", "anomaly", "version of the scoring model"
    )
    return table


#: Every field, by name.  Read-only: the catalog is fixed at import time.
FIELDS: Mapping[str, FieldSpec] = MappingProxyType(_build())

#: Snort/Suricata spellings that people paste, mapped to the Shrike field.
SNORT_SPELLINGS: Mapping[str, str] = MappingProxyType(
    {
        "ttl": "ip.ttl",
        "tos": "ip.tos",
        "id": "ip.id",
        "ip_proto": "ip.proto",
        "ipopts": "ip.options",
        "fragbits": "ip.fragbits",
        "flags": "tcp.flags",
        "seq": "tcp.seq",
        "ack": "tcp.ack",
        "window": "tcp.window",
        "itype": "icmp.type",
        "icode": "icmp.code",
        "icmp_id": "icmp.id",
        "icmp_seq": "icmp.seq",
        "urilen": "http.uri.len",
        "uricontent": "http.uri",
        "http_uri": "http.uri",
        "http_raw_uri": "http.uri.raw",
        "http_header": "http.header",
        "http_raw_header": "http.header.raw",
        "http_method": "http.method",
        "http_cookie": "http.cookie",
        "http_stat_code": "http.stat_code",
        "http_stat_msg": "http.stat_msg",
        "http_client_body": "http.request_body",
        "http_server_body": "http.response_body",
        "http_user_agent": "http.user_agent",
        "http_host": "http.host",
        "file.data": "file_data",
        "dns_query": "dns.query",
        "tls_sni": "tls.sni",
        "ja3_hash": "ja3.hash",
        "payload": "pkt_data",
        "app-layer-protocol": "app.protocol",
    }
)


#: Fields holding several values, compared by index (`dns.rrtype[0] == 1`, `[-1]`,
#: `[all]`); without an index a comparison holds when it holds for any value.
INDEXED_FIELDS = frozenset({"dns.rrtype"})
#: Index words besides integers.
INDEX_WORDS = frozenset({"all"})


def lookup(name: str) -> FieldSpec | None:
    """The spec of `name`, or None when it is not a field."""
    return FIELDS.get(name)


def suggest(name: str, candidates: Iterable[str] | None = None) -> list[str]:
    """Close spellings of `name` among `candidates` (default: every field), best first."""
    pool = list(FIELDS) if candidates is None else list(candidates)
    found: list[str] = []
    mapped = SNORT_SPELLINGS.get(name)
    if mapped is not None and mapped in pool:
        found.append(mapped)
    dotted = name.replace("_", ".")
    if dotted in pool and dotted not in found:
        found.append(dotted)
    for close in difflib.get_close_matches(name, pool, n=3, cutoff=0.6):
        if close not in found:
            found.append(close)
    return found[:3]


def is_buffer(name: str) -> bool:
    spec = FIELDS.get(name)
    return spec is not None and spec.type == "buffer"
