"""The hand-written fast path against the Lark path: equal ASTs, spans included, or a decline."""

from __future__ import annotations

import ast as python_ast
import dataclasses
import importlib.util
import inspect
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import ast
from rules._fast_parser import FastParser, _new
from rules.parser import RuleParser, _chunk_bounds
from tests.rules.test_fuzz_parser import FRAGMENTS as FUZZ_FRAGMENTS

ROOT = Path(__file__).resolve().parents[2]
LARK = RuleParser(fast=False)
FAST = RuleParser()


def _difference(a: Any, b: Any, where: str = "$") -> str | None:
    """Where two values differ, comparing every dataclass field (spans too), or None."""
    if type(a) is not type(b):
        return f"{where}: {type(a).__name__} {a!r} != {type(b).__name__} {b!r}"
    if dataclasses.is_dataclass(a):
        for field in dataclasses.fields(a):
            found = _difference(
                getattr(a, field.name), getattr(b, field.name), where + "." + field.name
            )
            if found:
                return found
        return None
    if isinstance(a, tuple | list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items != {len(b)} items"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _difference(x, y, f"{where}[{index}]")
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r} != {b!r}"


def _error_facts(errors: Any) -> list[tuple[str, str, ast.Span, str | None, Any]]:
    return [(type(e).__name__, e.message, e.span, e.hint, e.rule_id) for e in errors]


def compare(text: str, path: str = "t.shrike") -> tuple[int, int]:
    """Check the fast path chunk by chunk and for the whole text; return (accepted, declined)."""
    fast = FastParser(text, path)
    lines = text.splitlines()
    accepted = declined = 0
    for start_line, start, end in _chunk_bounds(text):
        found = fast.parse_chunk(start, end)
        if found is None:
            declined += 1
            continue
        accepted += 1
        statements, comments, errors = LARK._parse_chunk(text[start:end], path, start_line, lines)
        assert not errors, f"fast path accepted a chunk Lark rejects: {errors[0]}"
        difference = _difference(found[0], statements) or _difference(found[1], comments)
        assert difference is None, f"chunk at line {start_line}: {difference}"
    slow_result = LARK.parse_collecting(text, path)
    fast_result = FAST.parse_collecting(text, path)
    assert _difference(fast_result.file, slow_result.file) is None
    assert _difference(fast_result.file.comments, slow_result.file.comments) is None
    assert _error_facts(fast_result.errors) == _error_facts(slow_result.errors)
    return accepted, declined


def _corpus(*patterns: str) -> list[Path]:
    return sorted(path for pattern in patterns for path in ROOT.glob(pattern))


@pytest.mark.parametrize(
    "path",
    _corpus("signatures/**/*.shrike", "docs/examples/*.shrike"),
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_shipped_rules_take_the_fast_path_with_equal_asts(path: Path) -> None:
    accepted, declined = compare(path.read_text(encoding="utf-8"), str(path))
    assert accepted > 0
    assert declined == 0


def test_snapshot_sample_agrees_and_its_broken_rule_goes_to_lark() -> None:
    path = ROOT / "tests/rules/snapshots/sample.shrike"
    accepted, declined = compare(path.read_text(encoding="utf-8"), str(path))
    assert accepted > 0
    assert declined >= 1  # the sample holds rules with errors, which only Lark reports


def _fixture_texts() -> list[str]:
    """Rule text written into the rules tests (string constants that look like rules)."""
    texts: set[str] = set()
    for module in sorted((ROOT / "tests/rules").glob("*.py")):
        tree = python_ast.parse(module.read_text(encoding="utf-8"))
        for node in python_ast.walk(tree):
            if (
                isinstance(node, python_ast.Constant)
                and isinstance(node.value, str)
                and ("rule " in node.value or "addresses " in node.value)
            ):
                texts.add(node.value)
    return sorted(texts)


def test_rule_text_in_the_test_fixtures_agrees() -> None:
    texts = _fixture_texts()
    assert len(texts) > 50
    accepted = 0
    for text in texts:
        accepted += compare(text)[0]
    assert accepted > 50


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("bench_lint", ROOT / "bench" / "lint.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_ruleset


@pytest.mark.parametrize("seed", [1, 7])
def test_generated_ruleset_takes_the_fast_path_with_equal_asts(seed: int) -> None:
    text = _generator()(300, seed)
    accepted, declined = compare(text, "generated.shrike")
    assert accepted >= 300
    assert declined == 0


TRICKY = [
    # keywords glued to what follows: the contextual lexer splits them
    'rule "a" {\n  id5\n  match tcp\n}\n',
    'rule "a" {\n  id 5 rev3\n  match tcp\n}\n',
    'rule "a" { id 5 match tcp where dsize inx }',
    'rule "a" { id 5 match tcp where dsize in[1, 2] }',
    'rule "a" { id 5 match tcp where http.uri contains "a" nocaserawbytes }',
    'rule "a" { id 5 match tcp where http.uri contains "a"nocase }',
    'rule "a" { id 5 match tcp where http.uri{contains"a"} }',
    'rule "a" { id 5 match tcp to_serverestablished }',
    'rule "a" { id 5 match tcpfrom any to any }',
    # flowbit names, joins and keywords as names
    'rule "a" { id 5 match tcp where flowbits isset a|b|c }',
    'rule "a" { id 5 match tcp where flowbits isset a | b }',
    'rule "a" { id 5 match tcp where flowbits isset a&b&c }',
    'rule "a" { id 5 match tcp where flowbits isset not }',
    'rule "a" { id 5 match tcp where flowbits isset group }',
    'rule "a" { id 5 match tcp flowbits set and }',
    'rule "a" { id 5 match tcp flowbits noalert severity low }',
    'rule "a" { id 5 match tcp where xbits isset a track ip_src expire 5 }',
    # addresses, ports, numbers
    'rule "a" { id 5 match ip from fe80::1 to any }',
    'rule "a" { id 5 match ip from [::1, 10.0.0.0/8, !$HOME_NET] to any port [80, 90 .., ..10] }',
    'rule "a" { id 5 match ip where ip.dst == fe80::1 }',
    'rule "a" { id 5 match ip where ip.dst == dead:beef::1 }',
    'rule "a" { id 5 match tcp from any port 80..90 to any port 1024 .. }',
    'rule "a" { id 5 match tcp from any port -1 to any }',
    'rule "a" { id 5 match tcp from any port 70000 to any }',
    'rule "a" { id 5 match tcp where dsize > -5 and ip.ttl==1 and dsize>=0x10 }',
    'rule "a" { id 5 match tcp where dsize in 1..5 and dsize in 1<>5 and dsize in 1.5..2 }',
    'rule "a" { id 5 match tcp where dsize > 1.2.3 }',
    'rule "a" { id 5 match tcp where dsize > 5m }',
    'rule "a" { id 5 match tcp where dsize <> 5 }',
    'rule "a" { id 5 match tcp where ip.src in $HOME_NET and ip.ttl in [1, 2, 0x3] }',
    # windows, rates, options
    'rule "a" { id 5 match tcp window 60s by src.ip:count() > 5 }',
    'rule "a" { id 5 match tcp window 60s by src.ip, dst.ip: sum(flow.bytes_toserver) > 1.5 }',
    'rule "a" { id 5 match tcp window 0s: count() > 5 }',
    'rule "a" { id 5 match tcp window 60sec: count() > 5 }',
    'rule "a" { id 5 match tcp threshold limit 1 per 90ms by src }',
    'rule "a" { id 5 match tcp threshold backoff 1 multiplier 10 by flow }',
    'rule "a" { id 5 match http from $HOME_NET port 1 to any with_replies established }',
    'rule "a" { id 5 match http with_replies to_server where http.method contains "a" }',
    'rule "a" { id 5 match http between any and any with_replies }',
    'rule "a" { id 5 match http with_replies with_replies }',
    'rule "a" { id 5 match tls where flowint a notset and flowint b >= c flowint a + 1 }',
    'rule "a" { id 5 match tls flowint a isset }',
    'rule "a" { id 5 match tcp threshold backoff 1 per 1s by flow }',
    'rule "a" { id 5 match tcp detection_filter 5 per 1m by src unique dst.port option tag }',
    'rule "a" { id 5 match tcp detection_filter 5 per 1m by src unique }',
    'rule "a" { id 5 match tcp detection_filter 5 per 1m by dst option tag }',
    'rule "a" { id 5 match tcp where pkt_data { option x "y" contains "a" } }',
    # calls
    'rule "a" { id 5 match tcp where pkt_data { contains "a" byte_test(bytes 4, offset -2, !& 0x80) } }',
    'rule "a" { id 5 match tcp where pkt_data byte_math(bytes 2, offset 0, oper /, rvalue 2, result r) }',
    'rule "a" { id 5 match tcp where pkt_data { byte_math(bytes 2, offset 0, oper -, rvalue 2, result r) matches /a/ } }',
    'rule "a" { id 5 match tcp where pkt_data byte_jump(bytes 4, offset 0, post_offset -2, string "dec") }',
    'rule "a" { id 5 match tcp where pkt_data not byte_test(bytes 1, offset 0, > 1) }',
    'rule "a" { id 5 match tcp where pkt_data isdataat() }',
    'rule "a" { id 5 match tcp where pkt_data { byte_extract(bytes 1, offset 4, name n) byte_jump(bytes n, offset 0, relative) byte_test(bytes n, offset 0, == 1) } }',
    'rule "a" { id 5 match tcp where pkt_data byte_extract(bytes n, offset 0, name m) }',
    'rule "a" { id 5 match tcp where pkt_data base64_decode() }',
    # contents and regexes
    'rule "a" { id 5 match tcp where pkt_data contains "" }',
    'rule "a" { id 5 match tcp where pkt_data contains "" "a" |0|}',
    'rule "a" { id 5 match tcp where pkt_data contains "\\q" }',
    'rule "a" { id 5 match tcp where pkt_data contains "\\x41\\n" offset x within 5 }',
    'rule "a" { id 5 match tcp where pkt_data contains "a" fast_pattern only fast_pattern }',
    'rule "a" { id 5 match tcp where pkt_data contains "a" fast_pattern at 1 length 2 depth 4 }',
    'rule "a" { id 5 match tcp where pkt_data matches /a#b/i # trailing\n}',
    'rule "a" { id 5 match tcp where pkt_data { size > 1 size in 1..2 } }',
    # comments and layout
    '# head\nrule "a" { # one\n id # two\n 5 match # three\n tcp }\n# tail\n',
    'rule "a" { id 5 match tcp }\nrule "b" { id 6 match udp } rule "c" { id 7 match ip }',
    'include "x.shrike" addresses A = [1.2.3.4] ports P = [1, 2..3]\n',
    "addresses A = any\nports P = !$Q\n",
    'rule "a" { id 5 match tcp where (dsize > 1 or (dsize < 2 or ip.ttl == 3)) and not not detector.port_scan }',
    'rule "a" { id 5 match tcp where ((dsize > 1)) }',
    'rule "a" { id 5 id 6 match tcp }',
    'rule "a" { match tcp }',
    'rule "a" { id 5 match tcp where unknown.field == 1 }',
    'rule "a" { id 5 match tcp where tcp.flags has SA ignoring CE and ip.options has_any rr }',
    'rule "a" { id 5 match tcp where tcp.flags == SX }',
    'rule "a" { id 5 match tcp where tcp.flags == S ignoring 12 and tcp.flags has A ignoring -1 }',
    'rule "a" { id 5 match tcp where tcp.flags == S ignoring 12 }',
    'rule "a" { id 5 match dns where dns.rrtype[0] == 1 and dns.rrtype[-1] in [1, 28] }',
    'rule "a" { id 5 match dns where dns.rrtype[all] in 1..5 or not dns.rrtype != 0x1c }',
    'rule "a" { id 5 match dns where dns.rrtype[any] == 1 or ip.ttl[0] == 1 }',
    'rule "a" { id 5 match dns where dns.rrtype[0x1] == 1 }',
    'rule "a" { id 5 match dns where dns.rrtype[in] == 1 }',
    'rule "a" { id 5 match tcp where dns.query with dotprefix, to_lowercase ends_with ".x" }',
    'rule "a" { id 5 match tcp where dns.query with bogus ends_with ".x" }',
    'rule "a" { id 5 severity loud match tcp }',
    'rule "a" { id 5 attack T1046, t1 match tcp }',
    'rule "a" { id 5 meta a 5 meta b -5 meta c "d" meta e f tags a, "b c" service http, ssl match tcp }',
    'alert tcp any any -> any any (msg:"x"; sid:1;)\n',
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_text_agrees(text: str) -> None:
    compare(text)


# The parser fuzzer's fragments, plus ones that probe the fast path's tokenizer
# (a keyword glued to a number, IPv6 starting with a letter, a lone bar).
FRAGMENTS = [*FUZZ_FRAGMENTS, "id1", "ip.dst", "|", "fe80::"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(" ".join))
def test_token_soup_agrees(text: str) -> None:
    compare(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join))
def test_glued_token_soup_agrees(text: str) -> None:
    compare(text)


_ALL_CONSTRUCTS = (ROOT / "docs/examples/all_constructs.shrike").read_text(encoding="utf-8")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(_ALL_CONSTRUCTS)),
            st.integers(min_value=0, max_value=8),
            st.sampled_from(["", " ", "\n", "#x\n", "(", ")", "x", "1", ".", "-", ":", "|", '"']),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_edited_valid_rules_agree(edits: list[tuple[int, int, str]]) -> None:
    text = _ALL_CONSTRUCTS
    for position, length, insert in edits:
        position = min(position, len(text))
        text = text[:position] + insert + text[position + length :]
    compare(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_agrees(text: str) -> None:
    compare(text)


def test_every_keyword_of_the_grammar_is_reserved() -> None:
    from rules import _fast_parser
    from rules.parser import _grammar_words

    words = _grammar_words(LARK._lark)
    assert {"rule", "contains", "has_any", "flowbits", "established", "count"} <= words
    assert words <= _fast_parser._RESERVED


def test_a_new_grammar_keyword_is_never_read_as_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from rules import _fast_parser

    text = 'rule "a" { id 5 match tcp where flowbits isset fresh }'
    assert compare(text) == (1, 0)
    monkeypatch.setattr(_fast_parser, "_RESERVED", {*_fast_parser._RESERVED, "fresh"})
    assert FastParser(text, "t").parse_chunk(0, len(text)) is None


RULESETS = ROOT.parent / "shared" / "data" / "rulesets"


@pytest.mark.shared
def test_imported_snort_rules_take_the_fast_path_with_equal_asts() -> None:
    """Real rules, as `shrike import-snort` prints them: a sample of every shared ruleset."""
    files = sorted(RULESETS.glob("*/*.rules"))
    if not files:
        pytest.skip(f"no rulesets at {RULESETS}")
    importer = pytest.importorskip("integrations.snort.importer")
    from rules.formatter import format_statements

    accepted = declined = 0
    for path in files[::10]:
        imported = importer.import_file(path).rules[:150]
        text = "\n".join(format_statements([rule]) for rule in imported)
        found = compare(text, str(path))
        accepted += found[0]
        declined += found[1]
    assert accepted > 500
    assert declined <= accepted // 100


def _node_classes() -> list[type]:
    return [
        value
        for value in vars(ast).values()
        if isinstance(value, type) and dataclasses.is_dataclass(value)
    ]


@pytest.mark.parametrize("cls", _node_classes(), ids=lambda cls: cls.__name__)
def test_node_constructors_take_the_classes_own_arguments(cls: type) -> None:
    build = getattr(_new, cls.__name__)
    wanted = inspect.signature(cls)

    def shape(signature: inspect.Signature) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in signature.parameters.values()]

    assert shape(inspect.signature(build)) == shape(wanted)
    arguments = {
        name: parameter.default
        for name, parameter in wanted.parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    required = [name for name in wanted.parameters if name not in arguments]
    values = {name: f"value of {name}" for name in required}
    if "span" in wanted.parameters:
        values["span"] = ast.Span("f.shrike", 3, 4, 3, 9)
    built = build(**values)
    expected = cls(**values)
    assert type(built) is cls
    assert built == expected
    assert hash(built) == hash(expected)
    field = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, field, getattr(built, field))
    for field in dataclasses.fields(cls):
        assert getattr(built, field.name) == getattr(expected, field.name)
