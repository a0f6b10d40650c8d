"""PRF003's regex verdicts through libhs `hs_expression_info` against a real Hyperscan compile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.lint import libhs
from rules.lint.config import LintConfig
from rules.lint.runner import Linter, parse_shrike_source

hyperscan = pytest.importorskip("hyperscan")

RULESETS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rulesets"
_PCRE = re.compile(r'pcre\s*:\s*"!?/(.*?)/([A-Za-z]*)"\s*;')
_FLAGS = {"i": "HS_FLAG_CASELESS", "s": "HS_FLAG_DOTALL", "m": "HS_FLAG_MULTILINE"}


def _compile_error(pattern: bytes, flags: int) -> str | None:
    try:
        hyperscan.Database().compile(expressions=[pattern], ids=[0], elements=1, flags=[flags])
    except hyperscan.error as error:
        return str(error)
    return None


def _analyser() -> libhs.PatternAnalyser:
    found = libhs.analyser()
    if isinstance(found, libhs.LibhsUnavailable):
        pytest.skip(str(found))
    return found


@pytest.fixture
def fresh_verdicts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libhs, "_VERDICTS", {})


@pytest.mark.parametrize(
    ("pattern", "flags"),
    [
        (rb"<(\w+)>.*<\/\1>", 0),  # back-reference
        (rb"(?<=a)b", 0),  # look-behind
        (rb"(?=x)y", 0),  # look-ahead
        (rb"a(?!b)", 0),
        (rb"\Gabc", 0),
        (rb"(?R)", 0),
        (rb"a(?>bc)", 0),  # atomic group
        (rb"a++", 0),  # possessive
        (rb"(a", 0),  # syntax
        (rb"a{2,1}", 0),
        (rb"id=[0-9a-f]{16}", 1),
        (rb"^GET /[a-z]+\.php\?id=\d+", 1 | 2),
        (rb"(?x) a b # note" + b"\n", 0),
        (rb"(?:%\d{2}|[^%&]){129}", 1),  # too large: only a compile finds out
    ],
)
def test_verdict_matches_compile(fresh_verdicts: None, pattern: bytes, flags: int) -> None:
    _analyser()
    assert libhs.hyperscan_error(pattern, flags, _compile_error) == _compile_error(pattern, flags)


def test_expression_info_rejects_with_the_compilers_message() -> None:
    analyser = _analyser()
    message = analyser.error(rb"(?<=a)b", 0)
    assert message == _compile_error(rb"(?<=a)b", 0)
    assert message is not None and "Zero-width assertions" in message
    assert analyser.error(rb"abc[0-9]+", 0) is None


def test_verdicts_are_cached_per_pattern_and_flags(fresh_verdicts: None) -> None:
    compiled: list[tuple[bytes, int]] = []

    def counting(pattern: bytes, flags: int) -> str | None:
        compiled.append((pattern, flags))
        return _compile_error(pattern, flags)

    for _ in range(3):
        libhs.hyperscan_error(rb"(?:ab|cd){20}x", 0, counting)
        libhs.hyperscan_error(rb"(?:ab|cd){20}x", 1, counting)
    # Large group repeats are confirmed by a compile, once per (pattern, flags).
    assert compiled == [(rb"(?:ab|cd){20}x", 0), (rb"(?:ab|cd){20}x", 1)]


def test_without_libhs_every_regex_is_compiled_and_the_report_says_so(
    fresh_verdicts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(libhs, "_analyser", libhs.LibhsUnavailable("cannot load libhs: test"))
    compiled: list[bytes] = []

    def counting(pattern: bytes, flags: int) -> str | None:
        compiled.append(pattern)
        return _compile_error(pattern, flags)

    assert libhs.hyperscan_error(rb"a(?=b)", 0, counting) is not None
    assert libhs.hyperscan_error(rb"(?i)abc", 0, counting) is None
    assert libhs.hyperscan_error(rb"abc", 0, counting) is None  # plain: needs no compile
    assert compiled == [rb"a(?=b)", rb"(?i)abc"]

    text = (
        'rule "r" {\n  id 9000001\n  match tcp from any to any port 80\n'
        '  where pkt_data { contains "<" matches /(a)\\1/ }\n}\n'
    )
    report = Linter(LintConfig(select=("PRF003",))).lint([parse_shrike_source("t.shrike", text)])
    assert [d.code for d in report.diagnostics] == ["PRF003"]
    assert report.notes == (
        "PRF003 hyperscan-incompatible-regex compiles every regex that is not plainly "
        "supported, which is slow: hs_expression_info is unavailable (cannot load libhs: test)",
    )


def test_no_note_when_libhs_is_loaded() -> None:
    _analyser()
    text = 'rule "r" {\n  id 9000001\n  match tcp from any to any port 80\n}\n'
    report = Linter(LintConfig(select=("PRF003",))).lint([parse_shrike_source("t.shrike", text)])
    assert report.notes == ()


def _ruleset_patterns() -> list[tuple[bytes, int]]:
    found: set[tuple[bytes, int]] = set()
    for path in sorted(RULESETS.glob("*/*.rules")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            for match in _PCRE.finditer(line):
                body, letters = match.groups()
                flags = 0
                for letter in letters:
                    if letter in _FLAGS:
                        flags |= getattr(hyperscan, _FLAGS[letter])
                pattern = f"(?x){body}\n" if "x" in letters else body
                found.add((pattern.encode("utf-8", "surrogateescape"), flags))
    return sorted(found)


@pytest.mark.shared
def test_expression_info_agrees_with_compile_on_real_rulesets(fresh_verdicts: None) -> None:
    """Every pattern libhs rejects is rejected by compile with the same message; of those it
    accepts (and does not send to a confirming compile), a fixed stride is compiled: all of
    them take most of a minute."""
    if not RULESETS.is_dir():
        pytest.skip(f"no rulesets at {RULESETS}")
    analyser = _analyser()
    patterns = _ruleset_patterns()
    assert len(patterns) > 1000
    accepted = 0
    for pattern, flags in patterns:
        info = analyser.error(pattern, flags)
        if info is not None:
            assert info == _compile_error(pattern, flags), pattern
            assert libhs.hyperscan_error(pattern, flags, _compile_error) == info
            continue
        if libhs._may_be_too_large(pattern):
            continue  # hyperscan_error compiles these itself
        accepted += 1
        if accepted % 8 == 0:
            assert _compile_error(pattern, flags) is None, pattern


PLAIN = [
    rb"abc",
    rb"\/abc[a-z0-9]{8}\.(php|asp)\?id=\d+",
    rb"abcd[\x00-\x1f]{2,}xy",
    rb"^GET\s+\/[a-z]+",
    rb"a|b",
    rb"[^\r\n]+x",
    rb"[a-]",
    rb"[]a]",
    rb"[^]a]",
    rb"x$",
    rb"\x41",
    rb"a{3}?",
    rb"a*?b",
    rb"abc*",
    rb"(ab)*c",
    rb"(?:a|bc)d{2,5}",
]
NOT_PLAIN = [
    rb"",
    rb"?0",  # a repeat of nothing
    rb"a{0}b",  # `{0}` is no repeat to Hyperscan
    rb"a{0,0}",
    rb"\bfoo\b",  # word boundaries are left to libhs: `a\bB` can never match
    rb"a\bB",
    rb"a?",  # can match nothing
    rb"(a|)",
    rb"\b",
    rb"^$",
    rb"(ab)*",
    rb"<(\w+)>.*<\/\1>",  # back-reference
    rb"(?<=a)b",
    rb"(?=x)y",
    rb"(?i)abc",  # inline options are left to libhs
    rb"a++",  # possessive
    rb"a+??",
    rb"(a",
    rb"a)",
    rb"a{2,1}",
    rb"a{65}",  # bounds above 64 are left to libhs
    rb"(?:ab){8}",  # a group repeated 8 times may be too large
    rb"a$b",
    rb"^a|^b",
    rb"\x4",
    rb"\Gabc",
    rb"[[:alpha:]]",
    rb"[:(?:]",  # a POSIX class out of place, to Hyperscan
    rb"[^.a]",
    rb"[\d-z]",
    rb"[z-a]",
    rb"[]",
    rb"[^]",
    rb"a{,3}",
    rb"a{",
    rb"\p{L}",
]


@pytest.mark.parametrize("pattern", PLAIN)
def test_plain_patterns_are_accepted_without_asking_and_do_compile(
    fresh_verdicts: None, pattern: bytes
) -> None:
    assert libhs.plainly_supported(pattern)
    asked: list[bytes] = []

    def compile_error(pattern: bytes, flags: int) -> str | None:
        asked.append(pattern)
        return _compile_error(pattern, flags)

    assert libhs.hyperscan_error(pattern, 0, compile_error) is None
    assert asked == []
    assert _compile_error(pattern, 0) is None


@pytest.mark.parametrize("pattern", NOT_PLAIN)
def test_other_patterns_are_left_to_libhs(pattern: bytes) -> None:
    assert not libhs.plainly_supported(pattern)


@pytest.mark.shared
def test_every_plain_pattern_of_the_real_rulesets_compiles() -> None:
    """The shortcut may only accept what Hyperscan compiles: each accepted pattern of the
    shared rulesets is compiled (about 15 s)."""
    if not RULESETS.is_dir():
        pytest.skip(f"no rulesets at {RULESETS}")
    patterns = _ruleset_patterns()
    plain = [(p, f) for p, f in patterns if b"\0" not in p and libhs.plainly_supported(p)]
    assert len(plain) > len(patterns) // 2  # the shortcut covers most real patterns
    rejected = [(p, e) for p, f in plain if (e := _compile_error(p, f)) is not None]
    assert rejected == []


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.text(alphabet="ab.\\dwsxX0129f-[]^$()|?*+{},:!=<>/", min_size=1, max_size=14))
def test_random_patterns_cleared_by_their_syntax_do_compile(text: str) -> None:
    pattern = text.encode()
    if libhs.plainly_supported(pattern):
        assert _compile_error(pattern, 0) is None, pattern
