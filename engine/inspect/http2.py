"""HTTP/2 over cleartext TCP (prior knowledge, RFC 9113 section 3.3): frames read per
direction, header blocks decoded with HPACK (`engine.inspect.hpack`), and each
request's and response's headers handed out as the HTTP buffers rules read. Bodies
(DATA frames) are not inspected."""

from __future__ import annotations

from engine.inspect.config import InspectConfig, InspectStats
from engine.inspect.hpack import HpackDecoder
from engine.inspect.http import (
    REQUEST_HEADER_BUFFERS,
    RESPONSE_HEADER_BUFFERS,
    HttpError,
    normalize_host,
    normalize_uri,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HEADERS, _CONTINUATION = 1, 9
_END_HEADERS, _PADDED, _PRIORITY = 0x4, 0x8, 0x20
_DNS_MESSAGE = b"application/dns-message"


class Http2Session:
    """Both directions of one HTTP/2 connection; `doh` turns true when it carries DNS
    messages (DNS over HTTPS, RFC 8484, sent in clear: Suricata's `doh2`)."""

    def __init__(self, client: int) -> None:
        self.client = client  # the direction (0 or 1) that sent the preface
        self.directions = (Http2Direction(self, client == 0), Http2Direction(self, client == 1))
        self.doh = False

    @property
    def held(self) -> int:
        return sum(len(d.buf) + len(d.block) + d.table.size for d in self.directions)


class Http2Direction:
    def __init__(self, session: Http2Session, is_client: bool) -> None:
        self.session = session
        self.is_client = is_client
        self.preface = is_client  # the client's preface is still to be read
        self.buf = bytearray()
        self.block = bytearray()  # a header block awaiting its CONTINUATION frames
        self.in_block = False
        self.skip = 0  # bytes of a frame without headers still to pass over
        self.table = HpackDecoder()  # this direction's HPACK decoding context

    def feed(self, data: bytes, cfg: InspectConfig, st: InspectStats) -> list[dict[str, bytes]]:
        self.buf += data
        out: list[dict[str, bytes]] = []
        if self.preface:
            if len(self.buf) < len(PREFACE):
                if not PREFACE.startswith(bytes(self.buf)):
                    raise HttpError("not an HTTP/2 connection preface")
                return out
            if not self.buf.startswith(PREFACE):
                raise HttpError("not an HTTP/2 connection preface")
            del self.buf[: len(PREFACE)]
            self.preface = False
        while True:
            if self.skip:
                dropped = min(self.skip, len(self.buf))
                del self.buf[:dropped]
                self.skip -= dropped
                if self.skip:
                    break
            if len(self.buf) < 9:
                break
            length = int.from_bytes(self.buf[:3], "big")
            kind, flags = self.buf[3], self.buf[4]
            if kind != _HEADERS and not (kind == _CONTINUATION and self.in_block):
                # DATA, SETTINGS, ...: passed over as they arrive, never held whole
                self.skip = 9 + length
                continue
            if length + len(self.block) > cfg.http_max_header_bytes:
                raise HttpError("HTTP/2 header block over the header limit")
            if len(self.buf) < 9 + length:
                break
            payload = bytes(self.buf[9 : 9 + length])
            del self.buf[: 9 + length]
            if kind == _HEADERS:
                start, pad = 0, 0
                if flags & _PADDED:
                    if not payload:
                        raise HttpError("padded HEADERS frame without its pad length")
                    start, pad = 1, payload[0]
                if flags & _PRIORITY:
                    start += 5
                if start + pad > len(payload):
                    raise HttpError("HTTP/2 HEADERS padding past the frame")
                self.block = bytearray(payload[start : len(payload) - pad])
                self.in_block = not flags & _END_HEADERS
            else:  # CONTINUATION of the open header block
                self.block += payload
                self.in_block = not flags & _END_HEADERS
            if not self.in_block:
                out.append(self._message(self.table.decode(bytes(self.block)), st))
                self.block = bytearray()
        return out

    def _message(self, pairs: list[tuple[bytes, bytes]], st: InspectStats) -> dict[str, bytes]:
        msg: dict[str, bytes] = {}
        pseudo = {name: value for name, value in pairs if name.startswith(b":")}
        fields = [(name, value) for name, value in pairs if not name.startswith(b":")]
        values: dict[bytes, bytes] = {}
        for name, value in fields:
            low = name.lower()
            values[low] = values[low] + b", " + value if low in values else value
        lines = [name + b": " + value for name, value in fields if name.lower() != b"cookie"]
        if lines:
            msg["http.header"] = b"\r\n".join(lines) + b"\r\n"
            msg["http.header_names"] = (
                b"\r\n" + b"\r\n".join(name for name, _ in fields) + b"\r\n\r\n"
            )
        msg["http.protocol"] = b"HTTP/2"
        if b":method" in pseudo:
            st.http_requests += 1
            method = pseudo[b":method"]
            path = pseudo.get(b":path", b"")
            msg["http.method"] = method
            msg["http.uri.raw"] = path
            msg["http.uri"] = normalize_uri(path)
            msg["http.request_line"] = method + b" " + path + b" HTTP/2"
            authority = pseudo.get(b":authority", values.get(b"host"))
            if authority is not None:
                msg["http.host.raw"] = authority
                msg["http.host"] = normalize_host(authority)
            for low, buffer in REQUEST_HEADER_BUFFERS.items():
                if low in values:
                    msg[buffer] = values[low]
            if b"dns=" in path.partition(b"?")[2]:
                self.session.doh = True
        elif b":status" in pseudo:
            st.http_responses += 1
            msg["http.stat_code"] = pseudo[b":status"]
            msg["http.response_line"] = b"HTTP/2 " + pseudo[b":status"]
            for low, buffer in RESPONSE_HEADER_BUFFERS.items():
                if low in values:
                    msg[buffer] = values[low]
        if values.get(b"content-type", b"").lower().startswith(_DNS_MESSAGE):
            self.session.doh = True
        return msg
