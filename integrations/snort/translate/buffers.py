"""Snort 2, Snort 3 and Suricata buffer names, and the Shrike buffer each one means."""

from __future__ import annotations

from types import MappingProxyType

from rules import fields

#: HTTP buffer names that modify the content before them in Snort 2.9 and
#: Suricata (`content:"x"; http_uri;`) and select a sticky buffer in Snort 3.
MODIFIER_BUFFERS = MappingProxyType(
    {
        "http_uri": "http.uri",
        "http_raw_uri": "http.uri.raw",
        "http_header": "http.header",
        "http_raw_header": "http.header.raw",
        "http_cookie": "http.cookie",
        "http_method": "http.method",
        "http_client_body": "http.request_body",
        "http_server_body": "http.response_body",
        "http_stat_code": "http.stat_code",
        "http_stat_msg": "http.stat_msg",
        "http_user_agent": "http.user_agent",
        "http_host": "http.host",
        "http_raw_host": "http.host.raw",
    }
)

#: Buffer names that are sticky in every flavour.
STICKY_BUFFERS = MappingProxyType(
    {
        "pkt_data": "pkt_data",
        "raw_data": "raw_data",
        "file_data": "file_data",
        "file.data": "file_data",
        "base64_data": "base64_data",
        "dce_stub_data": "dce_stub_data",
        "dns_query": "dns.query",
        "tls_sni": "tls.sni",
        "tls_cert_subject": "tls.cert_subject",
        "tls_cert_issuer": "tls.cert_issuer",
        "tls_cert_serial": "tls.cert_serial",
        "tls_cert_fingerprint": "tls.cert_fingerprint",
        "ja3_hash": "ja3.hash",
        "ja3_string": "ja3.string",
        "ja3s_hash": "ja3s.hash",
        "ja3s_string": "ja3s.string",
        "ssh_proto": "ssh.proto",
        "ssh_software": "ssh.software",
        "sip_header": "sip.header",
        # Suricata's underscore spellings of its sticky HTTP buffers
        "http_header_names": "http.header_names",
        "http_content_type": "http.content_type",
        "http_content_len": "http.content_len",
        "http_start": "http.start",
        "http_accept": "http.accept",
        "http_accept_enc": "http.accept_enc",
        "http_accept_lang": "http.accept_lang",
        "http_referer": "http.referer",
        "http_protocol": "http.protocol",
        "http_request_line": "http.request_line",
        "http_response_line": "http.response_line",
        "http_connection": "http.connection",
        "http_location": "http.location",
        "http_server": "http.server",
        **{
            name: name
            for name, spec in fields.FIELDS.items()
            if spec.type == "buffer" and "." in name and name != "file.name"
        },
    }
)

#: Snort 3 `http_header:field NAME` for header fields Shrike has a buffer for.
HEADER_FIELDS = MappingProxyType(
    {
        "user-agent": "http.user_agent",
        "host": "http.host",
        "cookie": "http.cookie",
        "referer": "http.referer",
        "location": "http.location",
        "accept": "http.accept",
        "accept-encoding": "http.accept_enc",
        "accept-language": "http.accept_lang",
        "content-type": "http.content_type",
        "content-length": "http.content_len",
        "server": "http.server",
        "connection": "http.connection",
    }
)

#: Suricata PCRE buffer flags (Snort 2.9 uses the same letters for the HTTP ones).
PCRE_BUFFER_FLAGS = MappingProxyType(
    {
        "U": "http.uri",
        "I": "http.uri.raw",
        "P": "http.request_body",
        "Q": "http.response_body",
        "H": "http.header",
        "D": "http.header.raw",
        "M": "http.method",
        "C": "http.cookie",
        "S": "http.stat_code",
        "Y": "http.stat_msg",
        "V": "http.user_agent",
        "W": "http.host",
        "Z": "http.host.raw",
    }
)

#: Suricata transforms written as options after a sticky buffer.
TRANSFORMS = frozenset(
    {
        "dotprefix",
        "to_lowercase",
        "to_uppercase",
        "url_decode",
        "header_lowercase",
        "strip_whitespace",
        "compress_whitespace",
        "to_md5",
        "to_sha1",
        "to_sha256",
        "strip_pseudo_headers",
    }
)

# ---- export: Shrike buffer -> the Snort 3 name (Suricata's where Snort 3 has none)

SNORT3_BUFFER_NAMES = MappingProxyType(
    {
        "pkt_data": "pkt_data",
        "raw_data": "raw_data",
        "file_data": "file_data",
        "base64_data": "base64_data",
        "dce_stub_data": "dce_stub_data",
        "sip.header": "sip_header",
        "http.uri": "http_uri",
        "http.uri.raw": "http_raw_uri",
        "http.header": "http_header",
        "http.header.raw": "http_raw_header",
        "http.cookie": "http_cookie",
        "http.method": "http_method",
        "http.request_body": "http_client_body",
        "http.stat_code": "http_stat_code",
        "http.stat_msg": "http_stat_msg",
        **{name: f"http_header:field {field}" for field, name in HEADER_FIELDS.items()},
    }
)
