"""HPACK (RFC 7541), the header compression of HTTP/2: header blocks decoded back into
(name, value) pairs, one decoding context per direction of a connection.

The static table (Appendix A) and the canonical Huffman code (Appendix B, given here
by each symbol's code length) are the RFC's. A bad block raises `HpackError`; the
context is then out of step with the sender's and should be dropped.
"""

from __future__ import annotations

from collections import deque

STATIC_TABLE: tuple[tuple[bytes, bytes], ...] = (
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
)

# The code length of each symbol, bytes 0-255 then EOS (256). The code is canonical:
# codes are handed out in order of length, then of symbol.
HUFFMAN_LENGTHS: tuple[int, ...] = (
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    30,
)  # fmt: skip

EOS = 256
ENTRY_OVERHEAD = 32  # what each dynamic table entry counts beyond its name and value
DEFAULT_TABLE_SIZE = 4096  # SETTINGS_HEADER_TABLE_SIZE until the peers say otherwise


class HpackError(ValueError):
    """A header block that does not decode."""


def _canonical(lengths: tuple[int, ...]) -> tuple[list[int], list[int], list[int]]:
    """Per code length: the first code past that length's codes, and the index in the
    symbol order of the length's first code's symbol less that first code; and the
    symbols in code order."""
    symbols = sorted(range(len(lengths)), key=lambda s: (lengths[s], s))
    longest = max(lengths)
    limit = [0] * (longest + 1)
    base = [0] * (longest + 1)
    code = 0
    k = 0
    for length in range(1, longest + 1):
        code <<= 1
        first = code
        base[length] = k - first
        while k < len(symbols) and lengths[symbols[k]] == length:
            code += 1
            k += 1
        limit[length] = code  # codes of this length are [first, code)
    return limit, base, symbols


_LIMIT, _BASE, _SYMBOLS = _canonical(HUFFMAN_LENGTHS)


def huffman_decode(data: bytes) -> bytes:
    """A Huffman-coded string (RFC 7541 section 5.2) decoded."""
    out = bytearray()
    limit, base, symbols = _LIMIT, _BASE, _SYMBOLS
    code = 0
    length = 0
    for byte in data:
        for shift in (7, 6, 5, 4, 3, 2, 1, 0):
            code = code << 1 | (byte >> shift) & 1
            length += 1
            if code < limit[length]:
                symbol = symbols[base[length] + code]
                if symbol == EOS:
                    raise HpackError("Huffman string holds the EOS symbol")
                out.append(symbol)
                code = 0
                length = 0
    # what is left must be a prefix of EOS (all ones) shorter than a byte
    if length > 7 or code != (1 << length) - 1:
        raise HpackError("Huffman string ends in bad padding")
    return bytes(out)


def _integer(block: bytes, pos: int, prefix: int) -> tuple[int, int]:
    """The integer (section 5.1) whose `prefix`-bit first part is in `block[pos]`, and
    the position after it."""
    mask = (1 << prefix) - 1
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        if pos >= len(block):
            raise HpackError("integer runs past the header block")
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise HpackError("integer over 2**32")


def _string(block: bytes, pos: int) -> tuple[bytes, int]:
    """The string literal (section 5.2) at `pos`, and the position after it."""
    if pos >= len(block):
        raise HpackError("string literal missing at the end of the header block")
    huffman = block[pos] & 0x80
    n, pos = _integer(block, pos, 7)
    end = pos + n
    if end > len(block):
        raise HpackError("string literal runs past the header block")
    raw = block[pos:end]
    return (huffman_decode(raw) if huffman else raw), end


class HpackDecoder:
    """The decoding context of one direction: its dynamic table, newest entry first.

    `max_table_size` bounds what a dynamic table size update may ask for (the
    decoder's SETTINGS_HEADER_TABLE_SIZE, which a passive reader does not see).
    """

    def __init__(self, max_table_size: int = 1 << 16) -> None:
        self.entries: deque[tuple[bytes, bytes]] = deque()
        self.size = 0  # of the dynamic table, as section 4.1 counts it
        self.table_size = DEFAULT_TABLE_SIZE
        self.max_table_size = max_table_size

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """The (name, value) pairs of one whole header block, in order."""
        pairs: list[tuple[bytes, bytes]] = []
        pos = 0
        while pos < len(block):
            first = block[pos]
            if first & 0x80:  # indexed header field
                index, pos = _integer(block, pos, 7)
                pairs.append(self._entry(index))
            elif first & 0x40:  # literal with incremental indexing
                name, value, pos = self._literal(block, pos, 6)
                pairs.append((name, value))
                self._add(name, value)
            elif first & 0x20:  # dynamic table size update
                size, pos = _integer(block, pos, 5)
                if size > self.max_table_size:
                    raise HpackError(
                        f"dynamic table size update to {size} over {self.max_table_size}"
                    )
                self.table_size = size
                self._evict(0)
            else:  # literal without indexing, or never indexed
                name, value, pos = self._literal(block, pos, 4)
                pairs.append((name, value))
        return pairs

    def _entry(self, index: int) -> tuple[bytes, bytes]:
        if index == 0:
            raise HpackError("header field index 0")
        if index <= len(STATIC_TABLE):
            return STATIC_TABLE[index - 1]
        dynamic = index - len(STATIC_TABLE) - 1
        if dynamic >= len(self.entries):
            raise HpackError(f"header field index {index} past the tables")
        return self.entries[dynamic]

    def _literal(self, block: bytes, pos: int, prefix: int) -> tuple[bytes, bytes, int]:
        index, pos = _integer(block, pos, prefix)
        if index:
            name = self._entry(index)[0]
        else:
            name, pos = _string(block, pos)
        value, pos = _string(block, pos)
        return name, value, pos

    def _add(self, name: bytes, value: bytes) -> None:
        """Section 4.4: an entry larger than the table empties it and is not added."""
        cost = len(name) + len(value) + ENTRY_OVERHEAD
        self._evict(cost)
        if cost <= self.table_size:
            self.entries.appendleft((name, value))
            self.size += cost

    def _evict(self, room: int) -> None:
        """Drop the oldest entries until `room` more fits the table size."""
        while self.entries and self.size + room > self.table_size:
            name, value = self.entries.pop()
            self.size -= len(name) + len(value) + ENTRY_OVERHEAD
