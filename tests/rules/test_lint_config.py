"""Lint configuration: selectors, per-file ignores, config files and `# shrike: disable` comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.lint.config import (
    LintConfig,
    LintConfigError,
    discover_config,
    load_config_file,
)
from rules.lint.diagnostics import Severity
from rules.lint.registry import CheckDefinitionError, CheckRegistry, default_registry
from rules.lint.runner import Linter, lint_paths, lint_text

# One rule with three findings: ATK006 (no technique), STY001 (no severity), PRF005 (any/any).
BARE_RULE = 'rule "Bare" {\n  id 9000001\n  match tcp from any to any\n}\n'


def _codes(text: str, config: LintConfig | None = None) -> list[str]:
    return [d.code for d in lint_text(text, "t.shrike", config).diagnostics]


def test_selectors_accept_codes_prefixes_names_families_and_all() -> None:
    registry = default_registry()
    assert [c.code for c in registry.resolve("ATK001")] == ["ATK001"]
    assert {c.code for c in registry.resolve("ATK")} == {
        c.code for c in registry if c.family.value == "ATK"
    }
    assert [c.code for c in registry.resolve("undefined-variable")] == ["SEM002"]
    assert {c.family.label for c in registry.resolve("performance")} == {"performance"}
    assert len(registry.resolve("ALL")) == len(registry)
    with pytest.raises(LintConfigError, match="selects no check"):
        registry.resolve("XYZ123")


def test_select_and_ignore_filter_diagnostics() -> None:
    assert sorted(_codes(BARE_RULE)) == ["ATK006", "PRF005", "STY001"]
    assert _codes(BARE_RULE, LintConfig(select=("STY",))) == ["STY001"]
    assert sorted(_codes(BARE_RULE, LintConfig(ignore=("style", "ATK006")))) == ["PRF005"]


def test_unknown_selector_in_config_fails_before_linting() -> None:
    with pytest.raises(LintConfigError, match="'NOPE' selects no check"):
        Linter(LintConfig(ignore=("NOPE",)))


def test_severity_override_changes_the_reported_severity() -> None:
    config = LintConfig(select=("STY001",), severity_overrides={"STY001": Severity.ERROR})
    report = lint_text(BARE_RULE, "t.shrike", config)
    assert [d.severity for d in report.diagnostics] == [Severity.ERROR]


def test_disable_comment_above_a_rule_silences_only_that_rule() -> None:
    text = (
        "# Known noisy rule, kept for the lab network.\n"
        "# shrike: disable=ATK006, missing-severity\n"
        + BARE_RULE
        + BARE_RULE.replace("9000001", "9000002")
    )
    report = lint_text(text, "t.shrike", LintConfig(ignore=("PRF005",)))
    assert [(d.code, d.rule_id) for d in report.diagnostics] == [
        ("ATK006", "9000002"),
        ("STY001", "9000002"),
    ]


def test_disable_comment_separated_by_a_blank_line_does_not_apply() -> None:
    text = "# shrike: disable=STY001\n\n" + BARE_RULE
    assert "STY001" in _codes(text)


def test_disable_file_comment_applies_to_every_rule() -> None:
    text = BARE_RULE + "# shrike: disable-file=STY001\n" + BARE_RULE.replace("9000001", "9000002")
    assert "STY001" not in _codes(text)


def test_disable_comment_naming_nothing_is_reported() -> None:
    text = "# shrike: disable=ATK999\n" + BARE_RULE
    report = lint_text(text, "t.shrike", LintConfig(select=("STY004",)))
    assert [(d.code, d.line, d.message) for d in report.diagnostics] == [
        ("STY004", 1, "suppression names 'ATK999', which is not a lint code or check")
    ]


def test_pyproject_lint_section_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.shrike.lint]\n"
        'select = ["ALL"]\n'
        'ignore = ["STY001"]\n'
        'fail-on = "error"\n'
        'variables = ["HOME_NET"]\n'
        '[tool.shrike.lint.per-file-ignores]\n"legacy/*.shrike" = ["ATK"]\n'
        '[tool.shrike.lint.severity]\nPRF005 = "info"\n'
    )
    config = load_config_file(tmp_path / "pyproject.toml")
    assert config is not None
    assert config.ignore == ("STY001",)
    assert config.fail_on is Severity.ERROR
    assert config.variables == frozenset({"HOME_NET"})
    assert config.severity_overrides == {"PRF005": Severity.INFO}
    assert config.ignored_for(str(tmp_path / "legacy" / "old.shrike")) == ("ATK",)
    assert config.ignored_for(str(tmp_path / "new" / "old.shrike")) == ()


def test_per_file_ignores_apply_when_linting_paths(tmp_path: Path) -> None:
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "old.shrike").write_text(BARE_RULE)
    (tmp_path / "new.shrike").write_text(BARE_RULE.replace("9000001", "9000002"))
    (tmp_path / "shrike.yaml").write_text(
        "engine: {}\nlint:\n  per-file-ignores:\n    legacy/*.shrike: [ATK006]\n"
    )
    config = discover_config([tmp_path])
    report = lint_paths([tmp_path], config)
    atk = sorted(Path(d.path).name for d in report.diagnostics if d.code == "ATK006")
    assert atk == ["new.shrike"]


def test_discovery_walks_up_and_skips_files_without_a_lint_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.shrike.lint]\nignore = ["STY"]\n')
    nested = tmp_path / "signatures" / "discovery"
    nested.mkdir(parents=True)
    (tmp_path / "signatures" / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert discover_config([nested]).ignore == ("STY",)
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (tmp_path / "pyproject.toml").unlink()
    assert discover_config([lonely]) == LintConfig()


@pytest.mark.parametrize(
    ("file_name", "text", "message"),
    [
        ("shrike.yaml", "lint:\n  selct: [ATK]\n", "unknown lint setting"),
        ("shrike.yaml", "lint: [1, 2]\n", "must be a mapping"),
        ("shrike.yaml", "lint:\n  fail-on: loud\n", "unknown severity 'loud'"),
        ("shrike.yaml", "lint:\n  ignore: 3\n", "lint.ignore must be"),
        ("shrike.yaml", "lint: {\n", "invalid YAML"),
        ("pyproject.toml", "[tool.shrike.lint\n", "invalid TOML"),
    ],
)
def test_bad_configuration_is_a_located_error(
    tmp_path: Path, file_name: str, text: str, message: str
) -> None:
    path = tmp_path / file_name
    path.write_text(text)
    with pytest.raises(LintConfigError, match=message) as raised:
        load_config_file(path)
    assert str(path) in str(raised.value)


def test_registry_rejects_inconsistent_checks() -> None:
    first, second = default_registry().checks[:2]

    class Clash(second):  # type: ignore[misc, valid-type]
        code = first.code

    with pytest.raises(CheckDefinitionError, match="reuses"):
        CheckRegistry((first, Clash))

    class BadName(second):  # type: ignore[misc, valid-type]
        name = "Bad_Name"

    with pytest.raises(CheckDefinitionError, match="kebab-case"):
        CheckRegistry((BadName,))


def test_variables_file_names_count_as_defined(tmp_path: Path) -> None:
    (tmp_path / "vars.yaml").write_text(
        "addresses:\n  LAB_NET: [192.0.2.0/24]\nports:\n  LAB_PORTS: 8080\n"
    )
    (tmp_path / "shrike.yaml").write_text(
        "lint:\n  variables-file: vars.yaml\n  select: [SEM002]\n"
    )
    (tmp_path / "r.shrike").write_text(
        'rule "r" {\n  id 9000001\n  match tcp from $LAB_NET to $OTHER_NET port $LAB_PORTS\n}\n'
    )
    report = lint_paths([tmp_path], discover_config([tmp_path]))
    assert [d.message for d in report.diagnostics] == ["variable $OTHER_NET is not defined"]


def test_unreadable_variables_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "shrike.yaml").write_text("lint:\n  variables-file: missing.yaml\n")
    with pytest.raises(LintConfigError, match="variables-file"):
        Linter(discover_config([tmp_path]))
