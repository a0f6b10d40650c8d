"""HPACK decoding: the RFC 7541 appendix C examples, header blocks from scapy's encoder,
the dynamic table's bounds, and blocks that do not decode."""

from __future__ import annotations

import pytest
from scapy.contrib import http2 as h2

from engine.inspect.hpack import (
    HUFFMAN_LENGTHS,
    STATIC_TABLE,
    HpackDecoder,
    HpackError,
    huffman_decode,
)


def _block(hexdump: str) -> bytes:
    return bytes.fromhex(hexdump.replace(" ", ""))


def test_the_rfc_requests_with_huffman_strings_and_the_dynamic_table() -> None:
    # RFC 7541 C.4: three requests on one connection
    d = HpackDecoder()
    assert d.decode(_block("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")) == [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":path", b"/"),
        (b":authority", b"www.example.com"),
    ]
    assert d.size == 57
    assert d.decode(_block("8286 84be 5886 a8eb 1064 9cbf")) == [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":path", b"/"),
        (b":authority", b"www.example.com"),
        (b"cache-control", b"no-cache"),
    ]
    assert d.size == 110
    third = "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"
    assert d.decode(_block(third)) == [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":path", b"/index.html"),
        (b":authority", b"www.example.com"),
        (b"custom-key", b"custom-value"),
    ]
    assert list(d.entries) == [
        (b"custom-key", b"custom-value"),
        (b"cache-control", b"no-cache"),
        (b":authority", b"www.example.com"),
    ]
    assert d.size == 164


def test_the_huffman_code_and_the_static_table_are_the_ones_scapy_uses() -> None:
    ours = {}
    code = 0
    previous = 0
    for symbol in sorted(range(257), key=lambda s: (HUFFMAN_LENGTHS[s], s)):
        code <<= HUFFMAN_LENGTHS[symbol] - previous
        previous = HUFFMAN_LENGTHS[symbol]
        ours[symbol] = (code, previous)
        code += 1
    assert [ours[s] for s in range(257)] == list(h2.HPackZString.static_huffman_code)
    table = h2.HPackHdrTable._static_entries
    assert [(e.name().encode(), e.value().encode()) for _, e in sorted(table.items())] == list(
        STATIC_TABLE
    )


@pytest.mark.parametrize("index", [True, False])
def test_blocks_from_another_encoder_decode_to_what_it_encoded(index: bool) -> None:
    encoder = h2.HPackHdrTable()
    decoder = HpackDecoder()
    messages = [
        [(":method", "POST"), (":path", "/upload?id=7"), (":authority", "a.example")],
        [(":method", "POST"), (":path", "/upload?id=8"), ("x-token", "s3cr3t"), ("accept", "*/*")],
        [(":status", "200"), ("set-cookie", "s=" + "".join(map(chr, range(32, 127))))],
        [(":method", "POST"), (":path", "/upload?id=8"), ("x-token", "s3cr3t")],
    ]
    for pairs in messages:
        text = "".join(n + (" " if n.startswith(":") else ": ") + v + "\n" for n, v in pairs)
        frame = encoder.parse_txt_hdrs(
            text.encode(),
            stream_id=1,
            should_index=lambda name: index,
            is_sensitive=lambda name, value: name == "x-token",  # never indexed
        )
        block = bytes(frame)[9:]  # one HEADERS frame, no padding or priority
        assert decoder.decode(block) == [(n.encode(), v.encode()) for n, v in pairs]
    # with indexing the repeated request came from the dynamic table
    assert bool(decoder.entries) == index


def test_huffman_strings_of_every_byte_value() -> None:
    codes = h2.HPackZString.static_huffman_code  # (code, length) per symbol
    data = bytes(range(256)) + b"www.example.com" + bytes(range(255, -1, -1))
    bits = "".join(format(codes[b][0], f"0{codes[b][1]}b") for b in data)
    bits += "1" * (-len(bits) % 8)  # padded with the start of EOS
    assert huffman_decode(int(bits, 2).to_bytes(len(bits) // 8, "big")) == data
    assert huffman_decode(b"") == b""


def test_the_dynamic_table_stays_within_its_size() -> None:
    d = HpackDecoder()
    literal = bytes([0x40, 3]) + b"abc" + bytes([100]) + b"v" * 100
    d.decode(literal)
    assert d.entries[0] == (b"abc", b"v" * 100) and d.size == 135
    d.decode(bytes([0x3F, 0x69]))  # size update to 31 + 105 = 136
    assert d.table_size == 136 and len(d.entries) == 1
    d.decode(bytes([0x3F, 0x51]))  # to 112: the entry no longer fits
    assert d.table_size == 112 and not d.entries and d.size == 0
    # an entry larger than the whole table empties it and is not added
    d.decode(bytes([0x40, 1]) + b"k" + bytes([1]) + b"v")
    assert len(d.entries) == 1
    d.decode(literal)
    assert not d.entries and d.size == 0
    # indexing the dropped entry now fails
    with pytest.raises(HpackError, match="past the tables"):
        d.decode(bytes([0x80 | 62]))


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        (bytes([0x80]), "index 0"),
        (bytes([0x80 | 62]), "past the tables"),
        (bytes([0xFF, 0x80, 0x80]), "runs past"),
        (bytes([0xFF]) + bytes([0xFF]) * 5 + bytes([1]), "over 2\\*\\*32"),
        (bytes([0x40, 5]) + b"ab", "runs past the header block"),
        (bytes([0x40, 1]) + b"a", "missing"),
        (bytes([0x3F, 0xE1, 0xFF, 0x07]), "size update"),
        # 'a' (00011) then a padding of 0 bits, not ones
        (bytes([0x00, 0x81, 0b00011000]), "padding"),
        # 'a' then a whole byte of ones: padding longer than 7 bits
        (bytes([0x00, 0x82, 0b00011111, 0xFF]), "padding"),
        (bytes([0x00, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), "EOS"),
    ],
)
def test_blocks_that_do_not_decode_say_why(block: bytes, reason: str) -> None:
    with pytest.raises(HpackError, match=reason):
        HpackDecoder().decode(block)
