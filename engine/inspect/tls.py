"""TLS handshakes in reassembled bytes: ClientHello SNI and JA3, ServerHello JA3S, and the server certificate's names.

Records are collected per direction until the handshake turns encrypted; the
handshake messages they carry are parsed as they complete. Certificate names are
read from the DER directly and printed as Suricata's `tls.cert_subject` shows
them: attributes in certificate order, `KEY=value`, joined by `, `.
"""

from __future__ import annotations

import hashlib

from engine.inspect.config import InspectConfig, InspectStats

CT_CCS = 20
CT_ALERT = 21
CT_HANDSHAKE = 22
CT_APPDATA = 23

HS_CLIENT_HELLO = 1
HS_SERVER_HELLO = 2
HS_CERTIFICATE = 11
HS_SERVER_HELLO_DONE = 14

#: The number of certificates in the server's Certificate message (not a byte buffer:
#: the `tls.cert_chain_len` field reads it).
CHAIN_LENGTH = "tls.cert_chain_len"
#: The prefixes of the buffer and field names TLS handshakes give.
TLS_NAMES = ("tls.", "ja3.", "ja3s.")

_OID_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.15": "businessCategory",
    "2.5.4.17": "postalCode",
    "2.5.4.42": "GN",
    "2.5.4.43": "initials",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "1.2.840.113549.1.9.1": "emailAddress",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
}


class TlsError(ValueError):
    """Bytes that are not a TLS record stream or a well-formed handshake message."""


def looks_like_tls(data: bytes) -> bool:
    """A handshake record header (TLS 1.0-1.3 / SSL 3) starting a ClientHello or ServerHello."""
    return (
        len(data) >= 6
        and data[0] == CT_HANDSHAKE
        and data[1] == 3
        and data[2] <= 4
        and data[5] in (HS_CLIENT_HELLO, HS_SERVER_HELLO)
    )


def _grease(v: int) -> bool:
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


def _u16s(data: bytes) -> list[int]:
    return [data[i] << 8 | data[i + 1] for i in range(0, len(data) - 1, 2)]


class _Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise TlsError("handshake field runs past its message")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        b = self.take(2)
        return b[0] << 8 | b[1]

    def u24(self) -> int:
        b = self.take(3)
        return b[0] << 16 | b[1] << 8 | b[2]

    def vec8(self) -> bytes:
        return self.take(self.u8())

    def vec16(self) -> bytes:
        return self.take(self.u16())


def client_hello(body: bytes) -> dict[str, bytes]:
    """`tls.sni`, `tls.random`, `ja3.string`, `ja3.hash` of a ClientHello message body."""
    r = _Reader(body)
    version = r.u16()
    random = r.take(32)
    r.vec8()  # session id
    ciphers = [c for c in _u16s(r.vec16()) if not _grease(c)]
    r.vec8()  # compression methods
    out: dict[str, bytes] = {}
    exts: list[int] = []
    curves: list[int] = []
    formats: list[int] = []
    if r.pos < r.end:
        ext = _Reader(r.vec16())
        while ext.pos < ext.end:
            etype = ext.u16()
            edata = ext.vec16()
            if not _grease(etype):
                exts.append(etype)
            if etype == 0:
                names = _Reader(edata)
                names.u16()
                while names.pos < names.end:
                    kind = names.u8()
                    name = names.vec16()
                    if kind == 0 and "tls.sni" not in out:
                        out["tls.sni"] = name
            elif etype == 10 and len(edata) >= 2:
                curves = [c for c in _u16s(_Reader(edata).vec16()) if not _grease(c)]
            elif etype == 11 and edata:
                formats = list(_Reader(edata).vec8())
    ja3 = ",".join(
        [
            str(version),
            "-".join(map(str, ciphers)),
            "-".join(map(str, exts)),
            "-".join(map(str, curves)),
            "-".join(map(str, formats)),
        ]
    ).encode()
    out["tls.random"] = bytes(random)
    out["ja3.string"] = ja3
    out["ja3.hash"] = hashlib.md5(ja3, usedforsecurity=False).hexdigest().encode()
    return out


def server_hello(body: bytes) -> dict[str, bytes]:
    """`tls.random`, `ja3s.string`, `ja3s.hash` of a ServerHello message body."""
    r = _Reader(body)
    version = r.u16()
    random = r.take(32)
    r.vec8()
    cipher = r.u16()
    r.u8()
    exts: list[int] = []
    if r.pos < r.end:
        ext = _Reader(r.vec16())
        while ext.pos < ext.end:
            etype = ext.u16()
            ext.vec16()
            exts.append(etype)
    ja3s = f"{version},{cipher},{'-'.join(map(str, exts))}".encode()
    return {
        "tls.random": bytes(random),
        "ja3s.string": ja3s,
        "ja3s.hash": hashlib.md5(ja3s, usedforsecurity=False).hexdigest().encode(),
    }


def _der(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at `pos`."""
    if pos + 2 > end:
        raise TlsError("truncated DER element")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > end:
            raise TlsError("bad DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > end:
        raise TlsError("DER element runs past its parent")
    return tag, pos, pos + length


def _oid(data: bytes) -> str:
    if not data:
        raise TlsError("empty OID")
    parts = [data[0] // 40 if data[0] < 80 else 2, data[0] % 40 if data[0] < 80 else data[0] - 80]
    value = 0
    for c in data[1:]:
        value = (value << 7) | (c & 0x7F)
        if not c & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def _string(tag: int, data: bytes) -> str:
    if tag == 0x1E:
        return data.decode("utf-16-be", "replace")
    if tag == 0x1C:
        return data.decode("utf-32-be", "replace")
    if tag == 0x14:
        return data.decode("latin-1")
    if tag in (0x0C, 0x13, 0x16, 0x12, 0x1A, 0x1B):
        return data.decode("utf-8", "replace")
    return "#" + data.hex()


def name_string(data: bytes, pos: int, end: int) -> str:
    """An X.501 Name (the content of its SEQUENCE) as `C=.., O=.., CN=..`."""
    rdns: list[str] = []
    while pos < end:
        tag, s, e = _der(data, pos, end)
        if tag != 0x31:
            raise TlsError("Name holds a non-SET element")
        attrs: list[str] = []
        p = s
        while p < e:
            tag2, s2, e2 = _der(data, p, e)
            if tag2 != 0x30:
                raise TlsError("RDN holds a non-SEQUENCE element")
            otag, os_, oe = _der(data, s2, e2)
            if otag != 0x06:
                raise TlsError("attribute without an OID")
            vtag, vs, ve = _der(data, oe, e2)
            oid = _oid(data[os_:oe])
            attrs.append(f"{_OID_NAMES.get(oid, oid)}={_string(vtag, data[vs:ve])}")
            p = e2
        rdns.append("+".join(attrs))
        pos = e
    return ", ".join(rdns)


def certificate_fields(der: bytes) -> dict[str, bytes]:
    """`tls.cert_subject`, `tls.cert_issuer`, `tls.cert_serial`, `tls.cert_fingerprint`."""
    tag, s, e = _der(der, 0, len(der))
    if tag != 0x30:
        raise TlsError("certificate is not a SEQUENCE")
    tag, s, e = _der(der, s, e)
    if tag != 0x30:
        raise TlsError("tbsCertificate is not a SEQUENCE")
    tag, s1, e1 = _der(der, s, e)
    if tag == 0xA0:  # explicit version
        tag, s1, e1 = _der(der, e1, e)
    if tag != 0x02:
        raise TlsError("certificate serial is not an INTEGER")
    serial = der[s1:e1]
    _, _, p = _der(der, e1, e)  # signature algorithm
    tag, si, ei = _der(der, p, e)
    if tag != 0x30:
        raise TlsError("issuer is not a SEQUENCE")
    _, _, p = _der(der, ei, e)  # validity
    tag, ss, es = _der(der, p, e)
    if tag != 0x30:
        raise TlsError("subject is not a SEQUENCE")
    sha1 = hashlib.sha1(der, usedforsecurity=False).hexdigest()
    return {
        "tls.cert_subject": name_string(der, ss, es).encode(),
        "tls.cert_issuer": name_string(der, si, ei).encode(),
        "tls.cert_serial": ":".join(f"{b:02X}" for b in serial).encode(),
        "tls.cert_fingerprint": ":".join(sha1[i : i + 2] for i in range(0, 40, 2)).encode(),
    }


def certificate_message(body: bytes) -> tuple[dict[str, bytes], list[bytes]]:
    """The first certificate's fields and every certificate's DER, from a
    TLS 1.0-1.2 Certificate message body."""
    r = _Reader(body)
    total = r.u24()
    chain = _Reader(r.take(total))
    ders: list[bytes] = []
    while chain.pos < chain.end:
        ders.append(chain.take(chain.u24()))
    if not ders:
        return {}, ders
    return certificate_fields(ders[0]), ders


class TlsDirection:
    """Records and handshake messages one side sends, until the handshake is encrypted."""

    __slots__ = ("buf", "done", "hs", "is_client")

    def __init__(self, is_client: bool) -> None:
        self.is_client = is_client
        self.buf = bytearray()
        self.hs = bytearray()
        self.done = False

    @property
    def held(self) -> int:
        return len(self.buf) + len(self.hs)

    def feed(self, data: bytes, cfg: InspectConfig, st: InspectStats) -> list[dict[str, bytes]]:
        """Parse what `data` completes; return the buffers found: one set, and for a
        certificate chain one more set per further certificate (`tls.certs`).
        Malformed records are counted and end the parsing of this direction only."""
        if self.done:
            return []
        out: dict[str, bytes] = {}
        chain: list[dict[str, bytes]] = []
        try:
            self._feed(data, cfg, st, out, chain)
        except (TlsError, IndexError, UnicodeError):
            st.parse_errors += 1
            self.done = True
            self.buf = bytearray()
            self.hs = bytearray()
        if not out:
            return chain
        return [out, *chain]

    def _feed(
        self,
        data: bytes,
        cfg: InspectConfig,
        st: InspectStats,
        out: dict[str, bytes],
        chain: list[dict[str, bytes]],
    ) -> None:
        buf = self.buf
        buf += data
        pos = 0
        while len(buf) - pos >= 5 and not self.done:
            ctype = buf[pos]
            length = buf[pos + 3] << 8 | buf[pos + 4]
            if ctype < CT_CCS or ctype > CT_APPDATA or buf[pos + 1] != 3 or length > 18432:
                raise TlsError(f"not a TLS record header at byte {pos}")
            if len(buf) - pos - 5 < length:
                break
            if ctype == CT_HANDSHAKE:
                self.hs += buf[pos + 5 : pos + 5 + length]
                self._handshake(cfg, st, out, chain)
            elif ctype in (CT_CCS, CT_APPDATA):
                self.done = True  # what follows is encrypted
            pos += 5 + length
        del buf[:pos]
        if len(buf) > cfg.tls_max_handshake_bytes:
            raise TlsError("TLS record larger than the handshake limit")
        if self.done:
            self.buf = bytearray()
            self.hs = bytearray()

    def _handshake(
        self,
        cfg: InspectConfig,
        st: InspectStats,
        out: dict[str, bytes],
        chain: list[dict[str, bytes]],
    ) -> None:
        hs = self.hs
        pos = 0
        while len(hs) - pos >= 4 and not self.done:
            mtype = hs[pos]
            mlen = hs[pos + 1] << 16 | hs[pos + 2] << 8 | hs[pos + 3]
            if mlen > cfg.tls_max_handshake_bytes:
                raise TlsError("handshake message larger than the limit")
            if len(hs) - pos - 4 < mlen:
                break
            body = bytes(hs[pos + 4 : pos + 4 + mlen])
            pos += 4 + mlen
            if mtype == HS_CLIENT_HELLO and self.is_client:
                st.tls_client_hellos += 1
                out.update(client_hello(body))
                self.done = True  # nothing further of interest from the client
            elif mtype == HS_SERVER_HELLO and not self.is_client:
                out.update(server_hello(body))
            elif mtype == HS_CERTIFICATE and not self.is_client:
                fields, ders = certificate_message(body)
                # an integer carried as its decimal text, like the other buffers' bytes
                out[CHAIN_LENGTH] = str(len(ders)).encode()
                if fields:
                    st.tls_certificates += 1
                    out.update(fields)
                    out["tls.certs"] = ders[0]
                    chain.extend({"tls.certs": der} for der in ders[1:])
                self.done = True
            elif mtype == HS_SERVER_HELLO_DONE:
                self.done = True
        del hs[:pos]
