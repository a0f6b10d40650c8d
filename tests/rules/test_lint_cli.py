"""`shrike lint` and `shrike attack coverage` on the command line: output, exit codes, files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from engine.cli import attack as attack_cli
from engine.cli import lint as lint_cli

CLEAN_RULE = (
    'rule "SSH scan" {\n  id 9000001\n  severity low\n  attack T1046\n'
    "  match tcp from any to any port 22\n  where tcp.flags == S\n"
    "  window 60s by src.ip: count() >= 20\n}\n"
)
INFO_ONLY_RULE = CLEAN_RULE.replace("  severity low\n", "")  # STY001 is info
ERROR_RULE = CLEAN_RULE.replace("T1046", "T1999")  # ATK001 is an error


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="shrike")
    sub = parser.add_subparsers()
    lint_cli.register(sub)
    attack_cli.register(sub)
    args = parser.parse_args(list(argv))
    return int(args.func(args))


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "signatures"
    folder.mkdir()
    return folder


def test_clean_file_exits_zero_with_summary(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (rules_dir / "a.shrike").write_text(CLEAN_RULE)
    assert _run("lint", str(rules_dir)) == 0
    assert capsys.readouterr().out == "All checks passed (1 rule in 1 file).\n"


def test_findings_exit_one_with_ruff_style_lines(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = rules_dir / "a.shrike"
    path.write_text(ERROR_RULE)
    assert _run("lint", str(path)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}:4:10: ATK001 [error] T1999 is not a technique in ATT&CK v18.1"
    assert out[-1].startswith("Found 1 diagnostic (1 error)")


def test_fail_on_sets_the_threshold(rules_dir: Path) -> None:
    (rules_dir / "a.shrike").write_text(INFO_ONLY_RULE)
    assert _run("lint", str(rules_dir)) == 0  # default threshold is warning
    assert _run("lint", str(rules_dir), "--fail-on", "info") == 1
    (rules_dir / "a.shrike").write_text(ERROR_RULE)
    assert _run("lint", str(rules_dir), "--fail-on", "error") == 1
    assert _run("lint", str(rules_dir), "--ignore", "ATK001") == 0


def test_select_narrows_the_checks(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (rules_dir / "a.shrike").write_text(ERROR_RULE)
    assert _run("lint", str(rules_dir), "--select", "style,SEM") == 0
    assert "ATK001" not in capsys.readouterr().out


def test_missing_path_and_bad_selector_are_tool_errors(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("lint", str(rules_dir / "nope.shrike")) == 2
    assert "no such file or directory" in capsys.readouterr().err
    (rules_dir / "a.shrike").write_text(CLEAN_RULE)
    assert _run("lint", str(rules_dir), "--select", "BOGUS") == 2
    assert "'BOGUS' selects no check" in capsys.readouterr().err


def test_bad_config_file_is_a_tool_error(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (rules_dir / "a.shrike").write_text(CLEAN_RULE)
    (rules_dir / "shrike.yaml").write_text("lint:\n  fail-on: loud\n")
    assert _run("lint", str(rules_dir)) == 2
    assert "shrike.yaml: unknown severity 'loud'" in capsys.readouterr().err


def test_non_utf8_file_is_a_diagnostic_not_a_crash(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = rules_dir / "latin1.shrike"
    path.write_bytes(b'rule "caf\xe9" {\n}\n')
    assert _run("lint", str(path)) == 1
    assert f"{path}:1:10: SYN005 [error] not UTF-8 text" in capsys.readouterr().out


def test_json_format_goes_to_output_file(rules_dir: Path, tmp_path: Path) -> None:
    (rules_dir / "a.shrike").write_text(ERROR_RULE)
    report = tmp_path / "report.json"
    assert _run("lint", str(rules_dir), "--format", "json", "-o", str(report)) == 1
    decoded = json.loads(report.read_text())
    assert [item["code"] for item in decoded] == ["ATK001"]


def test_attack_coverage_writes_a_navigator_layer(
    rules_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (rules_dir / "a.shrike").write_text(CLEAN_RULE + ERROR_RULE.replace("9000001", "9000002"))
    layer_path = tmp_path / "layer.json"
    assert _run("attack", "coverage", str(rules_dir), "-o", str(layer_path)) == 0
    layer = json.loads(layer_path.read_text())
    assert [(t["techniqueID"], t["score"]) for t in layer["techniques"]] == [("T1046", 1)]
    captured = capsys.readouterr()
    assert "T1999 is not a technique" in captured.err
    assert "1 techniques covered by 2 rules in 1 files" in captured.out


def test_attack_coverage_missing_path_is_a_tool_error(tmp_path: Path) -> None:
    assert _run("attack", "coverage", str(tmp_path / "none"), "-o", str(tmp_path / "l.json")) == 2


def test_a_crashing_check_is_a_tool_error_not_findings(
    rules_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rules.lint.checks.style import MissingSeverityCheck

    def explode(self: object, linted: object, context: object) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(MissingSeverityCheck, "check_rule", explode)
    (rules_dir / "a.shrike").write_text(CLEAN_RULE)
    assert _run("lint", str(rules_dir)) == 2
    assert "internal error: RuntimeError: boom" in capsys.readouterr().err


def _snort_rule(source: str, ports: str, sid: int) -> str:
    return (
        f"alert tcp {source} any -> $HOME_NET {ports} "
        f'(msg:"MALWARE-CNC test {sid}"; content:"abcdef"; classtype:trojan-activity; '
        f"sid:{sid}; rev:1;)\n"
    )


def _undefined(out: str) -> list[str]:
    """The SEM002 lines of a concise report."""
    return [line for line in out.splitlines() if " SEM002 " in line]


def test_rules_files_see_the_shipped_variables_as_defined(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.match.loading import DEFAULT_VARIABLES
    from rules.variables import load_variables

    shipped = load_variables(DEFAULT_VARIABLES)
    address, port = sorted(shipped.addresses)[-1], sorted(shipped.ports)[-1]
    assert "NOT_SHIPPED_NET" not in shipped.addresses
    (rules_dir / "a.rules").write_text(
        _snort_rule(f"${address}", f"${port}", 1000001)
        + _snort_rule("$NOT_SHIPPED_NET", "$HTTP_PORTS", 1000002)
    )
    assert _run("lint", str(rules_dir), "--select", "SEM002") == 1
    undefined = _undefined(capsys.readouterr().out)
    assert len(undefined) == 1
    assert undefined[0].startswith(f"{rules_dir / 'a.rules'}:2:")
    assert "$NOT_SHIPPED_NET is not defined" in undefined[0]


def test_a_configured_variables_file_replaces_the_shipped_one_for_rules_files(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (rules_dir / "vars.yaml").write_text("addresses:\n  HOME_NET: 10.0.0.0/8\n")
    (rules_dir / "shrike.yaml").write_text("lint:\n  variables-file: vars.yaml\n")
    (rules_dir / "a.rules").write_text(_snort_rule("any", "$HTTP_PORTS", 1000001))
    assert _run("lint", str(rules_dir), "--select", "SEM002") == 1
    undefined = _undefined(capsys.readouterr().out)
    assert len(undefined) == 1 and "$HTTP_PORTS is not defined" in undefined[0]


def test_shrike_files_alone_do_not_get_the_snort_variables(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (rules_dir / "a.shrike").write_text(CLEAN_RULE.replace("from any", "from $HOME_NET"))
    assert _run("lint", str(rules_dir), "--select", "SEM002") == 1
    undefined = _undefined(capsys.readouterr().out)
    assert len(undefined) == 1 and "$HOME_NET is not defined" in undefined[0]


def test_imported_rules_have_a_severity(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (rules_dir / "a.rules").write_text(
        _snort_rule("any", "any", 1000001)
        + _snort_rule("any", "any", 1000002).replace("classtype:trojan-activity; ", "")
    )
    assert _run("lint", str(rules_dir), "--select", "STY001") == 0  # STY001 is info
    out = capsys.readouterr().out
    assert "rule 1000002 has no severity" in out
    assert "rule 1000001" not in out
