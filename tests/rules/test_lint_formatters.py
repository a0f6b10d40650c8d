"""Output formats of `shrike lint`: snapshots of each format, SARIF against the 2.1.0 schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from rules.lint.config import LintConfig
from rules.lint.diagnostics import Diagnostic, LintReport, Severity
from rules.lint.formatters import FORMATTERS, build_sarif, format_github, summary_line
from rules.lint.registry import default_registry
from rules.lint.runner import Linter, parse_shrike_source

HERE = Path(__file__).resolve().parent
SNAPSHOTS = HERE / "snapshots"
SARIF_SCHEMA = HERE / "sarif-schema-2.1.0.json"
# Set SHRIKE_UPDATE_SNAPSHOTS=1 to rewrite the expected files after an intended change.
UPDATE = os.environ.get("SHRIKE_UPDATE_SNAPSHOTS") == "1"


@pytest.fixture(scope="module")
def sample_report() -> LintReport:
    text = (SNAPSHOTS / "sample.shrike").read_text(encoding="utf-8")
    source = parse_shrike_source("signatures/sample.shrike", text)
    # The Hyperscan check depends on an optional package; keep snapshots independent of it.
    return Linter(LintConfig(ignore=("PRF003",))).lint([source])


@pytest.mark.parametrize("format_name", sorted(FORMATTERS))
def test_output_matches_snapshot(format_name: str, sample_report: LintReport) -> None:
    rendered = FORMATTERS[format_name](sample_report, default_registry().checks)
    file_name = {"json": "sample.json", "sarif": "sample.sarif"}.get(
        format_name, f"sample.{format_name}.txt"
    )
    snapshot = SNAPSHOTS / file_name
    if UPDATE or not snapshot.exists():
        snapshot.write_text(rendered, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"snapshot {snapshot.name} was missing and has been written; rerun")
    assert rendered == snapshot.read_text(encoding="utf-8")


def test_sarif_output_is_valid_sarif_2_1_0(sample_report: LintReport) -> None:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    document = json.loads(FORMATTERS["sarif"](sample_report, default_registry().checks))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert errors == []
    run = document["runs"][0]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]


def test_schema_rejects_a_broken_sarif_document(sample_report: LintReport) -> None:
    """The validation above can fail: a result without a message is not SARIF."""
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    document = build_sarif(sample_report, default_registry().checks)
    del document["runs"][0]["results"][0]["message"]  # type: ignore[index]
    validator_class = jsonschema.validators.validator_for(schema)
    assert list(validator_class(schema).iter_errors(document))


def test_sarif_levels_follow_severity() -> None:
    report = LintReport(
        diagnostics=(
            Diagnostic("a b.shrike", 1, 2, "STY001", "missing-severity", Severity.INFO, "m"),
        ),
        files_checked=("a b.shrike",),
        rules_checked=1,
    )
    document = build_sarif(report, default_registry().checks)
    result = document["runs"][0]["results"][0]  # type: ignore[index]
    assert result["level"] == "note"
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "a%20b.shrike"


def test_github_annotations_escape_their_payload() -> None:
    report = LintReport(
        diagnostics=(
            Diagnostic(
                "x,y.shrike", 3, 4, "SEM002", "undefined-variable", Severity.ERROR, "50%\nnext"
            ),
        ),
    )
    assert format_github(report) == (
        "::error file=x%2Cy.shrike,line=3,col=4,title=SEM002 undefined-variable::"
        "SEM002 [error] 50%25%0Anext\n"
    )


def test_json_output_round_trips_every_field(sample_report: LintReport) -> None:
    decoded = json.loads(FORMATTERS["json"](sample_report, ()))
    rebuilt = tuple(
        Diagnostic(
            path=item["path"],
            line=item["line"],
            column=item["column"],
            code=item["code"],
            name=item["name"],
            severity=Severity(item["severity"]),
            message=item["message"],
            rule_id=item["rule_id"],
            end_line=item["end_line"],
            end_column=item["end_column"],
        )
        for item in decoded
    )
    assert rebuilt == sample_report.diagnostics


def test_summary_line_counts_by_severity() -> None:
    clean = LintReport(diagnostics=(), files_checked=("a.shrike",), rules_checked=1)
    assert summary_line(clean) == "All checks passed (1 rule in 1 file)."
    found = LintReport(
        diagnostics=(
            Diagnostic("a.shrike", 1, 1, "SEM001", "duplicate-rule-id", Severity.ERROR, "m"),
            Diagnostic("b.shrike", 1, 1, "STY001", "missing-severity", Severity.INFO, "m"),
            Diagnostic("b.shrike", 2, 1, "STY001", "missing-severity", Severity.INFO, "m"),
        ),
        files_checked=("a.shrike", "b.shrike"),
        rules_checked=4,
    )
    assert summary_line(found) == (
        "Found 3 diagnostics (1 error, 2 infos) in 2 files; checked 4 rules in 2 files."
    )
