"""Formatter tests: printed text parses to an equal AST, formatting is idempotent, comments survive."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main
from rules import ast, format_rules, format_text, parse_text
from rules.formatter import format_statements, pattern_text

REPO = Path(__file__).resolve().parents[2]
CORPUS = sorted((REPO / "docs" / "examples").glob("*.shrike")) + sorted(
    (REPO / "signatures").rglob("*.shrike")
)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_format_round_trips_and_is_idempotent(path: Path) -> None:
    text = path.read_text()
    original = parse_text(text, str(path))
    formatted = format_text(text, str(path))
    assert parse_text(formatted) == original
    assert format_text(formatted) == formatted
    assert len(parse_text(formatted).comments) == len(original.comments)


def test_canonical_layout() -> None:
    messy = 'rule   "x"{id 5 match tcp   from any to $HOME_NET port 80 where ip.ttl<5 and(dsize>3 or dsize<1)}'
    assert format_text(messy) == (
        'rule "x" {\n'
        "  id 5  rev 1\n"
        "  match tcp to $HOME_NET port 80\n"
        "  where ip.ttl < 5\n"
        "    and (dsize > 3 or dsize < 1)\n"
        "}\n"
    )


def test_comments_are_kept_in_place() -> None:
    text = (
        "# file header\n"
        'rule "x" {  # on the rule line\n'
        "  id 5  rev 1\n"
        "  # before match\n"
        "  match tcp\n"
        "  where ip.ttl < 5  # low ttl\n"
        "    # before second operand\n"
        "    and dsize > 3\n"
        "}\n"
        "\n"
        "# file end\n"
    )
    formatted = format_text(text)
    assert formatted == text
    assert [c.text for c in parse_text(formatted).comments] == [
        " file header",
        " on the rule line",
        " before match",
        " low ttl",
        " before second operand",
        " file end",
    ]


def test_sequence_blocks_and_shorthand() -> None:
    text = 'rule "x" { id 1 match tcp where pkt_data { contains "a" } and pkt_data { contains "a" contains "b" distance 0 } }'
    formatted = format_text(text)
    assert '  where pkt_data contains "a"\n' in formatted
    assert (
        '    and pkt_data {\n      contains "a"\n      contains "b" distance 0\n    }\n'
        in formatted
    )


def test_patterns_print_printable_runs_as_text_and_the_rest_as_hex() -> None:
    assert pattern_text(b'GET \r\n\x00x"\\') == '"GET " |0D 0A 00| "x\\"\\\\"'
    assert pattern_text(b"") == '""'


def test_nodes_built_in_code_print_to_parsable_text() -> None:
    rule = ast.Rule(
        title='Imported "quoted" \x01',
        id=42,
        header=ast.Header("tcp", flow=("established", "to_server")),
        enabled=False,
        condition=ast.And(
            (
                ast.Sequence(
                    ast.Buffer("pkt_data"),
                    (
                        ast.Content(b"\xff\xfeSMB", nocase=True, depth=8),
                        ast.ByteTest(2, "<", 10, 0, relative=True, endian="little"),
                        ast.OpaqueOption("dce_opnum", "15"),
                    ),
                ),
                ast.Or(
                    (
                        ast.Comparison(ast.FieldRef("ip.ttl"), "in", ast.Range(1, 2, False)),
                        ast.Not(ast.Comparison(ast.FieldRef("anomaly.score"), ">", 1e-7)),
                    )
                ),
            )
        ),
        bit_actions=(ast.Flowbits("flowbits", "noalert"),),
    )
    text = format_statements([rule])
    assert parse_text(text).rules == (rule,)


def test_format_rules_on_a_parsed_file_matches_format_text() -> None:
    text = 'rule "x" { id 1 match tcp }\n'
    assert format_rules(parse_text(text)) == format_text(text)


def test_fmt_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = tmp_path / "clean.shrike"
    clean.write_text('rule "x" {\n  id 1  rev 1\n  match tcp\n}\n')
    messy = tmp_path / "messy.shrike"
    messy.write_text('rule "x" { id 1 match tcp }  # keep me\n')
    broken = tmp_path / "broken.shrike"
    broken.write_text('rule "x" { id 1 match tcp where ip.ttl = 5 }\n')

    assert main(["fmt", "--check", str(clean)]) == 0
    assert main(["fmt", "--check", str(messy)]) == 1
    assert "would reformat" in capsys.readouterr().out
    assert messy.read_text() == 'rule "x" { id 1 match tcp }  # keep me\n'
    assert main(["fmt", str(messy)]) == 0
    assert "# keep me" in messy.read_text()
    assert main(["fmt", "--check", str(messy)]) == 0
    assert main(["fmt", "--check", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "broken.shrike:1:40: unexpected '='" in err and "hint: compare with `==`" in err
    assert main(["fmt", "--check", str(tmp_path / "nope.shrike")]) == 2
    assert main(["fmt", "--check", str(tmp_path)]) == 2  # the directory holds broken.shrike
