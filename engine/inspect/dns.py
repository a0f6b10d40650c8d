"""DNS messages: whether bytes look like one, and the name of the first question.

`dns.query` holds the first question's name of a query (QR bit clear) as
Suricata's buffer does: labels joined by dots, in their original case, without a
trailing dot; the root name is empty. Compression pointers are followed, at most
`MAX_JUMPS` times and never forward past the message.
"""

from __future__ import annotations

MAX_JUMPS = 16
MAX_NAME = 255

#: The key under which a message's record types are handed over (`record_types`): not
#: a byte buffer rules inspect, but what the `dns.rrtype` field reads.
RECORD_TYPES = "dns.rrtype"


class DnsError(ValueError):
    """Bytes that are not a well-formed DNS message header and question."""


def question_name(msg: bytes | memoryview) -> bytes:
    """The first question's name (dotted, original case)."""
    n = len(msg)
    if n < 12:
        raise DnsError("shorter than a DNS header")
    if (msg[4] << 8 | msg[5]) == 0:
        raise DnsError("no question")
    pos = 12
    labels: list[bytes] = []
    total = 0
    jumps = 0
    while True:
        if pos >= n:
            raise DnsError("name runs past the message")
        length = msg[pos]
        if length == 0:
            break
        if length & 0xC0 == 0xC0:
            if pos + 1 >= n:
                raise DnsError("truncated compression pointer")
            target = (length & 0x3F) << 8 | msg[pos + 1]
            jumps += 1
            if jumps > MAX_JUMPS or target >= pos:
                raise DnsError("compression pointer loop")
            pos = target
            continue
        if length & 0xC0:
            raise DnsError("reserved label type")
        if pos + 1 + length > n:
            raise DnsError("label runs past the message")
        labels.append(bytes(msg[pos + 1 : pos + 1 + length]))
        total += length + 1
        if total > MAX_NAME:
            raise DnsError("name longer than 255 bytes")
        pos += 1 + length
    return b".".join(labels)


def _skip_name(msg: bytes | memoryview, pos: int) -> int:
    """The offset just past the (possibly compressed) name at `pos`."""
    n = len(msg)
    while True:
        if pos >= n:
            raise DnsError("name runs past the message")
        length = msg[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length & 0xC0:
            raise DnsError("reserved label type")
        pos += 1 + length


def record_types(msg: bytes | memoryview) -> list[int]:
    """What Suricata's `dns.rrtype` reads: the type of each question of a query, or
    of each answer record of a response, in message order."""
    n = len(msg)
    if n < 12:
        raise DnsError("shorter than a DNS header")
    questions = msg[4] << 8 | msg[5]
    answers = msg[6] << 8 | msg[7]
    query = is_query(msg)
    types: list[int] = []
    pos = 12
    for _ in range(questions):
        pos = _skip_name(msg, pos)
        if pos + 4 > n:
            raise DnsError("question runs past the message")
        if query:
            types.append(msg[pos] << 8 | msg[pos + 1])
        pos += 4
    if query:
        return types
    for _ in range(answers):
        pos = _skip_name(msg, pos)
        if pos + 10 > n:
            raise DnsError("record runs past the message")
        types.append(msg[pos] << 8 | msg[pos + 1])
        pos += 10 + (msg[pos + 8] << 8 | msg[pos + 9])
        if pos > n:
            raise DnsError("record data runs past the message")
    return types


def pack_types(types: list[int]) -> bytes:
    """Record types as the inspector hands them over: two big-endian bytes each."""
    return b"".join(t.to_bytes(2, "big") for t in types)


def is_query(msg: bytes | memoryview) -> bool:
    return len(msg) >= 3 and not msg[2] & 0x80


def looks_like_dns(msg: bytes | memoryview) -> bool:
    """A plausible DNS header (standard/inverse/status/notify/update opcode, at most
    a few questions, a sane record count) with a parseable first question."""
    if len(msg) < 17:
        return False
    opcode = (msg[2] >> 3) & 0x0F
    if opcode not in (0, 1, 2, 4, 5):
        return False
    qd = msg[4] << 8 | msg[5]
    if qd == 0 or qd > 16:
        return False
    an = msg[6] << 8 | msg[7]
    ns = msg[8] << 8 | msg[9]
    ar = msg[10] << 8 | msg[11]
    if an + ns + ar > 512:
        return False
    try:
        question_name(msg)
    except DnsError:
        return False
    return True


class DnsTcpStream:
    """DNS over TCP: two-byte length-prefixed messages in one direction's byte stream."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    @property
    def held(self) -> int:
        return len(self.buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add stream bytes; return each message they complete."""
        buf = self.buf
        buf += data
        out: list[bytes] = []
        pos = 0
        while len(buf) - pos >= 2:
            size = buf[pos] << 8 | buf[pos + 1]
            if len(buf) - pos - 2 < size:
                break
            out.append(bytes(buf[pos + 2 : pos + 2 + size]))
            pos += 2 + size
        del buf[:pos]
        return out
