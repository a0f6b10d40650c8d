"""HTTP/1.x parsing of reassembled bytes into the rule language's `http.*` and `file_data` buffers.

One `HttpDirection` parses what one side sends (requests or responses); an
`HttpSession` pairs them so a response knows its request's method (no body after
HEAD, a tunnel after CONNECT). Bodies are delimited by Content-Length, chunked
encoding or, for responses, the close of the connection; they are dechunked and
inflated (gzip, deflate) up to the body depth. Malformed input raises
`HttpError`, which the inspector counts before giving the flow up.
"""

from __future__ import annotations

import re
import zlib
from collections import deque

from engine.inspect.config import InspectConfig, InspectStats

# HTTP methods recognised when detecting HTTP from content; parsing accepts any token.
METHODS = (
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"CONNECT",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
    b"SUBSCRIBE",
    b"NOTIFY",
)

_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_HEX = frozenset(b"0123456789abcdefABCDEF")

# Header name (lower case) -> buffer name, per direction.
REQUEST_HEADER_BUFFERS = {
    b"user-agent": "http.user_agent",
    b"cookie": "http.cookie",
    b"referer": "http.referer",
    b"accept": "http.accept",
    b"accept-encoding": "http.accept_enc",
    b"accept-language": "http.accept_lang",
    b"content-type": "http.content_type",
    b"content-length": "http.content_len",
    b"connection": "http.connection",
}
RESPONSE_HEADER_BUFFERS = {
    b"set-cookie": "http.cookie",
    b"location": "http.location",
    b"server": "http.server",
    b"content-type": "http.content_type",
    b"content-length": "http.content_len",
    b"connection": "http.connection",
}
_COOKIES = (b"cookie", b"set-cookie")

_LEADING = frozenset(b" \t\r\n")
_LINE_END = re.compile(rb"\r*\n|\r")
_HEAD_END = re.compile(rb"\n\r*\n")
_FILENAME = re.compile(rb'filename\*?\s*=\s*"?([^";]*)', re.IGNORECASE)
_HEADER_START = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:")

_HEAD, _LEN, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _CLOSE, _DONE = range(8)


class HttpError(ValueError):
    """Bytes that are not (or no longer) parseable HTTP/1.x."""


def _unhex(c: int) -> int:
    if 48 <= c <= 57:
        return c - 48
    return (c | 0x20) - 87


def percent_decode(data: bytes, plus_to_space: bool = False) -> bytes:
    """Decode %XX escapes (an invalid escape stays as written); optionally '+' to space."""
    if b"%" not in data and not (plus_to_space and b"+" in data):
        return data
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c == 0x25 and i + 2 < n and data[i + 1] in _HEX and data[i + 2] in _HEX:
            out.append(_unhex(data[i + 1]) * 16 + _unhex(data[i + 2]))
            i += 3
            continue
        out.append(0x20 if (c == 0x2B and plus_to_space) else c)
        i += 1
    return bytes(out)


def simplify_path(path: bytes) -> bytes:
    """Backslashes to slashes, repeated slashes to one, `/./` removed and `/../`
    resolved (never above the root)."""
    path = path.replace(b"\\", b"/")
    if not path.startswith(b"/"):
        return path
    out: list[bytes] = []
    parts = path.split(b"/")
    for k, seg in enumerate(parts[1:], 1):
        last = k == len(parts) - 1
        if seg == b"" and not last:
            continue
        if seg == b".":
            if last:
                out.append(b"")
            continue
        if seg == b"..":
            if out:
                out.pop()
            if last:
                out.append(b"")
            continue
        out.append(seg)
    return b"/" + b"/".join(out)


def normalize_uri(raw: bytes) -> bytes:
    """The `http.uri` form of a request target, as Snort's http_inspect defaults
    normalize it: the path is percent-decoded, then backslashes become slashes and
    the path is simplified; the query is percent-decoded with '+' as a space. An
    absolute URI keeps its scheme and authority as written."""
    prefix = b""
    rest = raw
    sep = raw.find(b"://")
    if 0 < sep < 16 and raw[:sep].isalpha():
        slash = raw.find(b"/", sep + 3)
        if slash < 0:
            return raw
        prefix, rest = raw[:slash], raw[slash:]
    q = rest.find(b"?")
    path, query = (rest, b"") if q < 0 else (rest[:q], rest[q:])
    path = simplify_path(percent_decode(path))
    if query:
        query = percent_decode(query, plus_to_space=True)
    return prefix + path + query


def normalize_host(value: bytes) -> bytes:
    """Lower case, without the port and a trailing dot (libhtp's normalized hostname)."""
    host = value.strip().lower()
    if host.startswith(b"["):
        end = host.find(b"]")
        return host[: end + 1] if end > 0 else host
    colon = host.rfind(b":")
    if colon >= 0 and host[colon + 1 :].isdigit():
        host = host[:colon]
    return host.rstrip(b".")


class Inflater:
    """Streaming decoder of gzip/deflate content codings, applied last to first (at
    most MAX_LAYERS); `deflate` may be zlib-wrapped or raw, told from its first byte."""

    MAX_LAYERS = 3
    __slots__ = ("codings", "objs")

    def __init__(self, codings: list[bytes]) -> None:
        self.codings = list(reversed(codings))[: self.MAX_LAYERS]
        self.objs: list[zlib._Decompress | None] = [None] * len(self.codings)

    def decompress(self, data: bytes, limit: int) -> bytes:
        for k, coding in enumerate(self.codings):
            if not data:
                return b""
            obj = self.objs[k]
            if obj is None:
                if coding == b"deflate":
                    zlib_header = (
                        (data[0] & 0x0F) == 8
                        and len(data) > 1
                        and (data[0] << 8 | data[1]) % 31 == 0
                    )
                    obj = zlib.decompressobj(15 if zlib_header else -15)
                else:
                    obj = zlib.decompressobj(31)
                self.objs[k] = obj
            last = k == len(self.codings) - 1
            data = obj.decompress(data, limit) if last else obj.decompress(data)
        return data


class HttpSession:
    """The two directions of one HTTP connection."""

    __slots__ = ("methods", "request", "response", "tunnel")

    def __init__(self) -> None:
        # requests awaiting a response: (method, last segment of the URI path)
        self.methods: deque[tuple[bytes, bytes]] = deque(maxlen=64)
        self.request = HttpDirection(self, True)
        self.response = HttpDirection(self, False)
        self.tunnel = False  # CONNECT or Upgrade accepted: the rest is not HTTP

    @property
    def held(self) -> int:
        return self.request.held + self.response.held


class HttpDirection:
    """Incremental parser of the messages one side sends."""

    __slots__ = (
        "body",
        "body_done",
        "body_total",
        "buf",
        "chunks",
        "headers_scanned",
        "inflate",
        "is_request",
        "line_sent",
        "msg",
        "plain_length",
        "remaining",
        "session",
        "state",
    )

    def __init__(self, session: HttpSession, is_request: bool) -> None:
        self.session = session
        self.is_request = is_request
        self.state = _HEAD
        self.buf = bytearray()
        self.headers_scanned = 0
        self.line_sent = False  # the current request's line buffers were handed out early
        self.remaining = 0
        self.chunks = 0  # chunks read of the current chunked body
        self.plain_length = -1  # Content-Length beside a chunked Transfer-Encoding
        self.body = bytearray()
        self.body_total = 0  # body bytes kept so far (at most the body depth)
        self.body_done = False  # the whole body (to the depth) has been handed out
        self.inflate: Inflater | None = None
        self.msg: dict[str, bytes] | None = None

    @property
    def held(self) -> int:
        return len(self.buf) + len(self.body)

    def feed(
        self, data: bytes, fin: bool, cfg: InspectConfig, st: InspectStats
    ) -> list[dict[str, bytes]]:
        """Parse `data`; return the buffers of each message it completed or advanced.
        Malformed data is counted and ends parsing of this side only."""
        out: list[dict[str, bytes]] = []
        if self.session.tunnel or self.state == _DONE:
            return out
        try:
            self._feed(data, fin, cfg, st, out)
        except (ValueError, IndexError, zlib.error):
            st.parse_errors += 1
            self.state = _DONE
            self.buf = bytearray()
            self.body = bytearray()
            if self.msg is not None:
                out.append(self.msg)
                self.msg = None
        return out

    def _feed(
        self,
        data: bytes,
        fin: bool,
        cfg: InspectConfig,
        st: InspectStats,
        out: list[dict[str, bytes]],
    ) -> None:
        buf = self.buf
        buf += data
        pos = 0
        try:
            while pos < len(buf) or (fin and self.state == _CLOSE):
                state = self.state
                if state == _HEAD:
                    moved = self._head(buf, pos, cfg, st, out)
                    if moved == pos:
                        break
                    pos = moved
                elif state in (_LEN, _CHUNK_DATA):
                    take = min(self.remaining, len(buf) - pos)
                    self._body(buf[pos : pos + take], cfg, st, out)
                    pos += take
                    self.remaining -= take
                    if self.remaining:
                        break
                    if state == _LEN:
                        self._end_message(cfg, st, out)
                    else:
                        self.state = _CHUNK_END
                elif state == _CHUNK_SIZE:
                    nl = buf.find(b"\n", pos)
                    line = bytes(buf[pos : nl if nl >= 0 else pos + 64]).split(b";", 1)[0]
                    line = line.strip()
                    valid = len(line) <= 16 and all(c in _HEX for c in line)
                    if nl >= 0 and not line:
                        valid = False
                    if not valid and self.chunks == 0:
                        # Not chunked after all (a hidden or folded Transfer-Encoding):
                        # read the body the way the peer would without it.
                        self._unchunk(cfg, st, out)
                        continue
                    if nl < 0:
                        if len(buf) - pos > 1024:
                            raise HttpError("chunk size line too long")
                        break
                    pos = nl + 1
                    if not valid:
                        raise HttpError(f"bad chunk size {line[:20]!r}")
                    size = int(line, 16)
                    self.chunks += 1
                    if size == 0:
                        self.state = _TRAILER
                    else:
                        self.remaining = size
                        self.state = _CHUNK_DATA
                elif state == _CHUNK_END:
                    if buf[pos : pos + 2] == b"\r\n":
                        pos += 2
                    elif buf[pos : pos + 1] == b"\n":
                        pos += 1
                    elif len(buf) - pos < 2 and buf[pos : pos + 1] == b"\r":
                        break
                    self.state = _CHUNK_SIZE
                elif state == _TRAILER:
                    nl = buf.find(b"\n", pos)
                    if nl < 0:
                        if len(buf) - pos > cfg.http_max_header_bytes:
                            raise HttpError("chunk trailer too long")
                        break
                    trailer = buf[pos:nl].strip()
                    pos = nl + 1
                    if not trailer:
                        self._end_message(cfg, st, out)
                elif state == _CLOSE:
                    self._body(buf[pos:], cfg, st, out)
                    pos = len(buf)
                    if fin:
                        self._end_message(cfg, st, out)
                    break
                else:
                    pos = len(buf)
                    break
        finally:
            del buf[:pos]
            self.headers_scanned = max(0, self.headers_scanned - pos)
        if fin and self.state == _HEAD and buf.strip():
            # the connection closed before the blank line: the head ends here
            buf += b"\r\n\r\n"
            try:
                self._head(buf, 0, cfg, st, out)
            finally:
                buf.clear()
        if self.msg is not None:
            out.append(self.msg)
            self.msg = None

    def finish(self, cfg: InspectConfig, st: InspectStats) -> list[dict[str, bytes]]:
        """The connection is over: hand out what is pending (a head cut short by the
        close, a body's last section)."""
        out = self.feed(b"", True, cfg, st)
        if self.body and not self.body_done and not self.session.tunnel:
            self._emit_body(out, final=True)
            if self.msg is not None:
                out.append(self.msg)
                self.msg = None
        return out

    def _head(
        self,
        buf: bytearray,
        pos: int,
        cfg: InspectConfig,
        st: InspectStats,
        out: list[dict[str, bytes]],
    ) -> int:
        n = len(buf)
        while pos < n and buf[pos] in _LEADING:
            pos += 1
        if pos >= n:
            return pos
        line_end = buf.find(b"\n", pos)
        if line_end < 0:
            if n - pos > cfg.http_max_header_bytes:
                raise HttpError("start line too long")
            return pos
        if self.is_request:
            first = _LINE_END.split(bytes(buf[pos : line_end + 1]), 1)[0]
            if b" HTTP/" not in first:
                # HTTP/0.9 simple request: one line, no headers, no body
                return self._message(first, b"", line_end + 1, cfg, st, out)
        # the head ends at an empty line (ignoring stray carriage returns)
        m = _HEAD_END.search(buf, max(pos, self.headers_scanned))
        if m is None:
            if n - pos > cfg.http_max_header_bytes:
                raise HttpError("headers too long")
            self.headers_scanned = buf.rfind(b"\n", pos)
            if self.is_request and not self.line_sent:
                # the request line is complete: its buffers need not wait for the headers
                first = bytes(buf[pos:line_end]).rstrip(b"\r")
                if b"\r" not in first:
                    msg: dict[str, bytes] = {}
                    self._request_line(first, msg)
                    st.http_requests += 1
                    self.line_sent = True
                    if self.msg is not None:
                        out.append(self.msg)
                    self.msg = msg
            return pos
        self.headers_scanned = 0
        block = bytes(buf[pos : m.start() + 1])
        nl = block.find(b"\n")
        first, rest = block[:nl].rstrip(b"\r"), block[nl + 1 :]
        # A lone CR in the start line ends it when a header follows, else it is a space.
        k = first.find(b"\r")
        while k >= 0:
            if _HEADER_START.match(first, k + 1):
                first, rest = first[:k], first[k + 1 :] + b"\r\n" + rest
                break
            first = first[:k] + b" " + first[k + 1 :]
            k = first.find(b"\r", k)
        return self._message(first, rest, m.end(), cfg, st, out)

    def _message(
        self,
        first: bytes,
        raw_headers: bytes,
        after: int,
        cfg: InspectConfig,
        st: InspectStats,
        out: list[dict[str, bytes]],
    ) -> int:
        if self.msg is not None:
            out.append(self.msg)
        msg: dict[str, bytes] = {}
        self.msg = msg
        names: list[bytes] = []
        values: dict[bytes, bytes] = {}
        norm: list[bytes] = []
        if raw_headers:
            last: bytes | None = None
            for line in _LINE_END.split(raw_headers):
                if not line:
                    continue
                if line[0] in b" \t" and last is not None:
                    values[last] = values[last] + b" " + line.strip()
                    continue
                colon = line.find(b":")
                if colon <= 0:
                    raise HttpError(f"header line without a name: {line[:40]!r}")
                name = line[:colon].split(b"\x00", 1)[0].strip()
                low = name.lower()
                value = line[colon + 1 :].strip()
                names.append(name)
                if low in values:
                    sep = b"; " if low == b"cookie" else b", "
                    values[low] = values[low] + sep + value
                else:
                    values[low] = value
                last = low
        # Normalized: one line per header name, repeated values joined, folding undone,
        # cookies left to http.cookie.
        seen: set[bytes] = set()
        for name in names:
            low = name.lower()
            if low in _COOKIES or low in seen:
                continue
            seen.add(low)
            norm.append(name + b": " + values[low])
        if norm:
            msg["http.header"] = b"\r\n".join(norm) + b"\r\n"
        if raw_headers:
            msg["http.header.raw"] = raw_headers
            msg["http.header_names"] = b"\r\n" + b"\r\n".join(names) + b"\r\n\r\n"
        msg["http.start"] = first + b"\r\n" + raw_headers + b"\r\n"
        chunked = b"chunked" in values.get(b"transfer-encoding", b"").lower()
        length = -1
        if b"content-length" in values:
            text = values[b"content-length"].split(b",")[0].strip()
            if text.isdigit():
                length = int(text)
            elif not chunked:
                raise HttpError(f"bad Content-Length {text[:20]!r}")
        self.inflate = None
        if cfg.decompress and b"content-encoding" in values:
            codings = [
                c.strip()
                for c in values[b"content-encoding"].lower().split(b",")
                if c.strip() in (b"gzip", b"x-gzip", b"deflate")
            ]
            if codings:
                self.inflate = Inflater(codings)
        self.body = bytearray()
        self.body_total = 0
        self.body_done = False
        if self.is_request:
            if self.line_sent:
                self.line_sent = False  # its buffers went out when it was complete
            else:
                self._request_line(first, msg)
                st.http_requests += 1
            for low, buffer in REQUEST_HEADER_BUFFERS.items():
                if low in values:
                    msg[buffer] = values[low]
            if b"host" in values:
                msg["http.host.raw"] = values[b"host"]
                msg["http.host"] = normalize_host(values[b"host"])
            has_body = chunked or length > 0
        else:
            status = self._status_line(first, msg)
            st.http_responses += 1
            for low, buffer in RESPONSE_HEADER_BUFFERS.items():
                if low in values:
                    msg[buffer] = values[low]
            methods = self.session.methods
            method = name = b""
            if status >= 200 and methods:
                method, name = methods.popleft()
            if status == 101 or (method == b"CONNECT" and 200 <= status < 300):
                self.session.tunnel = True
                self.state = _DONE
                return after
            has_body = not (
                status < 200 or status in (204, 304) or method == b"HEAD" or length == 0
            )
            if has_body:
                disposition = _FILENAME.search(values.get(b"content-disposition", b""))
                if disposition is not None:
                    name = disposition.group(1).strip()
                    if disposition.group(0).startswith(b"filename*"):
                        name = percent_decode(name.split(b"'", 2)[-1])
                if name:
                    msg["file.name"] = name
        if not has_body:
            self._end_message(cfg, st, out)
        elif chunked:
            self.state = _CHUNK_SIZE
            self.chunks = 0
            self.plain_length = length
        elif length > 0:
            self.state = _LEN
            self.remaining = length
        else:
            self.state = _CLOSE  # a response delimited by the connection's close
        return after

    def _unchunk(self, cfg: InspectConfig, st: InspectStats, out: list) -> None:
        if self.plain_length > 0:
            self.state = _LEN
            self.remaining = self.plain_length
        elif self.is_request:
            self._end_message(cfg, st, out)
        else:
            self.state = _CLOSE

    def _request_line(self, line: bytes, msg: dict[str, bytes]) -> None:
        sp = line.find(b" ")
        method = line[:sp] if sp > 0 else line
        if not method or len(method) > 32 or not all(c in _TOKEN for c in method):
            raise HttpError(f"bad request method {method[:20]!r}")
        rest = line[sp + 1 :].strip(b" ") if sp > 0 else b""
        version = b""
        last = rest.rfind(b" ")
        if last >= 0 and rest[last + 1 :].startswith(b"HTTP/"):
            version = rest[last + 1 :]
            rest = rest[:last].rstrip(b" ")
        msg["http.request_line"] = line
        msg["http.method"] = method
        msg["http.uri.raw"] = rest
        msg["http.uri"] = normalize_uri(rest)
        if version:
            msg["http.protocol"] = version
        path = msg["http.uri"].split(b"?", 1)[0]
        self.session.methods.append((method.upper(), path.rsplit(b"/", 1)[-1]))

    @staticmethod
    def _status_line(line: bytes, msg: dict[str, bytes]) -> int:
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise HttpError(f"bad status line {line[:40]!r}")
        code = parts[1].strip()
        if len(code) != 3 or not code.isdigit():
            raise HttpError(f"bad status code {code[:10]!r}")
        msg["http.response_line"] = line
        msg["http.protocol"] = parts[0]
        msg["http.stat_code"] = code
        msg["http.stat_msg"] = parts[2].strip() if len(parts) > 2 else b""
        return int(code)

    def _body(
        self, data: bytes | bytearray, cfg: InspectConfig, st: InspectStats, out: list
    ) -> None:
        if self.body_done or not data:
            return
        room = cfg.http_body_depth - self.body_total
        if self.inflate is not None:
            try:
                data = self.inflate.decompress(bytes(data), room)
            except zlib.error:
                st.decompress_errors += 1
                self.inflate = None  # not compressed as announced: keep the bytes as sent
        data = data[:room]
        self.body += data
        self.body_total += len(data)
        if self.body_total >= cfg.http_body_depth:
            self._emit_body(out, final=True)
        elif len(self.body) >= cfg.http_body_section:
            self._emit_body(out, final=False)

    def _emit_body(self, out: list[dict[str, bytes]], final: bool = True) -> None:
        """Hand out the body bytes gathered since the last section."""
        if self.body_done:
            return
        if final:
            self.body_done = True
        if not self.body:
            return
        body = bytes(self.body)
        self.body = bytearray()
        if self.msg is not None and "file_data" in self.msg:
            out.append(self.msg)
            self.msg = None
        if self.msg is None:
            self.msg = {}
        self.msg["http.request_body" if self.is_request else "http.response_body"] = body
        self.msg["file_data"] = body

    def _end_message(self, cfg: InspectConfig, st: InspectStats, out: list) -> None:
        self._emit_body(out)
        self.body = bytearray()
        self.inflate = None
        self.state = _HEAD
        if self.msg is not None:
            out.append(self.msg)
            self.msg = None
