"""Payload sequence semantics: content modifiers, backtracking, pcre, byte_* and isdataat."""

from __future__ import annotations

import pytest

from engine.match.conditions import compile_condition
from engine.match.payload import Scratch, read_number
from rules import parse_text
from rules.variables import VariableTable


class _Payload:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def field(self, name: str) -> object:
        return len(self.payload) if name == "dsize" else None

    def buffer(self, name: str) -> bytes | None:
        return self.payload if name in ("pkt_data", "raw_data") else None

    def bits(self, kind: str, track: str | None) -> set[str]:
        return set()


def holds(where: str, payload: bytes) -> bool:
    text = f'rule "t" {{ id 1 match tcp where {where} }}'
    rule = parse_text(text).rules[0]
    predicate = compile_condition(rule.condition, VariableTable())
    return predicate(_Payload(payload), Scratch())


@pytest.mark.parametrize(
    ("where", "payload", "expected"),
    [
        ('pkt_data contains "abc"', b"xxabcxx", True),
        ('pkt_data contains "ABC"', b"xxabcxx", False),
        ('pkt_data contains "ABC" nocase', b"xxabcxx", True),
        ('pkt_data { contains "abc" offset 2 depth 3 }', b"xxabcxx", True),
        ('pkt_data { contains "abc" offset 3 }', b"xxabcxx", False),
        ('pkt_data { contains "abc" depth 4 }', b"xxabcxx", False),
        ('pkt_data starts_with "xx"', b"xxabc", True),
        ('pkt_data starts_with "ab"', b"xxabc", False),
        ('pkt_data ends_with "bc"', b"xxabc", True),
        ('pkt_data ends_with "ab"', b"xxabc", False),
        ('pkt_data equals "xxabc"', b"xxabc", True),
        ('pkt_data equals "xxab"', b"xxabc", False),
        ('pkt_data not contains "zz"', b"xxabc", True),
        ('pkt_data not contains "ab"', b"xxabc", False),
        # distance/within measured from the end of the previous match
        ('pkt_data { contains "a" contains "c" distance 1 within 1 }', b"abc", True),
        ('pkt_data { contains "a" contains "c" distance 0 within 1 }', b"abc", False),
        ('pkt_data { contains "b" contains "a" distance -2 within 1 }', b"abc", True),
    ],
)
def test_content_modifiers(where: str, payload: bytes, expected: bool) -> None:
    assert holds(where, payload) is expected


def test_relative_content_backtracks_to_a_later_occurrence() -> None:
    # the first "id=" is followed by the wrong value; Snort retries at the second one
    where = 'pkt_data { contains "id=" contains "42" distance 0 within 2 }'
    assert holds(where, b"id=17&id=42")
    assert not holds(where, b"id=17&id=43")


def test_backtracking_reaches_through_two_levels() -> None:
    where = 'pkt_data { contains "A" contains "B" distance 0 within 1 contains "C" distance 0 within 1 }'
    assert holds(where, b"AB_ABx_ABC")
    assert not holds(where, b"AB_ABx_ABD")


def test_negated_relative_content_does_not_backtrack_into_a_match() -> None:
    where = 'pkt_data { contains "user=" not contains "admin" distance 0 within 5 }'
    assert holds(where, b"user=guest")
    assert not holds(where, b"user=admin")


@pytest.mark.parametrize(
    ("where", "payload", "expected"),
    [
        ("pkt_data matches /id=[0-9]{3}/", b"x id=123", True),
        ("pkt_data matches /ID=[0-9]{3}/i", b"x id=123", True),
        ("pkt_data matches /^id/", b"x id=123", False),
        # relative pcre starts at the end of the previous content
        ('pkt_data { contains "x" matches /^ id/R }', b"x id=1", True),
        ('pkt_data { contains "id" matches /^ id/R }', b"x id=1", False),
        ("pkt_data not matches /secret/", b"public", True),
        ("pkt_data matches /a.b/s", b"a\nb", True),
        ("pkt_data matches /a.b/", b"a\nb", False),
    ],
)
def test_pcre(where: str, payload: bytes, expected: bool) -> None:
    assert holds(where, payload) is expected


def test_a_relative_pcre_retries_without_anchoring_afresh() -> None:
    # a later option failing sends the pcre on to its next match in the same buffer,
    # where `^` holds only at the cursor (pcre's start offset, as Snort and Suricata
    # retry): "Z" two bytes after the cursor is not found by re-anchoring further on
    where = 'pkt_data { contains "S" depth 1 matches /^.{2}/R contains "Z" distance 0 within 1 }'
    assert holds(where, b"SabZ")
    assert not holds(where, b"SabcZ")
    # an unanchored pcre still moves on to its later matches
    where = 'pkt_data { contains "S" depth 1 matches /a./R contains "Z" distance 0 within 1 }'
    assert holds(where, b"SabxaqZ")


@pytest.mark.parametrize(
    ("where", "payload", "expected"),
    [
        ("pkt_data byte_test(bytes 2, offset 0, > 255)", b"\x01\x00", True),
        ("pkt_data byte_test(bytes 2, offset 0, > 256)", b"\x01\x00", False),
        ("pkt_data byte_test(bytes 2, offset 0, == 1, endian little)", b"\x01\x00", True),
        ("pkt_data byte_test(bytes 1, offset 0, & 0x80)", b"\x81", True),
        ("pkt_data byte_test(bytes 1, offset 0, !& 0x80)", b"\x81", False),
        ("pkt_data byte_test(bytes 3, offset 1, == 123, string dec)", b"x123", True),
        ("pkt_data byte_test(bytes 2, offset 0, == 0x1f, string hex)", b"1f", True),
        ("pkt_data byte_test(bytes 4, offset 0, > 0)", b"\x01", False),  # out of bounds
        ('pkt_data { contains "L" byte_test(bytes 1, offset 0, == 7, relative) }', b"L\x07", True),
    ],
)
def test_byte_test(where: str, payload: bytes, expected: bool) -> None:
    assert holds(where, payload) is expected


def test_byte_jump_moves_the_cursor_by_the_read_length() -> None:
    # a 1-byte length 3 skips "abc"; "Z" must come right after
    where = 'pkt_data { byte_jump(bytes 1, offset 0) contains "Z" distance 0 within 1 }'
    assert holds(where, b"\x03abcZ")
    assert not holds(where, b"\x02abcZ")


def test_byte_jump_past_the_end_fails() -> None:
    assert not holds("pkt_data byte_jump(bytes 1, offset 0)", b"\x09ab")


def test_byte_extract_feeds_a_later_depth() -> None:
    where = 'pkt_data { byte_extract(bytes 1, offset 0, name n) contains "ok" depth n }'
    assert holds(where, b"\x04xok")
    assert not holds(where, b"\x02xok")


def test_byte_count_read_from_an_extracted_value() -> None:
    # the first byte says how wide the big-endian number after it is
    test = (
        "pkt_data { byte_extract(bytes 1, offset 0, name n) byte_test(bytes n, offset 1, == 258) }"
    )
    assert holds(test, b"\x02\x01\x02")
    assert not holds(test, b"\x01\x01\x02")  # one byte: 1
    jump = (
        "pkt_data { byte_extract(bytes 1, offset 0, name n) "
        'byte_jump(bytes n, offset 0, relative) contains "Z" distance 0 within 1 }'
    )
    assert holds(jump, b"\x01\x02abZ")  # 1-byte length 2 read at 1, skips "ab"
    assert not holds(jump, b"\x01\x03abZ")
    math = (
        "pkt_data { byte_extract(bytes 1, offset 0, name n) "
        "byte_math(bytes n, offset 1, oper +, rvalue 1, result r) byte_test(bytes 1, offset 0, == r) }"
    )
    assert holds(math, b"\x01\x00")
    assert not holds("pkt_data byte_test(bytes unknown, offset 0, == 0)", b"\x00")


def test_byte_count_of_zero_reads_zero_without_moving() -> None:
    # Suricata reads nothing and jumps by 0 from where it stands
    where = (
        "pkt_data { byte_extract(bytes 1, offset 0, name n) "
        "byte_jump(bytes n, offset 0, relative) isdataat(offset 1, relative) }"
    )
    assert holds(where, b"\x00ab")
    assert not holds(where, b"\x00a")


def test_byte_math_result_is_usable_as_an_operand() -> None:
    where = (
        "pkt_data { byte_math(bytes 1, offset 0, oper *, rvalue 2, result size) "
        "byte_test(bytes 1, offset 1, == size) }"
    )
    assert holds(where, b"\x03\x06")
    assert not holds(where, b"\x03\x05")


@pytest.mark.parametrize(
    ("where", "payload", "expected"),
    [
        ("pkt_data isdataat(offset 4)", b"12345", True),
        ("pkt_data isdataat(offset 5)", b"12345", False),
        ('pkt_data { contains "1" isdataat(offset 3, relative) }', b"12345", True),
        ('pkt_data { contains "1" isdataat(offset 4, relative) }', b"12345", False),
        ('pkt_data { contains "5" not isdataat(offset 1, relative) }', b"12345", True),
        ("pkt_data size > 4", b"12345", True),
        ("dsize > 5", b"12345", False),
        ("dsize in 1..5", b"12345", True),
    ],
)
def test_isdataat_size_and_dsize(where: str, payload: bytes, expected: bool) -> None:
    assert holds(where, payload) is expected


def test_base64_decode_feeds_base64_data() -> None:
    where = (
        'pkt_data { contains "b64=" base64_decode(relative) } and base64_data contains "powershell"'
    )
    assert holds(where, b"b64=cG93ZXJzaGVsbCAtZW5j")
    assert not holds(where, b"b64=aGVsbG8gd29ybGQ=")


def test_read_number_rejects_non_digits() -> None:
    assert read_number(b"zz", 0, 2, None, "dec") is None
    assert read_number(b"12", 0, 2, "little", None) == 0x3231


def test_pcre_flags_changed_mid_pattern() -> None:
    where = r"pkt_data matches /^auth:\s*(?-i)QQ/i"
    assert holds(where, b"AUTH: QQ")
    assert not holds(where, b"AUTH: qq")
