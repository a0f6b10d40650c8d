"""Application protocol detection from the first bytes of each direction, with the port as a hint."""

from __future__ import annotations

from engine.inspect.dns import looks_like_dns
from engine.inspect.http import METHODS
from engine.inspect.tls import looks_like_tls

DNS_PORTS = frozenset({53, 5353, 5355})
_SMTP_PORTS = frozenset({25, 465, 587, 2525})
_FTP_PORTS = frozenset({21, 2121})
_METHOD_PREFIXES = tuple(m + b" " for m in METHODS)
_SMTP_CLIENT = (b"EHLO ", b"HELO ", b"ehlo ", b"helo ")
_FTP_CLIENT = (b"USER ", b"user ")

UNDECIDED = ""  # not enough bytes yet to tell
_H2_PREFACE = b"PRI * HTTP/2.0"


def detect_tcp(head: bytes, to_server: bool, sport: int, dport: int) -> str | None:
    """The protocol `head` (the first bytes one side sent) shows: a name, None when
    it shows none of the known ones, or UNDECIDED when more bytes could tell."""
    if len(head) < 4:
        return UNDECIDED
    if head.startswith(b"SSH-"):
        return "ssh"
    if looks_like_tls(head):
        return "tls"
    if to_server:
        if head.startswith(_H2_PREFACE[: len(head)]):  # the whole preface once 14 bytes came
            return "http2" if len(head) >= len(_H2_PREFACE) else UNDECIDED
        if head.startswith(_METHOD_PREFIXES):
            return "http"
        if head.startswith(_SMTP_CLIENT):
            return "smtp"
        if head.startswith(_FTP_CLIENT):
            return "ftp"
        if (dport in DNS_PORTS or sport in DNS_PORTS) and len(head) >= 2:
            size = head[0] << 8 | head[1]
            if len(head) - 2 >= min(size, 17):
                return "dns" if looks_like_dns(head[2 : 2 + size]) else None
            return UNDECIDED
        if len(head) < 8 and any(m.startswith(head[: len(m)]) for m in _METHOD_PREFIXES):
            return UNDECIDED
        return None
    if head.startswith(b"HTTP/1."):
        return "http"
    if head.startswith((b"220 ", b"220-")):
        line = head.split(b"\n", 1)[0].upper()
        if b"SMTP" in line:
            return "smtp"
        if b"FTP" in line:
            return "ftp"
        port = sport
        if port in _SMTP_PORTS:
            return "smtp"
        if port in _FTP_PORTS:
            return "ftp"
        return UNDECIDED  # the client's first command will tell
    if (sport in DNS_PORTS or dport in DNS_PORTS) and len(head) >= 2:
        size = head[0] << 8 | head[1]
        if len(head) - 2 >= min(size, 17):
            return "dns" if looks_like_dns(head[2 : 2 + size]) else None
        return UNDECIDED
    return None


def detect_udp(payload: bytes, sport: int, dport: int) -> str | None:
    """DNS (by structure, on the DNS, mDNS and LLMNR ports) or None."""
    if (sport in DNS_PORTS or dport in DNS_PORTS) and looks_like_dns(payload):
        return "dns"
    return None
