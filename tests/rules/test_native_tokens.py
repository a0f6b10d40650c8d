"""The C tokenizer cuts text exactly as the fast parser's `_TOKEN` regex does, and its
absence only means the regex is used."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import _native_tokens, parse_collecting
from rules._fast_parser import FastParser
from tests.rules.test_fuzz_parser import FRAGMENTS

FIXTURES = Path(__file__).resolve().parents[2] / "signatures"

native = _native_tokens.tokenizer()
needs_native = pytest.mark.skipif(
    native is None, reason=f"no C tokenizer here: {_native_tokens.status()}"
)

# Shapes where a regex alternative backtracks or gives up half-way.
EDGE_CASES = [
    '"unterminated',
    '"escaped \\" quote" next',
    '"ends in backslash\\',
    '"line\nbreak"',
    '"\\\n"',
    "!!= != !x !<< ! ==",
    "5m. 5ms 5msx 10s 3h 2d 7mx 1ms2 4d.",
    "1234.5.6.7 1.2.3.4567 10.0.0.0/8 10.0.0.0/123 1.2.3.4/ 1.2.3",
    "::1 ::1/129 2001:db8::/32 1a:2b fe80::1 :a: : :: 12:34:56.7.8/1",
    "0x 0x1F 0XaB 0xg -0x1",
    "-1.5 -1. 1.5.6 -x - -- 3..4 1...2",
    "// /a/ /\\// /\\/ /a/ims /a\nb/ /x/1",
    "|0a b| |0A\t1| |zz| || |",
    ".. ... <> <<>> <= >= == = < > & ^ + - * /",
    "$HOME_NET $1 $ $_x",
    "# comment\n#\nword # trailing",
    "\v\x0b\x00 @ ~ ` ; ? %",
    "a.b-c_d.e http.uri -x a- _",
    "   \t\f\r\n   ",
    "",
]


def regex_tokens(text: str, start: int = 0, end: int | None = None) -> list[tuple[str, str, int]]:
    parser = FastParser(text, "t")
    kinds, texts, starts = parser._regex_tokens(start, len(text) if end is None else end)
    return list(zip(kinds, texts, starts, strict=True))


def native_tokens(text: str, start: int = 0, end: int | None = None) -> list[tuple[str, str, int]]:
    assert native is not None
    parser = FastParser(text, "t")
    kinds, texts, starts = parser._tokens(start, len(text) if end is None else end)
    return list(zip(kinds, texts, starts, strict=True))


@needs_native
@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_cut_alike(text: str) -> None:
    assert native_tokens(text) == regex_tokens(text)


@needs_native
def test_every_fuzz_fragment_and_signature_file_cuts_alike() -> None:
    texts = [*FRAGMENTS, *(path.read_text() for path in sorted(FIXTURES.rglob("*.shrike")))]
    assert len(texts) > 20
    for text in texts:
        if text.isascii():
            assert native_tokens(text) == regex_tokens(text), text


@needs_native
def test_a_range_inside_the_text_cuts_alike() -> None:
    text = 'rule "a" { id 1 }\nrule "b" {\n  id 2 match tcp from any to any }\n'
    middle = text.index("rule", 1)
    assert native_tokens(text, middle, len(text) - 3) == regex_tokens(text, middle, len(text) - 3)
    assert native_tokens(text, 3, 9) == regex_tokens(text, 3, 9)


@needs_native
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(FRAGMENTS),
            st.text(alphabet=string.printable + "\v\x00", max_size=30),
            st.text(alphabet='0123456789abcdefxX.:/-|"\\!=<>$# \n', max_size=20),
        ),
        max_size=8,
    )
)
def test_random_text_cuts_alike(parts: list[str]) -> None:
    text = "".join(parts)
    assert native_tokens(text) == regex_tokens(text)


@needs_native
def test_more_tokens_than_the_first_guess_of_capacity() -> None:
    text = "{" * 5000 + " x" * 10
    tokens = native_tokens(text)
    assert len(tokens) == 5010
    assert tokens == regex_tokens(text)


def test_without_the_c_tokenizer_the_parse_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "".join(path.read_text() for path in sorted(FIXTURES.rglob("*.shrike")))
    with_native = parse_collecting(text, "all.shrike")
    monkeypatch.setattr(_native_tokens, "tokenizer", lambda: None)
    without = parse_collecting(text, "all.shrike")
    assert without.file == with_native.file
    assert [s.span for s in without.file.statements] == [
        s.span for s in with_native.file.statements
    ]
    assert without.errors == with_native.errors


def test_non_ascii_text_uses_the_regex(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> None:
        raise AssertionError("the C tokenizer counts bytes, not characters")

    monkeypatch.setattr(_native_tokens, "tokenizer", fail)
    tokens = FastParser('author "Zoë"', "t")._tokens(0, 12)
    assert tokens[1] == ["author", '"Zoë"']


def test_disabled_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_native_tokens.DISABLE_ENV, "1")
    with pytest.raises(_native_tokens._Unavailable, match="SHRIKE_NO_C_TOKENIZER"):
        _native_tokens._load()


def test_no_compiler_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CC", "no-such-compiler-here")
    with pytest.raises(_native_tokens._Unavailable, match="no C compiler"):
        _native_tokens.build(tmp_path / "t.so")
    assert not (tmp_path / "t.so").exists()


def test_a_failed_compile_leaves_nothing_behind(tmp_path: Path) -> None:
    broken = tmp_path / "broken.c"
    broken.write_text("this is not C\n")
    with pytest.raises(_native_tokens._Unavailable, match="failed"):
        _native_tokens.build(tmp_path / "out" / "t.so", broken)
    assert list((tmp_path / "out").iterdir()) == []


def test_an_unwritable_cache_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(_native_tokens._Unavailable, match="cannot write"):
        _native_tokens.build(blocker / "shrike" / "t.so")


@needs_native
def test_the_cached_library_is_named_by_its_source(tmp_path: Path) -> None:
    source = tmp_path / "a.c"
    source.write_text("int f(void) { return 1; }\n")
    first = _native_tokens.library_path(source)
    source.write_text("int f(void) { return 2; }\n")
    assert _native_tokens.library_path(source) != first
    assert _native_tokens.library_path().is_file()


@needs_native
@pytest.mark.parametrize("text", ["", "\n", "a", "a\nb", "a\n", "\n\nx\n\n", *EDGE_CASES[:5]])
def test_line_starts_match_the_line_lengths(text: str) -> None:
    assert native is not None
    expected = [0]
    for line in text.split("\n"):
        expected.append(expected[-1] + len(line) + 1)
    assert native.line_starts(text.encode("ascii")) == expected
