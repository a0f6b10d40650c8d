"""Turns a LintReport into text: concise (ruff-style lines), json, sarif (2.1.0) and github annotations."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import Protocol
from urllib.parse import quote

from rules.lint.diagnostics import Diagnostic, Family, LintReport, Severity

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


class CheckDescription(Protocol):
    """What a formatter needs to know about a check (the Check classes satisfy it)."""

    code: str
    name: str
    description: str
    severity: Severity
    family: Family


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summary_line(report: LintReport) -> str:
    scope = (
        f"{_plural(report.rules_checked, 'rule')} in {_plural(len(report.files_checked), 'file')}"
    )
    if not report.diagnostics:
        return f"All checks passed ({scope})."
    parts = [
        _plural(report.count(severity), severity.value)
        for severity in (Severity.ERROR, Severity.WARNING, Severity.INFO)
        if report.count(severity)
    ]
    return (
        f"Found {_plural(len(report.diagnostics), 'diagnostic')} ({', '.join(parts)}) "
        f"in {_plural(report.files_with_findings(), 'file')}; checked {scope}."
    )


def format_concise(report: LintReport, checks: Sequence[CheckDescription] = ()) -> str:
    lines = [
        f"{d.path}:{d.line}:{d.column}: {d.code} [{d.severity.value}] {d.message}"
        for d in report.diagnostics
    ]
    lines.extend(f"note: {note}" for note in report.notes)
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


def diagnostic_to_dict(diagnostic: Diagnostic) -> dict[str, object]:
    return {
        "path": diagnostic.path,
        "line": diagnostic.line,
        "column": diagnostic.column,
        "end_line": diagnostic.end_line,
        "end_column": diagnostic.end_column,
        "code": diagnostic.code,
        "name": diagnostic.name,
        "severity": diagnostic.severity.value,
        "message": diagnostic.message,
        "rule_id": diagnostic.rule_id,
    }


def format_json(report: LintReport, checks: Sequence[CheckDescription] = ()) -> str:
    return json.dumps([diagnostic_to_dict(d) for d in report.diagnostics], indent=2) + "\n"


def _artifact_uri(path: str) -> str:
    # SARIF wants a URI reference: forward slashes and percent-encoding.
    return quote(PurePath(path).as_posix(), safe="/:")


def build_sarif(
    report: LintReport, checks: Sequence[CheckDescription], *, tool_version: str = "0.1.0"
) -> dict[str, object]:
    by_code: Mapping[str, CheckDescription] = {check.code: check for check in checks}
    used_codes = sorted({d.code for d in report.diagnostics})
    rule_index = {code: index for index, code in enumerate(used_codes)}
    descriptors = []
    for code in used_codes:
        check = by_code.get(code)
        descriptor: dict[str, object] = {"id": code}
        if check is not None:
            descriptor.update(
                {
                    "name": check.name,
                    "shortDescription": {"text": check.description},
                    "defaultConfiguration": {"level": _SARIF_LEVEL[check.severity]},
                    "properties": {"family": check.family.label},
                }
            )
        descriptors.append(descriptor)
    results = []
    for d in report.diagnostics:
        region: dict[str, int] = {"startLine": d.line, "startColumn": d.column}
        if d.end_line is not None:
            region["endLine"] = d.end_line
        if d.end_column is not None:
            region["endColumn"] = d.end_column
        result: dict[str, object] = {
            "ruleId": d.code,
            "ruleIndex": rule_index[d.code],
            "level": _SARIF_LEVEL[d.severity],
            "message": {"text": d.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _artifact_uri(d.path)},
                        "region": region,
                    }
                }
            ],
        }
        if d.rule_id is not None:
            result["properties"] = {"shrikeRuleId": d.rule_id}
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "shrike-lint",
                        "version": tool_version,
                        "rules": descriptors,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def format_sarif(report: LintReport, checks: Sequence[CheckDescription] = ()) -> str:
    return json.dumps(build_sarif(report, checks), indent=2) + "\n"


def _escape_github_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_github_property(text: str) -> str:
    return _escape_github_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(report: LintReport, checks: Sequence[CheckDescription] = ()) -> str:
    """GitHub Actions workflow commands, which the runner turns into annotations on the diff."""
    lines = []
    for d in report.diagnostics:
        properties = [
            f"file={_escape_github_property(d.path)}",
            f"line={d.line}",
            f"col={d.column}",
        ]
        if d.end_line is not None:
            properties.append(f"endLine={d.end_line}")
        if d.end_column is not None:
            properties.append(f"endColumn={d.end_column}")
        properties.append(f"title={_escape_github_property(f'{d.code} {d.name}')}")
        lines.append(
            f"::{_GITHUB_COMMAND[d.severity]} {','.join(properties)}::"
            f"{_escape_github_data(f'{d.code} [{d.severity.value}] {d.message}')}"
        )
    return "".join(line + "\n" for line in lines)


Formatter = Callable[[LintReport, Sequence[CheckDescription]], str]

FORMATTERS: Mapping[str, Formatter] = {
    "concise": format_concise,
    "json": format_json,
    "sarif": format_sarif,
    "github": format_github,
}
